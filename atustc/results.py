"""Metric rows of a scored protocol: :class:`MetricRow`, :class:`ProtocolResult`, their averages and the printed table.

A scenario's row averages its trials and directions (:func:`average_rows`); an aggregate
(Any-Time, Mixed Anytime) weights its scenarios' rows by valid queries or equally
(:func:`aggregate_rows`), as the protocol file says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from atustc.protocol import Protocol
    from atustc.querycounts import QueryCounts
    from atustc.rankmetrics import Summary

#: CMC ranks reported in results.
REPORTED_RANKS: tuple[int, ...] = (1, 5, 10, 20)
#: Metric keys of one result row, in order.
METRIC_KEYS: tuple[str, ...] = ("R1", "R5", "R10", "R20", "mAP", "mINP", "valid_queries")


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one scenario or one aggregate.

    Attributes:
        name: scenario or aggregate name.
        cmc: float64 ``[20]``, CMC at ranks 1..20 (fractions).
        mAP: mean average precision (fraction).
        mINP: mean inverse negative penalty (fraction).
        valid_queries: queries with a valid positive (summed for aggregates; averaged and
            rounded over trials and directions).
        queries: queries in the pool(s), valid or not.
    """

    name: str
    cmc: np.ndarray
    mAP: float
    mINP: float
    valid_queries: int
    queries: int

    def to_dict(self) -> dict[str, float | int]:
        """``{"R1", "R5", "R10", "R20", "mAP", "mINP": fractions, "valid_queries": int}``."""
        out: dict[str, float | int] = {f"R{k}": float(self.cmc[k - 1]) for k in REPORTED_RANKS}
        out.update(mAP=float(self.mAP), mINP=float(self.mINP), valid_queries=int(self.valid_queries))
        return out


@dataclass(frozen=True)
class ProtocolResult:
    """Metrics of every scenario of a protocol, and its aggregates (``summary``)."""

    protocol: str
    scenarios: dict[str, MetricRow]
    summary: dict[str, MetricRow]
    per_query: pd.DataFrame | None = None  # with ``top_k`` only: :data:`PER_QUERY_COLUMNS`
    #: Scenarios with gallery sampling -> one record per run (:func:`trial_record`), in run order.
    trials: dict[str, list[dict[str, Any]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"protocol", "scenarios": {name: metrics}, "summary": {name: metrics}}``.

        A protocol with gallery sampling adds ``"trials"``: ``{scenario: [{"run", "trial",
        "direction", "seed", "metrics", "gallery": [relpaths]}]}``, every drawn gallery, so that
        the result can be re-scored elsewhere (``atustc eval --galleries``). Without sampling the
        key is absent (the record is unchanged).
        """
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "scenarios": {k: r.to_dict() for k, r in self.scenarios.items()},
            "summary": {k: r.to_dict() for k, r in self.summary.items()},
        }
        if self.trials:
            out["trials"] = self.trials
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario then per aggregate: protocol, kind, name, R1..mINP, valid_queries, queries."""
        import pandas as pd

        rows = []
        for kind, group in (("scenario", self.scenarios), ("summary", self.summary)):
            for name, row in group.items():
                rows.append(
                    {"protocol": self.protocol, "kind": kind, "name": name, **row.to_dict(), "queries": row.queries}
                )
        columns = ["protocol", "kind", "name", *METRIC_KEYS, "queries"]
        return pd.DataFrame(rows, columns=columns)


def print_result(
    result: ProtocolResult, console: Console | None = None, counts: dict[str, QueryCounts] | None = None
) -> None:
    """Print a result as a rich table: percentages with 2 decimals, then the valid-query count.

    With ``counts`` (:func:`atustc.querycounts.query_counts`) the valid column reads ``valid /
    admitted`` (queries the scenario's modality rule admits) and a footnote says what each row
    dropped from its pool and why; without, ``valid / queries in the pool``.
    """
    from rich.console import Console
    from rich.table import Table

    from atustc.querycounts import dropped_notes

    console = console or Console()
    table = Table(title=f"protocol {result.protocol}", title_justify="left")
    table.add_column("scenario")
    for key in METRIC_KEYS[:-1]:
        table.add_column(key, justify="right")
    table.add_column("valid", justify="right")

    def add(row: MetricRow, style: str | None = None) -> None:
        d = row.to_dict()
        cells = [f"{100 * d[k]:.2f}" for k in METRIC_KEYS[:-1]]
        of = counts[row.name].admitted if counts is not None and row.name in counts else row.queries
        table.add_row(row.name, *cells, f"{row.valid_queries}/{of}", style=style)

    for row in result.scenarios.values():
        add(row)
    if result.summary:
        table.add_section()
        for row in result.summary.values():
            add(row, style="bold")
    console.print(table)
    if counts is not None:
        console.print("valid: queries with a positive / queries the scenario's modality rule admits", style="dim")
        for line in dropped_notes(result, counts):
            console.print(line, style="dim", highlight=False, soft_wrap=True)


def average_results(results: list[ProtocolResult], protocol: Protocol) -> ProtocolResult:
    """The mean of several results of one protocol (e.g. RegDB's released trials, one table each).

    Each scenario row is the unweighted mean of its rows (as trials are averaged); the
    protocol's aggregates are computed again from the means. Per-query frames and recorded
    trials stay with the single results.
    """
    rows = {name: average_rows(name, [r.scenarios[name] for r in results]) for name in results[0].scenarios}
    summary = {a.name: aggregate_rows(a.name, [rows[n] for n in a.scenarios], a.weight) for a in protocol.aggregates}
    return ProtocolResult(protocol.name, rows, summary)


def average_rows(name: str, summaries: list[Summary] | list[MetricRow]) -> MetricRow:
    """Average trials/directions (one summary passes through unchanged)."""
    return MetricRow(
        name,
        np.mean([s.cmc for s in summaries], axis=0),
        float(np.mean([s.mAP for s in summaries])),
        float(np.mean([s.mINP for s in summaries])),
        int(round(float(np.mean([s.valid_queries for s in summaries])))),
        int(round(float(np.mean([s.queries for s in summaries])))),
    )


def aggregate_rows(name: str, rows: list[MetricRow], weight: str) -> MetricRow:
    """Aggregate scenario rows: weighted by valid queries (``weight = "valid"``) or equally."""
    valid = np.array([r.valid_queries for r in rows], dtype=np.float64)
    if weight == "valid":
        w = valid / valid.sum() if valid.sum() > 0 else np.zeros(len(rows))
    else:
        w = np.full(len(rows), 1.0 / len(rows))
    return MetricRow(
        name,
        np.sum([wi * r.cmc for wi, r in zip(w, rows, strict=True)], axis=0),
        float(sum(wi * r.mAP for wi, r in zip(w, rows, strict=True))),
        float(sum(wi * r.mINP for wi, r in zip(w, rows, strict=True))),
        int(valid.sum()),
        sum(r.queries for r in rows),
    )
