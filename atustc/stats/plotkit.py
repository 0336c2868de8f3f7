"""Shared plotting pieces of the stats figures: style, fixed-margin axes, footnotes, spread marks,
point labels and atomic saving (matplotlib's object API on Agg; pyplot is never imported)."""

from __future__ import annotations

import functools
import os
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

P = ParamSpec("P")
R = TypeVar("R")
RGB_COLOR = "#3B75AF"
IR_COLOR = "#C0392B"
FAMILY_COLORS: dict[str, str] = {
    "Tr-ReID": "#7F7F7F",
    "CM-ReID": "#8E6BB8",
    "CC-ReID": "#4C9A5B",
    "AT-ReID": "#C0392B",
    "": "#E08A2C",  # a computed table that is not one of the published datasets
}
STYLE: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "atustc",
}
OUTFIT_COLOR = "#4C9A5B"
DATE_COLOR = "#8E6BB8"
COMPUTED_NOTE = "* computed from the given table (published figures are kept beside it)"
#: Suffix of the label of a table drawn by ``atustc synth`` (its index manifest says ``synthetic``).
SYNTHETIC_SUFFIX = " (synthetic)"
SYNTHETIC_NOTE = "(synthetic): drawn by atustc synth, not the real dataset"


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a drawing or saving function under :data:`STYLE`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def new_axes(
    ylabels: list[str],
    body: tuple[float, float],
    *,
    right: float,
    top: float,
    bottom: float,
    notes: str = "",
    left: float | None = None,
) -> Axes:
    """Axes on a new figure with fixed margins in inches (no layout engine: drawing stays cheap).

    The left margin fits the longest y tick label; the bottom margin grows with the footnote.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if left is None:
        left = 0.3 + 0.075 * max((len(s) for s in ylabels), default=4)
    if notes:
        bottom += 0.1 + 0.125 * (notes.count("\n") + 1)
    width, height = left + body[0] + right, bottom + body[1] + top
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig.add_axes((left / width, bottom / height, body[0] / width, body[1] / height))


def computed_notes(frame: pd.DataFrame) -> list[str]:
    """The footnotes that the computed rows of a panel's frame need: ``*``, and "synthetic" if any."""
    computed = frame.loc[frame["source"] == "computed", "dataset"].astype(str)
    if computed.empty:
        return []
    return [COMPUTED_NOTE] + ([SYNTHETIC_NOTE] if computed.str.endswith(SYNTHETIC_SUFFIX).any() else [])


def row_label(row: pd.Series) -> str:
    return f"{row['dataset']}*" if row["source"] == "computed" else str(row["dataset"])


def wrap_notes(lines: list[str]) -> str:
    """Footnote lines wrapped to about the axes width."""
    return "\n".join(textwrap.fill(line, 72) for line in lines if line)


def footnote(ax: Axes, text: str) -> None:
    """Small grey notes under the axes and its x label."""
    if text:
        below = ax.xaxis.label if ax.get_xlabel() else "axes fraction"
        ax.annotate(
            text,
            xy=(0, 0),
            xycoords=("axes fraction", below),
            xytext=(0, -6),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize=7,
            color="#555555",
        )


def family_handles(families: list[str]) -> list:
    from matplotlib.patches import Patch

    present = [f for f in FAMILY_COLORS if f in set(families)]
    return [Patch(color=FAMILY_COLORS[f], label=f or "other (computed)") for f in present]


def whisker(ax: Axes, y: float, values: np.ndarray, color: str = "#222222") -> float:
    """The spread of ``values`` at height ``y``: a thin line min-max with caps, a thick one over the quartiles.

    Returns the maximum (where a label may start).
    """
    import numpy as np

    lo, q1, q3, hi = np.percentile(values, [0, 25, 75, 100])
    ax.hlines(y, lo, hi, color=color, linewidth=0.8, zorder=4)
    ax.vlines([lo, hi], y - 0.07, y + 0.07, color=color, linewidth=0.8, zorder=4)
    ax.hlines(y, q1, q3, color=color, linewidth=2.6, zorder=4)
    return float(hi)


def spread_handle():  # type: ignore[no-untyped-def]
    """The legend entry of :func:`whisker`."""
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        color="#222222",
        linewidth=2.6,
        marker="|",
        markersize=6,
        label="over identities:\nquartiles (thick),\nmin \u2013 max (thin)",
    )


def pair_rows(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row centres and the two bar positions (upper, lower) of a two-series-per-dataset panel."""
    import numpy as np

    y = np.arange(n, dtype=float)
    return y, y - 0.19, y + 0.19


def log_limits(values: np.ndarray) -> tuple[float, float]:
    """Log-axis limits around ``values`` with margins, spanning at least one decade (so a major tick shows)."""
    lo, hi = float(values.min()) / 2.2, float(values.max()) * 3.0
    if hi / lo < 10:
        pad = (10 * lo / hi) ** 0.5
        lo, hi = lo / pad, hi * pad
    return lo, hi


def place_labels(ax: Axes, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Annotate points so that labels overlap neither each other, the points, the legend nor the frame.

    Tries offsets in eight directions at growing distances and keeps the first free spot (or the
    least overlapping one); a label set away from its point gets a thin leader line.
    """
    import numpy as np
    from matplotlib.transforms import Bbox

    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure(): measure text with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    frame = ax.get_window_extent(renderer)
    r = 4 * fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([x, y]))
    obstacles = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in pts]
    if ax.get_legend() is not None:
        obstacles.append(ax.get_legend().get_window_extent(renderer))
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    for i, text in enumerate(labels):
        best = None
        for dist in (5, 12, 20, 30):
            for dx, dy in directions:
                ann = ax.annotate(
                    text,
                    (x[i], y[i]),
                    xytext=(dx * dist, dy * dist),
                    textcoords="offset points",
                    fontsize=8,
                    ha="left" if dx > 0 else "right" if dx < 0 else "center",
                    va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                )
                box = ann.get_window_extent(renderer).padded(r / 4)
                cost = sum(_area(box, o) for o in obstacles) + box.width * box.height - _area(box, frame)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box, dist)
                else:
                    ann.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        obstacles.append(best[2])
        if best[3] > 5:
            ax.annotate(
                "",
                (x[i], y[i]),
                xytext=best[1].xyann,
                textcoords="offset points",
                arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkA": 0},
            )


def _area(a, b) -> float:  # type: ignore[no-untyped-def]
    """Overlap area of two display-space boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


@styled
def save_figure(
    fig: Figure, stem: str | os.PathLike[str], formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150
) -> list[str]:
    """Write ``fig`` as ``<stem>.<fmt>`` for each format, atomically; returns the paths written."""
    from atustc.io import atomic_path

    written = []
    for fmt in formats:
        path = f"{os.fspath(stem)}.{fmt}"
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
        written.append(path)
    return written
