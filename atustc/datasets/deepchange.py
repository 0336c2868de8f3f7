"""DeepChange (Xu and Zhu, "DeepChange: A Long-Term Person Re-Identification Benchmark", 2021).

Released layout (ROOT is the DeepChange folder; the ``*-bbox.txt`` lists are not needed)::

    train-set/P0702_C13_20200813_154757_000038_bbox.jpg    -> split train
    val-set-query/...  val-set-gallery/...                 -> split val
    test-set-query/...                                     -> split query
    test-set-gallery/...                                   -> split gallery

A name is ``P<pid>_C<camera>_<YYYYMMDD>_<HHMMSS>_<index>_bbox.jpg`` (letters in either case).
``date`` is YYYYMMDD and ``frame`` the index. ``clothes`` follows kw66/AT-ReID
``dataset/deepchange.py``: on train rows it is the date (one outfit per person and day), on
val, query and gallery rows it is the tracklet key YYYYMMDD*10^6 + HHMMSS (the capture's
timestamp), so that the clothes rule of the protocol removes same-person same-tracklet
matches. kw66 keeps only MMDD*10^6 + HHMMSS (the year is dropped); CAL / Simple-CCReID read a
tracklet number from the list files instead. Note: the val-set query / gallery division is
kept only in ``relpath`` (both are split ``val``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import (
    gather,
    make_scan,
    parse_numbers,
    reject_bad,
    reject_range,
    require,
)

FOLDERS: tuple[tuple[str, str], ...] = (
    ("train-set", "train"),
    ("val-set-query", "val"),
    ("val-set-gallery", "val"),
    ("test-set-query", "query"),
    ("test-set-gallery", "gallery"),
)
PATTERN = r"[Pp](\d+)_[Cc](\d+)_(\d{8})_(\d{6})_(\d+)(?:_bbox)?\.jpg"
NAME_HELP = "P<pid>_C<camera>_<YYYYMMDD>_<HHMMSS>_<index>_bbox.jpg"


def scan(root: Path) -> Scan:
    """Index a DeepChange root (see the module docstring)."""
    require(root, "deepchange", [f for f, _ in FOLDERS], "DeepChange")
    relpath, names, split = gather(root, FOLDERS)
    ok, ints = parse_numbers(names, PATTERN)
    rejected = reject_bad(root, relpath, names, ok, NAME_HELP)
    camera = ints[:, 1]
    ok, bad = reject_range(relpath, camera, ok, 1, 99, "bad_camera", "camera")
    rejected += bad
    date, time = ints[:, 2], ints[:, 3]
    cols = {
        "relpath": relpath,
        "pid": ints[:, 0],
        "camera": camera,
        "clothes": np.where(split == "train", date, date * 1_000_000 + time),
        "date": date,
        "frame": ints[:, 4],
        "split": split,
    }
    return make_scan("deepchange", ok, cols, rejected, len(names))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="deepchange",
        version="1",
        description="DeepChange (Xu and Zhu, 2021): train-set, val-set-*, test-set-{query,gallery}",
        protocol="deepchange",
        task="cc",
        variants=("atreid",),
        validation="release",  # the release's val-set-query + val-set-gallery
        published={
            "train": {"identities": 450, "images": 75083},
            "val": {"identities": 150, "images": 22841},
            "query": {"identities": 521, "images": 17527},
            "gallery": {"identities": 521, "images": 62956},
        },
    )
)
