"""The dot-product non-local block (Wang et al., "Non-local Neural Networks", CVPR 2018) as AGW uses it.

AGW (Ye et al., TPAMI 2021; mangye16/ReID-Survey ``modeling/layer/non_local.py``): θ, φ, g are 1×1
convolutions to ``inter`` channels; ``f = θᵀφ / N`` with ``N = H·W`` (no softmax); ``y = f g``;
``z = W(y) + x`` with ``W`` a 1×1 convolution and a BatchNorm whose weight and bias start at 0,
so the block is the identity at initialisation. Both official AGW repositories compute the
inter-channel width as ``reduc_ratio // reduc_ratio`` = 1 (a rank-1 embedding); fast-reid uses
``C / 2``. Without a softmax the product is associative, so ``y = θ (φᵀ g) / N`` is computed,
in ``O(N·inter²)`` instead of ``O(N²)``: the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn


class NonLocalBlock(nn.Module):
    """``[B, C, H, W]`` -> same shape (identity at initialisation).

    Args:
        channels: input channels ``C``.
        inter_channels: width of θ, φ, g (1 as the official AGW code; ``C // 2`` as fast-reid).
    """

    def __init__(self, channels: int, inter_channels: int = 1) -> None:
        super().__init__()
        self.inter_channels = inter_channels
        self.theta = nn.Conv2d(channels, inter_channels, 1)
        self.phi = nn.Conv2d(channels, inter_channels, 1)
        self.g = nn.Conv2d(channels, inter_channels, 1)
        self.W = nn.Sequential(nn.Conv2d(inter_channels, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        theta = self.theta(x).flatten(2).transpose(1, 2)  # [B, N, c]
        phi = self.phi(x).flatten(2)  # [B, c, N]
        g = self.g(x).flatten(2).transpose(1, 2)  # [B, N, c]
        y = theta @ (phi @ g) / n  # = (θ φ / N) g, [B, N, c]
        y = y.transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return self.W(y) + x
