"""``atustc leaderboard --compare A,B``: two leaderboard rows, per scenario, with bootstrap intervals.

Reads the per-query results stored with each run for its main protocol
(``RUN/eval/<protocol>@<checkpoint>.per_query.parquet``, written by ``atustc eval --run`` and the bench
harness) and hands them to :mod:`atustc.bench.compare`. A
row is named by its method (when that is unambiguous), ``method/preset`` or
``method/preset/<data hash prefix>``, each optionally followed by ``@last`` or ``@best`` (the
checkpoint rule of the row).

Output (:func:`comparison_frame`), one line per scenario (and Any-Time) and metric: ``A`` and ``B``
(fractions), ``diff = A - B``, the 95 % interval over queries (``q_low``, ``q_high``) and over runs
(``r_low``, ``r_high``; empty unless both rows have at least three runs), ``n_queries`` and the runs of
each row. Markdown and LaTeX print percentages and mark an interval that excludes 0 with ``*``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from atustc.bench.board_render import latex_escape
from atustc.bench.compare import N_BOOT, Comparison, RunQueries, compare_rows
from atustc.bench.leaderboard import RunRecord, row_key
from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

#: Metrics compared, and the per-query column each is computed from.
COMPARED: dict[str, str] = {"R1": "first_rank", "mAP": "ap"}
COLUMNS: tuple[str, ...] = (
    "scenario",
    "metric",
    "A",
    "B",
    "diff",
    "q_low",
    "q_high",
    "r_low",
    "r_high",
    "n_queries",
    "n_runs_A",
    "n_runs_B",
)


def resolve_row(records: list[RunRecord], token: str) -> list[RunRecord]:
    """The finished runs of the one leaderboard row ``token`` names.

    Raises:
        AtustcError: no row or several rows match.
    """
    rows: dict[tuple[str, str, str, str, str], list[RunRecord]] = {}
    for rec in records:
        if rec.counted:
            rows.setdefault(row_key(rec), []).append(rec)
    name, _, rule = token.partition("@")
    parts = name.split("/")

    def matches(key: tuple[str, str, str, str, str]) -> bool:
        _, method, preset, data, checkpoint = key
        return (
            parts[0] == method
            and (len(parts) < 2 or parts[1] == preset)
            and (len(parts) < 3 or data.startswith(parts[2]))
            and len(parts) <= 3
            and (not rule or rule == checkpoint)
        )

    hits = [k for k in sorted(rows) if matches(k)]
    if not hits:
        known = ", ".join(sorted({f"{k[1]}/{k[2]}@{k[4]}" for k in rows})) or "none finished"
        raise AtustcError(f"--compare: no finished leaderboard row {token!r} (rows: {known})")
    if len(hits) > 1:
        names = ", ".join(f"{k[1]}/{k[2]}/{k[3][:8]}@{k[4]}" for k in hits)
        raise AtustcError(
            f"--compare: {token!r} names several rows ({names}); name one as method/preset/hash@checkpoint"
        )
    return rows[hits[0]]


def load_queries(rec: RunRecord, scenarios: tuple[str, ...], metric: str) -> RunQueries:
    """One run's per-query values of ``metric`` over ``scenarios`` of its main protocol (one stratum per scenario and trial).

    Raises:
        AtustcError: no per-query file, a scenario missing from it, or a file that disagrees
            with the run's eval JSON (a stale or foreign file).
    """
    import numpy as np
    import pandas as pd

    from atustc.runfolder import RunFolder

    path = RunFolder(rec.path).per_query_file(rec.protocols[0], rec.checkpoint)
    if not path.is_file():
        raise AtustcError(
            f"{path}: no per-query results; score the run again with `atustc eval --run {rec.path} ...` to write them"
        )
    frame = pd.read_parquet(path, columns=["scenario", "run", "query", "valid", COMPARED[metric]])
    values: dict[str, dict[str, float]] = {}
    for scenario in scenarios:
        part = frame[(frame["scenario"] == scenario) & frame["valid"]]
        if part.empty:
            raise AtustcError(f"{path}: no valid query of scenario {scenario}")
        column = part[COMPARED[metric]].to_numpy()
        value = (column == 1).astype(np.float64) if metric == "R1" else column.astype(np.float64)
        for run, idx in part.groupby("run").indices.items():
            values[f"{scenario}#{run}"] = dict(zip(part["query"].to_numpy()[idx], value[idx], strict=True))
        reported = rec.metrics.get(f"{scenario}_{metric}")
        got = float(np.mean([np.mean(list(values[k].values())) for k in values if k.startswith(f"{scenario}#")]))
        if reported is not None and abs(got - reported) > 1e-9:
            raise AtustcError(
                f"{path}: {scenario} {metric} {got:.6f} disagrees with the run's eval JSON ({reported:.6f}); "
                "the per-query file is stale"
            )
    return RunQueries(rec.split_hash, rec.seed, values)


def comparison_frame(records: list[RunRecord], a: str, b: str, *, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Compare rows ``a`` and ``b`` on every scenario and Any-Time, for R1 and mAP (:data:`COLUMNS`)."""
    import pandas as pd

    from atustc.protocol import load_protocol

    runs_a, runs_b = resolve_row(records, a), resolve_row(records, b)
    mains = {r.protocols[0] for r in runs_a + runs_b}
    if len(mains) != 1:
        raise AtustcError(f"--compare: the rows are scored on different main protocols ({', '.join(sorted(mains))})")
    protocol = load_protocol(mains.pop())
    # the protocol's unweighted aggregates (Any-Time on AT-USTC), then each scenario, as the leaderboard shows them
    groups = [(agg.name, agg.scenarios) for agg in protocol.aggregates if agg.weight == "mean"]
    groups += [(scen.name, (scen.name,)) for scen in protocol.scenarios]
    lines = []
    for scenario, members in groups:
        for metric in COMPARED:
            qa = [load_queries(r, members, metric) for r in runs_a]
            qb = [load_queries(r, members, metric) for r in runs_b]
            c: Comparison = compare_rows(qa, qb, n_boot=n_boot, seed=seed)
            lines.append(
                {
                    "scenario": scenario,
                    "metric": metric,
                    "A": c.a,
                    "B": c.b,
                    "diff": c.queries.diff,
                    "q_low": c.queries.low,
                    "q_high": c.queries.high,
                    "r_low": c.runs.low if c.runs else math.nan,
                    "r_high": c.runs.high if c.runs else math.nan,
                    "n_queries": c.n_queries,
                    "n_runs_A": c.n_runs[0],
                    "n_runs_B": c.n_runs[1],
                }
            )
    frame = pd.DataFrame(lines, columns=list(COLUMNS))
    frame.attrs.update(a=a, b=b, n_boot=n_boot, seed=seed)
    return frame


def _pct(x: float) -> str:
    return f"{100 * x:+.2f}"


def _interval(low: float, high: float) -> str:
    if low != low:  # NaN: not available
        return "-"
    star = "*" if low > 0 or high < 0 else ""
    return f"[{_pct(low)}, {_pct(high)}]{star}"


def _cells(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    a, b = frame.attrs.get("a", "A"), frame.attrs.get("b", "B")
    header = ["Scenario", "Metric", a, b, f"{a} - {b}", "95% CI, queries", "95% CI, runs"]
    rows = [
        [
            r.scenario,
            r.metric,
            f"{100 * r.A:.2f}",
            f"{100 * r.B:.2f}",
            _pct(r.diff),
            _interval(r.q_low, r.q_high),
            _interval(r.r_low, r.r_high),
        ]
        for r in frame.itertuples()
    ]
    return header, rows


def _note(frame: pd.DataFrame) -> str:
    return (
        f"Paired bootstrap ({frame.attrs.get('n_boot', N_BOOT)} resamples, seed {frame.attrs.get('seed', 0)}) over "
        "test queries and, where both rows have 3 or more runs, over runs (seeds/splits); * = interval excludes 0."
    )


def render_comparison(frame: pd.DataFrame, fmt: str) -> str:
    """The comparison as CSV (fractions, full precision), markdown or LaTeX (percentage points)."""
    import io

    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
        return buf.getvalue()
    header, rows = _cells(frame)
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * 5) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n\n" + _note(frame) + "\n"
    if fmt == "latex":
        out = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{latex_escape(_note(frame))}}}",
            r"\begin{tabular}{llrrrrr}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in header) + r" \\",
            r"\midrule",
        ]
        out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(out) + "\n"
    raise AtustcError(f"--format must be one of csv, md, latex, got {fmt!r}")


def print_comparison(frame: pd.DataFrame) -> None:
    """Print the comparison as a rich table."""
    from rich.console import Console
    from rich.table import Table

    header, rows = _cells(frame)
    table = Table(title="Difference of two rows (percentage points)", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    console.print(_note(frame), highlight=False)
