"""Scores of query x gallery feature pairs: the validated float32 inputs and one matrix product.

The ranking core (:mod:`atustc.ranking`), the pool matrices of sampled protocols
(:mod:`atustc.poolscores`), re-ranking and affinity inference score features the same way, so
that the same features give the same float32 scores everywhere.
"""

from __future__ import annotations

import torch

from atustc.errors import AtustcError


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
