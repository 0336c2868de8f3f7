"""Rank one run of a scenario (its query rows against its gallery rows), by modality block where the rules allow.

A scope-``all`` modality rule splits the ranking into modality blocks (a DT scenario ranks only
RGB queries against the RGB gallery; AD ranks RGB queries against the IR gallery and IR queries
against the RGB gallery), which gives exactly the numbers of the full matrix. Queries that meet
no gallery block are invalid, as in the full matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from atustc.rankmetrics import QueryMetrics

if TYPE_CHECKING:
    import torch

    from atustc.protocol import Scenario

#: ``hook(query_feat [Q, D], gallery_feat [G, D], metric) -> score_chunk``: replaces the score
#: matrix of one ranked block; ``score_chunk(rows)`` gives the ``[len(rows), G]`` scores (higher =
#: better), see :func:`atustc.ranking.rank_chunks`.
ScoreHook = Callable[["torch.Tensor", "torch.Tensor", str], Callable[[slice], "torch.Tensor"]]


def rank_run(
    scenario: Scenario,
    q_rows: np.ndarray,
    g_rows: np.ndarray,
    feat: np.ndarray,
    fpos: np.ndarray,
    labels: dict[str, torch.Tensor],
    metric: str,
    chunk_size: int | None,
    advance: Callable[[int], None],
    top_k: int | None = None,
    scores: ScoreHook | None = None,
    normalized: bool = False,
    shared: Callable[[np.ndarray, np.ndarray], Callable[[slice], torch.Tensor]] | None = None,
) -> QueryMetrics:
    """Rank one (query rows, gallery rows) run of a scenario, block by modality where the rules allow.

    With ``top_k``, the top lists hold table row indices (-1 = padding). ``normalized``: the
    features are already L2-normalised (cosine). ``shared`` gives the scores of (query rows,
    gallery rows) from a matrix computed once for a sampled scenario
    (:class:`atustc.poolscores.PoolScores`).
    """
    import torch

    from atustc.querycounts import modality_blocks
    from atustc.ranking import rank_chunks, rank_features

    split = any(r.splits_by_modality for r in scenario.junk)
    modality = labels["modality"].numpy()
    blocks = modality_blocks(scenario, modality[q_rows], modality[g_rows])
    out: QueryMetrics = QueryMetrics.empty(q_rows.size, top_k)
    for qsel, gsel in blocks:
        qi, gi = q_rows[qsel], g_rows[gsel]
        ql = {k: v[qi] for k, v in labels.items()}
        gl = {k: v[gi] for k, v in labels.items()}
        junk_same, junk_other = scenario.compile_junk(ql, gl, skip_modality_blocks=split)
        common = dict(
            junk_same=junk_same,
            junk_other=junk_other,
            gallery_index=torch.from_numpy(gsel.astype(np.int64)),
            chunk_size=chunk_size,
            on_chunk=advance,
            top_k=top_k,
        )
        if shared is not None:
            qm = rank_chunks(shared(qi, gi), ql["pid"], gl["pid"], **common)  # type: ignore[arg-type]
        else:
            (qf, _), (gf, g_copied) = feature_block(feat, fpos[qi]), feature_block(feat, fpos[gi])
            if scores is None:
                # overwrite: only a gathered gallery is this call's own copy
                qm = rank_features(
                    qf, gf, ql["pid"], gl["pid"], metric=metric, overwrite=g_copied, normalized=normalized, **common
                )  # type: ignore[arg-type]
            else:
                qm = rank_chunks(scores(qf, gf, metric), ql["pid"], gl["pid"], **common)  # type: ignore[arg-type]
        if top_k is not None:
            qm.top_index[:] = np.where(qm.top_index >= 0, gi[np.maximum(qm.top_index, 0)], -1)
        qm.scatter(out, qsel)
    skipped = q_rows.size - sum(q.size for q, _ in blocks)
    if skipped:
        advance(skipped)
    return out


def feature_block(feat: np.ndarray, pos: np.ndarray) -> tuple[torch.Tensor, bool]:
    """The feature rows ``pos`` as a tensor, and whether it is a copy (a view when they are consecutive)."""
    import torch

    if pos.size and int(pos[-1]) - int(pos[0]) == pos.size - 1 and bool((np.diff(pos) == 1).all()):
        return torch.from_numpy(feat[int(pos[0]) : int(pos[-1]) + 1]), False
    return torch.from_numpy(feat[pos]), True
