"""Miniatures of public ReID datasets in their released layouts (``atustc synth OUT --layout NAME``).

Each layout function draws a small plan from a seeded generator (folders, file names, list
files exactly as the release names them) and :func:`write_layout` renders every image with the
AT-USTC renderer (RGB cameras 1-8, IR cameras 9-16 for the visible-infrared datasets) and publishes the tree atomically. A miniature is small
(100-250 images of 64x32 pixels), so that every indexer and protocol is tested end to end
without the data.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from atustc.errors import unknown_name
from atustc.synth.layouts._tree import Shot, write_tree
from atustc.synth.layouts.clothes_change import deepchange, ltcc, prcc
from atustc.synth.layouts.market_style import cuhk03, market1501
from atustc.synth.layouts.msmt17 import msmt17
from atustc.synth.layouts.vi import llcm, regdb, sysu_mm01

Plan = Callable[[np.random.Generator], tuple[list[Shot], dict[str, str]]]

#: layout name (the dataset's --format name) -> plan
LAYOUTS: dict[str, Plan] = {
    "market1501": market1501,
    "cuhk03": cuhk03,
    "msmt17": msmt17,
    "prcc": prcc,
    "ltcc": ltcc,
    "deepchange": deepchange,
    "sysu-mm01": sysu_mm01,
    "regdb": regdb,
    "llcm": llcm,
}

#: layout -> the folder inside the written tree that ``atustc index`` takes as the dataset root
#: (CUHK03-NP: ``cuhk03-np/detected`` -> the miniature's ``detected``); absent: the tree itself.
ROOT_SUBDIR: dict[str, str] = {"cuhk03": "detected"}

__all__ = ["LAYOUTS", "ROOT_SUBDIR", "Shot", "miniature_root", "plan_layout", "write_layout"]


def miniature_root(out: str | os.PathLike[str], name: str) -> Path:
    """The dataset root to index inside a miniature written to ``out`` (see :data:`ROOT_SUBDIR`)."""
    sub = ROOT_SUBDIR.get(name)
    return Path(out) / sub if sub else Path(out)


def plan_layout(name: str, seed: int = 0) -> tuple[list[Shot], dict[str, str]]:
    """The images and text files of the ``name`` miniature for ``seed``.

    Raises:
        AtustcError: an unknown layout (with close matches).
    """
    if name not in LAYOUTS:
        raise unknown_name("layout", name, [*LAYOUTS, "atustc"], "layouts")
    return LAYOUTS[name](np.random.default_rng([seed, 13]))


def write_layout(out: str | os.PathLike[str], name: str, seed: int = 0, overwrite: bool = False) -> tuple[int, float]:
    """Write the ``name`` miniature under ``out`` (atomically); returns (images, seconds)."""
    t0 = time.perf_counter()
    from atustc.synth.config import SYNTH_VERSION
    from atustc.synthmark import MARKER_NAME, marker_text

    shots, texts = plan_layout(name, seed)
    texts = {**texts, MARKER_NAME: marker_text(name, seed, SYNTH_VERSION)}
    n = write_tree(Path(out), shots, texts, seed, overwrite=overwrite)
    return n, time.perf_counter() - t0
