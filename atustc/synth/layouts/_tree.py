"""Render a planned miniature and publish it atomically (temp folder beside OUT, then rename).

A plan is a list of :class:`Shot` (where the image goes and what it shows) plus text files
(list files, id lists). Every image is drawn by :func:`atustc.synth.render_image` with the
miniature's seed, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atustc.errors import AtustcError
from atustc.io import atomic_dir
from atustc.synth.config import SynthConfig
from atustc.synth.generate import render_image
from atustc.synth.render import encode_jpeg

#: pixel size of miniature crops (height, width): small, so that each miniature takes about a second.
IMAGE_SIZE = (64, 32)


@dataclass(frozen=True)
class Shot:
    """One image of a miniature: its relpath and the render arguments (person, day, outfit, camera 1-16, frame)."""

    relpath: str
    person: int
    date: int
    clothes: int
    camera: int
    frame: int


def encode(pixels: np.ndarray, relpath: str) -> bytes:
    """JPEG (quality 90), PNG or BMP bytes, by the relpath's extension."""
    kind = {".png": "PNG", ".bmp": "BMP"}.get(relpath.lower()[-4:])
    if kind is not None:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, format=kind)
        return buf.getvalue()
    return encode_jpeg(pixels, 90)


def write_tree(out: Path, shots: list[Shot], texts: dict[str, str], seed: int, overwrite: bool = False) -> int:
    """Write ``shots`` and ``texts`` under ``out`` atomically; returns the number of images.

    Raises:
        AtustcError: ``out`` is a file, or a non-empty folder without ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise AtustcError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise AtustcError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    config = SynthConfig(seed=seed, image_size=IMAGE_SIZE)
    with atomic_dir(out) as tmp:  # the mode of an ordinary mkdir; the old tree kept on failure
        for s in shots:
            assert 1 <= s.camera <= 16, s  # renderer cameras: 1-8 RGB, 9-16 IR
            path = tmp / s.relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(render_image(config, s.person, s.date, s.clothes, s.camera, s.frame), s.relpath))
        for rel, text in texts.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
    return len(shots)


def cameras(rng: np.random.Generator, n: int, low: int = 1, high: int = 8) -> list[int]:
    """``n`` distinct sorted cameras in ``[low, high]``."""
    return sorted(int(c) for c in rng.choice(np.arange(low, high + 1), size=n, replace=False))
