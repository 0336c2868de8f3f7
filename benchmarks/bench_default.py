"""Wall time of the README's main command, ``atustc bench`` with no arguments (target: < 10 min on 2 cores).

Runs the command in a fresh temporary folder with a fresh synthetic cache (so the dataset is
built too, as on a first run), then a second time (everything reused), and prints the total
wall time, the time spent per run (from ``RUNS/bench.json``) and the leaderboard's Any-Time.

Usage: ``.venv/bin/python benchmarks/bench_default.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="atustc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("atustc")
    env = {**os.environ, "ATUSTC_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    for label in ("first run (builds the synthetic set)", "second run (all reused)"):
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), "bench", "--no-progress"], cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"atustc bench failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        bench = json.loads((work / "runs" / "bench.json").read_text())
        runs = {r["run"]: r for r in bench["runs"]}
        print(f"{label}: {wall:.1f} s wall")
        for name, r in runs.items():
            print(f"  {name}: {r['action']} in {r['seconds']:.1f} s")
        print(f"  data build + imports + leaderboard: {wall - sum(r['seconds'] for r in runs.values()):.1f} s")
    csv = subprocess.run(
        [str(exe), "leaderboard", "--runs", "runs", "--format", "csv"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import io

    import pandas as pd

    frame = pd.read_csv(io.StringIO(csv))
    for _, row in frame.iterrows():
        print(
            f"{row['method']}: Any-Time R1 {100 * row['Any-Time_R1_mean']:.2f} "
            f"mAP {100 * row['Any-Time_mAP_mean']:.2f}, "
            f"train {row['train_time_s_mean']:.0f} s, {row['images_per_s_mean']:.1f} img/s, "
            f"{row['params_mean'] / 1e6:.2f}M params"
        )
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
