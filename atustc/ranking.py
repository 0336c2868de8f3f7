"""The ranking core: exact CMC, mAP and mINP on a query x gallery score matrix.

This module knows nothing of datasets or protocols. A query ``q`` and a gallery entry ``g`` are
a *match* when they share the identity label; a boolean *junk* mask removes pairs from the
ranking altogether (they are neither matches nor distractors). What remains for a query is its
kept list, ranked by decreasing score.

Rules (the official AT-ReID / torchreid rules, reference §4):

* rank every kept gallery entry by score, highest first;
* ``CMC@k`` = 1 when a match is among the first ``k`` kept entries (cumulative sum of matches
  clipped to 1), averaged over valid queries, for ``k = 1 .. 20``; a query with fewer than 20 kept
  entries counts as padded with non-matches;
* ``AP`` = mean over all kept matches of precision at that match's rank;
* ``INP`` = (number of kept matches) / (rank of the hardest kept match);
* a query without any kept match is *invalid*: it is dropped from every mean and counted.

**Ties** are broken by a stable order: at equal scores the gallery entry with the smaller
gallery index ranks first (what ``np.argsort(-scores, kind="stable")`` gives). Scores are
compared as float32 and ``-0.0 == 0.0``.

**How it is computed.** Only the ranks of the matches matter, so there is no sort of the gallery
(:mod:`atustc.rankblock`). Features are scored for blocks of queries, one matrix product each into
a reused buffer (:mod:`atustc.pairscores`), and each block is ranked in chunks, so memory stays
bounded by ``block x gallery`` whatever the number of queries. The result types are in
:mod:`atustc.rankmetrics`.

**Per-query lists.** With ``top_k`` the core also returns, per query, its ``top_k`` best kept
gallery entries and, in place, the junk entries that score above the last of them (at most
``top_k``; the highest are kept), each labelled :data:`POSITIVE`, :data:`NEGATIVE` or
:data:`JUNK`. This path is only taken when asked for; the metrics path is unchanged.

**Other scores.** :func:`rank_chunks` ranks scores produced chunk by chunk by any function (e.g.
re-ranked distances, :mod:`atustc.rerank`) under the same exact rules.

Example:
    >>> import torch
    >>> scores = torch.tensor([[0.9, 0.8, 0.7, 0.1]])
    >>> m = rank_scores(scores, torch.tensor([1]), torch.tensor([2, 1, 3, 1]))
    >>> int(m.first_rank[0]), round(float(m.ap[0]), 4), float(m.inp[0])
    (2, 0.5, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from atustc.errors import AtustcError
from atustc.pairscores import check_features, pair_scores
from atustc.rankblock import PairJunk, order_keys, rank_block
from atustc.rankmetrics import JUNK, MAX_RANK, NEGATIVE, POSITIVE, QueryMetrics, Summary, summarize

__all__ = [
    "CHUNK_CELLS",
    "JUNK",
    "MAX_RANK",
    "NEGATIVE",
    "POSITIVE",
    "SCORE_CELLS",
    "Metric",
    "PairJunk",
    "QueryMetrics",
    "Summary",
    "check_features",
    "chunk_rows",
    "order_keys",
    "pair_scores",
    "rank_block",
    "rank_chunks",
    "rank_features",
    "rank_scores",
    "same_identity_pairs",
    "score_rows",
    "summarize",
]

#: Target number of query x gallery cells per ranking chunk (memory: ~30 bytes per cell at most).
CHUNK_CELLS = 1 << 22
#: Target number of cells of one scored block of :func:`rank_features` (one matrix product into
#: a reused float32 buffer, 256 MB; ranked chunk by chunk). Each product re-reads and re-packs the
#: whole gallery, so short blocks waste BLAS time: at MSMT17 size (82,161 x 2,048-d gallery, 2
#: threads, AVX2) 204-row blocks ran at 27 GFLOP per CPU-second, 408 at 28-29, 816 (this size) at
#: 31, 1,632 at 31.5 (benchmarks/README.md, issue 13); a row's scores had the same bits whatever the block.
SCORE_CELLS = 1 << 26

Metric = Literal["cosine", "euclidean"]


def _check_gallery_index(gallery_index: torch.Tensor | None, n_gallery: int) -> torch.Tensor:
    if gallery_index is None:
        return torch.arange(n_gallery, dtype=torch.int64)
    gi = torch.as_tensor(gallery_index, dtype=torch.int64)
    if gi.shape != (n_gallery,):
        raise AtustcError(f"gallery_index must have shape ({n_gallery},), got {tuple(gi.shape)}")
    if n_gallery and (int(gi.min()) < 0 or int(gi.max()) >= 1 << 32):
        raise AtustcError("gallery_index values must lie in [0, 2**32)")
    return gi


def rank_scores(
    scores: torch.Tensor,
    q_pid: torch.Tensor,
    g_pid: torch.Tensor,
    junk: torch.Tensor | None = None,
    gallery_index: torch.Tensor | None = None,
) -> QueryMetrics:
    """Exact per-query metrics of a full ``[Q, G]`` score matrix (higher = better).

    Args:
        scores: ``[Q, G]`` similarity scores (use ``-distance`` for a distance).
        q_pid: ``[Q]`` query identity labels.
        g_pid: ``[G]`` gallery identity labels.
        junk: optional bool ``[Q, G]``; True removes the pair.
        gallery_index: optional ``[G]`` tie-break order (default ``0..G-1``).

    Returns:
        Per-query results.

    Raises:
        AtustcError: shapes disagree or a score is NaN or infinite.
    """
    scores = torch.as_tensor(scores)
    q_pid, g_pid = torch.as_tensor(q_pid), torch.as_tensor(g_pid)
    if scores.ndim != 2 or scores.shape != (len(q_pid), len(g_pid)):
        raise AtustcError(f"scores must be [Q, G] = [{len(q_pid)}, {len(g_pid)}], got {tuple(scores.shape)}")
    if junk is not None and junk.shape != scores.shape:
        raise AtustcError(f"junk mask must have shape {tuple(scores.shape)}, got {tuple(junk.shape)}")
    if not torch.isfinite(scores).all():
        raise AtustcError("scores contain NaN or infinite values")
    gi = _check_gallery_index(gallery_index, scores.shape[1])
    rows, cols = (q_pid[:, None] == g_pid[None, :]).nonzero(as_tuple=True)
    lookup = None if junk is None else (lambda r, c: junk.to(torch.bool)[r, c])
    return rank_block(scores.to(torch.float32), gi, rows, cols, lookup, lookup)


def same_identity_pairs(q_pid: torch.Tensor, g_pid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All (query, gallery) pairs with equal identity, row-major, without a dense comparison.

    Args:
        q_pid: ``[Q]`` query identities.
        g_pid: ``[G]`` gallery identities.

    Returns:
        ``(rows, cols)`` int64 tensors.
    """
    order = torch.argsort(g_pid, stable=True)
    sorted_pid = g_pid[order].contiguous()
    start = torch.searchsorted(sorted_pid, q_pid.contiguous())
    counts = torch.searchsorted(sorted_pid, q_pid.contiguous(), right=True) - start
    rows = torch.repeat_interleave(torch.arange(len(q_pid)), counts)
    within = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return rows, order[start[rows] + within]


def chunk_rows(n_query: int, n_gallery: int, chunk_size: int | None = None) -> list[slice]:
    """Balanced query chunks of about ``CHUNK_CELLS / n_gallery`` rows (or ``chunk_size``)."""
    if n_query == 0:
        return []
    target = chunk_size or max(1, CHUNK_CELLS // max(n_gallery, 1))
    n_chunks = math.ceil(n_query / target)
    size = math.ceil(n_query / n_chunks)
    return [slice(a, min(a + size, n_query)) for a in range(0, n_query, size)]


def _shift(fn: PairJunk | None, start: int) -> PairJunk | None:
    """``fn`` on chunk-local query indices."""
    return None if fn is None else (lambda r, c: fn(r + start, c))


def rank_features(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pid: torch.Tensor,
    g_pid: torch.Tensor,
    *,
    junk_same: PairJunk | None = None,
    junk_other: PairJunk | None = None,
    metric: Metric = "cosine",
    gallery_index: torch.Tensor | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    overwrite: bool = False,
    normalized: bool = False,
    top_k: int | None = None,
) -> QueryMetrics:
    """Exact per-query metrics from features, scored block by block and ranked chunk by chunk.

    Scores are computed for blocks of about :data:`SCORE_CELLS` cells, each one matrix product
    into the same preallocated buffer, and each block is ranked in chunks of about
    :data:`CHUNK_CELLS` cells (or ``chunk_size`` queries, then also the block size), so memory
    stays bounded whatever the number of queries and no ``[Q, G]`` matrix is ever held.

    Args:
        query: ``[Q, D]`` query features.
        gallery: ``[G, D]`` gallery features.
        q_pid: ``[Q]`` query identities.
        g_pid: ``[G]`` gallery identities.
        junk_same: which same-identity pairs are junk (see :data:`PairJunk`; query and gallery
            indices into this call's inputs); None = none.
        junk_other: which different-identity pairs are junk; None = none.
        metric: ``cosine`` (L2-normalise, score ``q.g``) or ``euclidean`` (score ``-|q-g|^2``).
        gallery_index: ``[G]`` tie-break order (default ``0..G-1``).
        chunk_size: queries per chunk (default: about :data:`CHUNK_CELLS` cells per chunk).
        on_chunk: called with the number of queries after each chunk (progress).
        overwrite: the caller's ``gallery`` (float32) may be normalised in place, saving a copy.
        normalized: ``cosine`` only: query and gallery rows are already L2-normalised (by the same
            :func:`torch.nn.functional.normalize`), so they are used as they are.
        top_k: also return each query's top list (see :class:`QueryMetrics`).

    Returns:
        Per-query results, in query order.

    Raises:
        AtustcError: a dimension mismatch, an unknown metric, or non-finite features.
    """
    q, g = check_features(query, gallery, metric)
    cosine = metric == "cosine"
    if cosine and not normalized:
        g = torch.nn.functional.normalize(g, dim=1, out=g if overwrite and g is gallery else None)
    g_sqnorm = None if cosine else (g * g).sum(1)
    rows = score_rows(len(q), len(g), chunk_size)
    buffer = torch.empty((min(rows, len(q)), len(g)), dtype=torch.float32)

    def score_chunk(chunk: slice) -> torch.Tensor:
        q_chunk = q[chunk]
        if cosine and not normalized:
            q_chunk = torch.nn.functional.normalize(q_chunk, dim=1)
        return pair_scores(q_chunk, g, g_sqnorm, buffer[: chunk.stop - chunk.start])

    return rank_chunks(
        score_chunk,
        q_pid,
        g_pid,
        junk_same=junk_same,
        junk_other=junk_other,
        gallery_index=gallery_index,
        chunk_size=chunk_size,
        on_chunk=on_chunk,
        top_k=top_k,
        block_rows=rows,
    )


def score_rows(n_query: int, n_gallery: int, chunk_size: int | None = None) -> int:
    """Query rows of one scored block: about :data:`SCORE_CELLS` cells, at least a ranking chunk (``chunk_size`` when given)."""
    return max(1, chunk_size or max(SCORE_CELLS, CHUNK_CELLS) // max(n_gallery, 1))


def rank_chunks(
    score_chunk: Callable[[slice], torch.Tensor],
    q_pid: torch.Tensor,
    g_pid: torch.Tensor,
    *,
    junk_same: PairJunk | None = None,
    junk_other: PairJunk | None = None,
    gallery_index: torch.Tensor | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    top_k: int | None = None,
    block_rows: int | None = None,
) -> QueryMetrics:
    """Exact per-query metrics of scores produced block by block (higher = better).

    Args:
        score_chunk: ``score_chunk(rows)`` returns the ``[len(rows), G]`` scores of the queries
            in the slice ``rows`` (finite values); the result is only read until the next call.
        q_pid: ``[Q]`` query identities.
        g_pid: ``[G]`` gallery identities.
        junk_same, junk_other, gallery_index, chunk_size, on_chunk, top_k: as in
            :func:`rank_features`.
        block_rows: ask ``score_chunk`` for consecutive ranking chunks together, up to this many
            rows (default: one ranking chunk per call).

    Returns:
        Per-query results, in query order.
    """
    q_pid, g_pid = torch.as_tensor(q_pid), torch.as_tensor(g_pid)
    gi = _check_gallery_index(gallery_index, len(g_pid))
    rows, cols = same_identity_pairs(q_pid, g_pid)
    chunks = chunk_rows(len(q_pid), len(g_pid), chunk_size)
    bounds = torch.searchsorted(rows, torch.tensor([ch.start for ch in chunks] + [len(q_pid)]))
    parts = []
    block, block_start = None, 0
    for k, chunk in enumerate(chunks):
        if block is None or chunk.stop > block_start + len(block):
            stop = chunk.stop
            for later in chunks[k + 1 :]:  # whole ranking chunks, up to block_rows rows
                if later.stop - chunk.start > (block_rows or 0):
                    break
                stop = later.stop
            block, block_start = score_chunk(slice(chunk.start, stop)).to(torch.float32), chunk.start
        a, b = int(bounds[k]), int(bounds[k + 1])
        parts.append(
            rank_block(
                block[chunk.start - block_start : chunk.stop - block_start],
                gi,
                rows[a:b] - chunk.start,
                cols[a:b],
                _shift(junk_same, chunk.start),
                _shift(junk_other, chunk.start),
                top_k,
            )
        )
        if on_chunk is not None:
            on_chunk(chunk.stop - chunk.start)
    return QueryMetrics.concat(parts) if parts else QueryMetrics.empty(0, top_k)
