"""The marker that ``atustc synth`` leaves at the top of every tree it draws.

A synthetic tree indexes like a real release, so nothing in the table tells it apart. The
marker, a small JSON file beside the images, carries what drew the tree (generator, renderer
version, seed, layout and the config) into the index manifest (``synthetic``), from where
``atustc stats`` labels the table "synthetic" instead of letting it pass for the real dataset.
This module imports nothing heavy: the indexers read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: File name of the marker, at the top of the tree ``atustc synth`` wrote.
MARKER_NAME = "atustc-synth.json"


def marker_text(layout: str, seed: int, synth_version: int, config: dict[str, Any] | None = None) -> str:
    """The marker's content: deterministic JSON (no time stamp), so the same seed gives the same bytes."""
    info: dict[str, Any] = {
        "generator": "atustc synth",
        "synth_version": synth_version,
        "layout": layout,
        "seed": seed,
    }
    if config is not None:
        info["config"] = config
    return json.dumps(info, indent=2, sort_keys=True, default=list) + "\n"


def find_marker(root: str | os.PathLike[str]) -> Path | None:
    """The marker of the tree that holds ``root``: at ``root`` itself, or one level up.

    One level up covers a miniature whose indexed root is a sub-folder of the tree that was
    written (CUHK03's ``detected/`` and ``labeled/``).
    """
    r = Path(root)
    for folder in (r, r.parent):
        candidate = folder / MARKER_NAME
        if candidate.is_file():
            return candidate
    return None


def read_marker(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What drew the tree at ``root`` (the marker's JSON), or None for a tree without a marker.

    A marker that is not a JSON object is not trusted: None, as for no marker.
    """
    path = find_marker(root)
    if path is None:
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
