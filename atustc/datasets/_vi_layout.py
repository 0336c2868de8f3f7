"""Shared parts of the visible-infrared indexers (SYSU-MM01, RegDB, LLCM).

Their releases keep images in ``<camera or modality folder>/<pid>/<file>`` trees and name the
split by identity lists (comma-separated ids on one line) or by ``<relpath> <label>`` list files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atustc.datasets._reid_layout import IMAGE_EXTENSIONS, extension, reject
from atustc.errors import AtustcError

_LAST_NUMBER = re.compile(r"(\d+)\D*$")


@dataclass
class Tree:
    """Every image of some ``<folder>/<pid>/<file>`` trees, as parallel arrays."""

    relpath: list[str]
    pid: list[int]
    folder: list[str]


def read_ids(path: Path) -> list[int]:
    """The identities of a comma-separated id list (SYSU-MM01 ``exp/*_id.txt``, LLCM ``idx/test_id.txt``).

    Raises:
        AtustcError: the file is missing, empty, or holds a token that is not an integer.
    """
    if not path.is_file():
        raise AtustcError(f"{path}: id list not found")
    tokens = [t.strip() for t in path.read_text(encoding="utf-8", errors="replace").replace("\n", ",").split(",")]
    tokens = [t for t in tokens if t]
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise AtustcError(f"{path}: expected comma-separated identity numbers, got {bad[0]!r}")
    if not tokens:
        raise AtustcError(f"{path}: id list is empty")
    return [int(t) for t in tokens]


def walk_pid_folders(root: Path, folders: Sequence[str], rejected: list[dict[str, str]]) -> Tree:
    """Images of ``<folder>/<pid>/<file>`` for every folder; other entries are rejected with a reason."""
    out = Tree([], [], [])
    for folder in folders:
        top = root / folder
        for d in sorted(os.listdir(top)):
            if not (top / d).is_dir():
                rejected.append(reject(f"{folder}/{d}", "unparseable", "expected a numbered identity folder"))
                continue
            if not d.isdigit():
                rejected.append(reject(f"{folder}/{d}/", "unparseable", "expected a numbered identity folder"))
                continue
            for name in sorted(os.listdir(top / d)):
                rel = f"{folder}/{d}/{name}"
                if extension(name) not in IMAGE_EXTENSIONS:
                    kind = "unexpected folder" if (top / d / name).is_dir() else None
                    reason = kind or f"not an image file (extension {extension(name) or 'none'!r})"
                    rejected.append(reject(rel, "unparseable" if kind else "not_image", reason))
                    continue
                out.relpath.append(rel)
                out.pid.append(int(d))
                out.folder.append(folder)
    return out


def frame_numbers(relpaths: Sequence[str]) -> np.ndarray:
    """The last number of each file name (``0012.jpg`` -> 12), -1 where there is none."""
    out = np.full(len(relpaths), -1, dtype=np.int64)
    for i, r in enumerate(relpaths):
        m = _LAST_NUMBER.search(r.rsplit("/", 1)[-1])
        if m:
            out[i] = int(m[1])
    return out


def check_ids(path: Path, ids: Sequence[int], present: set[int], where: str) -> None:
    """Every listed identity has an image.

    Raises:
        AtustcError: ``<path>: identity N has no image in <where> (k listed identities without images)``.
    """
    missing = [i for i in ids if i not in present]
    if missing:
        raise AtustcError(
            f"{path}: identity {missing[0]} has no image in {where} ({len(missing)} listed identities without images)"
        )


def check_listed(path: Path, listed: Sequence[str], present: set[str]) -> None:
    """Every entry of a list file has its image.

    Raises:
        AtustcError: ``<path>: line N: image <relpath> not found (k listed image(s) missing)``.
    """
    missing = [i for i, r in enumerate(listed) if r not in present]
    if missing:
        raise AtustcError(
            f"{path}: line {missing[0] + 1}: image {listed[missing[0]]} not found "
            f"({len(missing)} listed image(s) missing)"
        )
