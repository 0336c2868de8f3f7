"""The leaderboard as text: CSV, markdown, LaTeX and a rich table (:mod:`atustc.bench.leaderboard` builds it).

Human-facing tables print percentages with two decimals and bold the best value of each column
(highest, except parameters and training time: lowest). Wall-clock cost figures of a row whose
runs ran on a loaded machine are marked ``*``, those of runs from several machines ``†``, and
footnote lines name the machine(s) (:mod:`atustc.bench.costs`).
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Literal

from atustc.bench.costs import MARKS, WALL_CLOCK_METRICS, cost_notes
from atustc.bench.layout import Column, build_layout
from atustc.bench.leaderboard import COST_METRICS, DEFAULT_PROTOCOLS, Leaderboard
from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

Format = Literal["csv", "md", "latex"]
_LOWER_IS_BETTER = frozenset({"params", "train_time_s", "step_time_s", "step_cpu_s"})


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
    if metric in ("step_time_s", "step_cpu_s"):
        return f"{value:.3f} s"
    return f"{100 * value:.2f}"


def _format_std(metric: str, std: float) -> str:
    if metric in COST_METRICS:
        return _format_value(metric, std)
    return f"{100 * std:.2f}"


Cell = tuple[str, str, bool, str]


def _cells(board: Leaderboard) -> tuple[list[Column], list[list[Cell]]]:
    """Per row and column: (value text, ± text or "", bold?, cost marks or "")."""
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
        flags = str(rec.get("cost_flag") or "").split(";")
        marks = "".join(MARKS[f] for f in MARKS if f in flags)
        line: list[Cell] = []
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
                line.append((str(text), "", False, ""))
                continue
            mean, std = rec[f"{col.metric}_mean"], rec[f"{col.metric}_std"]
            if failed or mean != mean:  # NaN: missing
                line.append(("failed" if failed and col is first_metric else "-", "", False, ""))
                continue
            text = _format_value(col.metric, float(mean))
            pm = _format_std(col.metric, float(std)) if std == std else ""
            mark = marks if col.metric in WALL_CLOCK_METRICS else ""
            line.append((text, pm, best.get(col.metric) == text, mark))
        rows.append(line)
    return cols, rows


def _seeds_text(rec: pd.Series) -> str:
    parts = [str(rec["seeds"]).replace(";", ",")] if rec["seeds"] == rec["seeds"] and rec["seeds"] != "" else []
    if int(rec["n_splits"]) > 1:
        parts.append(f"({int(rec['n_splits'])} splits)")
    if int(rec["n_failed"]):
        parts.append(f"(+{int(rec['n_failed'])} failed)")
    return " ".join(parts) or "-"


def _notes(board: Leaderboard) -> list[str]:
    """The footnotes: the board's own (e.g. the cross-domain average), the machines of the finished rows and the meaning of the cost marks."""
    rows: dict[str, list[str]] = {}
    ok = board.frame[board.frame["status"] == "finished"]
    for _, rec in ok.iterrows():
        for machine in filter(None, str(rec.get("machine") or "").split("; ")):
            rows.setdefault(machine, []).append(str(rec["method"]))
    costs = cost_notes({m: list(dict.fromkeys(r)) for m, r in rows.items()}, ok.get("cost_flag", []))
    return [*board.notes, *costs]


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
        for text, pm, bold, mark in line:
            cell = f"**{text}**" if bold else text
            cells.append((f"{cell} ± {pm}" if pm else cell) + mark.replace("*", "\\*"))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes = _notes(board)
    if notes:
        lines += [""] + [n.replace("*", "\\*", 1) if n.startswith("*") else n for n in notes]
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


def _latex_marks(marks: str) -> str:
    """Cost marks as LaTeX superscripts (``*`` and a dagger)."""
    return "".join(r"\textsuperscript{*}" if m == "*" else r"\textsuperscript{\dag}" for m in marks)


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
        for text, pm, bold, mark in line:
            body = latex_escape(text)
            if pm:
                body += rf"$\pm${latex_escape(pm)}"
            cells.append((rf"\textbf{{{body}}}" if bold else body) + _latex_marks(mark))
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}}"]
    notes = _notes(board)
    if notes:
        text = r" \\ ".join(
            _latex_marks(n[0]) + latex_escape(n[1:]) if n[0] in "*†" else latex_escape(n) for n in notes
        )
        out.append(rf"\par\smallskip{{\footnotesize {text}}}")
    out.append(r"\end{table}")
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
            value = "/".join((f"[bold]{t}[/bold]" if b else t) + m for t, _, b, m in parts)
            stds = [pm for _, pm, _, _ in parts if pm]
            cells.append(value + ("\n±" + "/±".join(stds) if stds else ""))
        table.add_row(*cells)
    console.print(table)
    for note in _notes(board):
        console.print(note, highlight=False, markup=False)
    for failure in _failure_lines(board):
        console.print(f"[red]{failure}[/red]", highlight=False)


def write_leaderboard(board: Leaderboard, fmt: Format, path: str | os.PathLike[str]) -> None:
    """Write :func:`render` output to ``path`` atomically."""
    from atustc.io import write_text_atomic

    write_text_atomic(path, render(board, fmt))
