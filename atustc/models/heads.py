"""BNNeck + bias-free classifier heads, one per scenario token (BoT's BNNeck, as the official code)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BNNeck(nn.Module):
    """BatchNorm1d with its bias frozen at 0, then a bias-free linear classifier.

    Init as the official code: BN weight N(1, 0.01), classifier weight N(0, 0.001).
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.normal_(self.bn.weight, 1.0, 0.01)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, D]`` -> (post-BN feature ``[B, D]``, logits ``[B, num_classes]``)."""
        feat = self.bn(x)
        return feat, self.classifier(feat)


class ScenarioHeads(nn.Module):
    """One :class:`BNNeck` per token: ``tokens [B, H, D]`` -> features ``[B, H, D]`` and H logits."""

    def __init__(self, dim: int, num_classes: Sequence[int]) -> None:
        super().__init__()
        self.necks = nn.ModuleList(BNNeck(dim, n) for n in num_classes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outs = [neck(tokens[:, i]) for i, neck in enumerate(self.necks)]
        return torch.stack([f for f, _ in outs], dim=1), [logit for _, logit in outs]
