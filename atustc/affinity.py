"""SAAI's affinity inference (Fang, Yang & Fu, ICCV 2023; xiaoye-hhh/SAAI ``models/AIM.py``): a
set-dependent re-scoring of each ranked block, like re-ranking (:mod:`atustc.rerank`).

With L2-normalised query and gallery features (whatever the protocol's metric, as the official
code normalises), cosine similarities ``S_qg`` and ``S_gg``:

1. keep each row's ``k1`` largest similarities and zero the rest (``R_qg``, ``R_gg``);
2. replace each gallery row of ``R_gg`` by the mean of the rows of its ``k2`` nearest gallery
   neighbours (itself included, normally first): ``A_g``; the query rows are ``A_q = R_qg``;
3. L2-normalise the rows of ``A_q`` and ``A_g``;
4. score ``= A_q · A_g + cos(q, g)`` (the official distance is its negation).

The official code keeps every entry not below the ``k1``-th largest (ties at the threshold all
stay); here exactly ``k1`` entries are kept, so only exact ties can differ. ``k1`` larger than
the gallery is cut to it, and ``k2`` to ``k1``. The official (k1, k2) are set per protocol
(SYSU-MM01 all-search single-shot (4, 1), multi-shot (20, 6), indoor single-shot (2, 2), RegDB
(8, 2)); the default here is the multi-shot (20, 6), since the AT-USTC galleries hold many images
per person.

**Memory.** Nothing is ``G x G``: the gallery's top-``k1`` lists come from chunked matmuls,
``A_g`` is sparse (at most ``k1·k2`` entries a row), and each query chunk is scored against it
with one sparse-dense product.

Example:
    >>> import torch
    >>> q, g = torch.eye(3)[:1], torch.eye(3)
    >>> AffinityConfig(k1=1, k2=1).scorer(q, g)(slice(0, 1)).argmax().item()
    0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from atustc.errors import AtustcError
from atustc.rerank import CHUNK_CELLS


@dataclass(frozen=True)
class AffinityConfig:
    """Affinity-inference parameters: ``k1`` kept similarities per row, ``k2`` gallery neighbours averaged."""

    k1: int = 20
    k2: int = 6

    def __post_init__(self) -> None:
        for name in ("k1", "k2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AtustcError(f"affinity inference: {name} must be a positive integer, got {value!r}")
        if self.k2 > self.k1:
            raise AtustcError(f"affinity inference: k2 must be <= k1, got k1={self.k1}, k2={self.k2}")

    def describe(self) -> str:
        """``affinity k1=20,k2=6``."""
        return f"affinity k1={self.k1},k2={self.k2}"

    def scorer(self, query: torch.Tensor, gallery: torch.Tensor) -> Callable[[slice], torch.Tensor]:
        """``score_chunk(rows) -> [len(rows), G]`` affinity-inference scores (higher = better)."""
        return _AffinityScorer(query, gallery, self)

    def hook(self) -> Callable[[torch.Tensor, torch.Tensor, str], Callable[[slice], torch.Tensor]]:
        """An :data:`atustc.evaluate.ScoreHook` scoring every ranked block with affinity inference."""

        def hook(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> Callable[[slice], torch.Tensor]:
            from atustc.ranking import check_features

            q, g = check_features(query, gallery, metric)
            return self.scorer(q, g)

        return hook


def _chunks(n: int, width: int) -> list[slice]:
    step = max(1, CHUNK_CELLS // max(width, 1))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _sparsified(sim: torch.Tensor, k: int) -> torch.Tensor:
    """``sim`` with all but each row's ``k`` largest entries set to 0."""
    vals, idx = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, idx, vals)


class _AffinityScorer:
    """Precomputes the gallery's sparse affinity rows; scores query chunks on demand."""

    def __init__(self, query: torch.Tensor, gallery: torch.Tensor, config: AffinityConfig) -> None:
        self.q = F.normalize(query.float(), dim=1)
        self.g = F.normalize(gallery.float(), dim=1)
        n = len(self.g)
        self.k1 = min(config.k1, n)
        k2 = min(config.k2, self.k1)
        if n == 0:
            return
        vals, idx = [], []
        for rows in _chunks(n, n):
            v, i = (self.g[rows] @ self.g.T).topk(self.k1, dim=1)  # sorted: the k2 nearest first
            vals.append(v)
            idx.append(i)
        val, ind = torch.cat(vals), torch.cat(idx)  # [G, k1]
        # A_g[i] = mean over the k2 nearest t of i of R_gg[t]: entries (i, ind[t, :], val[t, :] / k2)
        nbr = ind[:, :k2]  # [G, k2]
        rows = torch.arange(n, device=ind.device).repeat_interleave(k2 * self.k1)
        cols = ind[nbr].reshape(-1)
        data = (val[nbr] / k2).reshape(-1)
        a_g = torch.sparse_coo_tensor(torch.stack([rows, cols]), data, (n, n), check_invariants=False).coalesce()
        norms = (
            torch.zeros(n, device=ind.device)
            .index_add_(0, a_g.indices()[0], a_g.values().pow(2))
            .sqrt()
            .clamp(min=1e-12)
        )
        values = a_g.values() / norms[a_g.indices()[0]]
        self.a_g = torch.sparse_coo_tensor(a_g.indices(), values, (n, n), check_invariants=False, is_coalesced=True)

    def __call__(self, rows: slice) -> torch.Tensor:
        cos = self.q[rows] @ self.g.T  # [c, G]
        if len(self.g) == 0:
            return cos
        a_q = F.normalize(_sparsified(cos, self.k1), dim=1)
        return (torch.sparse.mm(self.a_g, a_q.T).T + cos).contiguous()
