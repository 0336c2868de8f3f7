"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), exact and memory-bounded.

**Distance convention** (that of the authors' code, zhunzhong07/person-re-ranking, which torchreid
and FastReID port; other codebases differ, e.g. by feeding cosine distances or unsquared ones):

* the query and gallery images of one ranked block form one set of ``N = Q + G`` images;
* the original distance is the squared Euclidean distance ``d(i, j) = |f_i - f_j|^2`` between
  L2-normalised features (``2 - 2 cos``) when the protocol's metric is ``cosine``, or between the
  raw features when it is ``euclidean``;
* every row is divided by its maximum over the ``N`` images: ``d'(i, j) = d(i, j) / max_k d(i, k)``;
* ``N(i, k)`` are the ``k`` nearest of the ``N`` images (``i`` itself included, normally first);
  the k-reciprocal set is ``R(i) = {j in N(i, k1+1) : i in N(j, k1+1)}``; it is expanded by the
  set ``R(c)`` at ``round(k1 / 2)`` of each ``c in R(i)`` that shares more than 2/3 of its members
  with ``R(i)``;
* ``V[i, j] = exp(-d'(i, j))`` over the expanded set, normalised to sum 1; local query expansion
  replaces ``V[i]`` by the mean of ``V`` over ``N(i, k2)`` (skipped when ``k2 = 1``);
* ``Jaccard(q, g) = 1 - m / (2 - m)`` with ``m = sum_j min(V[q, j], V[g, j])``;
* the final distance is ``(1 - lambda) * Jaccard(q, g) + lambda * d'(q, g)``, and the ranking core
  ranks its negation (ties broken by gallery order, as everywhere).

**Memory.** The dense ports hold several ``N x N`` matrices (20-24·N² bytes). Here nothing is
``N x N``: the ``k`` nearest neighbours come from a chunked matmul and ``topk``, the sets and ``V``
are sparse (``N x`` a few hundred), query expansion is a sparse average, and the Jaccard term is
computed only for query x gallery, one query chunk at a time, through an inverted index of the
gallery rows of ``V`` (the original's formulation). Peak memory is a few chunks of ``N`` floats
plus ``V``.

Example:
    >>> import torch
    >>> q, g = torch.eye(3)[:1], torch.eye(3)
    >>> Reranker(q, g, RerankConfig(k1=2, k2=1, lam=0.3)).distances(slice(0, 1)).argmin().item()
    0
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from atustc.errors import AtustcError

#: Target cells per chunk of a dense intermediate (float32: 64 MiB).
CHUNK_CELLS = 1 << 24
#: Sparse entries gathered per step (query expansion, Jaccard): ~40 bytes each in temporaries.
SPARSE_STEP = 1 << 22


@dataclass(frozen=True)
class RerankConfig:
    """Re-ranking parameters (defaults: the paper's ``k1 = 20, k2 = 6, lambda = 0.3``)."""

    k1: int = 20
    k2: int = 6
    lam: float = 0.3

    def __post_init__(self) -> None:
        for name in ("k1", "k2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AtustcError(f"--rerank: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.lam <= 1.0:
            raise AtustcError(f"--rerank: lambda must lie in [0, 1], got {self.lam!r}")

    def describe(self) -> str:
        """``k1=20,k2=6,lambda=0.3`` (parses back with :func:`parse_rerank`)."""
        return f"k1={self.k1},k2={self.k2},lambda={self.lam:g}"


_KEYS = {"k1": "k1", "k2": "k2", "lambda": "lam"}


def parse_rerank(text: str) -> RerankConfig:
    """Parse ``k1=20,k2=6,lambda=0.3`` (any subset; ``default`` or an empty string: all defaults).

    Raises:
        AtustcError: an unknown key, a malformed item or an out-of-range value (one line).
    """
    values: dict[str, int | float] = {}
    text = text.strip()
    if text in ("", "default"):
        return RerankConfig()
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not raw:
            raise AtustcError(f"--rerank: expected key=value items like k1=20,k2=6,lambda=0.3, got {item!r}")
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "keys: k1, k2, lambda"
            raise AtustcError(f"--rerank: unknown key {key!r} ({hint})")
        try:
            values[_KEYS[key]] = float(raw) if key == "lambda" else int(raw)
        except ValueError:
            kind = "a number" if key == "lambda" else "an integer"
            raise AtustcError(f"--rerank: {key} must be {kind}, got {raw!r}") from None
    return RerankConfig(**values)  # type: ignore[arg-type]


def _row_chunks(n: int, width: int) -> list[slice]:
    step = max(1, CHUNK_CELLS // max(width, 1))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _csr_rows(rows: torch.Tensor, n: int) -> torch.Tensor:
    """Row pointer of row-sorted COO entries."""
    ptr = torch.zeros(n + 1, dtype=torch.int64)
    ptr[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return ptr


def _split_points(load: torch.Tensor) -> list[tuple[int, int]]:
    """Consecutive ranges of items whose summed ``load`` stays near :data:`SPARSE_STEP` (one item may exceed it)."""
    cum = load.to(torch.float64).cumsum(0)
    total = float(cum[-1]) if cum.numel() else 0.0
    cuts = torch.searchsorted(cum, torch.arange(1, int(total // SPARSE_STEP) + 1, dtype=torch.float64) * SPARSE_STEP)
    edges = sorted({0, load.numel(), *cuts.clamp(max=load.numel()).tolist()})
    return list(zip(edges[:-1], edges[1:], strict=True))


def _expand(ptr: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each entry of ``which`` (row ids), the positions of that row's entries.

    Returns:
        ``(owner, position)``: index into ``which`` and position in the CSR arrays, per entry.
    """
    start, count = ptr[which], ptr[which + 1] - ptr[which]
    owner = torch.repeat_interleave(torch.arange(which.numel()), count)
    first = torch.cumsum(count, 0) - count
    return owner, start[owner] + torch.arange(owner.numel()) - first[owner]


class Reranker:
    """k-reciprocal re-ranked distances of one query x gallery block (see the module docstring).

    The sparse encoding ``V`` of all ``Q + G`` images is built on construction; the query x
    gallery distances are then produced chunk by chunk by :meth:`distances`.

    Args:
        query: ``[Q, D]`` query features.
        gallery: ``[G, D]`` gallery features.
        config: re-ranking parameters.
        normalize: L2-normalise the features first (the ``cosine`` convention).
    """

    def __init__(
        self, query: torch.Tensor, gallery: torch.Tensor, config: RerankConfig, normalize: bool = True
    ) -> None:
        x = torch.cat([query, gallery]).to(torch.float32)
        if normalize:
            x = torch.nn.functional.normalize(x, dim=1)
        self.x, self.n_query, self.config = x, query.shape[0], config
        self.sqn = (x * x).sum(1)
        n = x.shape[0]
        k1 = min(config.k1 + 1, n)
        kh = min(round(config.k1 / 2) + 1, n)  # round half to even, as np.around in the original
        k2 = min(config.k2, n)
        knn, self.row_max = self._neighbours(max(k1, k2))
        rows, cols, vals = self._encode(knn, k1, kh)
        if k2 > 1:
            rows, cols, vals = self._expand_queries(knn[:, :k2], rows, cols, vals)
        self.ptr = _csr_rows(rows, n)
        self.cols, self.vals = cols, vals
        # Inverted index of the gallery rows: entries sorted by column.
        g_first = int(self.ptr[self.n_query])
        g_rows = rows[g_first:] - self.n_query
        order = torch.argsort(cols[g_first:], stable=True)
        self.inv_rows, self.inv_vals = g_rows[order], vals[g_first:][order]
        self.inv_ptr = _csr_rows(cols[g_first:][order], n)

    def _dist(self, rows: slice, others: torch.Tensor, others_sqn: torch.Tensor) -> torch.Tensor:
        """Squared Euclidean distances of the images ``rows`` to ``others`` (features and squared norms)."""
        d = self.sqn[rows, None] + others_sqn[None, :] - 2 * (self.x[rows] @ others.T)
        return d.clamp_(min=0)

    def _neighbours(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest images of every image (nearest first) and every row's maximum distance.

        The distance matrix is symmetric, so it is computed in square blocks on and above the
        diagonal only; each block updates the running neighbour lists of its rows and its columns.
        """
        n = self.x.shape[0]
        best_d = torch.full((n, k), float("inf"))
        best_i = torch.zeros((n, k), dtype=torch.int64)
        row_max = torch.zeros(n)
        size = max(1, int(CHUNK_CELLS**0.5))
        blocks = [slice(a, min(a + size, n)) for a in range(0, n, size)]

        def merge(rows: slice, d: torch.Tensor, first_col: int) -> None:
            row_max[rows] = torch.maximum(row_max[rows], d.max(1).values)
            kk = min(k, d.shape[1])
            cand_d, cand_i = d.topk(kk, dim=1, largest=False, sorted=False)
            all_d = torch.cat([best_d[rows], cand_d], 1)
            all_i = torch.cat([best_i[rows], cand_i + first_col], 1)
            # Ties (equal distances) keep the smaller index first, whatever the block order.
            order = torch.argsort(all_i, dim=1, stable=True)
            all_d, all_i = all_d.gather(1, order), all_i.gather(1, order)
            top = torch.sort(all_d, dim=1, stable=True).indices[:, :k]
            best_d[rows], best_i[rows] = all_d.gather(1, top), all_i.gather(1, top)

        for bi, rows in enumerate(blocks):
            for cols in blocks[bi:]:
                d = self._dist(rows, self.x[cols], self.sqn[cols])
                merge(rows, d, cols.start)
                if cols.start != rows.start:
                    merge(cols, d.T, rows.start)
        return best_i, row_max

    def _normalised(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """``d'(i, j)`` for index tensors of equal shape."""
        d = (self.sqn[i] + self.sqn[j] - 2 * (self.x[i] * self.x[j]).sum(-1)).clamp_(min=0)
        m = self.row_max[i]
        return torch.where(m > 0, d / m.clamp(min=torch.finfo(torch.float32).tiny), 0.0)

    def _encode(self, knn: torch.Tensor, k1: int, kh: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sparse ``V`` (row-sorted COO) of the expanded k-reciprocal sets."""
        n = knn.shape[0]
        ids = torch.arange(n)
        near, half = knn[:, :k1], knn[:, :kh]
        recip = torch.empty((n, k1), dtype=torch.bool)
        recip_half = torch.empty((n, kh), dtype=torch.bool)
        for rows in _row_chunks(n, k1 * k1):
            recip[rows] = (near[near[rows]] == ids[rows, None, None]).any(-1)
            recip_half[rows] = (half[half[rows]] == ids[rows, None, None]).any(-1)
        parts_r, parts_c, parts_v = [], [], []
        for rows in _row_chunks(n, k1 * kh * k1 + self.x.shape[1] * k1 * (kh + 1)):
            r_set = torch.where(recip[rows], near[rows], -1)  # [c, k1], -1 = not in R(i)
            cand = near[rows]  # candidates c = near[i, t], used where recip[i, t]
            cand_half = half[cand]  # [c, k1, kh]: N(c, kh)
            cand_in = recip_half[cand]  # [c, k1, kh]: members of R(c) at k1/2
            shared = ((cand_half[..., None] == r_set[:, None, None, :]).any(-1) & cand_in).sum(-1)
            take = recip[rows] & (shared * 3 > 2 * cand_in.sum(-1))  # |R(c) & R(i)| > 2/3 |R(c)|
            members = torch.cat([r_set, torch.where(take[..., None] & cand_in, cand_half, -1).flatten(1)], 1)
            members = members.sort(dim=1).values
            fresh = members >= 0
            fresh[:, 1:] &= members[:, 1:] != members[:, :-1]
            local, col = fresh.nonzero(as_tuple=True)
            row = local + rows.start
            j = members[local, col]
            w = torch.exp(-self._normalised(row, j))
            total = torch.zeros(rows.stop - rows.start).index_add_(0, local, w)
            parts_r.append(row)
            parts_c.append(j)
            parts_v.append(w / total[local])
        return torch.cat(parts_r), torch.cat(parts_c), torch.cat(parts_v)

    def _expand_queries(
        self, knn: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Local query expansion: ``V[i] <- mean of V[N(i, k2)]``, as a sparse average."""
        n, k2 = knn.shape
        ptr = _csr_rows(rows, n)
        load = (ptr[1:] - ptr[:-1])[knn].sum(1)  # entries gathered per output row
        out_r, out_c, out_v = [], [], []
        for a, b in _split_points(load):
            src = knn[a:b].reshape(-1)
            owner, pos = _expand(ptr, src)
            out_row = owner // k2 + a
            key = out_row * n + cols[pos]
            uniq, inverse = torch.unique(key, return_inverse=True)  # sorted: row-major
            summed = torch.zeros(uniq.numel()).index_add_(0, inverse, vals[pos])
            out_r.append(uniq // n)
            out_c.append(uniq % n)
            out_v.append(summed / k2)
        return torch.cat(out_r), torch.cat(out_c), torch.cat(out_v)

    def jaccard(self, rows: slice) -> torch.Tensor:
        """``[len(rows), G]`` Jaccard distances of the query rows ``rows`` to the gallery."""
        c, n_gallery = rows.stop - rows.start, self.x.shape[0] - self.n_query
        overlap = torch.zeros(c * n_gallery)
        a, b = int(self.ptr[rows.start]), int(self.ptr[rows.stop])
        q_row = torch.repeat_interleave(
            torch.arange(c), self.ptr[rows.start + 1 : rows.stop + 1] - self.ptr[rows.start : rows.stop]
        )
        q_col, q_val = self.cols[a:b], self.vals[a:b]
        for s, e in _split_points(self.inv_ptr[q_col + 1] - self.inv_ptr[q_col]):
            owner, pos = _expand(self.inv_ptr, q_col[s:e])
            flat = q_row[s:e][owner] * n_gallery + self.inv_rows[pos]
            overlap.index_add_(0, flat, torch.minimum(q_val[s:e][owner], self.inv_vals[pos]))
        overlap = overlap.view(c, n_gallery)
        return 1 - overlap / (2 - overlap)

    def distances(self, rows: slice) -> torch.Tensor:
        """``[len(rows), G]`` final re-ranked distances of the query rows ``rows`` (smaller = closer)."""
        lam = self.config.lam
        nq = self.n_query
        d = self._dist(rows, self.x[nq:], self.sqn[nq:])
        m = self.row_max[rows, None]
        original = torch.where(m > 0, d / m.clamp(min=torch.finfo(torch.float32).tiny), 0.0)
        return (1 - lam) * self.jaccard(rows) + lam * original


def rerank_hook(config: RerankConfig) -> Callable[[torch.Tensor, torch.Tensor, str], Callable[[slice], torch.Tensor]]:
    """An :data:`atustc.evaluate.ScoreHook`: re-ranked scores (negated distances) of each ranked block."""

    def hook(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> Callable[[slice], torch.Tensor]:
        from atustc.ranking import check_features

        q, g = check_features(query, gallery, metric)
        reranker = Reranker(q, g, config, normalize=metric == "cosine")
        return lambda rows: -reranker.distances(rows)

    return hook
