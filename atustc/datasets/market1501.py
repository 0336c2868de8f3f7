"""Market-1501 (Zheng et al., ICCV 2015) and the Market-style folders CUHK03-NP reuses.

Released layout (``Market-1501-v15.09.15/``)::

    bounding_box_train/0002_c1s1_000451_03.jpg   -> split train
    query/0001_c1s1_001051_00.jpg                -> split query
    bounding_box_test/0000_c1s1_000151_01.jpg    -> split gallery

A name is ``<pid>_c<camera>s<sequence>_<frame>_<box>.jpg``, cameras 1-6. Pid -1 marks junk
boxes: they are rejected (code ``junk``) as torchreid and FastReID drop them at load. Pid 0 marks
distractors: they stay in the gallery as negatives. Only the name is parsed, never the full path
(torchreid's ``re.search`` on the full path would read ``..._c1`` in a parent folder).
``frame`` is the frame number; the sequence is kept only in ``relpath``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import (
    gather,
    make_scan,
    parse_numbers,
    reject,
    reject_bad,
    reject_range,
    require,
)

#: Market-style folder -> split.
FOLDERS: tuple[tuple[str, str], ...] = (
    ("bounding_box_train", "train"),
    ("query", "query"),
    ("bounding_box_test", "gallery"),
)
PATTERN = r"(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.jpg"
NAME_HELP = "<pid>_c<camera>s<sequence>_<frame>_<box>.jpg (e.g. 0002_c1s1_000451_03.jpg)"


def scan_bbox_folders(
    root: Path, dataset: str, what: str, pattern: str, expected: str, cameras: tuple[int, int], frame_group: int
) -> Scan:
    """Index the three Market-style folders of ``root``.

    Group 1 of ``pattern`` is the pid, group 2 the camera, group ``frame_group`` the frame.
    Pid -1 is rejected as junk; cameras outside ``cameras`` are rejected.
    """
    require(root, dataset, [f for f, _ in FOLDERS], what)
    relpath, names, split = gather(root, FOLDERS)
    ok, ints = parse_numbers(names, pattern)
    rejected = reject_bad(root, relpath, names, ok, expected)
    negative = np.fromiter((s.startswith("-") for s in names), dtype=bool, count=len(names))
    pid, camera, frame = np.where(negative, -ints[:, 0], ints[:, 0]), ints[:, 1], ints[:, frame_group]
    junk = ok & (pid == -1)
    rejected += [
        reject(str(relpath[i]), "junk", "pid -1: a junk box (dropped, as torchreid and FastReID do)")
        for i in np.flatnonzero(junk)
    ]
    ok &= ~junk
    ok, bad = reject_range(relpath, pid, ok, 0, 10**6, "bad_pid", "pid")
    rejected += bad
    ok, bad = reject_range(relpath, camera, ok, cameras[0], cameras[1], "bad_camera", "camera")
    rejected += bad
    cols = {"relpath": relpath, "pid": pid, "camera": camera, "frame": frame, "split": split}
    return make_scan(dataset, ok, cols, rejected, len(names))


def scan(root: Path) -> Scan:
    """Index a Market-1501 root (see the module docstring)."""
    return scan_bbox_folders(root, "market1501", "Market-1501", PATTERN, NAME_HELP, (1, 6), 3)


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="market1501",
        version="1",
        description="Market-1501 (Zheng et al., ICCV 2015): bounding_box_train / query / bounding_box_test",
        protocol="market1501",
        task="tr",
        validation="fraction",
        # Zheng et al. 2015 / torchreid: the gallery counts the 2,793 pid-0 distractors, not the 3,819 junk boxes.
        published={
            "train": {"identities": 751, "images": 12936},
            "query": {"identities": 750, "images": 3368},
            "gallery": {"identities": 751, "images": 15913},
        },
    )
)
