"""LTCC (Qian et al., "Long-Term Cloth-Changing Person Re-identification", ACCV 2020).

Released layout (ROOT is ``LTCC_ReID/``)::

    train/<pid>_<clothes>_c<camera>_<frame>.png   -> split train
    query/...                                     -> split query
    test/...                                      -> split gallery
    info/cloth-change_id_{train,test}.txt, info/cloth-unchange_id_{train,test}.txt

e.g. ``144_1_c11_011239.png``: pid 144, outfit 1, camera 11 (1-12), frame 11239. The clothes key
is parsed from the file name only: Simple-CCReID's ``re.search(r'(\\w+)_c', path)`` on the full
path reads a parent folder named like ``x_cache`` as the clothes key. A person's outfit ids are
per person (``clothes`` 1 of pid 1 is not clothes 1 of pid 2), as the table contract wants.
The ``info`` lists are not needed: the cloth-changing identities are those seen in more than one
outfit, which is how the LTCC paper defines its cloth-change set.
"""

from __future__ import annotations

from pathlib import Path

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import (
    gather,
    make_scan,
    parse_numbers,
    reject_bad,
    reject_range,
    require,
)

FOLDERS: tuple[tuple[str, str], ...] = (("train", "train"), ("query", "query"), ("test", "gallery"))
PATTERN = r"(\d+)_(\d+)_c(\d+)_(\d+)\.png"
NAME_HELP = "<pid>_<clothes>_c<camera>_<frame>.png (e.g. 144_1_c11_011239.png)"


def scan(root: Path) -> Scan:
    """Index an LTCC root (see the module docstring)."""
    require(root, "ltcc", [f for f, _ in FOLDERS], "LTCC")
    relpath, names, split = gather(root, FOLDERS)
    ok, ints = parse_numbers(names, PATTERN)
    rejected = reject_bad(root, relpath, names, ok, NAME_HELP)
    camera = ints[:, 2]
    ok, bad = reject_range(relpath, camera, ok, 1, 12, "bad_camera", "camera")
    rejected += bad
    cols = {
        "relpath": relpath,
        "pid": ints[:, 0],
        "clothes": ints[:, 1],
        "camera": camera,
        "frame": ints[:, 3],
        "split": split,
    }
    return make_scan("ltcc", ok, cols, rejected, len(names))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="ltcc",
        version="1",
        description="LTCC (Qian et al., ACCV 2020): train / query / test, clothes from the file name",
        protocol="ltcc",  # general + CAL-style clothes-changing, full gallery
        task="cc",
        headline="clothes-change",  # the clothes-changing number the AT-ReID paper reports
        variants=("atreid",),
        validation="fraction",
        published={
            "train": {"identities": 77, "images": 9576},
            "query": {"identities": 75, "images": 493},
            "gallery": {"identities": 75, "images": 7050},
        },
    )
)
