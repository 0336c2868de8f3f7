"""Exact metrics of one block of queries against a gallery, without sorting the gallery.

Only the ranks of the matches matter. Each score and its gallery index are packed into one int64
key that orders exactly like the stable ranking (:func:`order_keys`). A distractor can only
outrank a match if it scores at least the query's lowest match score, so only those
*candidates* are looked at: each is placed among the (few) sorted match keys of its query, and a
histogram of those places gives, for every match, how many distractors outrank it. Same-identity
pairs come in as lists (from :func:`atustc.ranking.same_identity_pairs`, no dense comparison),
and junk rules are evaluated only on same-identity pairs and on candidates. When a query has
many candidates (a weak model) the same computation runs densely over the block.

The rules (ranks, AP, INP, ties, invalid queries) are those of :mod:`atustc.ranking`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from atustc.rankmetrics import JUNK, NEGATIVE, POSITIVE, QueryMetrics

#: ``junk(q_index, g_index) -> bool``: True where the (query, gallery) pair is junk. The two index
#: tensors broadcast against each other (``[M]`` and ``[M]`` for a list of pairs, ``[c, 1]`` and
#: ``[1, G]`` for a block), and the result has their broadcast shape.
PairJunk = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_INT64_MAX = torch.iinfo(torch.int64).max
_INT64_MIN = torch.iinfo(torch.int64).min


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

    Computed from each query's ``2 * top_k`` highest entries, which is exact when they hold
    ``top_k`` kept ones: the junk above the ``top_k``-th kept entry is then among them, and at
    most ``top_k``. Junk rules run on those pairs only. A block where some query lacks them
    (much junk near the top, a short gallery) is computed from all its entries.

    Returns:
        ``(index, label)``: int64 and int8 ``[c, 2 * top_k]``, -1 padded (see :class:`QueryMetrics`).
    """
    c, n_gallery = scores.shape
    k = min(top_k, n_gallery)
    if not 0 < 2 * k < n_gallery:
        return _top_lists_full(scores, gallery_index, same_rows, same_cols, junk_same, junk_other, top_k)
    short_idx = order_keys(scores, gallery_index[None, :]).topk(2 * k, dim=1).indices  # rank order
    r, g = torch.arange(c).repeat_interleave(2 * k), short_idx.reshape(-1)
    pair, same = r * n_gallery + g, same_rows * n_gallery + same_cols  # same: ascending (row-major)
    pos = torch.zeros(r.numel(), dtype=torch.bool)
    if same.numel():
        pos = same[torch.searchsorted(same, pair).clamp_(max=same.numel() - 1)] == pair
    junk = junk_other(r, g).clone() if junk_other is not None else torch.zeros_like(pos)
    junk[pos] = junk_same(r[pos], g[pos]) if junk_same is not None and bool(pos.any()) else False
    junk, pos = junk.view(c, 2 * k), pos.view(c, 2 * k)
    kept = ~junk
    kept_before = kept.cumsum(1) - kept.long()
    if not bool((kept_before[:, -1] + kept[:, -1].long() >= k).all()):
        return _top_lists_full(scores, gallery_index, same_rows, same_cols, junk_same, junk_other, top_k)
    hidden = kept_before >= k  # after the k-th kept entry
    return _padded_lists(short_idx, junk, pos, hidden, top_k)


def _top_lists_full(
    scores: torch.Tensor,
    gallery_index: torch.Tensor,
    same_rows: torch.Tensor,
    same_cols: torch.Tensor,
    junk_same: PairJunk | None,
    junk_other: PairJunk | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_lists` from the whole block (every entry of every query)."""
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
    return _padded_lists(index, junk.gather(1, index), pos.gather(1, index), merged_keys == _INT64_MIN, top_k)


def _padded_lists(
    index: torch.Tensor, junk: torch.Tensor, pos: torch.Tensor, empty: torch.Tensor, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``[c, 2 * top_k]`` index and label arrays of lists ``index`` (junk and pos aligned with
    it), ``empty`` entries and the columns past ``index`` set to -1."""
    c, width = index.shape
    label = torch.where(junk, JUNK, torch.where(pos, POSITIVE, NEGATIVE)).to(torch.int8)
    out_index = torch.full((c, 2 * top_k), -1, dtype=torch.int64)
    out_label = torch.full((c, 2 * top_k), -1, dtype=torch.int8)
    out_index[:, :width] = index.masked_fill(empty, -1)
    out_label[:, :width] = label.masked_fill(empty, -1)
    return out_index.numpy(), out_label.numpy()
