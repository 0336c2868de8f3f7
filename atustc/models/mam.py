"""The modality alleviation module, MAM (Fang, Yang & Fu, "Visible-Infrared Person Re-Identification
via Semantic Alignment and Affinity Inference", ICCV 2023; xiaoye-hhh/SAAI ``models/resnet.py``).

A channel gate ``m = sigmoid(W2 ReLU(W1 GAP(x)))`` (1×1 convolutions, reduction 16, no bias)
blends the map with its instance-normalised self: ``y = m·x + (1 − m)·IN(x)``, so channels the
gate closes lose their per-image (modality-specific) style statistics. The InstanceNorm keeps no
running statistics and has no affine parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class MAM(nn.Module):
    """``[B, C, H, W]`` -> same shape: ``m·x + (1 − m)·IN(x)`` with a squeeze-excitation gate ``m``.

    Args:
        channels: ``C``.
        reduction: the gate's bottleneck ratio (hidden width ``max(1, C // reduction)``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.norm = nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.gate(x.mean(dim=(2, 3), keepdim=True))
        return x * m + self.norm(x) * (1 - m)
