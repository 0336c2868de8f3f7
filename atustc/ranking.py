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

**How it is computed.** Only the ranks of the matches matter, so there is no sort of the gallery.
Each score and its gallery index are packed into one int64 key that orders exactly like the
stable ranking. A distractor can only outrank a match if it scores at least the query's lowest
match score, so only those *candidates* are looked at: each is placed among the (few) sorted
match keys of its query, and a histogram of those places gives, for every match, how many
distractors outrank it. Same-identity pairs are found from the identity labels without a dense
comparison, and junk rules are evaluated only on same-identity pairs and on candidates. When a
query has many candidates (a weak model) the same computation runs densely over the chunk.
Queries are processed in chunks, so memory stays bounded by ``chunk x gallery`` whatever the
number of queries.

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
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from atustc.errors import AtustcError

#: CMC is computed for ranks 1..MAX_RANK.
MAX_RANK = 20
#: Target number of query x gallery cells per ranking chunk (memory: ~30 bytes per cell at most).
CHUNK_CELLS = 1 << 22
#: Target number of cells of one scored block of :func:`rank_features` (one matrix product into
#: a reused float32 buffer, 64 MB; ranked chunk by chunk): a product of a few hundred query rows
#: runs near the BLAS peak, one of ~50 rows at a fraction of it (the gallery is re-read each time).
SCORE_CELLS = 1 << 24

Metric = Literal["cosine", "euclidean"]
#: ``junk(q_index, g_index) -> bool``: True where the (query, gallery) pair is junk. The two index
#: tensors broadcast against each other (``[M]`` and ``[M]`` for a list of pairs, ``[c, 1]`` and
#: ``[1, G]`` for a block), and the result has their broadcast shape.
PairJunk = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_INT64_MAX = torch.iinfo(torch.int64).max
_INT64_MIN = torch.iinfo(torch.int64).min


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


_FIELDS = ("n_pos", "first_rank", "ap", "inp")
#: Labels of :attr:`QueryMetrics.top_label`.
NEGATIVE, POSITIVE, JUNK = 0, 1, 2


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


def order_keys(scores: torch.Tensor, gallery_index: torch.Tensor) -> torch.Tensor:
    """Pack float32 scores and gallery indices into int64 keys that order like the stable ranking.

    A larger key ranks first: higher score, then (at equal scores) smaller gallery index. Keys of
    one query are all distinct.

    Args:
        scores: scores of any shape (cast to float32).
        gallery_index: int64 gallery indices in ``[0, 2**32)``, broadcastable to ``scores``.

    Returns:
        int64 keys of the broadcast shape.
    """
    bits = (scores.to(torch.float32) + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0
    # IEEE-754 bits order like the value for positives; for negatives, flip the magnitude bits.
    keys = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).to(torch.int64)
    return keys.bitwise_left_shift_(32).bitwise_or_((1 << 32) - 1 - gallery_index)


#: A chunk goes dense when candidates exceed this fraction of its cells.
_DENSE_FRACTION = 1 / 16
#: Candidate x match comparisons per step of the sparse path.
_SPARSE_STEP = 1 << 22


def rank_block(
    scores: torch.Tensor,
    gallery_index: torch.Tensor,
    same_rows: torch.Tensor,
    same_cols: torch.Tensor,
    junk_same: PairJunk | None = None,
    junk_other: PairJunk | None = None,
    top_k: int | None = None,
) -> QueryMetrics:
    """Exact metrics of a block of queries.

    Args:
        scores: ``[c, G]`` scores (higher = better).
        gallery_index: int64 ``[G]`` tie-break order.
        same_rows: row of every same-identity pair, in row-major order (``[M]``).
        same_cols: column of every same-identity pair (``[M]``).
        junk_same: which same-identity pairs are junk (block-local indices); None = none.
        junk_other: which other pairs are junk (block-local indices, broadcasting); None = none.
        top_k: also return each query's top list (see :class:`QueryMetrics`).

    Returns:
        The per-query results of the ``c`` queries.
    """
    qm = _rank_block(scores, gallery_index, same_rows, same_cols, junk_same, junk_other)
    if top_k is None:
        return qm
    index, label = top_lists(scores, gallery_index, same_rows, same_cols, junk_same, junk_other, top_k)
    return QueryMetrics(qm.n_pos, qm.first_rank, qm.ap, qm.inp, index, label)


def _rank_block(
    scores: torch.Tensor,
    gallery_index: torch.Tensor,
    same_rows: torch.Tensor,
    same_cols: torch.Tensor,
    junk_same: PairJunk | None,
    junk_other: PairJunk | None,
) -> QueryMetrics:
    c, n_gallery = scores.shape
    keep = ~junk_same(same_rows, same_cols) if junk_same is not None and same_rows.numel() else None
    pr, pc = (same_rows, same_cols) if keep is None else (same_rows[keep], same_cols[keep])
    n_pos = torch.bincount(pr, minlength=c)
    p_max = int(n_pos.max()) if c else 0
    if p_max == 0:
        return QueryMetrics.empty(c)
    pos_scores = scores[pr, pc]
    # Sorted (ascending) match keys per query, padded at the end with INT64_MAX.
    slot = torch.arange(pr.numel()) - (torch.cumsum(n_pos, 0) - n_pos)[pr]
    pos_keys = torch.full((c, p_max), _INT64_MAX, dtype=torch.int64)
    pos_keys[pr, slot] = order_keys(pos_scores, gallery_index[pc])
    pos_keys = pos_keys.sort(dim=1).values
    # Candidates: other pairs scoring at least the query's lowest match.
    lowest = torch.full((c,), float("inf")).scatter_reduce_(0, pr, pos_scores.to(torch.float32), "amin")
    cand = scores >= lowest[:, None]
    cand[same_rows, same_cols] = False
    offsets = torch.arange(c) * (p_max + 1)
    if int(cand.count_nonzero()) > _DENSE_FRACTION * c * n_gallery:
        if junk_other is not None:
            cand &= ~junk_other(torch.arange(c)[:, None], torch.arange(n_gallery)[None, :])
        # beaten = how many matches each candidate outranks (matches with a smaller key)
        beaten = torch.searchsorted(pos_keys, order_keys(scores, gallery_index[None, :]))
        beaten.masked_fill_(~cand, 0)  # bucket 0 outranks nothing: a harmless dump
        buckets = beaten.add_(offsets[:, None]).view(-1)
    else:
        flat = torch.from_numpy(np.flatnonzero(cand.numpy()))  # much faster than torch.nonzero on CPU
        nr, nc = flat // n_gallery, flat % n_gallery
        if junk_other is not None and nr.numel():
            kept = ~junk_other(nr, nc)
            nr, nc = nr[kept], nc[kept]
        cand_keys = order_keys(scores[nr, nc], gallery_index[nc])
        step = max(1, _SPARSE_STEP // p_max)
        beaten = torch.cat(
            [(pos_keys[nr[a : a + step]] < cand_keys[a : a + step, None]).sum(1) for a in range(0, nr.numel(), step)]
            or [torch.zeros(0, dtype=torch.int64)]
        )
        buckets = beaten + offsets[nr]
    hist = torch.bincount(buckets, minlength=c * (p_max + 1)).view(c, p_max + 1)
    # Match i (i-th smallest key) is outranked by candidates in buckets i+1.. and by n_pos-1-i matches.
    above = hist[:, 1:].flip(1).cumsum(1).flip(1)
    i = torch.arange(p_max)[None, :]
    is_pos = i < n_pos[:, None]
    rank = (1 + above + (n_pos[:, None] - 1 - i)).to(torch.float64)
    hits = (n_pos[:, None] - i).to(torch.float64)  # matches at or above match i
    ap = torch.where(is_pos, hits / rank, 0.0).sum(1) / n_pos.clamp(min=1)
    first = rank.gather(1, (n_pos - 1).clamp(min=0)[:, None])[:, 0].to(torch.int64)
    inp = n_pos / rank[:, 0]
    valid = n_pos > 0
    return QueryMetrics(
        n_pos=n_pos.numpy().astype(np.int64),
        first_rank=torch.where(valid, first, 0).numpy(),
        ap=torch.where(valid, ap, 0.0).numpy(),
        inp=torch.where(valid, inp, 0.0).numpy(),
    )


def top_lists(
    scores: torch.Tensor,
    gallery_index: torch.Tensor,
    same_rows: torch.Tensor,
    same_cols: torch.Tensor,
    junk_same: PairJunk | None,
    junk_other: PairJunk | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``top_k`` best kept entries with the junk ranked among them, in rank order.

    Junk entries are listed where they would rank (above the ``top_k``-th kept entry; at most
    ``top_k`` of them, the highest) but do not take a kept entry's place.

    Returns:
        ``(index, label)``: int64 and int8 ``[c, 2 * top_k]``, -1 padded (see :class:`QueryMetrics`).
    """
    c, n_gallery = scores.shape
    k = min(top_k, n_gallery)
    keys = order_keys(scores, gallery_index[None, :])
    junk = torch.zeros((c, n_gallery), dtype=torch.bool)
    if junk_other is not None:
        junk = junk_other(torch.arange(c)[:, None], torch.arange(n_gallery)[None, :]).clone()
    pos = torch.zeros((c, n_gallery), dtype=torch.bool)
    pos[same_rows, same_cols] = True
    junk[same_rows, same_cols] = False
    if junk_same is not None and same_rows.numel():
        bad = junk_same(same_rows, same_cols)
        junk[same_rows[bad], same_cols[bad]] = True
    kept_keys, kept_idx = keys.masked_fill(junk, _INT64_MIN).topk(k, dim=1)
    junk_keys, junk_idx = keys.masked_fill(~junk, _INT64_MIN).topk(k, dim=1)
    # The last kept key of a full list bounds the junk shown; a short list shows every junk entry.
    bound = torch.where(kept_keys[:, -1:] == _INT64_MIN, _INT64_MIN, kept_keys[:, -1:]) if k else kept_keys
    junk_keys = junk_keys.masked_fill(junk_keys <= bound, _INT64_MIN)
    merged_keys, order = torch.cat([kept_keys, junk_keys], 1).sort(dim=1, descending=True)
    index = torch.cat([kept_idx, junk_idx], 1).gather(1, order)
    label = torch.where(junk.gather(1, index), JUNK, torch.where(pos.gather(1, index), POSITIVE, NEGATIVE))
    empty = merged_keys == _INT64_MIN
    out_index = torch.full((c, 2 * top_k), -1, dtype=torch.int64)
    out_label = torch.full((c, 2 * top_k), -1, dtype=torch.int8)
    out_index[:, : 2 * k] = index.masked_fill(empty, -1)
    out_label[:, : 2 * k] = label.to(torch.int8).masked_fill(empty, -1)
    return out_index.numpy(), out_label.numpy()


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


def pair_scores(
    q: torch.Tensor, g: torch.Tensor, g_sqnorm: torch.Tensor | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``q @ g.T`` into ``out`` (``[len(q), G]``, allocated when None); with ``g_sqnorm`` the negated squared
    distance, in place."""
    if out is None:
        out = torch.empty(len(q), len(g), dtype=q.dtype, device=q.device)
    torch.mm(q, g.T, out=out)
    if g_sqnorm is None:
        return out
    # -(|q|^2 - 2 q.g + |g|^2), in place and with the same roundings: -2 s + |q|^2 == |q|^2 - 2 s.
    return out.mul_(-2).add_((q * q).sum(1, keepdim=True)).add_(g_sqnorm[None, :]).neg_()


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


def check_features(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate query/gallery features and a metric; return them as float32 (no copy if already).

    Raises:
        AtustcError: a dimension mismatch, an unknown metric, or non-finite features.
    """
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise AtustcError(f"feature dimension mismatch: query {tuple(query.shape)} vs gallery {tuple(gallery.shape)}")
    if metric not in ("cosine", "euclidean"):
        raise AtustcError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    q, g = query.to(torch.float32), gallery.to(torch.float32)
    # A row sum is non-finite when any entry is NaN or infinite (or the row overflows): one cheap pass.
    if not (torch.isfinite(q.sum(1)).all() and torch.isfinite(g.sum(1)).all()):
        raise AtustcError("features contain NaN or infinite values")
    return q, g


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
