r"""The AT-USTC indexer: ``pXXX-dYY-cZZ/camNN-fF-FFFF.jpg`` (cameras 1-8 RGB, 9-16 IR).

One pass over the tree (``os.scandir`` above the capture folders, ``os.listdir`` inside them);
all file names are checked with one regular expression over the joined names and their numbers
parsed by numpy, and the table columns are built as arrays. Any depth is
accepted above the capture folders (``root/a/b/p001-d01-c01/...`` works); a file elsewhere or
with another name is rejected with a reason.

File names must be canonical: a two-digit camera (``cam03``), the flag without padding
(``f0``-``f10``) and a zero-padded frame of at least four digits (``0012``), as every name of the
release is. The official loader (kw66/AT-ReID ``dataset/atustc.py``) searches the path with the
unanchored ``cam(\d+)-f(\d+)-\d+`` and would read ``cam3-f0-12.jpg`` too; such a name is rejected
here with the code ``noncanonical`` and its canonical spelling, because a name the release never
uses marks a file that did not come from it (renamed by hand, or by another tool) and the table is
the single source of labels. ``atustc index --strict`` turns it into an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.split.flags import flag_to_split
from atustc.split.keys import row_keys

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
NAME_HELP = "expected pXXX-dYY-cZZ/camNN-fF-FFFF.jpg (camera 01-16, flag 0-10, frame of 4+ digits)"
_DIR = re.compile(r"p(\d+)-d(\d+)-c(\d+)")
_CANONICAL = r"cam[0-9]{2}-f(?:[0-9]|[1-9][0-9])-[0-9]{4,}\.(?:jpe?g|png)"
_FILE = re.compile(_CANONICAL, re.IGNORECASE)
_FILE_LINES = re.compile(f"^{_CANONICAL}$", re.MULTILINE | re.IGNORECASE)
_LOOSE = re.compile(r"cam([0-9]+)-f([0-9]+)-([0-9]+)(\.(?:jpe?g|png))", re.IGNORECASE)  # what the official regex reads


def _reject(path: str, code: str, reason: str) -> dict[str, str]:
    return {"path": path, "code": code, "reason": reason}


def _extension(name: str) -> str:
    i = name.rfind(".")
    return name[i:].lower() if i > 0 else ""


def _bad_name(path: str, name: str, in_capture: bool) -> dict[str, str]:
    ext = _extension(name)
    if ext not in IMAGE_EXTENSIONS:
        return _reject(path, "not_image", f"not an image file (extension {ext or 'none'!r})")
    if not in_capture:
        return _reject(path, "unparseable", f"not inside a pXXX-dYY-cZZ capture folder; {NAME_HELP}")
    m = _LOOSE.fullmatch(name)
    if m is None:
        return _reject(path, "unparseable", f"file name does not parse; {NAME_HELP}")
    cam, flag, frame = (int(g) for g in m.groups()[:3])
    canonical = f"cam{cam:02d}-f{flag}-{frame:04d}{m[4]}"
    reason = f"non-canonical file name (the release would spell it {canonical}); {NAME_HELP}"
    return _reject(path, "noncanonical", reason)


def _walk(root: Path) -> tuple[list[tuple[str, tuple[int, int, int], list[str]]], list[dict[str, str]], int]:
    """Capture folders with their sorted file names, plus files outside capture folders (rejected).

    A capture folder is listed with ``os.listdir`` (no per-entry stat): all its entries are
    taken as files (an entry whose name does not parse is later checked for being a folder).
    """
    captures: list[tuple[str, tuple[int, int, int], list[str]]] = []
    rejected: list[dict[str, str]] = []
    seen = 0
    stack = [("", str(root), None)]
    while stack:
        rel, path, key = stack.pop()
        if key is not None:
            files = os.listdir(path)
            files.sort()
            dirs = []
            captures.append((rel, key, files))
        else:
            files, dirs = [], []
            with os.scandir(path) as it:
                for e in it:
                    (dirs if e.is_dir() else files).append(e.name)
            files.sort()
            rejected.extend(_bad_name(rel + n, n, False) for n in files)
        seen += len(files)
        for d in sorted(dirs, reverse=True):
            m = _DIR.fullmatch(d)
            stack.append((f"{rel}{d}/", os.path.join(path, d), (int(m[1]), int(m[2]), int(m[3])) if m else None))
    return captures, rejected, seen


def parse_names(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(ok, [n, 3] int64 camera/flag/frame)`` for file names; rows of bad names hold -1.

    The names are joined into one string: one regex pass checks them, numpy turns every
    non-digit byte into a space and parses the numbers (no per-name Python work unless some
    names are bad).
    """
    ints = np.full((len(names), 3), -1, dtype=np.int64)
    text = "\n".join(names)
    one_per_line = text.count("\n") == max(len(names) - 1, 0)
    if one_per_line and _FILE_LINES.subn("", text)[1] == len(names):  # the usual case: every name parses
        ok = np.ones(len(names), dtype=bool)
    else:
        ok = np.fromiter((_FILE.fullmatch(n) is not None for n in names), dtype=bool, count=len(names))
        text = "\n".join(n for n, good in zip(names, ok) if good)
    if ok.any():
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()
        raw[(raw < 48) | (raw > 57)] = 32  # every non-digit byte -> space
        ints[ok] = np.fromstring(raw.tobytes(), dtype=np.int64, sep=" ").reshape(-1, 3)
    return ok, ints


def scan_atustc(root: Path) -> Scan:
    """Index an AT-USTC tree (see the module docstring)."""
    captures, rejected, seen = _walk(root)
    names = [n for _, _, files in captures for n in files]
    counts = np.fromiter((len(f) for _, _, f in captures), dtype=np.int64, count=len(captures))
    relpath = np.array([rel + n for rel, _, files in captures for n in files], dtype=object)
    dir_keys = np.array([k for _, k, _ in captures], dtype=np.int64).reshape(-1, 3)
    pid, date, clothes = (np.repeat(dir_keys[:, i], counts) for i in range(3))
    ok, ints = parse_names(names)
    camera, flag, frame = ints.T
    for i in np.flatnonzero(~ok):
        if (root / relpath[i]).is_dir():
            rejected.append(_reject(relpath[i] + "/", "unparseable", "unexpected folder inside a capture folder"))
        else:
            rejected.append(_bad_name(relpath[i], names[i], True))
    bad_flag = ok & ((flag < 0) | (flag > 10))
    bad_cam = ok & ~bad_flag & ((camera < 1) | (camera > 16))
    for i in np.flatnonzero(bad_flag):
        rejected.append(_reject(relpath[i], "unknown_flag", f"unknown flag f{flag[i]} (AT-USTC flags are 0-10)"))
    for i in np.flatnonzero(bad_cam):
        rejected.append(_reject(relpath[i], "bad_camera", f"camera {camera[i]} out of range 1-16"))
    ok &= ~bad_flag & ~bad_cam
    ok_idx = np.flatnonzero(ok)
    key = row_keys(*(c[ok_idx] for c in (pid, date, clothes, camera, flag, frame)))
    order_ok = np.argsort(key, kind="stable")
    order = ok_idx[order_ok]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = key[order_ok[1:]] == key[order_ok[:-1]]
    for j in np.flatnonzero(same):
        first = j - 1
        while same[first]:
            first -= 1
        i = order[j]
        reason = f"duplicate of {relpath[order[first]]} (same pid, date, clothes, camera, flag and frame)"
        rejected.append(_reject(relpath[i], "duplicate", reason))
        ok[i] = False
    keep = np.flatnonzero(ok)
    columns = {
        "dataset": "atustc",
        "relpath": relpath[keep],
        "pid": pid[keep],
        "clothes": clothes[keep],
        "camera": camera[keep],
        "modality": np.where(camera[keep] <= 8, "rgb", "ir").astype(object),
        "date": date[keep],
        "frame": frame[keep],
        "flag": flag[keep],
        "split": flag_to_split(flag[keep]),
    }
    rejected.sort(key=lambda r: r["path"])
    return Scan(columns=columns, rejected=rejected, files_seen=seen)


#: AT-USTC as released (official README, kw66/AT-ReID): 1:1 identity split; train 135 identities
#: and 286,087 images including the 55,060 validation images (flag 1); test 135 identities and
#: 117,512 images (flags 2-10).
PUBLISHED: dict[str, dict[str, int]] = {
    "train+val": {"identities": 135, "images": 286_087},
    "val": {"images": 55_060},
    "query+gallery+test": {"identities": 135, "images": 117_512},
}

SPEC = register_dataset(
    DatasetSpec(
        name="atustc",
        version="1",
        description="AT-USTC folder and file naming (official README); split from the flags",
        scan=scan_atustc,
        protocol="atustc",
        task="at",
        scored=("atustc-mixed",),
        validation="flags",
        resplit=True,
        published=PUBLISHED,
    )
)
