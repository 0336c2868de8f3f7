"""PRCC (Yang et al., "Person Re-identification by Contour Sketch under Moderate Clothing Change", TPAMI 2019).

Released layout (ROOT is ``prcc/``; only ``rgb/`` is read, not ``sketch/`` or ``contour/``)::

    rgb/train/<pid>/<A|B|C>_*.jpg      -> split train (the first letter is the camera)
    rgb/val/<pid>/<A|B|C>_*.jpg        -> split val
    rgb/test/A/<pid>/*.jpg             -> split gallery
    rgb/test/B/<pid>/*.jpg             -> split query (same clothes as A)
    rgb/test/C/<pid>/*.jpg             -> split query (clothes changed)

Cameras A, B, C are 1, 2, 3; A and B show the same outfit (clothes 1), C another (clothes 2),
as Simple-CCReID ``data/datasets/prcc.py`` and kw66/AT-ReID ``pre_process_prcc.py`` label them.
``frame`` is the number at the end of the name (-1 if none).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import (
    bad_name,
    make_scan,
    parse_names,
    reject,
    require,
    to_int,
)

CAMERAS = {"A": 1, "B": 2, "C": 3}
TRAIN_PATTERN = r"([ABC])[^/\n]*?(\d*)\.jpg"
TEST_PATTERN = r"()[^/\n]*?(\d*)\.jpg"
TRAIN_HELP = "<A|B|C>...<n>.jpg inside rgb/<train|val>/<pid>/"
TEST_HELP = "*.jpg inside rgb/test/<A|B|C>/<pid>/"


def _pid_folders(root: Path, rel: str, rejected: list[dict[str, str]]) -> list[tuple[str, int]]:
    out = []
    for d in sorted(os.listdir(root / rel)):
        if d.isdigit() and (root / rel / d).is_dir():
            out.append((f"{rel}/{d}", int(d)))
        else:
            rejected.append(reject(f"{rel}/{d}", "unparseable", "expected a numbered identity folder"))
    return out


def scan(root: Path) -> Scan:
    """Index a PRCC root (see the module docstring)."""
    require(root, "prcc", ["rgb/train", "rgb/val", "rgb/test/A", "rgb/test/B", "rgb/test/C"], "PRCC")
    rejected: list[dict[str, str]] = []
    parts = []  # (relpaths, names, pid, split, test camera or 0)
    for rel, part, cam in (
        ("rgb/train", "train", 0),
        ("rgb/val", "val", 0),
        ("rgb/test/A", "gallery", 1),
        ("rgb/test/B", "query", 2),
        ("rgb/test/C", "query", 3),
    ):
        for folder, pid in _pid_folders(root, rel, rejected):
            names = sorted(os.listdir(root / folder))
            parts.append(([f"{folder}/{n}" for n in names], names, pid, part, cam))
    relpath = np.array([r for p in parts for r in p[0]], dtype=object)
    names = [n for p in parts for n in p[1]]
    counts = [len(p[1]) for p in parts]
    pid = np.repeat(np.array([p[2] for p in parts], dtype=np.int64), counts)
    split = np.repeat(np.array([p[3] for p in parts], dtype=object), counts)
    test_cam = np.repeat(np.array([p[4] for p in parts], dtype=np.int64), counts)
    is_train = test_cam == 0
    ok = np.zeros(len(names), dtype=bool)
    letter = np.full(len(names), "", dtype=object)
    frame_txt = np.full(len(names), "", dtype=object)
    for mask, pattern, help_ in ((is_train, TRAIN_PATTERN, TRAIN_HELP), (~is_train, TEST_PATTERN, TEST_HELP)):
        idx = np.flatnonzero(mask)
        good, groups = parse_names([names[i] for i in idx], pattern)
        ok[idx] = good
        letter[idx], frame_txt[idx] = groups[:, 0], groups[:, 1]
        rejected += [bad_name(root, str(relpath[i]), names[i], help_) for i in idx[~good]]
    from_letter = np.select([letter == c for c in CAMERAS], list(CAMERAS.values()), -1)
    camera = np.where(is_train, from_letter, test_cam)
    cols = {
        "relpath": relpath,
        "pid": pid,
        "camera": camera,
        "clothes": np.where(camera == 3, 2, 1),
        "frame": to_int(frame_txt),
        "split": split,
    }
    return make_scan("prcc", ok, cols, rejected, len(names))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="prcc",
        version="1",
        description="PRCC (Yang et al., TPAMI 2019): rgb/train, rgb/val, rgb/test/{A,B,C}",
        protocol="prcc",
        task="cc",
        headline="clothes-change",  # the clothes-changing number the AT-ReID paper reports
        variants=("single-shot",),
        validation="release",  # the release's rgb/val
        # Yang et al. 2019 / Simple-CCReID's printed statistics: query = B (3,873) + C (3,543).
        published={
            "train": {"identities": 150, "images": 17896},
            "val": {"identities": 150, "images": 5002},
            "query": {"identities": 71, "images": 7416},
            "gallery": {"identities": 71, "images": 3384},
        },
    )
)
