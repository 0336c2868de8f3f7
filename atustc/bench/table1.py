"""The paper's Table 1: train one model per dataset, test every model zero-shot on every other dataset.

``atustc bench --methods bot --train-on msmt17=ROOT,deepchange=ROOT,atustc --cross-domain
market1501=ROOT,prcc=ROOT`` runs one bench per training dataset (:func:`run_table1`), each in
``OUT/<train dataset>/`` with the cross-domain targets minus the training dataset itself, so
every model is scored on every other dataset (``RUN/eval/xd-<dataset>@last.json``).
``atustc leaderboard --runs OUT --layout table1`` (or the end of the bench) reads them back as
the matrix: one row per method, preset, training dataset and data hash; one column per test
dataset (the paper's order first: :mod:`atustc.bench.xd_columns`) and ``AVG``, the mean over a
run's test columns, each cell the mean ± sample std (``ddof=1``) over seeds.

CSV columns (stable, in this order; fractions in [0, 1] at full precision): ``method``,
``preset``, ``train``, ``data_hash``, ``checkpoint``, ``seeds`` (``;``-separated), ``n_runs``,
``avg_over`` (the test datasets ``AVG`` averages, ``;``-separated: every test column the row's
runs all have), then for each test dataset and for ``AVG``: ``<test>_R1_mean``, ``<test>_R1_std``,
``<test>_mAP_mean``, ``<test>_mAP_std``. Markdown and LaTeX show an R1 table and an mAP table
(percentages, 2 decimals, the best of each column in bold), as the paper reports R1.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from atustc.bench.xd_columns import AVG_METRICS, with_average, xd_datasets, xd_key, xd_label
from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

    from atustc.bench.crossdomain import Target
    from atustc.bench.data import BenchData
    from atustc.bench.harness import RunOutcome
    from atustc.bench.leaderboard import RunRecord

KEY = ("method", "preset", "train", "data_hash", "checkpoint")
AVG = "AVG"


def run_table1(
    methods: Sequence[str],
    train_on: Sequence[tuple[str, BenchData]],
    targets: Sequence[Target],
    out: str | os.PathLike[str],
    **bench: Any,
) -> list[RunOutcome]:
    """One :func:`atustc.bench.harness.run_bench` per training dataset, in ``OUT/<dataset>/``.

    Args:
        methods: registered method names.
        train_on: (dataset name, its data) per training dataset.
        targets: the cross-domain test datasets (each bench skips its own training dataset).
        out: the runs folder of the whole table.
        bench: the other :func:`~atustc.bench.harness.run_bench` arguments (preset, seeds, ...).

    Returns:
        Every run's outcome, training datasets outer.
    """
    from pathlib import Path

    from atustc.bench.harness import run_bench

    if not targets:
        raise AtustcError("--train-on needs --cross-domain: the datasets every model is tested on")
    outcomes = []
    for name, data in train_on:
        outcomes += run_bench(methods, data=data, out=Path(out) / name, cross_domain=targets, **bench)
    return outcomes


def table1_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """The Table 1 matrix of the finished runs (see the module docstring for the columns).

    Raises:
        AtustcError: no finished run has a cross-domain eval.
    """
    import numpy as np
    import pandas as pd

    done = [r for r in records if r.counted]
    tests = xd_datasets(r.metrics for r in done)
    if not tests:
        raise AtustcError(
            "no finished run has cross-domain evals (train with atustc bench --train-on ... --cross-domain ...)"
        )
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for rec in done:
        groups.setdefault((rec.method, rec.preset, rec.dataset, rec.data_hash, rec.checkpoint), []).append(rec)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] == "atustc", *k[2:])):
        runs = sorted(groups[key], key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
        over = [t for t in tests if all(f"{xd_key(t)}_R1" in r.metrics for r in runs)]
        metrics = [with_average(r.metrics, over, key=AVG) for r in runs]
        row: dict[str, Any] = dict(zip(KEY, key, strict=True))
        row.update(
            seeds=";".join(str(r.seed) for r in runs if r.seed is not None), n_runs=len(runs), avg_over=";".join(over)
        )
        for test in (*tests, AVG):
            group = AVG if test == AVG else xd_key(test)
            for m in AVG_METRICS:
                values = np.array([x[f"{group}_{m}"] for x in metrics if f"{group}_{m}" in x], dtype=np.float64)
                row[f"{test}_{m}_mean"] = float(values.mean()) if len(values) else math.nan
                row[f"{test}_{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    cols = [*KEY, "seeds", "n_runs", "avg_over"]
    cols += [f"{t}_{m}_{a}" for t in (*tests, AVG) for m in AVG_METRICS for a in ("mean", "std")]
    return pd.DataFrame(rows, columns=cols)


def matrix_columns(frame: pd.DataFrame) -> list[str]:
    """The test datasets of a Table 1 frame, in column order (``AVG`` last)."""
    return [c[: -len("_R1_mean")] for c in frame.columns if c.endswith("_R1_mean")]


def _cells(frame: pd.DataFrame, metric: str) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and per row (text, bold) cells for one metric: Method, Train, each test, AVG."""
    tests = matrix_columns(frame)
    header = ["Method", "Train \\ Test", *(AVG if t == AVG else xd_label(t) for t in tests)]
    best = {t: frame[f"{t}_{metric}_mean"].max() for t in tests}
    rows = []
    for _, rec in frame.iterrows():
        line = [(str(rec["method"]), False), (xd_label(str(rec["train"])), False)]
        for t in tests:
            mean, std = rec[f"{t}_{metric}_mean"], rec[f"{t}_{metric}_std"]
            if mean != mean:
                line.append(("-", False))
                continue
            text = f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std == std else "")
            line.append((text, f"{100 * mean:.2f}" == f"{100 * best[t]:.2f}"))
        rows.append(line)
    return header, rows


def render_table1(frame: pd.DataFrame, fmt: str) -> str:
    """Table 1 as ``csv``, ``md`` or ``latex`` text.

    Raises:
        AtustcError: an unknown format.
    """
    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
        return buf.getvalue()
    if fmt not in ("md", "latex"):
        raise AtustcError(f"--format must be one of csv, md, latex, got {fmt!r}")
    blocks = []
    for metric, name in (("R1", "Rank-1"), ("mAP", "mAP")):
        header, rows = _cells(frame, metric)
        blocks.append(_markdown(header, rows, name) if fmt == "md" else _latex(header, rows, name))
    note = _avg_note(frame)
    if note:
        blocks.append(note if fmt == "md" else f"% {note}\n")
    return "\n".join(blocks)


def _avg_note(frame: pd.DataFrame) -> str:
    tests = [t for t in matrix_columns(frame) if t != AVG]
    partial = [r for _, r in frame.iterrows() if str(r["avg_over"]).split(";") != tests]
    lines = [
        f"AVG of {r['method']} trained on {xd_label(str(r['train']))} is over "
        f"{', '.join(xd_label(t) for t in str(r['avg_over']).split(';') if t)} only."
        for r in partial
    ]
    return "".join(f"{line}\n" for line in lines)


def _markdown(header: list[str], rows: list[list[tuple[str, bool]]], name: str) -> str:
    lines = [f"{name} (%), mean ± std over seeds:", "", "| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join(["---", "---", *["---:"] * (len(header) - 2)]) + " |")
    for line in rows:
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in line) + " |")
    return "\n".join(lines) + "\n"


def _latex(header: list[str], rows: list[list[tuple[str, bool]]], name: str) -> str:
    from atustc.bench.board_render import latex_escape

    out = [
        "% Requires \\usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{Cross-domain generalization: {latex_escape(name)} (\%), mean $\pm$ std over seeds.}}",
        rf"\begin{{tabular}}{{ll{'r' * (len(header) - 2)}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    for line in rows:
        cells = []
        for text, bold in line:
            body = latex_escape(text).replace("±", r"$\pm$")
            cells.append(rf"\textbf{{{body}}}" if bold else body)
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"
