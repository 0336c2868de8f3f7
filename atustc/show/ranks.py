"""Rank lists as pictures: each query and its top-k gallery images, coloured by match.

The lists come from the per-query frame of :func:`atustc.evaluate.evaluate` (``top_k``), so what is
drawn is exactly what was scored: the same ranking, the same junk rules. Queries are picked by AP
(:func:`pick_queries`): the best, the worst, or a seeded random draw; the figure's title says which.
Borders: blue for the query, green for a positive, red for a negative, grey for junk (listed where
it ranks but not counted; ``junk="hide"`` leaves it out). Images are read from the dataset root;
a missing image is drawn as a grey tile with its name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

Sort = Literal["best", "worst", "random"]
JunkMode = Literal["show", "hide"]
COLORS: dict[str, tuple[int, int, int]] = {
    "query": (52, 101, 164),
    "pos": (46, 160, 67),
    "neg": (204, 40, 40),
    "junk": (150, 150, 150),
}
#: Tile size in pixels (width, height): person crops are about 1:2.
TILE = (64, 128)
_BORDER = 5
_GAP = 6


def pick_queries(per_query: pd.DataFrame, sort: Sort, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` valid queries of one scenario's per-query frame, ordered as the figure shows them.

    ``best``: highest AP first; ``worst``: lowest first (ties: by query relpath); ``random``: a
    draw without replacement with ``seed``.

    Raises:
        AtustcError: an unknown sort, ``n < 1`` or no valid query.
    """
    if sort not in ("best", "worst", "random"):
        raise AtustcError(f"--sort must be best, worst or random, got {sort!r}")
    if n < 1:
        raise AtustcError(f"the number of queries must be >= 1, got {n}")
    valid = per_query[per_query["valid"]]
    if valid.empty:
        raise AtustcError("no valid query to show (every query lacks a positive after junk removal)")
    if sort == "random":
        rng = np.random.default_rng(seed)
        take = rng.choice(len(valid), size=min(n, len(valid)), replace=False)
        return valid.iloc[np.sort(take)]
    ordered = valid.sort_values(["ap", "query", "run"], ascending=[sort == "worst", True, True], kind="stable")
    return ordered.head(n)


def _load_tile(root: Path | None, relpath: str) -> np.ndarray | None:
    from PIL import Image

    if root is None:
        return None
    path = root / relpath
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize(TILE, Image.Resampling.BILINEAR))
    except (OSError, ValueError):
        return None


def _framed(tile: np.ndarray | None, color: tuple[int, int, int]) -> np.ndarray:
    w, h = TILE
    out = np.empty((h + 2 * _BORDER, w + 2 * _BORDER, 3), dtype=np.uint8)
    out[:] = color
    out[_BORDER : _BORDER + h, _BORDER : _BORDER + w] = tile if tile is not None else 225
    return out


def plot_ranks(
    chosen: pd.DataFrame,
    root: str | os.PathLike[str] | None,
    *,
    title: str,
    junk: JunkMode = "show",
    top_k: int = 10,
) -> Figure:
    """Draw one row per query: the query, then its top ``top_k`` kept gallery entries.

    Args:
        chosen: rows of the per-query frame, in display order (:func:`pick_queries`).
        root: image root (None: every tile is a placeholder).
        title: the figure's title (say how the queries were chosen).
        junk: ``show`` junk entries in place (grey, unranked) or ``hide`` them.
        top_k: kept entries per row.

    Returns:
        The figure (Agg canvas; no pyplot).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    root_path = Path(root) if root is not None else None
    rows = []
    for rec in chosen.itertuples():
        entries = [
            (p, lab, r)
            for p, lab, r in zip(rec.top_relpath, rec.top_label, rec.top_rank, strict=True)
            if not (junk == "hide" and lab == "junk")
        ]
        kept = 0
        shown = []
        for p, lab, r in entries:
            if lab != "junk":
                if kept == top_k:
                    break
                kept += 1
            shown.append((p, lab, r))
        rows.append((rec, shown))
    n_cols = 1 + max((len(s) for _, s in rows), default=0)
    fw, fh = TILE[0] + 2 * _BORDER, TILE[1] + 2 * _BORDER
    label_h, below_h, left_gap, top = 18, 28, 3 * _GAP, 40
    width = n_cols * (fw + _GAP) + left_gap
    height = len(rows) * (fh + label_h + below_h) + top
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    texts: list[tuple[float, float, str, str]] = []
    missing = 0
    for i, (rec, shown) in enumerate(rows):
        y = top + i * (fh + label_h + below_h) + label_h
        tile = _load_tile(root_path, rec.query)
        missing += tile is None
        canvas[y : y + fh, 0:fw] = _framed(tile, COLORS["query"])
        texts.append((fw / 2, y - 3, "query", "#34659f"))
        texts.append((fw / 2, y + fh + 2, f"AP {100 * rec.ap:.1f}%\n1st pos. @{rec.first_rank}", "#222222"))
        for j, (path, lab, rank) in enumerate(shown):
            x = left_gap + (j + 1) * (fw + _GAP)
            tile = _load_tile(root_path, path)
            missing += tile is None
            canvas[y : y + fh, x : x + fw] = _framed(tile, COLORS[lab])
            texts.append(
                (x + fw / 2, y - 3, "junk" if lab == "junk" else str(rank), "#777777" if lab == "junk" else "#222222")
            )
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    for x, y, text, color in texts:
        below = "\n" in text
        ax.text(x, y, text, ha="center", va="top" if below else "bottom", fontsize=7.5, color=color, linespacing=1.1)
    legend = "blue: query   green: positive   red: negative" + (
        "   grey: junk (not ranked)" if junk == "show" else "   junk hidden"
    )
    if missing:
        legend += f"   ({missing} images not found: grey tiles)"
    ax.text(4, 4, title, ha="left", va="top", fontsize=9.5, fontweight="bold", color="#111111")
    ax.text(4, 19, legend, ha="left", va="top", fontsize=7.5, color="#444444")
    return fig


def ranks_title(scenario: str, sort: Sort, n_shown: int, n_valid: int, seed: int, k: int) -> str:
    """The figure's title: the scenario and how the queries were chosen."""
    how = {"best": "highest-AP", "worst": "lowest-AP", "random": f"random (seed {seed})"}[sort]
    return f"{scenario}: {n_shown} {how} of {n_valid} valid queries, top {k}"
