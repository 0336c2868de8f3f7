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
- ``eval/atustc@<checkpoint>.json`` and ``eval/atustc-mixed@<checkpoint>.json``:
  ``ProtocolResult.to_dict()`` plus its provenance (:mod:`atustc.provenance`), checked on reading:
  an eval that does not provably score the run's current checkpoint on the current protocol file
  is refused in one line.

Each checkpoint rule a run was scored with (``last``: the bench; ``best``: ``atustc eval --run``)
is a record of its own, and the rule is part of the row key, so a row never mixes checkpoints and
its ``checkpoint`` column says which rule it uses. A run counts in the means only when it is
``finished`` and has ``eval/atustc@<checkpoint>.json``; failed and unfinished runs are listed
apart (:attr:`Leaderboard.others`) with their reason.

CSV columns (one row per method × preset × data hash; stable, in this order; metric values are
fractions in [0, 1] at full precision, as in the run's JSON):

- ``family``, ``method``, ``preset``, ``data_hash``, ``checkpoint``: the row key (``checkpoint``:
  ``last`` or ``best``, the checkpoint every run of the row was scored with);
- ``seeds``: the seeds of the finished runs, ``;``-separated, ascending;
- ``n_runs``: finished runs averaged; ``n_splits``: distinct split hashes among them;
- ``n_failed``: failed or unfinished runs of the same key (not averaged);
- ``status``: ``finished`` or ``failed`` (no finished run); ``error``: the first failure reason;
- for each metric in :data:`METRICS`: ``<metric>_mean`` and ``<metric>_std`` (``std`` is empty
  with one run). Metrics: ``<S>_R1``, ``<S>_mAP``, ``<S>_mINP`` for ``S`` in ``Any-Time``,
  ``DT-ST``, ``DT-LT``, ``NT-ST``, ``NT-LT``, ``AD-ST``, ``AD-LT`` (protocol ``atustc``);
  ``Mixed-Anytime_R1``, ``Mixed-Anytime_mAP``, ``Mixed-Anytime_mINP`` (protocol
  ``atustc-mixed``, group Anytime); ``params`` (count), ``train_time_s`` (seconds),
  ``images_per_s`` (training throughput).

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

from atustc.errors import AtustcError
from atustc.io import read_json

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

#: The six scenarios in the paper's order (same as :data:`atustc.methods.contract.SCENARIOS`).
SCENARIOS: tuple[str, ...] = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")
#: Task families in the paper's row order.
FAMILIES: tuple[str, ...] = ("Tr-ReID", "CC-ReID", "CM-ReID", "AT-ReID")
MAIN_PROTOCOL = "atustc"
#: The rule of records without a scored checkpoint (failed or unscored runs): the bench's.
CHECKPOINT_RULE = "last"
MIXED_PROTOCOL = "atustc-mixed"
_RANK_METRICS: tuple[str, ...] = ("R1", "mAP", "mINP")
_COST_METRICS: tuple[str, ...] = ("params", "train_time_s", "images_per_s")
#: Every metric column of the CSV, in order (each gives ``_mean`` and ``_std``).
METRICS: tuple[str, ...] = (
    *(f"{s}_{m}" for s in ("Any-Time", *SCENARIOS) for m in _RANK_METRICS),
    *(f"Mixed-Anytime_{m}" for m in _RANK_METRICS),
    *_COST_METRICS,
)
KEY_COLUMNS: tuple[str, ...] = ("family", "method", "preset", "data_hash", "checkpoint")
INFO_COLUMNS: tuple[str, ...] = ("seeds", "n_runs", "n_splits", "n_failed", "status", "error")
#: All CSV columns, in order.
CSV_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    *INFO_COLUMNS,
    *(f"{m}_{agg}" for m in METRICS for agg in ("mean", "std")),
)
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


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """The first record of :func:`read_run_records` (the ``last`` rule when the run was scored with it)."""
    return read_run_records(run_dir)[0]


def read_run_records(run_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read one run folder: one record per checkpoint rule it was scored with (``last`` first).

    Raises:
        AtustcError: no ``status.json``, a malformed JSON file in the run, or an eval whose
            provenance does not match the run (another checkpoint, a changed protocol file).
    """
    from atustc.provenance import check_eval
    from atustc.runfolder import RunFolder

    run = Path(run_dir)
    folder = RunFolder(run)
    status = read_json(run / "status.json")
    config = _read_optional(run / "config.json")
    manifest = _read_optional(run / "manifest.json")
    method = str(status.get("method") or config.get("method") or run.name)
    base = dict(
        path=run,
        method=method,
        family=str(config.get("family") or status.get("family") or _registry_family(method)),
        preset=str(status.get("preset") or config.get("preset") or "?"),
        seed=int(s) if isinstance(s := status.get("seed", config.get("seed")), (int, float)) else None,
        data_hash=str(manifest.get("table_hash") or config.get("table_hash") or "?"),
        split_hash=str(manifest.get("split_hash") or config.get("split_hash") or "?"),
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
            main = folder.eval_file(MAIN_PROTOCOL, ckpt)
            if not main.is_file():
                continue
            result = read_json(main)
            check_eval(result, main, folder, ckpt)
            metrics = _protocol_metrics(result, main)
            mixed = folder.eval_file(MIXED_PROTOCOL, ckpt)
            if mixed.is_file():
                mixed_result = read_json(mixed)
                check_eval(mixed_result, mixed, folder, ckpt)
                metrics.update(_mixed_metrics(mixed_result, mixed))
            records.append(RunRecord(**base, state=state, error=None, metrics={**metrics, **costs}, checkpoint=ckpt))
        if not records:
            legacy = run / "eval" / f"{MAIN_PROTOCOL}.json"
            state = "not-evaluated"
            error = (f"eval/{legacy.name} names no checkpoint (written before provenance); score the run again"
                     if legacy.is_file() else f"no eval/{MAIN_PROTOCOL}@{CHECKPOINT_RULE}.json")  # fmt: skip
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


def build_leaderboard(records: Iterable[RunRecord]) -> Leaderboard:
    """Group runs by (family, method, preset, data hash, checkpoint) and aggregate mean ± std per metric."""
    import numpy as np
    import pandas as pd

    groups: dict[tuple[str, str, str, str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault((rec.family, rec.method, rec.preset, rec.data_hash, rec.checkpoint), []).append(rec)
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
        for metric in METRICS:
            values = np.array([r.metrics[metric] for r in done if metric in r.metrics], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    others = tuple(r for key in sorted(groups, key=_row_order) for r in groups[key] if not r.counted)
    return Leaderboard(frame=frame, others=others)


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


@dataclass(frozen=True)
class _Column:
    group: str  # first header row ("" when the column stands alone)
    label: str  # second header row
    metric: str | None  # METRICS key, or None for a text column


def _display_columns() -> list[_Column]:
    cols = [_Column("", "Task", None), _Column("", "Method", None)]
    for scen in ("Any-Time", *SCENARIOS):
        cols += [_Column(scen, "R1", f"{scen}_R1"), _Column(scen, "mAP", f"{scen}_mAP")]
    cols += [
        _Column("Any-Time", "mINP", "Any-Time_mINP"),
        _Column("Mixed Anytime", "R1", "Mixed-Anytime_R1"),
        _Column("Mixed Anytime", "mAP", "Mixed-Anytime_mAP"),
        _Column("Cost", "Params", "params"),
        _Column("Cost", "Train", "train_time_s"),
        _Column("Cost", "img/s", "images_per_s"),
        _Column("", "Preset", None),
        _Column("", "Checkpoint", None),
        _Column("", "Data", None),
        _Column("", "Seeds", None),
    ]
    return cols


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


def _cells(board: Leaderboard) -> tuple[list[_Column], list[list[tuple[str, str, bool]]]]:
    """Per row and column: (value text, ± text or "", bold?)."""
    cols = _display_columns()
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
                line.append(("failed" if failed and col.metric == "Any-Time_R1" else "-", "", False))
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
    return [f"{r.path.name} ({r.method}, seed {r.seed}): {r.state}: {r.error or 'no reason recorded'}"
            for r in board.others]


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


def _metric_block(block: object, where: str) -> dict[str, float]:
    if not isinstance(block, dict):
        raise AtustcError(f"{where}: expected an object of metrics, got {type(block).__name__}")
    out = {}
    for metric in _RANK_METRICS:
        value = block.get(metric)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise AtustcError(f"{where}: {metric} must be a fraction in [0, 1], got {value!r}")
        out[metric] = float(value)
    return out


def _protocol_metrics(result: dict, path: Path) -> dict[str, float]:
    """Scenario metrics of an ``atustc`` result; Any-Time from its summary (else the mean of six)."""
    scenarios = result.get("scenarios") or {}
    missing = [s for s in SCENARIOS if s not in scenarios]
    if missing:
        raise AtustcError(f"{path}: scenario(s) {', '.join(missing)} missing")
    out: dict[str, float] = {}
    for scen in SCENARIOS:
        for metric, value in _metric_block(scenarios[scen], f"{path}: {scen}").items():
            out[f"{scen}_{metric}"] = value
    anytime = (result.get("summary") or {}).get("Any-Time")
    if anytime is not None:
        block = _metric_block(anytime, f"{path}: Any-Time")
    else:
        present = [m for m in _RANK_METRICS if all(f"{s}_{m}" in out for s in SCENARIOS)]
        block = {m: sum(out[f"{s}_{m}"] for s in SCENARIOS) / len(SCENARIOS) for m in present}
    out.update({f"Any-Time_{m}": v for m, v in block.items()})
    return out


def _mixed_metrics(result: dict, path: Path) -> dict[str, float]:
    anytime = (result.get("summary") or {}).get("Anytime")
    if anytime is None:
        raise AtustcError(f"{path}: no 'Anytime' group in summary")
    return {f"Mixed-Anytime_{m}": v for m, v in _metric_block(anytime, f"{path}: Anytime").items()}


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
