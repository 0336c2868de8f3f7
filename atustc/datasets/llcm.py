"""LLCM (Zhang & Wang, "Diverse Embedding Expansion Network and Low-Light Cross-Modality Person Re-Identification", CVPR 2023).

Released layout (ROOT is ``LLCM/``), as the authors' DEEN code (ZYK100/LLCM, ``data_manager.py``)
reads it::

    train_vis/cam<c>/<pid:04d>/<name>.jpg, train_nir/cam<c>/<pid:04d>/<name>.jpg
    test_vis/cam<c>/<pid:04d>/<name>.jpg,  test_nir/cam<c>/<pid:04d>/<name>.jpg
    idx/train_vis.txt, idx/train_nir.txt   "<relpath> <label>" per line (the training images)
    idx/test_id.txt                        comma-separated test identities on one line

Cameras 1-9 see both modalities (``vis`` -> rgb, ``nir`` -> ir); a camera keeps its number in
both, so the same-identity same-camera rule of DEEN's ``eval_llcm`` applies across modalities.
Training rows are the entries of the two train lists (every entry must have its image; images
under ``train_*`` in no list are rejected, ``not_listed``); test rows are every image of a
test identity under ``test_*`` (split ``test``; other identities are rejected).

Not known from the public material and taken as the DEEN loader implies: the file names inside
the identity folders (any image name is accepted; ``frame`` is its last number), and the
relpaths of the train lists being relative to ROOT.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import make_scan, reject, require
from atustc.datasets._vi_layout import check_ids, check_listed, frame_numbers, read_ids, walk_pid_folders
from atustc.datasets.msmt17 import read_list
from atustc.errors import AtustcError

MODALITIES: dict[str, str] = {"vis": "rgb", "nir": "ir"}
TRAIN_LISTS: tuple[tuple[str, str], ...] = (("idx/train_vis.txt", "vis"), ("idx/train_nir.txt", "nir"))
TEST_IDS = "idx/test_id.txt"
_CAM = re.compile(r"cam(\d+)")


def _camera_folders(root: Path, part: str, rejected: list[dict[str, str]]) -> list[str]:
    out = []
    for d in sorted(os.listdir(root / part)):
        if _CAM.fullmatch(d) and (root / part / d).is_dir():
            out.append(f"{part}/{d}")
        else:
            rejected.append(reject(f"{part}/{d}", "unparseable", "expected a cam<n> folder"))
    return out


def scan(root: Path) -> Scan:
    """Index an LLCM root (see the module docstring).

    Raises:
        AtustcError: not an LLCM root, a missing or malformed list, a train entry whose image
            is missing, or a test identity without images.
    """
    parts = [f"{p}_{m}" for p in ("train", "test") for m in MODALITIES]
    require(root, "llcm", [*parts, "idx"], "LLCM")
    rejected: list[dict[str, str]] = []
    folders = [f for p in parts for f in _camera_folders(root, p, rejected)]
    tree = walk_pid_folders(root, folders, rejected)
    present = set(tree.relpath)
    listed: set[str] = set()
    for rel, mod in TRAIN_LISTS:
        entries, _, _ = read_list(root / rel)
        bad = [i for i, e in enumerate(entries) if not e.startswith(f"train_{mod}/")]
        if bad:
            raise AtustcError(
                f"{root / rel}: line {bad[0] + 1}: expected an image under train_{mod}/, got {entries[bad[0]]!r}"
            )
        check_listed(root / rel, entries, present)
        listed.update(entries)
    test_ids = read_ids(root / TEST_IDS)
    relpath = np.array(tree.relpath, dtype=object)
    pid = np.array(tree.pid, dtype=np.int64)
    folder = np.array(tree.folder, dtype=object)
    is_test = np.array([f.startswith("test_") for f in tree.folder], dtype=bool)
    check_ids(root / TEST_IDS, test_ids, set(pid[is_test].tolist()), "test_vis/ or test_nir/")
    in_test = is_test & np.isin(pid, test_ids)
    in_train = ~is_test & np.array([r in listed for r in tree.relpath], dtype=bool)
    ok = in_test | in_train
    for i in np.flatnonzero(~ok):
        why = f"identity {pid[i]} is not in {TEST_IDS}" if is_test[i] else "image in neither train list"
        rejected.append(reject(str(relpath[i]), "not_listed", why))
    cols = {
        "relpath": relpath,
        "pid": pid,
        "camera": np.array([int(f.split("/cam")[1]) for f in tree.folder], dtype=np.int64),
        "modality": np.array([MODALITIES[f.split("/")[0].split("_")[1]] for f in folder], dtype=object),
        "frame": frame_numbers(tree.relpath),
        "split": np.where(is_test, "test", "train").astype(object),
    }
    return make_scan("llcm", ok, cols, rejected, len(tree.relpath) + len(rejected))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        task="vi",
        name="llcm",
        version="1",
        description="LLCM (Zhang & Wang, CVPR 2023): {train,test}_{vis,nir}/cam<c>/<pid>/, idx/ lists",
        protocol="llcm",
        variants=("atreid",),
        validation="fraction",  # the release has no validation split
        # Zhang & Wang 2023: 1,064 identities, 46,767 images; 713 train / 351 test identities.
        published={"train": {"identities": 713}, "test": {"identities": 351}},
    )
)
