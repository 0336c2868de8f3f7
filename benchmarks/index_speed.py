"""Index speed: the whole `atustc index` process on ~400,000 zero-byte AT-USTC files, and the reload.

Builds a tree named like AT-USTC (270 identities, 13 dates, every flag 0-10) in a temporary
folder, times `atustc index ROOT -o TABLE.parquet` as a subprocess (start-up included), then
times `atustc.table.load_table` on the result. Targets: index < 2 s, reload < 0.5 s.

    .venv/bin/python benchmarks/index_speed.py [--images 400000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_tree(root: Path, n_images: int, seed: int = 0) -> int:
    """Create zero-byte files pXXX-dYY-cZZ/camNN-fF-FFFF.jpg; returns the number created."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 271)
    test_ids = set(rng.choice(ids, 135, replace=False).tolist())
    per_id = n_images // len(ids)
    made = 0
    for pid in ids.tolist():
        n_caps = 30
        dates = rng.integers(1, 14, n_caps)
        clothes = rng.integers(1, 6, n_caps)
        left = per_id
        for cap in range(n_caps):
            d = root / f"p{pid:03d}-d{dates[cap]:02d}-c{clothes[cap]:02d}"
            d.mkdir(exist_ok=True)
            n = left // (n_caps - cap)
            left -= n
            cams = rng.integers(1, 17, n)
            frames = np.arange(n) + 1 + 1000 * cap
            if pid in test_ids:
                flags = rng.integers(2, 11, n)
            else:
                flags = np.where(rng.random(n) < 0.2, 1, 0)
            for c, f, fr in zip(cams.tolist(), flags.tolist(), frames.tolist()):
                os.close(os.open(d / f"cam{c:02d}-f{f}-{fr:04d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
            made += n
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build (or reuse) the tree here instead of a temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atustc-index-bench-"))
    root = args.keep or tmp / "AT-USTC"
    try:
        if not root.is_dir():
            root.mkdir(parents=True)
            t0 = time.perf_counter()
            n = build_tree(root, args.images)
            print(f"built {n:,} zero-byte files in {time.perf_counter() - t0:.1f} s")
        atustc = Path(sys.executable).with_name("atustc")
        out = tmp / "at.parquet"
        runs, cpus = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([str(atustc), "index", str(root), "-o", str(out), "--quiet"], check=True)
            runs.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        print(
            f"atustc index (whole process): best {min(runs):.2f} s wall, runs {', '.join(f'{r:.2f}' for r in runs)}; "
            f"CPU (user+sys) best {min(cpus):.2f} s"
        )
        from atustc.table import load_table

        loads = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            table = load_table(out)
            loads.append(time.perf_counter() - t0)
        print(f"load_table reload of {len(table):,} rows: best {min(loads):.3f} s")
        t0 = time.perf_counter()
        for _dirpath, _dirs, _files in os.walk(root):
            pass
        print(f"bare os.walk floor: {time.perf_counter() - t0:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
