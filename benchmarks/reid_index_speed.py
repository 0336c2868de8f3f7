"""Index speed of the ReID release indexers: an MSMT17-sized tree (126,441 zero-byte files, V1 layout + lists).

Builds ``MSMT17_V1`` in a temporary folder: 1,041 train identities (30,248 images in
``list_train.txt``, 2,373 in ``list_val.txt``) and 3,060 test identities (11,659 query and 82,161
gallery images), 15 cameras, names ``<pid>_<idx>_<cam>_<MMDD><time>_<frame>_<n>.jpg``. Then times
the whole ``atustc index ROOT --format msmt17 -o T.parquet`` process (start-up included) as a
subprocess; while the ``msmt17`` format is not registered yet (issue 13a), a child process does
what ``atustc index`` does (scan, validate, hash, parquet + manifest). ``--dataset deepchange``
builds a DeepChange-sized tree (178,407 files) instead. Target: MSMT17 < 2 s.

    .venv/bin/python benchmarks/reid_index_speed.py [--dataset msmt17|deepchange] [--repeat 3] [--keep DIR]
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

SIZES = {
    "msmt17": {"train": (1041, 30248), "val": (1041, 2373), "query": (3060, 11659), "gallery": (3060, 82161)},
    "deepchange": {
        "train-set": (450, 75083),
        "val-set-query": (150, 4976),
        "val-set-gallery": (150, 17865),
        "test-set-query": (521, 17527),
        "test-set-gallery": (521, 62956),
    },
}


def _touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build_msmt17(root: Path, seed: int = 0) -> int:
    """Zero-byte MSMT17_V1 files and the four list files; returns the number of images."""
    rng = np.random.default_rng(seed)
    made = 0
    k = 0
    for part, (n_ids, n_images) in SIZES["msmt17"].items():
        folder = "train" if part in ("train", "val") else "test"
        pids = rng.integers(0, n_ids, n_images)
        lines = []
        for pid in np.sort(pids).tolist():
            d = root / folder / f"{pid:04d}"
            d.mkdir(parents=True, exist_ok=True)
            cam = int(rng.integers(1, 16))
            rel = f"{pid:04d}/{pid:04d}_{k:06d}_{cam:02d}_0303morning_{k % 10000:04d}_0.jpg"
            k += 1
            _touch(root / folder / rel)
            lines.append(f"{rel} {pid}\n")
        (root / f"list_{part}.txt").write_text("".join(lines))
        made += n_images
    return made


def build_deepchange(root: Path, seed: int = 0) -> int:
    """Zero-byte DeepChange files in the five set folders; returns the number of images."""
    rng = np.random.default_rng(seed)
    made, first = 0, 1
    for folder, (n_ids, n_images) in SIZES["deepchange"].items():
        (root / folder).mkdir(parents=True)
        pids = rng.integers(first, first + n_ids, n_images)
        for k, pid in enumerate(pids.tolist()):
            cam, day, sec = int(rng.integers(1, 18)), int(rng.integers(1, 29)), int(rng.integers(0, 86400))
            _touch(
                root
                / folder
                / f"P{pid:04d}_C{cam:02d}_201904{day:02d}_{sec // 3600:02d}{sec // 60 % 60:02d}{sec % 60:02d}_{k:06d}_bbox.jpg"
            )
        if not folder.startswith("val-set-q") and not folder.startswith("test-set-q"):
            first += n_ids
        made += n_images
    return made


def child(root: Path, fmt: str, out: Path) -> None:
    """What ``atustc index ROOT --format FMT -o OUT`` does, for a format not registered yet."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from atustc.datasets import deepchange, msmt17
    from atustc.io import write_json_atomic
    from atustc.table import manifest_path, table_hash, validate_table

    scan = {"msmt17": msmt17, "deepchange": deepchange}[fmt].scan(root)
    table = validate_table(pd.DataFrame(scan.columns), root)
    manifest = {"root": str(root), "format": fmt, "table_hash": table_hash(table), "rejected": scan.rejected}
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), out)
    write_json_atomic(manifest_path(out), manifest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(SIZES), default="msmt17")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build (or reuse) the tree here instead of a temp dir")
    ap.add_argument("--child", nargs=3, metavar=("ROOT", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return
    tmp = Path(tempfile.mkdtemp(prefix="atustc-reid-index-"))
    root = args.keep or tmp / args.dataset
    try:
        if not root.is_dir():
            root.mkdir(parents=True)
            t0 = time.perf_counter()
            n = (build_msmt17 if args.dataset == "msmt17" else build_deepchange)(root)
            print(f"built {n:,} zero-byte {args.dataset} files in {time.perf_counter() - t0:.1f} s")
        from atustc.datasets import list_datasets

        out = tmp / "t.parquet"
        if args.dataset in list_datasets():
            cmd = [
                str(Path(sys.executable).with_name("atustc")),
                "index",
                str(root),
                "--format",
                args.dataset,
                "-o",
                str(out),
                "--quiet",
            ]
            how = "atustc index (whole process)"
        else:
            cmd = [sys.executable, __file__, "--child", str(root), args.dataset, str(out)]
            how = "stand-in for atustc index (whole process: scan, validate, hash, parquet + manifest)"
        runs, cpus = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            runs.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        from atustc.table import load_table

        rows = len(load_table(out))
        print(
            f"{how}, {rows:,} rows: best {min(runs):.2f} s wall (runs {', '.join(f'{r:.2f}' for r in runs)}); "
            f"CPU (user+sys) best {min(cpus):.2f} s"
        )
        from atustc.datasets import deepchange, msmt17

        mod = {"msmt17": msmt17, "deepchange": deepchange}[args.dataset]
        t0 = time.perf_counter()
        mod.scan(root)
        print(f"scan alone (in process, warm): {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        for _dirpath, _dirs, _files in os.walk(root):
            pass
        print(f"bare os.walk floor: {time.perf_counter() - t0:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
