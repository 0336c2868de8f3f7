"""Pooling of CNN feature maps ``[B, C, H, W]`` used by the baselines.

- :class:`GeM`: generalised-mean pooling (Radenović et al., TPAMI 2018), p learnable (AGW).
- :func:`max_avg_pool`: max and average pooling concatenated (CAL, Gu et al. CVPR 2022).
- :func:`stripe_pool`: average over ``n`` horizontal stripes (PCB, Sun et al. ECCV 2018).
- :func:`stripe_max_pool`: max over ``n`` horizontal stripes (AIM's multi-granularity branch).
- :class:`PartPrototypes`: learnable part prototypes attending over the map (SAAI's SAFL, Fang et
  al. ICCV 2023).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GeM(nn.Module):
    """``(mean(clamp(x, eps)^p))^(1/p)`` over the spatial positions: ``[B, C, H, W]`` -> ``[B, C]``.

    p = 1 is average pooling and p -> inf approaches max pooling. AGW learns p, starting at 3
    (mangye16/ReID-Survey ``GeneralizedMeanPoolingP``); ``learnable=False`` fixes it (AGW-VI).
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        p_tensor = torch.full((1,), float(p))
        if learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.to(x.dtype)
        return x.clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def max_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, 2C]``: global max pooling then global average pooling, concatenated."""
    return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)


def stripe_pool(x: torch.Tensor, parts: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, parts, C]``: average over ``parts`` horizontal stripes.

    With ``H`` divisible by ``parts`` the stripes are equal and disjoint (the official PCB's
    ``avg_pool2d`` with kernel ``(H / parts, W)``); otherwise adaptive pooling's overlapping
    stripes (layumi's ``AdaptiveAvgPool2d((parts, 1))``).
    """
    return F.adaptive_avg_pool2d(x, (parts, 1)).flatten(2).transpose(1, 2)


def stripe_max_pool(x: torch.Tensor, parts: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, parts, C]``: max over ``parts`` horizontal stripes."""
    return F.adaptive_max_pool2d(x, (parts, 1)).flatten(2).transpose(1, 2)


class PartPrototypes(nn.Module):
    """Semantic-aligned part features (SAAI's SAFL; xiaoye-hhh/SAAI ``layers/module/part_pooling.py``).

    ``P`` learnable prototypes ``t_p`` and a learnable position embedding ``E`` (one row per map
    position, both Kaiming-normal). With the map flattened to ``X [N, C]`` (``N = H·W``):
    ``a_pn = sigmoid(t_p · (X_n + E_n))`` (no softmax: a position may serve several parts or
    none) and ``f_p = sum_n a_pn X_n / N``; the position enters the attention only.

    Args:
        channels: ``C``.
        parts: ``P``.
        grid: the ``(H, W)`` map the position embedding is made for; another map size gets the
            embedding resized bilinearly (an input size changed by ``--set``).

    Returns (forward):
        ``(parts [B, P, C], attention [B, P, N])``.
    """

    def __init__(self, channels: int, parts: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.prototypes = nn.Parameter(nn.init.kaiming_normal_(torch.empty(parts, channels)))
        self.pos_embed = nn.Parameter(nn.init.kaiming_normal_(torch.empty(self.grid[0] * self.grid[1], channels)))

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """``E`` at an ``h × w`` map ``[h·w, C]`` (resized when the map is not the built grid)."""
        if (h, w) == self.grid:
            return self.pos_embed
        grid = self.pos_embed.T.reshape(1, -1, *self.grid)
        return F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False).reshape(-1, h * w).T

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, N, C]
        attn = torch.sigmoid((tokens + self.position_embedding(h, w)) @ self.prototypes.T).transpose(1, 2)  # [B, P, N]
        return attn @ tokens / (h * w), attn
