"""Per-query ranking results and their averages: :class:`QueryMetrics`, :class:`Summary`, :func:`summarize`.

What the ranking core (:mod:`atustc.ranking`) returns for each query, and the means over the
valid queries that a result row reports (the official AT-ReID / torchreid rules: CMC, mAP and
mINP averaged over queries with at least one kept match; kw66/AT-ReID ``others/test.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: CMC is computed for ranks 1..MAX_RANK.
MAX_RANK = 20
#: Labels of :attr:`QueryMetrics.top_label`.
NEGATIVE, POSITIVE, JUNK = 0, 1, 2
_FIELDS = ("n_pos", "first_rank", "ap", "inp")


@dataclass(frozen=True)
class QueryMetrics:
    """Per-query results, in query order.

    Attributes:
        n_pos: number of kept matches (0 = invalid query), int64 ``[Q]``.
        first_rank: 1-based rank of the best kept match among kept entries (0 if invalid).
        ap: average precision (0 if invalid), float64 ``[Q]``.
        inp: inverse negative penalty (0 if invalid), float64 ``[Q]``.
        top_index: with ``top_k`` only: int64 ``[Q, 2 * top_k]``, gallery indices of the top list
            in rank order (kept entries and the junk among them), -1 padded; else None.
        top_label: with ``top_k`` only: int8 ``[Q, 2 * top_k]``, :data:`POSITIVE`,
            :data:`NEGATIVE`, :data:`JUNK` or -1 (padding); else None.
    """

    n_pos: np.ndarray
    first_rank: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    top_index: np.ndarray | None = None
    top_label: np.ndarray | None = None

    @property
    def valid(self) -> np.ndarray:
        """Boolean ``[Q]``: queries with at least one kept match."""
        return self.n_pos > 0

    @classmethod
    def empty(cls, n: int, top_k: int | None = None) -> QueryMetrics:
        """``n`` invalid queries (with empty top lists of width ``2 * top_k`` when given)."""
        z = np.zeros(n, dtype=np.int64)
        if top_k is None:
            return cls(z, z.copy(), np.zeros(n), np.zeros(n))
        pad = np.full((n, 2 * top_k), -1, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(n), np.zeros(n), pad, pad.astype(np.int8))

    def _fields(self) -> tuple[str, ...]:
        return _FIELDS if self.top_index is None else (*_FIELDS, "top_index", "top_label")

    @classmethod
    def concat(cls, parts: list[QueryMetrics]) -> QueryMetrics:
        """Stack the queries of several results, in order."""
        if not parts:
            return cls.empty(0)
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in parts[0]._fields()})

    def scatter(self, into: QueryMetrics, positions: np.ndarray) -> None:
        """Write these queries' results into ``into`` at ``positions`` (in place)."""
        for f in into._fields():
            getattr(into, f)[positions] = getattr(self, f)


@dataclass(frozen=True)
class Summary:
    """Metrics of one ranking averaged over its valid queries.

    Attributes:
        cmc: float64 ``[MAX_RANK]``, fraction of valid queries with a match within rank k.
        mAP: mean average precision.
        mINP: mean inverse negative penalty.
        valid_queries: number of valid queries.
        queries: number of queries, valid or not.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    valid_queries: int
    queries: int


def summarize(qm: QueryMetrics, max_rank: int = MAX_RANK) -> Summary:
    """Average per-query results over the valid queries (all zeros when none is valid)."""
    valid = qm.valid
    n_valid = int(valid.sum())
    if n_valid == 0:
        return Summary(np.zeros(max_rank), 0.0, 0.0, 0, len(valid))
    first = qm.first_rank[valid]
    cmc = (first[:, None] <= np.arange(1, max_rank + 1)[None, :]).sum(0) / n_valid
    return Summary(cmc, float(qm.ap[valid].mean()), float(qm.inp[valid].mean()), n_valid, len(valid))
