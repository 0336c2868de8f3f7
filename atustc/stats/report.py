"""``atustc stats`` outputs: statistics of several tables, their CSV/JSON/figure files and summaries.

Files written by :func:`write_report` into the output folder (each atomically):

==========================  ===========================================================
``summary.csv``             one row per table and group (:attr:`StatsReport.summary`)
``identities.csv``          per-identity figures, the distributions behind the means
``coverage.csv``            panel (a): datasets x groups x scenarios
``cameras.csv``             panel (b): cameras per identity and in the dataset
``captures.csv``            panel (c): captures per identity (mean, median, min, max)
``scale.csv``               panel (d): images and identities
``stats.json``              all of the above plus the input tables
``outfits_dates.csv``       panel (e): outfits and dates per identity (computed tables)
``fig2a_coverage.{png,svg}`` … ``fig2e_outfits_dates.{png,svg}``; with ``combined``: ``fig2.{png,svg}``
==========================  ===========================================================
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from atustc.errors import AtustcError
from atustc.scenarios import SCENARIOS
from atustc.stats.plotkit import SYNTHETIC_SUFFIX

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

    from atustc.stats.compute import TableStats
    from atustc.stats.panels import Panels

SummaryFormat = Literal["csv", "json", "md"]
SUMMARY_FORMATS: tuple[str, ...] = ("csv", "json", "md")
#: Summary columns shown on screen and in ``--format md`` (all columns go to CSV/JSON).
BRIEF_COLUMNS: dict[str, str] = {
    "dataset": "dataset",
    "group": "group",
    "images": "images",
    "identities": "ids",
    "outfits_per_id": "outfits/id",
    "rgb_cameras_per_id": "RGB cams/id",
    "ir_cameras_per_id": "IR cams/id",
    "captures_per_id": "captures/id",
    "dates_per_id": "dates/id",
    "scenarios": "scenarios",
}
PANEL_FILES: dict[str, str] = {
    "coverage": "fig2a_coverage",
    "cameras": "fig2b_cameras",
    "captures": "fig2c_captures",
    "scale": "fig2d_scale",
    "outfits_dates": "fig2e_outfits_dates",
}


@dataclass(frozen=True)
class StatsReport:
    """Statistics of one or more tables with the published comparison.

    Attributes:
        tables: per input: ``path``, ``dataset`` (the unique label), ``rows``.
        stats: per-table statistics, in input order.
        summary: all tables' summaries, stacked.
        identities: all tables' per-identity figures, stacked.
        panels: the Fig. 2 panel frames.
    """

    tables: list[dict]
    stats: list[TableStats]
    summary: pd.DataFrame
    identities: pd.DataFrame
    panels: Panels


def build_report(
    tables: dict[str, pd.DataFrame],
    *,
    published: bool = True,
    labels: list[str] | None = None,
    synthetic: Collection[str] = (),
) -> StatsReport:
    """Compute statistics of every table and merge them with the published datasets.

    Args:
        tables: source name (usually the file path) -> validated annotation table.
        published: include the published comparison datasets in the panels.
        labels: a name per table, in order, instead of the tables' ``dataset`` values.
        synthetic: the sources drawn by ``atustc synth`` (their index manifest says so); their
            labels end in " (synthetic)" unless ``labels`` names them, and the figures say it.

    Returns:
        The report. Labels are the tables' ``dataset`` values (or ``labels``); two tables with
        the same label are told apart by their file stem, e.g. ``atustc (train)``.

    Raises:
        AtustcError: no table, or ``labels`` of the wrong length.
    """
    import pandas as pd

    from atustc.stats.compute import table_stats
    from atustc.stats.panels import build_panels
    from atustc.stats.published import load_published

    if not tables:
        raise AtustcError("tables: no table given; pass at least one annotation table")
    if labels is not None and len(labels) != len(tables):
        raise AtustcError(f"labels: got {len(labels)} label(s) for {len(tables)} table(s); give one per table")
    raw = {src: "+".join(sorted(t["dataset"].astype(str).unique())) or "empty" for src, t in tables.items()}
    if labels is not None:
        raw = dict(zip(raw, labels))
    counts = pd.Series(list(raw.values())).value_counts()
    stats = []
    infos = []
    used: set[str] = set()
    for src, table in tables.items():
        label = raw[src] if counts[raw[src]] == 1 else f"{raw[src]} ({Path(src).name.removesuffix('.parquet')})"
        base, k = label, 1
        while label in used:  # same name and same file stem: number them
            k += 1
            label = f"{base} #{k}"
        used.add(label)
        if src in synthetic and labels is None:
            label += SYNTHETIC_SUFFIX
        try:
            stats.append(table_stats(table, label=label))
        except AtustcError as exc:
            raise AtustcError(f"{src}: {exc.message}") from None
        infos.append({"path": str(src), "dataset": label, "rows": len(table)})
    summary = pd.concat([s.summary for s in stats], ignore_index=True)
    identities = pd.concat([s.identities.astype({"group": "str"}) for s in stats], ignore_index=True)
    panels = build_panels(stats, load_published() if published else None)
    return StatsReport(tables=infos, stats=stats, summary=summary, identities=identities, panels=panels)


def _frames(report: StatsReport) -> dict[str, pd.DataFrame]:
    p = report.panels
    return {
        "summary": report.summary,
        "identities": report.identities,
        "coverage": p.coverage,
        "cameras": p.cameras,
        "captures": p.captures,
        "scale": p.scale,
        "outfits_dates": p.outfits_dates,
    }


def _records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready records: numpy scalars to Python, NaN/NA to None."""
    out = []
    for rec in json.loads(df.to_json(orient="records", double_precision=15)):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()})
    return out


def report_json(report: StatsReport) -> dict:
    """The combined ``stats.json`` object: input tables and every frame as a list of records."""
    return {"tables": report.tables} | {name: _records(df) for name, df in _frames(report).items()}


def write_report(
    report: StatsReport, out_dir: str | os.PathLike[str], *, plots: bool = True, combined: bool = False
) -> list[Path]:
    """Write the CSVs, ``stats.json`` and (with ``plots``) the figures into ``out_dir``.

    Args:
        report: from :func:`build_report`.
        out_dir: the output folder (created).
        plots: draw the five panels (PNG + SVG).
        combined: also draw them in one figure, ``fig2.{png,svg}``.

    Returns:
        The paths written.
    """
    from atustc.io import atomic_path, write_json_atomic

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AtustcError(f"{out}: output path exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in _frames(report).items():
        path = out / f"{name}.csv"
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
        written.append(path)
    write_json_atomic(out / "stats.json", report_json(report))
    written.append(out / "stats.json")
    if plots:
        written += write_figures(report.panels, out, combined=combined)
    return written


def write_figures(panels: Panels, out_dir: Path, *, combined: bool = False) -> list[Path]:
    """Draw the five panels (and with ``combined`` the Fig. 2 layout) as PNG and SVG."""
    from atustc.stats import plots

    figures = {
        "coverage": plots.plot_coverage(panels.coverage),
        "cameras": plots.plot_cameras(panels.cameras, panels.distribution),
        "captures": plots.plot_captures(panels.captures, panels.distribution),
        "scale": plots.plot_scale(panels.scale),
        "outfits_dates": plots.plot_outfits_dates(panels.outfits_dates, panels.distribution),
    }
    written = []
    for key, fig in figures.items():
        written += [Path(p) for p in plots.save_figure(fig, out_dir / PANEL_FILES[key])]
    if combined:
        written += [Path(p) for p in plots.save_figure(plots.plot_fig2(panels), out_dir / "fig2")]
    return written


def _brief(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[list(BRIEF_COLUMNS)].rename(columns=BRIEF_COLUMNS)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) or hasattr(value, "dtype"):
        return f"{value:,}" if float(value).is_integer() else f"{float(value):.2f}"
    return str(value)


def format_summary(report: StatsReport, fmt: SummaryFormat) -> str:
    """The summary as text: ``csv`` (all columns, full precision), ``json`` (records) or ``md``.

    Raises:
        AtustcError: an unknown format.
    """
    if fmt == "csv":
        buf = io.StringIO()
        report.summary.to_csv(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps(_records(report.summary), indent=2) + "\n"
    if fmt == "md":
        brief = _brief(report.summary)
        align = ["---" if c in ("dataset", "group", "scenarios") else "---:" for c in brief.columns]
        lines = ["| " + " | ".join(brief.columns) + " |", "|" + "|".join(align) + "|"]
        for row in brief.itertuples(index=False):
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        return "\n".join(lines) + "\n"
    raise AtustcError(f"fmt: unknown summary format {fmt!r}; choose one of {', '.join(SUMMARY_FORMATS)}")


def scenario_words(scenarios: str) -> str:
    """The covered scenarios in words for the on-screen summary: a short list, or what is missing.

    Example:
        >>> scenario_words("DT-ST AD-ST")
        'DT-ST, AD-ST'
        >>> scenario_words("DT-ST DT-LT NT-ST AD-ST AD-LT"), scenario_words(" ".join(SCENARIOS)), scenario_words("")
        ('all but NT-LT', 'all six', 'none')
    """
    covered = set(scenarios.split())
    have = [sc for sc in SCENARIOS if sc in covered]
    if len(have) == len(SCENARIOS):
        return "all six"
    if not have:
        return "none"
    if len(have) > len(SCENARIOS) // 2:
        return "all but " + ", ".join(sc for sc in SCENARIOS if sc not in covered)
    return ", ".join(have)


def summary_tables(report: StatsReport) -> list[Table]:
    """The summary as rich tables, one per input table (one row per group)."""
    from rich import box
    from rich.table import Table

    heads = {
        "outfits/id": "outfits\n/id",
        "RGB cams/id": "RGB\ncams/id",
        "IR cams/id": "IR\ncams/id",
        "captures/id": "captures\n/id",
        "dates/id": "dates\n/id",
        "scenarios": "scenarios with a\nvalid query",
    }
    out = []
    for dataset, part in report.summary.groupby("dataset", sort=False):
        brief = _brief(part).drop(columns=["dataset"])
        table = Table(
            title=str(dataset), title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False
        )
        for col in brief.columns:
            table.add_column(
                heads.get(col, col), justify="left" if col in ("group", "scenarios") else "right", no_wrap=True
            )
        for row in brief.itertuples(index=False):
            table.add_row(*[_cell(v) for v in row[:-1]], scenario_words(row[-1]))
        out.append(table)
    return out
