"""The Fig. 2 panels (a)-(d) and panel (e), drawn with matplotlib's object API (Agg; no pyplot).

Every function takes the panel frame from :class:`~atustc.stats.panels.Panels`, draws on ``ax``
(or on a new figure when ``ax`` is None) and returns the Figure. Datasets run top to bottom in
the paper's order; a dataset computed from a user table is marked with ``*`` and a footnote and
drawn beside the published dataset it matches, never instead of it. Where per-identity values
exist (computed tables), the spread over identities is drawn with the mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atustc.scenarios import SCENARIOS
from atustc.stats.plotkit import (
    DATE_COLOR,
    FAMILY_COLORS,
    IR_COLOR,
    OUTFIT_COLOR,
    RGB_COLOR,
    computed_notes,
    family_handles,
    footnote,
    log_limits,
    new_axes,
    pair_rows,
    place_labels,
    row_label,
    save_figure,
    spread_handle,
    styled,
    whisker,
    wrap_notes,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from atustc.stats.panels import Panels


@styled
def plot_coverage(coverage: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (a): which of the six scenarios each dataset can evaluate (its ``all`` group)."""
    import numpy as np
    from matplotlib.colors import to_rgba

    df = coverage[coverage["group"] == "all"]
    datasets = list(dict.fromkeys(df["dataset"]))
    first = df.drop_duplicates("dataset").set_index("dataset")
    labels = [row_label(first.loc[n].to_dict() | {"dataset": n}) for n in datasets]
    notes = wrap_notes(
        computed_notes(first.reset_index())
        + [
            "\u2713 = at least one query with a positive from another camera (DT: RGB-RGB, NT: IR-IR, "
            "AD: RGB-IR; ST: same clothes, LT: other clothes)"
        ]
    )
    if ax is None:
        ax = new_axes(labels, (3.3, 0.3 * len(datasets)), right=1.75, top=0.6, bottom=0.1, notes=notes)
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
    handles = family_handles(first["family"].tolist())
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="family", title_fontsize=8)
    footnote(ax, notes)
    return ax.figure


@styled
def plot_cameras(cameras: pd.DataFrame, distribution: pd.DataFrame | None = None, ax: Axes | None = None) -> Figure:
    """Panel (b): RGB and IR cameras per identity (filled: mean) against the dataset's cameras (outline).

    RGB and IR are two bars of their own, both from zero, so each mean lines up with its
    outline. For computed tables (``distribution`` given) the spread over identities is drawn too.
    """
    import numpy as np
    from matplotlib.patches import Patch

    n = len(cameras)
    labels = [row_label(r) for _, r in cameras.iterrows()]
    has_spread = distribution is not None and (cameras["source"] == "computed").any()
    notes = wrap_notes(
        computed_notes(cameras)
        + (["n/a: not published as a number"] if cameras["rgb_cameras_per_id"].isna().any() else [])
    )
    if ax is None:
        ax = new_axes(labels, (3.3, 0.5 * n + 0.2), right=2.3, top=0.4, bottom=0.5, notes=notes)
    y, y_rgb, y_ir = pair_rows(n)
    outline = {"fill": False, "linewidth": 0.9, "linestyle": (0, (3, 2)), "height": 0.34}
    xmax = 1.0
    for col, ys, color in (("rgb", y_rgb, RGB_COLOR), ("ir", y_ir, IR_COLOR)):
        total = cameras[f"{col}_cameras"].fillna(0).to_numpy(float)
        mean = cameras[f"{col}_cameras_per_id"].to_numpy(float)
        has = total > 0
        ax.barh(ys[has], total[has], edgecolor=color, **outline)
        known = ~np.isnan(mean)
        ax.barh(ys[known], mean[known], color=color, height=0.22)
        ends = np.fmax(total, np.nan_to_num(mean))
        for i, row in enumerate(cameras.itertuples(index=False)):
            if has_spread and row.source == "computed":
                values = distribution.loc[distribution["dataset"] == row.dataset, f"{col}_cameras"].to_numpy(float)
                if len(values):
                    ends[i] = max(ends[i], whisker(ax, ys[i], values))
        xmax = max(xmax, float(ends.max(initial=0.0)))
        for i in range(n):
            if known[i] and (total[i] > 0 or mean[i] > 0):
                text = f"{mean[i]:.1f} of {total[i]:.0f}" if total[i] > 0 else f"{mean[i]:.1f}"
                ax.text(ends[i], ys[i], " " + text, va="center", fontsize=7)
            elif not known[i] and total[i] > 0:
                ax.text(ends[i], ys[i], " per-id n/a", va="center", fontsize=6.5, color="#888888", style="italic")
    ax.set_yticks(y, labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, xmax * 1.35)
    ax.set_xlabel("cameras")
    ax.set_title("(b) Cameras per identity")
    handles = [
        Patch(color=RGB_COLOR, label="RGB, mean per identity"),
        Patch(color=IR_COLOR, label="IR, mean per identity"),
        Patch(fill=False, edgecolor="#444444", linestyle=(0, (3, 2)), label="in the dataset"),
    ] + ([spread_handle()] if has_spread else [])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="cameras", title_fontsize=8)
    footnote(ax, notes)
    return ax.figure


@styled
def plot_outfits_dates(outfits_dates: pd.DataFrame, distribution: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (e): outfits and dates per identity (bars: mean) with their spread over identities.

    Computed tables only: the comparison datasets publish neither figure per identity.
    """
    import numpy as np
    from matplotlib.patches import Patch

    n = len(outfits_dates)
    labels = [row_label(r) for _, r in outfits_dates.iterrows()]
    notes = wrap_notes(
        computed_notes(outfits_dates)
        + ["computed tables only: the comparison datasets publish neither figure per identity"]
    )
    if ax is None:
        ax = new_axes(labels, (3.3, 0.5 * max(n, 1) + 0.2), right=2.3, top=0.4, bottom=0.5, notes=notes)
    y, y_out, y_date = pair_rows(n)
    xmax = 1.0
    for i, row in enumerate(outfits_dates.itertuples(index=False)):
        ids = distribution[distribution["dataset"] == row.dataset]
        for col, ys, color, mean, total in (
            ("outfits", y_out, OUTFIT_COLOR, row.outfits_per_id, None),
            ("dates", y_date, DATE_COLOR, row.dates_per_id, row.dates),
        ):
            ax.barh(ys[i], mean, color=color, height=0.22)
            end = max(float(mean), whisker(ax, ys[i], ids[col].to_numpy(float)) if len(ids) else 0.0)
            text = f"{mean:.2f}" + (f" of {total}" if total is not None else "")
            ax.text(end, ys[i], " " + text, va="center", fontsize=7)
            xmax = max(xmax, end)
    ax.set_yticks(y, labels)
    ax.set_ylim(max(n, 1) - 0.5, -0.5)
    ax.set_xlim(0, np.ceil(xmax * 1.3))
    ax.set_xlabel("per identity")
    ax.set_title("(e) Outfits and dates per identity")
    handles = [
        Patch(color=OUTFIT_COLOR, label="outfits, mean"),
        Patch(color=DATE_COLOR, label="dates, mean\n(of the dataset's)"),
        spread_handle(),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    footnote(ax, notes)
    return ax.figure


@styled
def plot_captures(captures: pd.DataFrame, distribution: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (c): captures (distinct date x camera) per identity: distribution and mean marker."""
    import numpy as np
    from matplotlib.lines import Line2D

    shown = captures[captures["captures_per_id"].notna()].reset_index(drop=True)
    missing = captures.loc[captures["captures_per_id"].isna(), "dataset"].tolist()
    labels = [row_label(r) for _, r in shown.iterrows()]
    notes = wrap_notes(computed_notes(shown) + (["no published figure: " + ", ".join(missing)] if missing else []))
    if ax is None:
        ax = new_axes(labels, (3.3, 0.45 * max(len(shown), 1) + 0.3), right=1.9, top=0.4, bottom=0.5, notes=notes)
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
        ax.annotate(
            f"{mean:.1f}",
            (mean, i - 0.27 if boxed else i),
            xytext=(0, 4 if boxed else 6),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7.5,
        )
    ax.set_yticks(y, labels)
    ax.set_ylim(len(shown) - 0.4, -0.8)
    top = max(float(shown["captures_per_id"].max()), float(distribution["captures"].max()) if len(distribution) else 0)
    ax.set_xlim(0, max(top, 1.0) * 1.12)
    ax.set_xlabel("captures per identity (distinct date \u00d7 camera)")
    ax.set_title("(c) Captures per identity")
    ax.legend(
        handles=[
            Line2D([], [], marker="D", linestyle="", color="#555555", markeredgecolor="black", label="mean"),
            Line2D(
                [],
                [],
                marker="s",
                linestyle="",
                color="#999999",
                alpha=0.5,
                markersize=9,
                label="quartiles over identities",
            ),
            Line2D([], [], marker="|", linestyle="-", color="#999999", markersize=8, label="min \u2013 max"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    footnote(ax, notes)
    return ax.figure


@styled
def plot_scale(scale: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Panel (d): images vs identities on log axes, one labelled point per dataset."""
    df = scale.dropna(subset=["images", "identities"]).reset_index(drop=True)
    notes = wrap_notes(computed_notes(df))
    if ax is None:
        ax = new_axes([], (3.4, 3.0), left=0.75, right=1.65, top=0.4, bottom=0.5, notes=notes)
    x, y = df["identities"].to_numpy(float), df["images"].to_numpy(float)
    for i, row in df.iterrows():
        color = FAMILY_COLORS.get(row["family"], FAMILY_COLORS[""])
        marker = "*" if row["source"] == "computed" else "o"
        ax.scatter(
            x[i],
            y[i],
            s=90 if marker == "*" else 40,
            marker=marker,
            color=color,
            edgecolor="black",
            linewidth=0.5,
            zorder=3,
        )
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    if len(df):
        ax.set_xlim(*log_limits(x))
        ax.set_ylim(*log_limits(y))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("identities")
    ax.set_ylabel("images")
    ax.grid(which="major", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title("(d) Scale")
    ax.legend(
        handles=family_handles(df["family"].tolist()),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="family",
        title_fontsize=8,
    )
    place_labels(ax, x, y, [row_label(r) for _, r in df.iterrows()])
    footnote(ax, notes)
    return ax.figure


@styled
def plot_fig2(panels: Panels) -> Figure:
    """Panels (a)-(d) in the paper's 2 x 2 layout, with (e) sharing the cell of (c).

    Panel (c) gets only the height its rows need (published captures per identity are rare),
    and panel (e) fills the rest of its cell.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(panels.scale)
    fig = Figure(figsize=(11.5, max(10.0, 0.5 * n + 6.0)), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[max(n, 4) * 0.5 + 1.0, 4.5])
    left = grid[1, 0].subgridspec(
        2,
        1,
        height_ratios=[panels.captures["captures_per_id"].notna().sum() + 1.5, max(len(panels.outfits_dates), 1) + 1.5],
    )
    plot_coverage(panels.coverage, ax=fig.add_subplot(grid[0, 0]))
    plot_cameras(panels.cameras, panels.distribution, ax=fig.add_subplot(grid[0, 1]))
    plot_captures(panels.captures, panels.distribution, ax=fig.add_subplot(left[0]))
    plot_outfits_dates(panels.outfits_dates, panels.distribution, ax=fig.add_subplot(left[1]))
    plot_scale(panels.scale, ax=fig.add_subplot(grid[1, 1]))
    return fig


__all__ = [
    "plot_cameras",
    "plot_captures",
    "plot_coverage",
    "plot_fig2",
    "plot_outfits_dates",
    "plot_scale",
    "save_figure",
]
