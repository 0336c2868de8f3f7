"""Which queries of a scenario can have a positive at all, and why the others are dropped.

A scope-``all`` modality rule pairs each query modality with gallery modalities (DT: RGB with
RGB; NT: IR with IR; AD: each with the other). A query whose modality meets no gallery image
under that rule can never have a positive: in the AT-USTC protocol the 361 IR queries of the
pooled short-term query set are outside DT-ST. The evaluation table therefore shows
``valid / admitted`` (queries with a positive after junk removal / queries the modality rule
admits) and a footnote with what was dropped, for the reason the official test drops them
(kw66/AT-ReID ``others/test.py``: every scenario is scored on the queries of its modality).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from atustc.protocol import MODALITY_CODE, Protocol, Scenario

if TYPE_CHECKING:
    import pandas as pd

    from atustc.evaluate import MetricRow, ProtocolResult

_MODALITY_NAME = {code: name.upper() for name, code in MODALITY_CODE.items()}


@dataclass(frozen=True)
class QueryCounts:
    """Query counts of one scenario (or the sum over an aggregate's scenarios).

    Attributes:
        queries: queries in the scenario's query pool(s).
        admitted: queries the modality rule pairs with at least one gallery image.
        outside: per modality name (``RGB``/``IR``), the queries the modality rule leaves out.
    """

    queries: int
    admitted: int
    outside: dict[str, int]


def modality_blocks(scenario: Scenario, qmod: np.ndarray, gmod: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(query positions, gallery positions)`` of each block a scenario ranks.

    With a scope-``all`` modality rule, one block per query modality that meets some gallery
    image; otherwise a single block of everything.
    """
    if not any(r.splits_by_modality for r in scenario.junk):
        return [(np.arange(qmod.size), np.arange(gmod.size))]
    blocks = []
    for code in MODALITY_CODE.values():
        qsel = np.flatnonzero(qmod == code)
        gsel = np.flatnonzero(np.isin(gmod, scenario.allowed_gallery_modalities(code)))
        if qsel.size and gsel.size:
            blocks.append((qsel, gsel))
    return blocks


def _scenario_counts(scenario: Scenario, table: pd.DataFrame) -> QueryCounts:
    modality = table["modality"].map(MODALITY_CODE).to_numpy()
    q = modality[scenario.query.select(table)]
    g = modality[scenario.gallery.select(table)]
    directions = [(q, g)] if scenario.directions == "forward" else [(q, g), (g, q)]
    # single-shot gallery sampling keeps every (pid, camera), so it never changes which modalities are there
    queries, admitted, outside = [], [], {name: [] for name in _MODALITY_NAME.values()}
    for qmod, gmod in directions:
        kept = np.zeros(qmod.size, dtype=bool)
        for qsel, _ in modality_blocks(scenario, qmod, gmod):
            kept[qsel] = True
        queries.append(qmod.size)
        admitted.append(int(kept.sum()))
        for code, name in _MODALITY_NAME.items():
            outside[name].append(int((~kept & (qmod == code)).sum()))
    return QueryCounts(_mean(queries), _mean(admitted), {k: _mean(v) for k, v in outside.items() if _mean(v)})


def _mean(values: list[int]) -> int:
    """The rounded mean over directions, as the evaluation averages its runs."""
    return round(float(np.mean(values)))


def query_counts(protocol: Protocol, table: pd.DataFrame) -> dict[str, QueryCounts]:
    """Counts of every scenario of ``protocol`` on ``table``, then of every aggregate (sums)."""
    out = {s.name: _scenario_counts(s, table) for s in protocol.scenarios}
    for a in protocol.aggregates:
        parts = [out[n] for n in a.scenarios]
        outside: dict[str, int] = {}
        for p in parts:
            for k, v in p.outside.items():
                outside[k] = outside.get(k, 0) + v
        out[a.name] = QueryCounts(sum(p.queries for p in parts), sum(p.admitted for p in parts), outside)
    return out


def add_counts(record: dict[str, Any], counts: dict[str, QueryCounts]) -> dict[str, Any]:
    """A result's JSON record with ``admitted_queries`` and ``outside_modality`` added to each row.

    The record's own fields are left as they are (new fields only).
    """
    for group in ("scenarios", "summary"):
        for name, row in record.get(group, {}).items():
            if name in counts:
                c = counts[name]
                row["admitted_queries"] = c.admitted
                row["outside_modality"] = dict(c.outside)
    return record


def dropped_notes(result: ProtocolResult, counts: dict[str, QueryCounts]) -> list[str]:
    """Footnote lines of the evaluation table: what each row dropped from its query pool, and why."""
    rows: dict[str, MetricRow] = {**result.scenarios, **result.summary}
    lines = []
    for name, row in rows.items():
        c = counts.get(name)
        if c is None:
            continue
        parts = [f"{n:,} {m} with no gallery under the modality rule" for m, n in c.outside.items()]
        no_pos = c.admitted - row.valid_queries
        if parts or no_pos:
            parts.append(f"{no_pos:,} with no positive after junk removal")
            pool = "in its scenarios' pools" if name in result.summary else "in the pool"
            lines.append(f"{name}: {c.queries:,} {pool}; " + "; ".join(parts))
    return lines
