"""Decode every image in parallel and report the ones that are corrupt or truncated."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def check_image(path: str) -> str | None:
    """Fully decode one image; return None if it is fine, else the reason it is not."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except UnidentifiedImageError:
        return "corrupt image: not a decodable image"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"corrupt or truncated image: {exc}"
    return None


def verify_images(
    root: Path, relpaths: list[str], workers: int | None = None, progress: bool = False
) -> dict[int, str]:
    """Decode ``root/relpath`` for every path, in a thread pool (PIL releases the GIL while decoding).

    Returns:
        ``{position in relpaths: reason}`` for every image that failed.
    """
    from PIL import ImageFile

    from atustc.richprogress import progress_bar

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    n_workers = workers or min(8, (os.cpu_count() or 1) + 2)
    bad: dict[int, str] = {}
    chunk = 256
    with (
        ThreadPoolExecutor(max_workers=n_workers) as pool,
        progress_bar("verify images", total=len(relpaths), enabled=progress) as advance,
    ):
        starts = range(0, len(relpaths), chunk)

        def check_chunk(start: int) -> list[str | None]:
            return [check_image(str(root / r)) for r in relpaths[start : start + chunk]]

        for start, reasons in zip(starts, pool.map(check_chunk, starts)):
            for k, reason in enumerate(reasons):
                if reason is not None:
                    bad[start + k] = reason
            advance(len(reasons))
    return bad
