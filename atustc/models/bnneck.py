"""BNNeck (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-ID", CVPRW 2019).

BatchNorm1d after pooling with its bias frozen at 0, then a bias-free linear classifier
initialised N(0, 0.001) (michuanhaohao/reid-strong-baseline ``modeling/baseline.py``). The
triplet and centre losses use the feature before the BN, the ID loss the classifier on the
feature after it. BoT, AGW and TransReID start the BN weight at 1; Uni-AT's official code draws
it from N(1, 0.01) (``weight_std``).
"""

from __future__ import annotations

import torch
from torch import nn


def neck_bn(dim: int, weight_std: float = 0.0) -> nn.BatchNorm1d:
    """The BNNeck's BatchNorm1d: weight 1 (or N(1, ``weight_std``)), bias 0 and frozen."""
    bn = nn.BatchNorm1d(dim)
    if weight_std > 0:
        nn.init.normal_(bn.weight, 1.0, weight_std)
    else:
        nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


def id_classifier(dim: int, num_classes: int, bias: bool = False) -> nn.Linear:
    """A linear identity classifier, weight N(0, 0.001), bias (when any) 0."""
    fc = nn.Linear(dim, num_classes, bias=bias)
    nn.init.normal_(fc.weight, 0.0, 0.001)
    if bias:
        nn.init.zeros_(fc.bias)
    return fc


class BNNeck(nn.Module):
    """:func:`neck_bn` then :func:`id_classifier`: ``x [B, D]`` -> (post-BN ``[B, D]``, logits)."""

    def __init__(self, dim: int, num_classes: int, weight_std: float = 0.0) -> None:
        super().__init__()
        self.bn = neck_bn(dim, weight_std)
        self.classifier = id_classifier(dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.bn(x)
        return feat, self.classifier(feat)


class CosineClassifier(nn.Module):
    """Cosine logits ``cos(x, w_c)`` of L2-normalised features and class weights (CAL's ``NormalizedClassifier``).

    The scale (CosFace's ``s``, 16 in CAL) is applied by the caller. Weights start uniform in
    [-1, 1], renormalised to unit rows (guxinqian/Simple-CCReID ``models/classifier.py``).
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        weight = torch.empty(num_classes, dim).uniform_(-1, 1)
        self.weight = nn.Parameter(nn.functional.normalize(weight, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(nn.functional.normalize(x, dim=1), nn.functional.normalize(self.weight, dim=1))


class ModalityBN(nn.Module):
    """One BNNeck BatchNorm1d (:func:`neck_bn`) per modality; each sample goes through its modality's.

    SAAI's DualBNNeck (Fang et al., ICCV 2023; xiaoye-hhh/SAAI ``layers/module/dualBNNeck.py``):
    visible and infrared features are normalised with separate statistics and weights, at
    training and at test. ``x [B, D]``, ``modality [B]`` (0 = RGB, 1 = IR, ...) -> ``[B, D]``. A
    modality absent from the batch is skipped; a modality with a single sample in a training
    batch (no batch statistics) is normalised with its running statistics.
    """

    def __init__(self, dim: int, num_modalities: int = 2) -> None:
        super().__init__()
        self.bns = nn.ModuleList(neck_bn(dim) for _ in range(num_modalities))

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        for m, bn in enumerate(self.bns):
            mask = modality == m
            count = int(mask.sum())
            if count == 0:
                continue
            if self.training and count == 1:
                y = nn.functional.batch_norm(x[mask], bn.running_mean, bn.running_var, bn.weight, bn.bias, False)
            else:
                y = bn(x[mask])
            out = out.index_put((mask.nonzero(as_tuple=True)[0],), y)
        return out
