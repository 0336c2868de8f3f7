"""Speed of ``atustc stats`` on a 400,000-row AT-USTC-shaped table (target: < 3 s in-process with
plots, < 4 s as a whole CLI process, on 2 CPU cores).

The table is built in memory with the real dataset's shape: 270 identities (135 train with a 20 %
validation flag, 135 test), 8 RGB + 8 IR cameras, 13 dates, 2-6 outfits per identity, about 29
captures (date x camera) per identity, and test flags 2-10 by modality and term. It is saved to
parquet in a temporary folder, then timed three ways: :func:`atustc.stats.table_stats` alone,
the library path with CSVs and all figures, and ``atustc stats TABLE -o DIR`` as a subprocess.

Run: ``.venv/bin/python benchmarks/stats_speed.py [--rows N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def atustc_shaped_table(rows: int = 400_000, seed: int = 0) -> pd.DataFrame:
    """An AT-USTC-shaped annotation table with about ``rows`` rows (exactly ``rows``)."""
    rng = np.random.default_rng(seed)
    clips = []  # (pid, date, clothes, camera) of every capture
    for pid in range(1, 271):
        dates = np.sort(rng.choice(np.arange(1, 14), rng.integers(3, 8), replace=False))
        outfits = rng.integers(1, rng.integers(2, 7) + 1, len(dates))
        for date, clothes in zip(dates, outfits):
            cams = np.concatenate(
                [
                    rng.choice(np.arange(1, 9), rng.integers(2, 5), replace=False),
                    rng.choice(np.arange(9, 17), rng.integers(2, 5), replace=False),
                ]
            )
            clips += [(pid, date, clothes, cam) for cam in cams]
    clip = np.array(clips)
    frames = rng.multinomial(rows - len(clip), np.full(len(clip), 1 / len(clip))) + 1
    pid, date, clothes, camera = (np.repeat(clip[:, i], frames) for i in range(4))
    frame = np.concatenate([np.arange(n) for n in frames])
    ir = camera >= 9
    test = pid > 135
    u = rng.random(rows)
    lt = rng.random(rows) < 0.5
    query_or_gallery = np.where(u < 0.35, 2, np.where(u < 0.7, 6, 10))  # DT-ST query / gallery / test
    flag = np.where(query_or_gallery == 10, 10, query_or_gallery + lt + 2 * ir)
    flag = np.where(test, flag, (rng.random(rows) < 0.2).astype(np.int64))
    return pd.DataFrame(
        {
            "dataset": "atustc",
            "relpath": [
                f"p{p:03d}-d{d:02d}-c{c:02d}/cam{k:02d}-f{g}-{f:04d}.jpg"
                for p, d, c, k, g, f in zip(pid, date, clothes, camera, flag, frame)
            ],
            "pid": pid,
            "clothes": clothes,
            "camera": camera,
            "modality": np.where(ir, "ir", "rgb"),
            "date": date,
            "frame": frame,
            "flag": flag,
            "split": "unused",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from atustc.stats import build_report, table_stats, write_report
    from atustc.table import load_table, save_table

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "atustc400k.parquet"
        t0 = time.perf_counter()
        save_table(atustc_shaped_table(args.rows), path)
        print(f"built and saved {args.rows:,} rows in {time.perf_counter() - t0:.2f} s")
        t0, c0 = time.perf_counter(), time.process_time()
        table = load_table(path)
        print(f"load_table (validated): {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU")
        wall: dict[str, list[float]] = {"table_stats": [], "stats+files+plots": [], "cli process": []}
        cpu: dict[str, list[float]] = {k: [] for k in wall}
        for i in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            table_stats(table)
            wall["table_stats"].append(time.perf_counter() - t0)
            cpu["table_stats"].append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            write_report(build_report({str(path): table}), Path(tmp) / f"lib{i}")
            wall["stats+files+plots"].append(time.perf_counter() - t0)
            cpu["stats+files+plots"].append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), _children_cpu()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "atustc.cli",
                    "stats",
                    str(path),
                    "-o",
                    str(Path(tmp) / f"cli{i}"),
                    "--format",
                    "csv",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall["cli process"].append(time.perf_counter() - t0)
            cpu["cli process"].append(_children_cpu() - c0)
        s = table_stats(table).summary.iloc[0]
        print(
            f"all: {s['identities']} ids, {s['images']:,} images, {s['captures_per_id']:.1f} captures/id, "
            f"{s['rgb_cameras_per_id']:.1f} RGB + {s['ir_cameras_per_id']:.1f} IR cameras/id"
        )
        for name, times in wall.items():
            print(
                f"{name:>18}: wall best {min(times):.2f} s, median {float(np.median(times)):.2f} s; "
                f"CPU best {min(cpu[name]):.2f} s  ({len(times)} runs)"
            )


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


if __name__ == "__main__":
    main()
