"""RegDB (Nguyen et al., "Person Recognition System Based on a Combination of Body Images from Visible Light and Thermal Cameras", Sensors 2017).

Released layout (ROOT is ``RegDB/``), with the index files of the 10 trials that every
cross-modality codebase uses (Ye et al., mangye16/Cross-Modal-Re-ID-baseline)::

    Visible/<pid>/<name>.bmp     camera 1, modality rgb
    Thermal/<pid>/<name>.bmp     camera 2, modality ir
    idx/train_visible_<t>.txt, idx/train_thermal_<t>.txt, idx/test_visible_<t>.txt,
    idx/test_thermal_<t>.txt     "<relpath> <label>" per line, t = 1..10

A trial is one released split of the 412 identities into 206 train and 206 test identities, so
one table holds one trial: ``atustc index ROOT --format regdb --trial T`` (default 1) reads
trial ``T``'s four files and sets ``split`` to ``train`` / ``test``; the manifest records the
trial. The pid is the identity folder (the list's label is a per-file relabelling and is only
checked to be an integer). Every list entry must have its image (else one error naming the
list file and line); images in none of the trial's lists are rejected (``not_listed``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import make_scan, reject, require
from atustc.datasets._vi_layout import check_listed, walk_pid_folders
from atustc.datasets.msmt17 import read_list
from atustc.errors import AtustcError

#: modality folder -> (list-file word, camera, modality)
FOLDERS: dict[str, tuple[str, int, str]] = {"Visible": ("visible", 1, "rgb"), "Thermal": ("thermal", 2, "ir")}
TRIALS: tuple[int, ...] = tuple(range(1, 11))
_ENTRY = re.compile(r"(Visible|Thermal)/(\d+)/[^/]+")


def list_files(trial: int) -> list[tuple[str, str, str]]:
    """``(relative list path, split, modality folder)`` of a trial's four index files."""
    return [
        (f"idx/{kind}_{word}_{trial}.txt", kind, folder)
        for kind in ("train", "test")
        for folder, (word, _, _) in FOLDERS.items()
    ]


def scan(root: Path, trial: int = 1) -> Scan:
    """Index a RegDB root for one released trial (see the module docstring).

    Raises:
        AtustcError: not a RegDB root, a trial outside 1-10, a missing or malformed index file,
            an entry outside its modality folder, or a listed image that is missing.
    """
    if trial not in TRIALS:
        raise AtustcError(f"--trial: RegDB releases trials 1-10, got {trial}")
    require(root, "regdb", ["Visible", "Thermal", "idx"], "RegDB")
    rejected: list[dict[str, str]] = []
    tree = walk_pid_folders(root, list(FOLDERS), rejected)
    present = set(tree.relpath)
    split_of: dict[str, str] = {}
    for rel, kind, folder in list_files(trial):
        path = root / rel
        entries, _, _ = read_list(path)
        for i, e in enumerate(entries):
            m = _ENTRY.fullmatch(e)
            if m is None or m[1] != folder:
                raise AtustcError(f"{path}: line {i + 1}: expected '{folder}/<pid>/<name> <label>', got {e!r}")
        check_listed(path, entries, present)
        for e in entries:
            if e in split_of and split_of[e] != kind:
                raise AtustcError(f"{path}: {e} is listed for both train and test")
            split_of[e] = kind
    relpath = np.array(tree.relpath, dtype=object)
    split = np.array([split_of.get(r, "") for r in tree.relpath], dtype=object)
    ok = split != ""
    rejected += [
        reject(str(relpath[i]), "not_listed", f"image in none of trial {trial}'s idx lists")
        for i in np.flatnonzero(~ok)
    ]
    folder = np.array(tree.folder, dtype=object)
    cols = {
        "relpath": relpath,
        "pid": np.array(tree.pid, dtype=np.int64),
        "camera": np.where(folder == "Visible", 1, 2),
        "modality": np.where(folder == "Visible", "rgb", "ir").astype(object),
        "split": split,
    }
    return make_scan("regdb", ok, cols, rejected, len(tree.relpath) + len(rejected))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        task="vi",
        name="regdb",
        version="1",
        description="RegDB (Nguyen et al., Sensors 2017): Visible/, Thermal/ and idx/ lists of trials 1-10 (--trial)",
        protocol="regdb",
        variants=("visible-to-thermal", "thermal-to-visible"),
        validation="fraction",  # the release has no validation split
        # 412 identities, 10 visible + 10 thermal images each; every trial: 206 / 206.
        published={"train": {"identities": 206, "images": 4120}, "test": {"identities": 206, "images": 4120}},
    )
)
