"""The leaderboard: rebuilt from run folders (never edited by hand; building it never writes a run).

Layout of the paper's Table 4: task family, method, Any-Time R1/mAP, then R1/mAP for DT-ST,
DT-LT, NT-ST, NT-LT, AD-ST and AD-LT, plus Any-Time mINP, the mixed protocol's Anytime R1/mAP,
parameters, training time, images/s, preset, data hash and seeds. Runs of the same method,
preset and data (table hash) form one row; with several seeds or several splits each cell is
the mean ± sample standard deviation (``ddof=1``) over the finished runs.

Where the numbers come from, per run folder ``RUN/``:

- ``status.json``: ``state`` (``finished``/``failed``/``running``), ``error``, ``method``,
  ``preset``, ``seed``, ``params``, ``train_time_s``, ``images_per_s``;
- ``config.json``: ``family`` if present (else the method registry is asked);
- ``manifest.json``: ``table_hash`` (the data) and ``split_hash``;
- ``protocols`` in ``config.json`` or ``manifest.json`` (the split's record, see
  :mod:`atustc.split.protocols`; AT-USTC's ``atustc`` + ``atustc-mixed`` when absent);
- ``eval/<protocol>@<checkpoint>.json`` for each of them: ``ProtocolResult.to_dict()`` plus its
  provenance (:mod:`atustc.provenance`), checked on reading: an eval that does not provably score
  the run's current checkpoint on the current protocol file is refused in one line.

Each checkpoint rule a run was scored with (``last``: the bench; ``best``: ``atustc eval --run``)
is a record of its own, and the rule is part of the row key, so a row never mixes checkpoints and
its ``Checkpoint`` column says which rule it uses. A run counts in the means only when it is
``finished`` and has the eval file of its default protocol for that rule; failed and unfinished
runs are listed apart (:attr:`Leaderboard.others`) with their reason. The metric columns are built from the protocols' scenarios and aggregates
(:mod:`atustc.bench.layout`); runs scored on different protocols share one table whose columns
are the union, first seen first.

CSV columns (one row per method × preset × data hash; stable, in this order; metric values are
fractions in [0, 1] at full precision, as in the run's JSON):

- ``family``, ``method``, ``preset``, ``data_hash``: the row key;
- ``seeds``: the seeds of the finished runs, ``;``-separated, ascending;
- ``n_runs``: finished runs averaged; ``n_splits``: distinct split hashes among them;
- ``n_failed``: failed or unfinished runs of the same key (not averaged);
- ``status``: ``finished`` or ``failed`` (no finished run); ``error``: the first failure reason;
- for each metric: ``<metric>_mean`` and ``<metric>_std`` (``std`` is empty with one run). For
  AT-USTC (:data:`METRICS`): ``<S>_R1``, ``<S>_mAP``, ``<S>_mINP`` for ``S`` in ``Any-Time``,
  ``DT-ST``, ``DT-LT``, ``NT-ST``, ``NT-LT``, ``AD-ST``, ``AD-LT`` (protocol ``atustc``);
  ``Mixed-Anytime_R1``, ``Mixed-Anytime_mAP``, ``Mixed-Anytime_mINP`` (protocol
  ``atustc-mixed``, group Anytime); then, for every run, ``params`` (count), ``train_time_s``
  (seconds), ``images_per_s`` (training throughput).

Human-facing tables (markdown, LaTeX, rich) print percentages with two decimals and bold the
best value of each column (highest, except parameters and training time: lowest).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from atustc.bench.layout import Column, Layout, build_layout, merge_layouts
from atustc.errors import AtustcError
from atustc.io import read_json
from atustc.scenarios import SCENARIOS
from atustc.split.protocols import LEGACY_PROTOCOLS, SplitProtocols

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from atustc.runfolder import RunFolder

__all__ = ["CSV_COLUMNS", "METRICS", "SCENARIOS"]  # SCENARIOS: re-exported for callers of this module
#: Task families in the paper's row order.
FAMILIES: tuple[str, ...] = ("Tr-ReID", "CC-ReID", "CM-ReID", "AT-ReID")
#: The protocols of a run that records none (an AT-USTC run).
DEFAULT_PROTOCOLS: tuple[str, ...] = tuple(LEGACY_PROTOCOLS["scored"])
_COST_METRICS: tuple[str, ...] = ("params", "train_time_s", "images_per_s")
#: The rule of records without a scored checkpoint (failed or unscored runs): the bench's.
CHECKPOINT_RULE = "last"
KEY_COLUMNS: tuple[str, ...] = ("family", "method", "preset", "data_hash", "checkpoint")
INFO_COLUMNS: tuple[str, ...] = ("seeds", "n_runs", "n_splits", "n_failed", "status", "error")


def metric_keys(layouts: Sequence[Layout]) -> tuple[str, ...]:
    """Every metric column of a leaderboard over these layouts: rank metrics, then costs."""
    return (*merge_layouts(layouts)[0], *_COST_METRICS)


def csv_columns(metrics: Sequence[str]) -> tuple[str, ...]:
    """All CSV columns, in order, for these metric keys."""
    return (*KEY_COLUMNS, *INFO_COLUMNS, *(f"{m}_{agg}" for m in metrics for agg in ("mean", "std")))


#: Every metric column of an AT-USTC leaderboard, in order (each gives ``_mean`` and ``_std``).
METRICS: tuple[str, ...] = metric_keys([build_layout(DEFAULT_PROTOCOLS)])
#: All CSV columns of an AT-USTC leaderboard, in order.
CSV_COLUMNS: tuple[str, ...] = csv_columns(METRICS)
_LOWER_IS_BETTER = frozenset({"params", "train_time_s"})

Format = Literal["csv", "md", "latex"]


@dataclass(frozen=True)
class RunRecord:
    """What the leaderboard reads from one run folder."""

    path: Path
    method: str
    family: str
    preset: str
    seed: int | None
    state: str  # finished | failed | running | not-evaluated
    error: str | None
    data_hash: str
    split_hash: str
    metrics: dict[str, float] = field(default_factory=dict)
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    checkpoint: str = CHECKPOINT_RULE

    @property
    def counted(self) -> bool:
        """Whether the run enters the means (finished and scored)."""
        return self.state == "finished"


@dataclass(frozen=True)
class Leaderboard:
    """The aggregated table and the runs that did not enter it.

    Attributes:
        frame: one row per method × preset × data hash with :data:`CSV_COLUMNS`.
        others: failed or unfinished runs (listed, never averaged).
    """

    frame: pd.DataFrame
    others: tuple[RunRecord, ...]
    display: tuple[Column, ...] = ()


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """The first record of :func:`read_run_records` (the ``last`` rule when the run was scored with it)."""
    return read_run_records(run_dir)[0]


def read_run_records(run_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read one run folder: one record per checkpoint rule it was scored with (``last`` first).

    Raises:
        AtustcError: no ``status.json``, a malformed JSON file in the run, or an eval whose
            provenance does not match the run (another checkpoint, a changed protocol file).
    """
    from atustc.runfolder import RunFolder

    run = Path(run_dir)
    folder = RunFolder(run)
    status = read_json(run / "status.json")
    config = _read_optional(run / "config.json")
    manifest = _read_optional(run / "manifest.json")
    method = str(status.get("method") or config.get("method") or run.name)
    protocols = _run_protocols(config, manifest, run)
    base = dict(
        path=run,
        method=method,
        family=str(config.get("family") or status.get("family") or _registry_family(method)),
        preset=str(status.get("preset") or config.get("preset") or "?"),
        seed=int(s) if isinstance(s := status.get("seed", config.get("seed")), (int, float)) else None,
        data_hash=str(manifest.get("table_hash") or config.get("table_hash") or "?"),
        split_hash=str(manifest.get("split_hash") or config.get("split_hash") or "?"),
        protocols=protocols,
    )
    state = str(status.get("state") or "running")
    error = str(status.get("error")) if status.get("error") else None
    costs = {}
    for key in _COST_METRICS:
        value = status.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            costs[key] = float(value)
    records = []
    if state == "finished":
        for ckpt in ("last", "best"):
            metrics = _run_metrics(folder, protocols, ckpt)
            if metrics is not None:
                records.append(
                    RunRecord(**base, state=state, error=None, metrics={**metrics, **costs}, checkpoint=ckpt)
                )
        if not records:
            legacy = run / "eval" / f"{protocols[0]}.json"
            state = "not-evaluated"
            error = (f"eval/{legacy.name} names no checkpoint (written before provenance); score the run again"
                     if legacy.is_file() else f"no eval/{protocols[0]}@{CHECKPOINT_RULE}.json")  # fmt: skip
    if not records:
        records.append(RunRecord(**base, state=state, error=error, metrics=costs))
    return records


def collect_runs(runs_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read every run folder (a folder with ``status.json``) under ``runs_dir``, at any depth, sorted by path.

    Nesting lets one leaderboard average runs of several splits, e.g. ``runs/r0/uniat-tiny-s0``
    and ``runs/r1/uniat-tiny-s0`` (``atustc bench --split splits/r0 --out runs/r0`` …).

    Raises:
        AtustcError: ``runs_dir`` is missing or holds no run folder.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise AtustcError(f"{root}: runs folder not found")
    runs = sorted(p.parent for p in root.rglob("status.json"))
    if not runs:
        raise AtustcError(f"{root}: no run folders (folders with status.json)")
    return [rec for p in runs for rec in read_run_records(p)]


def row_key(rec: RunRecord) -> tuple[str, str, str, str, str]:
    """The leaderboard row a run belongs to (:data:`KEY_COLUMNS`); also used by ``--compare``."""
    return (rec.family, rec.method, rec.preset, rec.data_hash, rec.checkpoint)


def build_leaderboard(records: Iterable[RunRecord]) -> Leaderboard:
    """Group runs by (family, method, preset, data hash, checkpoint) and aggregate mean ± std per metric."""
    import numpy as np
    import pandas as pd

    records = list(records)
    layouts = [build_layout(p) for p in dict.fromkeys(r.protocols for r in records)] or [
        build_layout(DEFAULT_PROTOCOLS)
    ]
    metric_cols = metric_keys(layouts)
    groups: dict[tuple[str, str, str, str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(row_key(rec), []).append(rec)
    rows = []
    for key in sorted(groups, key=_row_order):
        runs = groups[key]
        done = sorted((r for r in runs if r.counted), key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
        bad = [r for r in runs if not r.counted]
        row: dict[str, object] = dict(zip(KEY_COLUMNS, key))
        row.update(
            seeds=";".join(str(r.seed) for r in done if r.seed is not None),
            n_runs=len(done),
            n_splits=len({r.split_hash for r in done}),
            n_failed=len(bad),
            status="finished" if done else "failed",
            error=next((f"{r.path.name}: {r.error or r.state}" for r in bad), ""),
        )
        for metric in metric_cols:
            values = np.array([r.metrics[metric] for r in done if metric in r.metrics], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(csv_columns(metric_cols)))
    others = tuple(r for key in sorted(groups, key=_row_order) for r in groups[key] if not r.counted)
    return Leaderboard(frame=frame, others=others, display=merge_layouts(layouts)[1])


def load_leaderboard(runs_dir: str | os.PathLike[str]) -> Leaderboard:
    """:func:`collect_runs` then :func:`build_leaderboard`."""
    return build_leaderboard(collect_runs(runs_dir))


def render(board: Leaderboard, fmt: Format) -> str:
    """The leaderboard as CSV, markdown or LaTeX text.

    Raises:
        AtustcError: unknown format.
    """
    if fmt == "csv":
        return to_csv(board)
    if fmt == "md":
        return to_markdown(board)
    if fmt == "latex":
        return to_latex(board)
    raise AtustcError(f"--format must be one of csv, md, latex, got {fmt!r}")


def to_csv(board: Leaderboard) -> str:
    """The tidy CSV (see the module docstring for its columns)."""
    buf = io.StringIO()
    board.frame.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
    return buf.getvalue()


# ---------------------------------------------------------------- human-facing tables


def _display_columns(board: Leaderboard) -> list[Column]:
    """Task, method, the protocols' rank-metric columns (:mod:`atustc.bench.layout`), costs, provenance."""
    display = board.display or build_layout(DEFAULT_PROTOCOLS).display
    return [
        Column("", "Task", None),
        Column("", "Method", None),
        *display,
        Column("Cost", "Params", "params"),
        Column("Cost", "Train", "train_time_s"),
        Column("Cost", "img/s", "images_per_s"),
        Column("", "Preset", None),
        Column("", "Checkpoint", None),
        Column("", "Data", None),
        Column("", "Seeds", None),
    ]


def _format_value(metric: str, value: float) -> str:
    if metric == "params":
        return f"{value / 1e6:.2f}M"
    if metric == "train_time_s":
        return f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"
    if metric == "images_per_s":
        return f"{value:.1f}"
    return f"{100 * value:.2f}"


def _format_std(metric: str, std: float) -> str:
    if metric in _COST_METRICS:
        return _format_value(metric, std)
    return f"{100 * std:.2f}"


def _cells(board: Leaderboard) -> tuple[list[Column], list[list[tuple[str, str, bool]]]]:
    """Per row and column: (value text, ± text or "", bold?)."""
    cols = _display_columns(board)
    frame = board.frame
    best: dict[str, str] = {}
    ok = frame[frame["status"] == "finished"]
    for col in cols:
        if col.metric is None:
            continue
        means = ok[f"{col.metric}_mean"].dropna()
        if len(means):
            pick = means.min() if col.metric in _LOWER_IS_BETTER else means.max()
            best[col.metric] = _format_value(col.metric, float(pick))
    first_metric = next((c for c in cols if c.metric is not None), None)
    rows = []
    for _, rec in frame.iterrows():
        failed = rec["status"] != "finished"
        line: list[tuple[str, str, bool]] = []
        for col in cols:
            if col.metric is None:
                text = {
                    "Task": rec["family"],
                    "Method": rec["method"],
                    "Preset": rec["preset"],
                    "Checkpoint": rec["checkpoint"],
                    "Data": str(rec["data_hash"])[:8],
                    "Seeds": _seeds_text(rec),
                }[col.label]
                line.append((str(text), "", False))
                continue
            mean, std = rec[f"{col.metric}_mean"], rec[f"{col.metric}_std"]
            if failed or mean != mean:  # NaN: missing
                line.append(("failed" if failed and col is first_metric else "-", "", False))
                continue
            text = _format_value(col.metric, float(mean))
            pm = _format_std(col.metric, float(std)) if std == std else ""
            line.append((text, pm, best.get(col.metric) == text))
        rows.append(line)
    return cols, rows


def _seeds_text(rec: pd.Series) -> str:
    parts = [str(rec["seeds"]).replace(";", ",")] if rec["seeds"] == rec["seeds"] and rec["seeds"] != "" else []
    if int(rec["n_splits"]) > 1:
        parts.append(f"({int(rec['n_splits'])} splits)")
    if int(rec["n_failed"]):
        parts.append(f"(+{int(rec['n_failed'])} failed)")
    return " ".join(parts) or "-"


def _failure_lines(board: Leaderboard) -> list[str]:
    return [
        f"{r.path.name} ({r.method}, seed {r.seed}): {r.state}: {r.error or 'no reason recorded'}" for r in board.others
    ]


def to_markdown(board: Leaderboard) -> str:
    """A GitHub-flavoured markdown table (percentages, best per column in bold)."""
    cols, rows = _cells(board)
    header = [f"{c.group} {c.label}".strip() for c in cols]
    rule = ["---" if c.metric is None else "---:" for c in cols]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    for line in rows:
        cells = []
        for text, pm, bold in line:
            cell = f"**{text}**" if bold else text
            cells.append(f"{cell} ± {pm}" if pm else cell)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failures = _failure_lines(board)
    if failures:
        lines += ["", "Failed or unfinished runs (not averaged):", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_latex(
    board: Leaderboard, caption: str = "AT-ReID leaderboard (R1/mAP in \\%).", label: str = "tab:atreid"
) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs,graphicx}``), best per column in bold."""
    cols, rows = _cells(board)
    spans: list[tuple[str, int, int]] = []  # group, first column (1-based), last column
    for i, col in enumerate(cols, start=1):
        if spans and spans[-1][0] == col.group and col.group:
            spans[-1] = (col.group, spans[-1][1], i)
        else:
            spans.append((col.group, i, i))
    top, rules = [], []
    for group, first, last in spans:
        width = last - first + 1
        name = latex_escape(group)
        top.append(rf"\multicolumn{{{width}}}{{c}}{{{name}}}" if group and width > 1 else name)
        if group:
            rules.append(rf"\cmidrule(lr){{{first}-{last}}}")
    align = "".join("l" if c.metric is None else "r" for c in cols)
    out = [
        "% Requires \\usepackage{booktabs} and \\usepackage{graphicx}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\resizebox{\textwidth}{!}{%",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(top) + r" \\",
        " ".join(rules),
        " & ".join(latex_escape(c.label) for c in cols) + r" \\",
        r"\midrule",
    ]
    for line in rows:
        cells = []
        for text, pm, bold in line:
            body = latex_escape(text)
            if pm:
                body += rf"$\pm${latex_escape(pm)}"
            cells.append(rf"\textbf{{{body}}}" if bold else body)
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    failures = _failure_lines(board)
    if failures:
        out += ["% Failed or unfinished runs (not averaged):"] + [f"% {f}" for f in failures]
    return "\n".join(out) + "\n"


def print_leaderboard(board: Leaderboard, console: Console | None = None) -> None:
    """Print the leaderboard as a rich table (percentages, best per column in bold).

    R1 and mAP of a scenario share one cell (``R1/mAP``, the ± std on a second line) to keep
    the table readable in a terminal; off a terminal the console is 240 columns wide.
    """
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=240)
    cols, rows = _cells(board)
    merged: list[tuple[str, list[int]]] = []  # header, column indices
    for i, col in enumerate(cols):
        if merged and col.group and col.label == "mAP" and cols[i - 1].group == col.group:
            merged[-1] = (f"{col.group}\nR1/mAP", [*merged[-1][1], i])
        else:
            merged.append((f"{col.group}\n{col.label}" if col.group else col.label, [i]))
    table = Table(title="AT-ReID leaderboard (R1/mAP/mINP in %)")
    for header, idx in merged:
        numeric = cols[idx[0]].metric is not None
        table.add_column(header, justify="right" if numeric else "left", no_wrap=numeric)
    for line in rows:
        cells = []
        for _, idx in merged:
            parts = [line[i] for i in idx]
            value = "/".join(f"[bold]{t}[/bold]" if b else t for t, _, b in parts)
            stds = [pm for _, pm, _ in parts if pm]
            cells.append(value + ("\n±" + "/±".join(stds) if stds else ""))
        table.add_row(*cells)
    console.print(table)
    for failure in _failure_lines(board):
        console.print(f"[red]{failure}[/red]", highlight=False)


def write_leaderboard(board: Leaderboard, fmt: Format, path: str | os.PathLike[str]) -> None:
    """Write :func:`render` output to ``path`` atomically."""
    from atustc.io import write_text_atomic

    write_text_atomic(path, render(board, fmt))


# ---------------------------------------------------------------- reading helpers


def _read_optional(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def _run_protocols(config: dict, manifest: dict, run: Path) -> tuple[str, ...]:
    """The protocols a run was scored on: the ``protocols`` record of its config or manifest."""
    for source, info in (("config.json", config), ("manifest.json", manifest)):
        if "protocols" in info:
            return SplitProtocols.from_info(info, str(run / source)).scored
    return DEFAULT_PROTOCOLS


def _run_metrics(folder: RunFolder, protocols: tuple[str, ...], checkpoint: str) -> dict[str, float] | None:
    """The rank metrics of a run scored with ``checkpoint`` (``eval/<protocol>@<checkpoint>.json``).

    None when the default protocol's eval file is missing; every file read is checked for its provenance.
    """
    from atustc.provenance import check_eval

    main = folder.eval_file(protocols[0], checkpoint)
    if not main.is_file():
        return None
    layout = build_layout(protocols)
    results = {}
    for name in protocols:
        path = folder.eval_file(name, checkpoint)
        if path.is_file():
            result = read_json(path)
            check_eval(result, path, folder, checkpoint)
            results[name] = (result, path)
    layout.check(*results[protocols[0]])
    return layout.extract(results)


def _registry_family(method: str) -> str:
    """The family of a registered method (imports the registry: torch), or ``?`` if unknown."""
    from atustc.methods import get_method

    try:
        return get_method(method).family
    except AtustcError:
        return "?"
    except ImportError:
        return "?"


def _row_order(key: Sequence[str]) -> tuple:
    family = key[0]
    return (FAMILIES.index(family) if family in FAMILIES else len(FAMILIES), family, *key[1:])
