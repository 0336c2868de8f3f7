"""CMC curves per scenario and method, from run folders.

Each leaderboard row (method × preset × data, see :func:`atustc.bench.leaderboard.row_key`) is one
line per scenario panel, averaged over its finished runs. Where a run keeps its per-query results
(``RUN/eval/<protocol>@<checkpoint>.per_query.parquet``) the curve is the full CMC at ranks 1-20, recomputed
from the rank of each query's first positive exactly as the ranking core averages it; otherwise
it joins the ranks the eval JSON reports (1, 5, 10, 20), drawn with markers only there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atustc.errors import AtustcError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from atustc.bench.leaderboard import RunRecord

MAX_RANK = 20
REPORTED = (1, 5, 10, 20)


@dataclass(frozen=True)
class Curve:
    """One method's CMC on one scenario: ``ranks`` (1-based) and ``values`` (fractions)."""

    label: str
    ranks: np.ndarray
    values: np.ndarray
    full: bool  # every rank 1..20 (from per-query results) or only the reported ones


def _run_curve(
    run: Path, protocol: str, checkpoint: str, scenario: str, result: dict
) -> tuple[np.ndarray, np.ndarray, bool]:
    import pandas as pd

    from atustc.runfolder import RunFolder

    pq = RunFolder(run).per_query_file(protocol, checkpoint)
    if pq.is_file():
        frame = pd.read_parquet(pq, columns=["scenario", "run", "valid", "first_rank"])
        part = frame[(frame["scenario"] == scenario) & frame["valid"]]
        if not part.empty:
            per_run = [
                (g["first_rank"].to_numpy()[:, None] <= np.arange(1, MAX_RANK + 1)[None, :]).mean(0)
                for _, g in part.groupby("run")
            ]
            return np.arange(1, MAX_RANK + 1), np.mean(per_run, axis=0), True
    block = (result.get("scenarios") or {}).get(scenario) or (result.get("summary") or {}).get(scenario)
    if not isinstance(block, dict):
        raise AtustcError(f"{run}/eval/{protocol}@{checkpoint}.json: no scenario {scenario!r}")
    return np.array(REPORTED), np.array([float(block[f"R{k}"]) for k in REPORTED]), False


def collect_curves(records: list[RunRecord], protocol: str) -> tuple[list[str], dict[str, list[Curve]]]:
    """Scenarios (in the first result's order) and, per scenario, one averaged curve per row.

    Raises:
        AtustcError: no finished run has ``eval/<protocol>@<checkpoint>.json``.
    """
    from atustc.bench.leaderboard import row_key
    from atustc.io import read_json
    from atustc.runfolder import RunFolder

    rows: dict[tuple[str, str, str, str, str], list[tuple[Path, dict]]] = {}
    for rec in records:
        path = RunFolder(rec.path).eval_file(protocol, rec.checkpoint)
        if rec.counted and path.is_file():
            rows.setdefault(row_key(rec), []).append((rec.path, read_json(path)))
    if not rows:
        raise AtustcError(f"no finished run has eval/{protocol}@<checkpoint>.json")
    first = next(iter(rows.values()))[0][1]
    scenarios = list(first.get("scenarios") or {})
    presets = {k[2] for k in rows}
    curves: dict[str, list[Curve]] = {s: [] for s in scenarios}
    for key in sorted(rows, key=lambda k: (k[1], k[2], k[3], k[4])):
        label = key[1] if len(presets) == 1 else f"{key[1]} ({key[2]})"
        if sum(1 for k in rows if k[1:3] == key[1:3] and k[4] == key[4]) > 1:
            label += f" [{key[3][:8]}]"
        if any(k[1:4] == key[1:4] and k[4] != key[4] for k in rows):
            label += f" @{key[4]}"
        n = len(rows[key])
        label += f", {n} runs" if n > 1 else ""
        for s in scenarios:
            parts = [_run_curve(run, protocol, key[4], s, result) for run, result in rows[key]]
            full = all(p[2] for p in parts)
            if full:
                ranks, values = parts[0][0], np.mean([p[1] for p in parts], axis=0)
            else:  # mix of full and reported-only runs: average at the reported ranks
                idx = np.array(REPORTED)
                values = np.mean([p[1] if not p[2] else p[1][idx - 1] for p in parts], axis=0)
                ranks = idx
            curves[s].append(Curve(label if full else f"{label} (ranks 1/5/10/20 only)", ranks, values, full))
    return scenarios, curves


def plot_cmc(scenarios: list[str], curves: dict[str, list[Curve]], title: str) -> Figure:
    """One panel per scenario (up to three per row), one line per method; shared axes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from atustc.stats.plotkit import STYLE

    n = len(scenarios)
    cols = min(3, n)
    nrows = -(-n // cols)
    colors = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(3.3 * cols, 2.6 * nrows + 0.9))
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, cols, squeeze=False, sharex=True, sharey=True)
        for i, scenario in enumerate(scenarios):
            ax = axes[i // cols][i % cols]
            for j, c in enumerate(curves[scenario]):
                style = {"color": colors[j % len(colors)], "linewidth": 1.4}
                if c.full:
                    ax.plot(c.ranks, 100 * c.values, label=c.label, **style)
                    ax.plot(
                        REPORTED,
                        100 * c.values[np.array(REPORTED) - 1],
                        linestyle="none",
                        marker=markers[j % len(markers)],
                        markersize=3.5,
                        color=style["color"],
                    )
                else:
                    ax.plot(
                        c.ranks,
                        100 * c.values,
                        label=c.label,
                        marker=markers[j % len(markers)],
                        markersize=3.5,
                        linestyle="--",
                        **style,
                    )
            ax.set_title(scenario)
            ax.set_xlim(0.5, MAX_RANK + 0.5)
            ax.set_xticks(REPORTED)
            ax.grid(True, color="#e6e6e6", linewidth=0.6)
            if i % cols == 0:
                ax.set_ylabel("matching rate (%)")
            if i // cols == nrows - 1:
                ax.set_xlabel("rank")
        for i in range(n, nrows * cols):
            axes[i // cols][i % cols].set_axis_off()
        ymin = min((100 * c.values.min() for cs in curves.values() for c in cs), default=0.0)
        axes[0][0].set_ylim(max(0.0, 10 * np.floor(ymin / 10) - 2), 101)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
        fig.suptitle(title, fontsize=10, fontweight="bold", y=1 - 0.12 / fig.get_figheight(), va="top")
        legend_rows = -(-len(labels) // 4)
        fig.subplots_adjust(
            left=0.08,
            right=0.98,
            top=1 - 0.75 / fig.get_figheight(),
            bottom=(0.55 + 0.2 * legend_rows) / fig.get_figheight(),
            wspace=0.08,
            hspace=0.3,
        )
    return fig


def save(fig: Figure, stem: str | os.PathLike[str], formats: tuple[str, ...]) -> list[str]:
    """Write the figure deterministically (no dates or versions in the file), atomically."""
    import matplotlib

    from atustc.stats.plotkit import STYLE, save_figure

    with matplotlib.rc_context(STYLE):
        return save_figure(fig, stem, formats)
