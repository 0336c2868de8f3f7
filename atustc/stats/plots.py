"""The four Fig. 2 panels, drawn with matplotlib's object API (Agg; pyplot is never imported).

Every function takes the panel frame from :class:`~atustc.stats.panels.Panels`, draws on ``ax``
(or on a new figure when ``ax`` is None) and returns the Figure. Datasets run top to bottom in
the paper's order; a dataset computed from a user table is marked with ``*`` and a footnote.
"""

from __future__ import annotations

import functools
import os
import textwrap
from typing import TYPE_CHECKING, Callable, ParamSpec, TypeVar

from atustc.scenarios import SCENARIOS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from atustc.stats.panels import Panels

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
COMPUTED_NOTE = "* computed from the given table"


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a drawing or saving function under :data:`STYLE`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _new_axes(
    ylabels: list[str], body: tuple[float, float], *, right: float, top: float, bottom: float, notes: str = "",
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


def _label(row: pd.Series) -> str:
    return f"{row['dataset']}*" if row["source"] == "computed" else str(row["dataset"])


def _notes(lines: list[str]) -> str:
    """Footnote lines wrapped to about the axes width."""
    return "\n".join(textwrap.fill(line, 72) for line in lines if line)


def _footnote(ax: Axes, text: str) -> None:
    """Small grey notes under the axes and its x label."""
    if text:
        below = ax.xaxis.label if ax.get_xlabel() else "axes fraction"
        ax.annotate(
            text, xy=(0, 0), xycoords=("axes fraction", below), xytext=(0, -6), textcoords="offset points",
            va="top", ha="left", fontsize=7, color="#555555",
        )


@_styled
def plot_coverage(coverage: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (a): which of the six scenarios each dataset can evaluate (its ``all`` group)."""
    import numpy as np
    from matplotlib.colors import to_rgba

    df = coverage[coverage["group"] == "all"]
    datasets = list(dict.fromkeys(df["dataset"]))
    first = df.drop_duplicates("dataset").set_index("dataset")
    labels = [_label(first.loc[n].to_dict() | {"dataset": n}) for n in datasets]
    notes = _notes(
        ([COMPUTED_NOTE] if (first["source"] == "computed").any() else [])
        + ["\u2713 = at least one query with a positive from another camera (DT: RGB-RGB, NT: IR-IR, "
           "AD: RGB-IR; ST: same clothes, LT: other clothes)"]
    )
    if ax is None:
        ax = _new_axes(labels, (3.3, 0.3 * len(datasets)), right=1.75, top=0.6, bottom=0.1, notes=notes)
    grid = df.pivot(index="dataset", columns="scenario", values="covered").loc[datasets, list(SCENARIOS)]
    image = np.ones((len(datasets), len(SCENARIOS), 4))
    for i, name in enumerate(datasets):
        color = to_rgba(FAMILY_COLORS.get(first.loc[name, "family"], FAMILY_COLORS[""]))
        for j, sc in enumerate(SCENARIOS):
            if grid.loc[name, sc]:
                image[i, j] = color
                ax.text(j, i, "\u2713", ha="center", va="center", color="white", fontsize=10, fontweight="bold")
            else:
                image[i, j] = to_rgba("#EEEEEE")
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(SCENARIOS)), SCENARIOS)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(datasets)), labels)
    ax.set_xticks(np.arange(-0.5, len(SCENARIOS)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(datasets)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="both", length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title("(a) Scenario coverage", pad=22)
    handles = _family_handles(first["family"].tolist())
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="family", title_fontsize=8)
    _footnote(ax, notes)
    return ax.figure


def _family_handles(families: list[str]) -> list:
    from matplotlib.patches import Patch

    present = [f for f in FAMILY_COLORS if f in set(families)]
    return [Patch(color=FAMILY_COLORS[f], label=f or "other (computed)") for f in present]


@_styled
def plot_cameras(cameras: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (b): RGB + IR cameras per identity (filled, stacked) over the dataset's cameras (outline)."""
    import numpy as np
    from matplotlib.patches import Patch

    n = len(cameras)
    labels = [_label(r) for _, r in cameras.iterrows()]
    notes = _notes(([COMPUTED_NOTE] if (cameras["source"] == "computed").any() else [])
                   + (["n/a: not published as a number"] if cameras["rgb_cameras_per_id"].isna().any() else []))
    if ax is None:
        ax = _new_axes(labels, (3.3, 0.3 * n + 0.2), right=1.9, top=0.4, bottom=0.5, notes=notes)
    y = np.arange(n)
    rgb_total = cameras["rgb_cameras"].fillna(0).to_numpy(float)
    ir_total = cameras["ir_cameras"].fillna(0).to_numpy(float)
    rgb = cameras["rgb_cameras_per_id"].to_numpy(float)
    ir = cameras["ir_cameras_per_id"].to_numpy(float)
    outline = {"fill": False, "linewidth": 0.9, "linestyle": (0, (3, 2)), "height": 0.72}
    has_rgb, has_ir = rgb_total > 0, ir_total > 0
    ax.barh(y[has_rgb], rgb_total[has_rgb], edgecolor=RGB_COLOR, **outline)
    ax.barh(y[has_ir], ir_total[has_ir], left=rgb_total[has_ir], edgecolor=IR_COLOR, **outline)
    known = ~np.isnan(rgb)
    rgb_k, ir_k = np.nan_to_num(rgb), np.nan_to_num(ir)
    ax.barh(y[known], rgb_k[known], color=RGB_COLOR, height=0.5)
    ax.barh(y[known], ir_k[known], left=rgb_k[known], color=IR_COLOR, height=0.5)
    xmax = float(np.nanmax(np.concatenate([rgb_total + ir_total, rgb_k + ir_k, [1.0]])))
    for i in range(n):
        end = max(rgb_total[i] + ir_total[i], rgb_k[i] + ir_k[i])
        if known[i]:
            text = f"{rgb_k[i]:.1f} + {ir_k[i]:.1f}" if ir_k[i] > 0 else f"{rgb_k[i]:.1f}"
            ax.text(end + xmax * 0.015, i, text, va="center", fontsize=7.5)
        else:
            ax.text(end + xmax * 0.015, i, "per-id n/a", va="center", fontsize=7, color="#888888", style="italic")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax * 1.28)
    ax.set_xlabel("cameras")
    ax.set_title("(b) Cameras per identity")
    ax.legend(
        handles=[
            Patch(color=RGB_COLOR, label="RGB, mean per identity"),
            Patch(color=IR_COLOR, label="IR, mean per identity"),
            Patch(fill=False, edgecolor="#444444", linestyle=(0, (3, 2)), label="in the dataset"),
        ],
        loc="upper left", bbox_to_anchor=(1.01, 1.0), title="cameras", title_fontsize=8,
    )
    _footnote(ax, notes)
    return ax.figure


@_styled
def plot_captures(captures: pd.DataFrame, distribution: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (c): captures (distinct date x camera) per identity: distribution and mean marker."""
    import numpy as np
    from matplotlib.lines import Line2D

    shown = captures[captures["captures_per_id"].notna()].reset_index(drop=True)
    missing = captures.loc[captures["captures_per_id"].isna(), "dataset"].tolist()
    labels = [_label(r) for _, r in shown.iterrows()]
    notes = _notes(([COMPUTED_NOTE] if (shown["source"] == "computed").any() else [])
                   + (["no published figure: " + ", ".join(missing)] if missing else []))
    if ax is None:
        ax = _new_axes(labels, (3.3, 0.45 * max(len(shown), 1) + 0.3), right=1.9, top=0.4, bottom=0.5, notes=notes)
    y = np.arange(len(shown))
    for i, row in shown.iterrows():
        color = FAMILY_COLORS.get(row["family"], FAMILY_COLORS[""])
        values = distribution.loc[distribution["dataset"] == row["dataset"], "captures"].to_numpy(float)
        if row["source"] == "computed" and len(values):  # box: quartiles, whiskers: min and max
            lo, q1, med, q3, hi = np.percentile(values, [0, 25, 50, 75, 100])
            ax.barh(i, q3 - q1, left=q1, height=0.5, color=color, alpha=0.35, edgecolor=color)
            ax.vlines(med, i - 0.25, i + 0.25, color=color, linewidth=1.5)
            ax.hlines([i, i], [lo, q3], [q1, hi], color=color, linewidth=1)
            ax.vlines([lo, hi], i - 0.12, i + 0.12, color=color, linewidth=1)
        mean = float(row["captures_per_id"])
        ax.plot(mean, i, marker="D", color=color, markeredgecolor="black", markersize=6, zorder=3)
        boxed = row["source"] == "computed" and len(values)
        ax.annotate(f"{mean:.1f}", (mean, i - 0.27 if boxed else i), xytext=(0, 4 if boxed else 6),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(shown) - 0.4, -0.8)
    top = max(float(shown["captures_per_id"].max()), float(distribution["captures"].max()) if len(distribution) else 0)
    ax.set_xlim(0, max(top, 1.0) * 1.12)
    ax.set_xlabel("captures per identity (distinct date \u00d7 camera)")
    ax.set_title("(c) Captures per identity")
    ax.legend(
        handles=[
            Line2D([], [], marker="D", linestyle="", color="#555555", markeredgecolor="black", label="mean"),
            Line2D([], [], marker="s", linestyle="", color="#999999", alpha=0.5, markersize=9,
                   label="quartiles over identities"),
            Line2D([], [], marker="|", linestyle="-", color="#999999", markersize=8, label="min \u2013 max"),
        ],
        loc="upper left", bbox_to_anchor=(1.01, 1.0),
    )
    _footnote(ax, notes)
    return ax.figure


@_styled
def plot_scale(scale: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (d): images vs identities on log axes, one labelled point per dataset."""
    df = scale.dropna(subset=["images", "identities"]).reset_index(drop=True)
    notes = _notes([COMPUTED_NOTE] if (df["source"] == "computed").any() else [])
    if ax is None:
        ax = _new_axes([], (3.4, 3.0), left=0.75, right=1.65, top=0.4, bottom=0.5, notes=notes)
    x, y = df["identities"].to_numpy(float), df["images"].to_numpy(float)
    for i, row in df.iterrows():
        color = FAMILY_COLORS.get(row["family"], FAMILY_COLORS[""])
        marker = "*" if row["source"] == "computed" else "o"
        ax.scatter(x[i], y[i], s=90 if marker == "*" else 40, marker=marker, color=color,
                   edgecolor="black", linewidth=0.5, zorder=3)
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    if len(df):
        ax.set_xlim(*_log_limits(x))
        ax.set_ylim(*_log_limits(y))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("identities")
    ax.set_ylabel("images")
    ax.grid(which="major", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title("(d) Scale")
    ax.legend(handles=_family_handles(df["family"].tolist()), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="family", title_fontsize=8)
    _place_labels(ax, x, y, [_label(r) for _, r in df.iterrows()])
    _footnote(ax, notes)
    return ax.figure


def _log_limits(values: np.ndarray) -> tuple[float, float]:
    """Log-axis limits around ``values`` with margins, spanning at least one decade (so a major tick shows)."""
    lo, hi = float(values.min()) / 2.2, float(values.max()) * 3.0
    if hi / lo < 10:
        pad = (10 * lo / hi) ** 0.5
        lo, hi = lo / pad, hi * pad
    return lo, hi


def _place_labels(ax: Axes, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
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
                    text, (x[i], y[i]), xytext=(dx * dist, dy * dist), textcoords="offset points", fontsize=8,
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
            ax.annotate("", (x[i], y[i]), xytext=best[1].xyann, textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkA": 0})


def _area(a, b) -> float:  # type: ignore[no-untyped-def]
    """Overlap area of two display-space boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


@_styled
def plot_fig2(panels: Panels) -> Figure:
    """All four panels in one 2 x 2 figure (the paper's Fig. 2 layout)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(panels.scale)
    fig = Figure(figsize=(11.5, max(8.5, 0.55 * n + 5.5)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    plot_coverage(panels.coverage, ax=axes[0, 0])
    plot_cameras(panels.cameras, ax=axes[0, 1])
    plot_captures(panels.captures, panels.distribution, ax=axes[1, 0])
    plot_scale(panels.scale, ax=axes[1, 1])
    return fig


@_styled
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
