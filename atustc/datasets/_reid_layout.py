"""Shared parts of the indexers of released ReID layouts (Market-1501, CUHK03-NP, MSMT17, PRCC, LTCC, DeepChange, SYSU-MM01, RegDB, LLCM).

Each indexer lists its release's folders once (``os.listdir``, no per-file stat), checks every
file name with one regular expression over the joined names (as the AT-USTC indexer does) and
builds the table columns as numpy arrays. A file whose name does not parse, or that is not an
image, is rejected with a reason; a root laid out as another dataset raises one line that
names the layout it looks like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from atustc.datasets._registry import Scan
from atustc.errors import AtustcError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})

#: layout name -> paths (relative to the root) whose presence identifies it, for the hint in errors.
SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "sysu-mm01": (("cam1", "cam3", "exp/test_id.txt"),),
    "regdb": (("Visible", "Thermal", "idx"),),
    "llcm": (("test_vis", "test_nir", "idx/test_id.txt"),),
    "msmt17": (("list_train.txt", "train", "test"), ("list_train.txt", "mask_train_v2", "mask_test_v2")),
    "deepchange": (("train-set", "test-set-query", "test-set-gallery"),),
    "prcc": (("rgb/train", "rgb/test"),),
    "ltcc": (("train", "query", "test"),),
    "cuhk03": (("detected/bounding_box_train",), ("labeled/bounding_box_train",)),
    "market1501": (("bounding_box_train", "bounding_box_test", "query"),),
}


def reject(path: str, code: str, reason: str) -> dict[str, str]:
    """One rejected file: ``{"path", "code", "reason"}``."""
    return {"path": path, "code": code, "reason": reason}


def extension(name: str) -> str:
    """The lower-case extension with its dot (``""`` if none)."""
    i = name.rfind(".")
    return name[i:].lower() if i > 0 else ""


def detect_layout(root: Path) -> str | None:
    """The first layout of :data:`SIGNATURES` whose paths all exist under ``root`` (or None)."""
    for name, alternatives in SIGNATURES.items():
        if any(all((root / p).exists() for p in paths) for paths in alternatives):
            return name
    return None


def require(root: Path, fmt: str, paths: Sequence[str], what: str) -> None:
    """Raise one line if any of ``paths`` is missing under ``root``, naming the layout the root looks like.

    Raises:
        AtustcError: ``<root>: not a <what> root (missing <path>); it looks like a <other> root ...``.
    """
    missing = [p for p in paths if not (root / p).exists()]
    if not missing:
        return
    other = detect_layout(root)
    hint = f"; it looks like a {other} root: use --format {other}" if other and other != fmt else ""
    raise AtustcError(f"{root}: not a {what} root (missing {missing[0]}){hint}")


def list_files(root: Path, rel: str) -> list[str]:
    """Sorted entry names of the folder ``root/rel`` (one ``os.listdir``; folders are told apart later)."""
    names = os.listdir(root / rel)
    names.sort()
    return names


def _valid(names: Sequence[str], pattern: str) -> np.ndarray:
    """Which names fully match ``pattern``: one regex pass over the joined names, per-name only if some fail."""
    n = len(names)
    text = "\n".join(names)
    check = re.compile("^(?:" + re.sub(r"\((?!\?)", "(?:", pattern) + ")$", re.MULTILINE)  # no groups: faster
    if text.count("\n") == n - 1 and check.subn("", text)[1] == n:
        return np.ones(n, dtype=bool)
    full = re.compile(pattern)
    return np.fromiter((full.fullmatch(s) is not None for s in names), dtype=bool, count=n)


def parse_names(names: Sequence[str], pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ok, groups)``: which names fully match ``pattern`` and their groups as a ``[n, k]`` object array.

    One regex pass over the names joined by newlines; rows of bad names hold empty strings.
    """
    n = len(names)
    k = re.compile(pattern).groups
    groups = np.full((n, k), "", dtype=object)
    if n == 0:
        return np.zeros(0, dtype=bool), groups
    ok = _valid(names, pattern)
    if ok.any():
        good = names if ok.all() else [s for s, g in zip(names, ok, strict=True) if g]
        found = re.compile(f"^(?:{pattern})$", re.MULTILINE).findall("\n".join(good))
        groups[ok] = np.array(found, dtype=object).reshape(len(good), k)
    return ok, groups


def parse_numbers(names: Sequence[str], pattern: str, checked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(ok, ints)`` for a pattern whose groups are all the digit runs of a good name: ``[n, k]`` int64.

    The fast path of :func:`parse_names` (as the AT-USTC indexer parses): after the regex check,
    numpy turns every non-digit byte of the joined good names into a space and reads the
    numbers in one call; no per-name Python work and no group strings. A minus sign is not
    read (a caller that allows ``-1`` looks at it). Falls back to the regex groups when a good
    name has another number of digit runs. Rows of bad names hold -1. ``checked``: the caller has
    already matched every name against ``pattern``.
    """
    n = len(names)
    k = re.compile(pattern).groups
    ints = np.full((n, k), -1, dtype=np.int64)
    ok = (np.ones(n, dtype=bool) if checked else _valid(names, pattern)) if n else np.zeros(0, dtype=bool)
    if not ok.any():
        return ok, ints
    good = names if ok.all() else [s for s, g in zip(names, ok, strict=True) if g]
    raw = np.frombuffer("\n".join(good).encode("utf-8"), dtype=np.uint8).copy()
    raw[(raw < 48) | (raw > 57)] = 32
    values = np.fromstring(raw.tobytes(), dtype=np.int64, sep=" ") if raw.size else np.zeros(0, np.int64)
    if values.size == k * len(good):
        ints[ok] = values.reshape(len(good), k)
        return ok, ints
    _, groups = parse_names(good, pattern)
    ints[ok] = np.stack([to_int(groups[:, j]) for j in range(k)], axis=1)
    return ok, ints


def to_int(values: np.ndarray) -> np.ndarray:
    """A str/object array of decimal numbers as int64 (empty strings -> -1)."""
    out = np.full(len(values), -1, dtype=np.int64)
    good = values != ""
    if good.any():
        out[good] = np.fromiter(map(int, values[good]), dtype=np.int64, count=int(good.sum()))
    return out


def bad_name(root: Path, relpath: str, name: str, expected: str) -> dict[str, str]:
    """The rejection of a file whose name does not parse: a folder, a non-image, or a bad image name."""
    if (root / relpath).is_dir():
        return reject(relpath + "/", "unparseable", "unexpected folder")
    ext = extension(name)
    if ext not in IMAGE_EXTENSIONS:
        return reject(relpath, "not_image", f"not an image file (extension {ext or 'none'!r})")
    return reject(relpath, "unparseable", f"file name does not parse; expected {expected}")


def reject_bad(
    root: Path, relpath: np.ndarray, names: Sequence[str], ok: np.ndarray, expected: str
) -> list[dict[str, str]]:
    """Rejections of every name that failed to parse."""
    return [bad_name(root, str(relpath[i]), names[i], expected) for i in np.flatnonzero(~ok)]


def reject_range(
    relpath: np.ndarray, value: np.ndarray, ok: np.ndarray, low: int, high: int, code: str, label: str
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Reject parsed rows whose ``value`` is outside ``[low, high]``; returns the narrowed ``ok`` and the rejections."""
    bad = ok & ((value < low) | (value > high))
    rejected = [
        reject(str(relpath[i]), code, f"{label} {value[i]} out of range {low}-{high}") for i in np.flatnonzero(bad)
    ]
    return ok & ~bad, rejected


def gather(root: Path, folders: Iterable[tuple[str, str]]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(relpath, names, split)`` of every entry of the flat folders ``[(relative folder, split), ...]``."""
    rel: list[str] = []
    names: list[str] = []
    split: list[str] = []
    for folder, part in folders:
        files = list_files(root, folder)
        names.extend(files)
        rel.extend(f"{folder}/{f}" for f in files)
        split.extend([part] * len(files))
    return np.array(rel, dtype=object), names, np.array(split, dtype=object)


def make_scan(
    dataset: str,
    keep: np.ndarray,
    columns: dict[str, np.ndarray],
    rejected: list[dict[str, str]],
    files_seen: int,
) -> Scan:
    """The :class:`Scan` of the rows ``keep`` (bool or index array) of full-length ``columns``.

    ``columns`` holds ``relpath``, ``pid``, ``camera``, ``split`` and optionally ``clothes``,
    ``date``, ``frame``, ``modality``; the rest are filled (``modality`` rgb, unknown ints -1,
    ``flag`` -1).
    """
    idx = np.flatnonzero(keep) if keep.dtype == bool else keep
    n = len(idx)
    minus = np.full(n, -1, dtype=np.int64)
    out = {
        "dataset": dataset,
        "relpath": columns["relpath"][idx],
        "pid": columns["pid"][idx].astype(np.int64),
        "clothes": columns["clothes"][idx].astype(np.int64) if "clothes" in columns else minus,
        "camera": columns["camera"][idx].astype(np.int64),
        "modality": columns["modality"][idx] if "modality" in columns else np.full(n, "rgb", dtype=object),
        "date": columns["date"][idx].astype(np.int64) if "date" in columns else minus.copy(),
        "frame": columns["frame"][idx].astype(np.int64) if "frame" in columns else minus.copy(),
        "flag": minus.copy(),
        "split": columns["split"][idx],
    }
    rejected.sort(key=lambda r: r["path"])
    return Scan(columns=out, rejected=rejected, files_seen=files_seen)
