"""MSMT17 (Wei et al., PTGAN, CVPR 2018), V1 and V2, read from the release's list files.

Released layouts (the version is told by the image folders)::

    MSMT17_V1/train/0000/0000_000_01_0303morning_0015_0.jpg    MSMT17_V2/mask_train_v2/...
    MSMT17_V1/test/0000/...                                    MSMT17_V2/mask_test_v2/...
    list_{train,val,query,gallery}.txt: "<pid>/<name> <pid>" per line, relative to the train
    (train, val) or test (query, gallery) folder, as torchreid and FastReID read them.

Splits: ``list_train`` -> train, ``list_val`` -> val, ``list_query`` -> query, ``list_gallery`` ->
gallery. The release's published train set (1,041 ids, 32,621 images) is train + val; training
on train alone keeps val for validation: ``atustc split`` records which one a run used.
The camera is the third name field (01-15), ``date`` the MMDD of the fourth (``0303morning``
-> 303), ``frame`` the fifth. Test pids restart at 0 in the release; they are offset by the
number of train pids (as FastReID does) so that a pid names one person across the table.
Every list entry must have its image (else one error naming the list file and line); images
that no list names are rejected (``not_listed``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import (
    make_scan,
    parse_numbers,
    reject,
    reject_range,
    require,
)
from atustc.errors import AtustcError

#: version -> (train folder, test folder)
VERSIONS: dict[str, tuple[str, str]] = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
#: list file -> (split, folder role)
LISTS: tuple[tuple[str, str, int], ...] = (
    ("list_train.txt", "train", 0),
    ("list_val.txt", "val", 0),
    ("list_query.txt", "query", 1),
    ("list_gallery.txt", "gallery", 1),
)
#: a list entry: <pid folder>/<pid>_<index>_<camera>_<MMDD><time of day>_<frame>_<n>.jpg
PATTERN = r"(\d+)/(\d+)_(\d+)_(\d+)_(\d{4})(?:morning|noon|afternoon)_(\d+)_(\d+)\.jpg"
_ENTRY_LINE = re.compile("^" + re.sub(r"\((?!\?)", "(?:", PATTERN) + r" +\d+[ \t]*\r?$", re.MULTILINE)
NAME_HELP = "<pid>/<pid>_<index>_<camera>_<MMDD><morning|noon|afternoon>_<frame>_<n>.jpg"


def version_of(root: Path) -> str:
    """``"v1"`` or ``"v2"`` from the image folders present.

    Raises:
        AtustcError: neither version's folders exist (the message names the layout ROOT looks like).
    """
    for version, folders in VERSIONS.items():
        if all((root / f).is_dir() for f in folders):
            return version
    require(
        root,
        "msmt17",
        ["list_train.txt", "train", "test"],
        "MSMT17 (V1 train/ + test/ or V2 mask_train_v2/ + mask_test_v2/)",
    )
    raise AtustcError(f"{root}: not an MSMT17 root")  # pragma: no cover  (require raised)


def read_list(path: Path) -> tuple[list[str], np.ndarray, bool]:
    """``(relpaths, pids, all_names_parse)`` of a ``<relpath> <pid>`` list file.

    One regex pass checks every line and its entry name at once (the usual case); otherwise the
    lines are checked one by one and the names are left to the caller.

    Raises:
        AtustcError: the file is missing, or a line is not ``<relpath> <integer>`` (naming the line).
    """
    if not path.is_file():
        raise AtustcError(f"{path}: list file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    tokens = text.split()
    if 2 * _ENTRY_LINE.subn("", text)[1] == len(tokens):  # every non-blank line is "<good entry> <pid>"
        return tokens[0::2], np.fromiter(map(int, tokens[1::2]), dtype=np.int64, count=len(tokens) // 2), True
    lines = text.splitlines()
    parts = list(map(str.split, lines))
    if set(map(len, parts)) <= {0, 2} and "".join(tokens[1::2]).isdigit():
        return tokens[0::2], np.fromiter(map(int, tokens[1::2]), dtype=np.int64, count=len(tokens) // 2), False
    for i, p in enumerate(parts):
        if p and (len(p) != 2 or not p[1].isdigit()):
            raise AtustcError(f"{path}: line {i + 1}: expected '<relpath> <pid>', got {lines[i].strip()!r}")
    raise AtustcError(f"{path}: unreadable list")  # pragma: no cover  (the loop finds the bad line)


def _walk_images(root: Path, folder: str) -> list[str]:
    """``folder/<pid>/<name>`` of every file (one ``os.scandir`` of ``folder``, one ``os.listdir`` per pid folder)."""
    out: list[str] = []
    top = os.path.join(root, folder)
    with os.scandir(top) as it:
        entries = sorted((e.name, e.is_dir()) for e in it)
    for d, is_dir in entries:
        if is_dir:
            prefix = f"{folder}/{d}/"
            out.extend([prefix + f for f in sorted(os.listdir(os.path.join(top, d)))])
        else:
            out.append(f"{folder}/{d}")
    return out


def scan(root: Path) -> Scan:
    """Index an MSMT17 V1 or V2 root (see the module docstring).

    Raises:
        AtustcError: not an MSMT17 root, a missing or malformed list file, or a list entry whose
            image is missing (naming the list file, the line and the image).
    """
    folders = VERSIONS[version_of(root)]
    listed: list[str] = []
    entries: list[str] = []
    pids: list[np.ndarray] = []
    split: list[str] = []
    checked = True
    for name, part, role in LISTS:
        rels, p, good = read_list(root / name)
        checked &= good
        entries.extend(rels)
        listed.extend([f"{folders[role]}/{r}" for r in rels])
        pids.append(p)
        split.extend([part] * len(rels))
    on_disk = _walk_images(root, folders[0]) + _walk_images(root, folders[1])
    present = set(on_disk)
    have = np.fromiter((r in present for r in listed), dtype=bool, count=len(listed))
    if not have.all():
        i = int(np.flatnonzero(~have)[0])
        starts = np.cumsum([0] + [len(p) for p in pids])
        k = int(np.searchsorted(starts, i, side="right") - 1)
        raise AtustcError(
            f"{root / LISTS[k][0]}: line {i - starts[k] + 1}: image {listed[i]} not found "
            f"({int((~have).sum())} listed image(s) missing)"
        )
    relpath = np.array(listed, dtype=object)
    pid = np.concatenate(pids)
    splits = np.array(split, dtype=object)
    in_list = set(listed)
    rejected = []
    if len(present) > len(in_list):  # some image is in no list
        rejected = [
            reject(r, "not_listed", "image in no list file (list_train/val/query/gallery.txt)")
            for r in on_disk
            if r not in in_list
        ]
    ok = np.ones(len(listed), dtype=bool)
    if len(in_list) < len(listed):
        seen: set[str] = set()
        for i, r in enumerate(listed):
            if r in seen:
                ok[i] = False
                rejected.append(reject(r, "duplicate", "listed twice (kept the first entry)"))
            seen.add(r)
    parsed, ints = parse_numbers(entries, PATTERN, checked=checked)
    rejected += [
        reject(str(relpath[i]), "unparseable", f"list entry does not parse; expected {NAME_HELP}")
        for i in np.flatnonzero(ok & ~parsed)
    ]
    ok &= parsed
    camera = ints[:, 3]
    mismatch = ok & ((ints[:, 0] != pid) | (ints[:, 1] != pid))
    rejected += [
        reject(
            str(relpath[i]),
            "pid_mismatch",
            f"list pid {pid[i]} differs from the folder / file name's {ints[i, 0]} / {ints[i, 1]}",
        )
        for i in np.flatnonzero(mismatch)
    ]
    ok &= ~mismatch
    ok, bad = reject_range(relpath, camera, ok, 1, 15, "bad_camera", "camera")
    rejected += bad
    is_test = np.isin(splits, ["query", "gallery"])
    n_train = int(pid[~is_test].max()) + 1 if (~is_test).any() else 0
    cols = {
        "relpath": relpath,
        "pid": np.where(is_test, pid + n_train, pid),
        "camera": camera,
        "date": ints[:, 4],
        "frame": ints[:, 5],
        "split": splits,
    }
    return make_scan("msmt17", ok, cols, rejected, len(on_disk))


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="msmt17",
        version="1",
        description="MSMT17 V1/V2 (Wei et al., CVPR 2018) from list_{train,val,query,gallery}.txt",
        protocol="msmt17",
        task="tr",
        validation="release",  # the release's list_val.txt; train + val is the published train set
        published={
            "train": {"identities": 1041, "images": 30248},
            "val": {"images": 2373},
            "query": {"identities": 3060, "images": 11659},
            "gallery": {"identities": 3060, "images": 82161},
        },
        layouts=tuple(VERSIONS),
    )
)
