"""Score matrices shared by the sampled runs of a protocol: query pool x gallery pool, computed once.

Gallery sampling (SYSU-MM01, LLCM, PRCC single-shot) ranks the same queries against many
galleries drawn from one pool: 10 trials of single- and multi-shot, all-search and indoor. Each
draw is a column subset of the query x pool score matrix, so the matrix is computed once (the
feature product is nearly all the work) and every run ranks its columns, through the same
exact ranking core (:func:`atustc.ranking.rank_chunks`). A pool that is a subset of one already
scored (indoor inside all-search) reuses that matrix. Matrices are kept only while they fit in
:data:`MAX_CELLS` cells in all; past that a run scores its own gallery as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

#: float32 cells kept in all (512 MB).
MAX_CELLS = 1 << 27


@dataclass
class _Entry:
    head: int
    query: np.ndarray  # sorted table rows
    gallery: np.ndarray  # sorted table rows
    scores: torch.Tensor  # [len(query), len(gallery)] float32


class PoolScores:
    """Query x pool scores of one evaluation, by head (the protocol's metric, as the ranking core scores)."""

    def __init__(
        self, feat: np.ndarray, fpos: np.ndarray, metric: str, max_cells: int | None = None, normalized: bool = False
    ) -> None:
        """``normalized``: ``cosine`` only, the rows of ``feat`` are already L2-normalised (as
        :func:`atustc.evaluate.evaluate` does with ``in_place``), so they are used as they are."""
        self.feat, self.fpos, self.metric, self.normalized = feat, fpos, metric, normalized
        self.left = MAX_CELLS if max_cells is None else max_cells
        self.entries: list[_Entry] = []

    def scorer(
        self, head: int, query: np.ndarray, pool: np.ndarray
    ) -> Callable[[np.ndarray, np.ndarray], Callable[[slice], torch.Tensor]] | None:
        """For a sampled run: ``(query rows, gallery rows) -> score_chunk`` over a kept matrix, or None if it does not fit."""
        entry = next(
            (
                e
                for e in self.entries
                if e.head == head and np.array_equal(e.query, query) and np.isin(pool, e.gallery).all()
            ),
            None,
        )
        if entry is None:
            if query.size * pool.size > self.left:
                return None
            entry = _Entry(head, query, pool, self._score(head, query, pool))
            self.entries.append(entry)
            self.left -= query.size * pool.size

        def make(qi: np.ndarray, gi: np.ndarray) -> Callable[[slice], torch.Tensor]:
            qpos = np.searchsorted(entry.query, qi)
            gpos = torch.from_numpy(np.searchsorted(entry.gallery, gi))
            if qpos.size and qpos[-1] - qpos[0] + 1 == qpos.size:  # contiguous rows: a view, then the columns
                first = int(qpos[0])
                return lambda rows: entry.scores[first + rows.start : first + rows.stop].index_select(1, gpos)
            rows_of = torch.from_numpy(qpos)
            return lambda rows: entry.scores.index_select(0, rows_of[rows]).index_select(1, gpos)

        return make

    def _score(self, head: int, query: np.ndarray, pool: np.ndarray) -> torch.Tensor:
        from atustc.pairscores import check_features, pair_scores

        q, g = check_features(
            torch.from_numpy(self.feat[self.fpos[query], head]),
            torch.from_numpy(self.feat[self.fpos[pool], head]),
            self.metric,
        )
        if self.metric == "cosine":
            if not self.normalized:
                q, g = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(g, dim=1)
            return pair_scores(q, g, None)
        return pair_scores(q, g, (g * g).sum(1))
