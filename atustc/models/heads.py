"""One BNNeck + bias-free classifier per scenario token (Uni-AT's heads).

The BNNeck is the shared :class:`atustc.models.bnneck.BNNeck`, with the BN weight drawn from
N(1, 0.01) as Uni-AT's official code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from atustc.models.bnneck import BNNeck

__all__ = ["BNNeck", "ScenarioHeads"]

#: Std of the BN weight init in Uni-AT's official code (N(1, 0.01)).
UNIAT_BN_STD = 0.01


class ScenarioHeads(nn.Module):
    """One :class:`BNNeck` per token: ``tokens [B, H, D]`` -> features ``[B, H, D]`` and H logits."""

    def __init__(self, dim: int, num_classes: Sequence[int]) -> None:
        super().__init__()
        self.necks = nn.ModuleList(BNNeck(dim, n, weight_std=UNIAT_BN_STD) for n in num_classes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outs = [neck(tokens[:, i]) for i, neck in enumerate(self.necks)]
        return torch.stack([f for f, _ in outs], dim=1), [logit for _, logit in outs]
