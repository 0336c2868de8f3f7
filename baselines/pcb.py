"""PCB, part-based convolutional baseline (Sun et al., "Beyond Part Models: Person Retrieval with
Refined Part Pooling", ECCV 2018; official syfafterzy/PCB_RPP_for_reID, cross-checked with
layumi/Person_reID_baseline_pytorch), with RPP as an option.

Model: ResNet-50 with last stride 1 at 384×128 (a 24×8 map of 2,048 channels) -> 6 horizontal
stripes of 4 rows, average-pooled into ``g_i`` (2,048-d) -> dropout 0.5 -> a 1×1 convolution
2,048 -> 256 (no bias, Kaiming fan-out) + BatchNorm + ReLU -> ``h_i`` (256-d) -> one
classifier per stripe, Linear(256 -> #IDs) with bias, N(0, 0.001). The official code shares the
reduction across the stripes (default); ``shared_reduction=False`` gives one per stripe, as
layumi's re-implementation.

Loss: the sum of the six cross-entropies (no label smoothing, no triplet).

Embedding: one head, ``"global"``. Default ``test_feature="g"``: the six 2,048-d ``g_i``, each
L2-normalised, concatenated: **6 × 2,048 = 12,288-d** (the official ``out0``; the scorer's
cosine then equals layumi's division by ``|g|·√6``). ``test_feature="h"`` gives the six
256-d ``h_i`` (1,536-d), slightly worse in the paper. No flip at test (the official code; layumi
adds the flipped image).

RPP (``rpp=True``): from ``rpp_start_epoch`` the uniform stripes are replaced by a part
classifier (1×1 conv 2,048 -> 6 with bias, softmax over the parts at every position) and
``g_i = sum_x p_i(x) f(x) / sum_x p_i(x)`` (the stripe average when ``p`` is a hard stripe
assignment); during the first ``rpp_alone_epochs`` of it only the part classifier trains (the
others' ``requires_grad`` is off, so they get no gradient and no update), then everything is
fine-tuned. The switch follows ``set_epoch``.

Recipe ``paper``: SGD, momentum 0.9, Nesterov, weight decay 5e-4, lr 0.1 for the new layers and
0.01 for the backbone (base lr 0.01, ×10 on ``reduction``/``classifiers``/``part_classifier``),
60 epochs, × 0.1 at 40, no warm-up; random (non-PK) batches of 64; 384×128; flip only (no crop,
no erasing). ``tiny``: the same optimiser and sampler on the shared tiny budget (whose input size,
crop and erasing apply to every method alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, MethodSpec, Recipe, register_method
from atustc.methods.budget import tiny_epoch
from atustc.models.cnn import BackboneConfig
from baselines._cnn import (
    backbone_kind,
    check_preset,
    log_random_init,
    tiny_from_paper,
)


@dataclass(frozen=True)
class PCBConfig:
    """PCB's knobs.

    Attributes:
        backbone: the CNN backbone.
        parts: horizontal stripes.
        reduced_dim: width of ``h_i``.
        dropout: before the reduction.
        shared_reduction: one reduction for all stripes (official) or one per stripe (layumi).
        test_feature: ``g`` (parts x backbone channels) or ``h`` (parts x ``reduced_dim``).
        rpp: refined part pooling from ``rpp_start_epoch``.
        rpp_start_epoch: first epoch (0-based) with RPP.
        rpp_alone_epochs: epochs in which only the part classifier trains.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    parts: int = 6
    reduced_dim: int = 256
    dropout: float = 0.5
    shared_reduction: bool = True
    test_feature: Literal["g", "h"] = "g"
    rpp: bool = False
    rpp_start_epoch: int = 20
    rpp_alone_epochs: int = 10

    def __post_init__(self) -> None:
        if self.parts < 1 or self.reduced_dim < 1 or not 0.0 <= self.dropout < 1.0:
            raise AtustcError("PCB: need parts >= 1, reduced_dim >= 1 and 0 <= dropout < 1")
        if self.test_feature not in ("g", "h"):
            raise AtustcError(f"PCB: test_feature must be 'g' or 'h', got {self.test_feature!r}")
        if self.rpp_start_epoch < 0 or self.rpp_alone_epochs < 0:
            raise AtustcError("PCB: rpp_start_epoch and rpp_alone_epochs must be >= 0")


def _reduction(channels: int, dim: int) -> nn.Sequential:
    conv = nn.Conv2d(channels, dim, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    bn = nn.BatchNorm2d(dim)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    return nn.Sequential(conv, bn, nn.ReLU(inplace=True))


class PCB(nn.Module):
    """PCB (and RPP): see the module docstring."""

    head_names: tuple[str, ...] = ("global",)

    def __init__(self, config: PCBConfig, labels: LabelSpace, pretrained: Path | None = None) -> None:
        super().__init__()
        from atustc.models.bnneck import id_classifier
        from atustc.models.cnn import build_backbone

        self.config = config
        self.backbone, self.load_report = build_backbone(config.backbone, pretrained)
        c, p = self.backbone.out_channels, config.parts
        self.dropout = nn.Dropout(config.dropout)
        n_red = 1 if config.shared_reduction else p
        self.reduction = nn.ModuleList(_reduction(c, config.reduced_dim) for _ in range(n_red))
        self.classifiers = nn.ModuleList(
            id_classifier(config.reduced_dim, labels.num_pids, bias=True) for _ in range(p)
        )
        self.part_classifier = nn.Conv2d(c, p, 1) if config.rpp else None
        # saved with the weights, so that a model rebuilt to embed pools as it was trained
        self.register_buffer("rpp_on", torch.zeros((), dtype=torch.bool))

    @property
    def use_rpp(self) -> bool:
        """Whether the soft parts of RPP replace the uniform stripes."""
        return bool(self.rpp_on)

    @property
    def embed_dim(self) -> int:
        return self.config.parts * (
            self.backbone.out_channels if self.config.test_feature == "g" else self.config.reduced_dim
        )

    def set_epoch(self, epoch: int) -> None:
        """RPP from ``rpp_start_epoch``; only the part classifier trains for ``rpp_alone_epochs``."""
        cfg = self.config
        if self.part_classifier is None:
            return
        self.rpp_on.fill_(epoch >= cfg.rpp_start_epoch)
        alone = self.use_rpp and epoch < cfg.rpp_start_epoch + cfg.rpp_alone_epochs
        for name, param in self.named_parameters():
            if not name.startswith("part_classifier."):
                param.requires_grad_(not alone)

    def part_features(self, batch: Batch) -> torch.Tensor:
        """``g``: ``[B, parts, C]`` (uniform stripes, or RPP's soft parts once switched on)."""
        from atustc.models.pooling import stripe_pool

        fmap = self.backbone(batch.images, batch.modality)
        if not self.use_rpp:
            return stripe_pool(fmap, self.config.parts)
        prob = self.part_classifier(fmap).softmax(dim=1)  # [B, P, h, w]
        weighted = torch.einsum("bphw,bchw->bpc", prob, fmap)
        return weighted / prob.sum(dim=(2, 3)).unsqueeze(-1).clamp(min=1e-12)

    def reduce(self, g: torch.Tensor) -> torch.Tensor:
        """``h``: ``[B, parts, reduced_dim]`` from ``g``."""
        x = self.dropout(g).transpose(1, 2).unsqueeze(-1)  # [B, C, P, 1]
        if len(self.reduction) == 1:
            return self.reduction[0](x).squeeze(-1).transpose(1, 2)
        return torch.stack([red(x[:, :, i : i + 1]).flatten(1) for i, red in enumerate(self.reduction)], dim=1)

    def forward(self, batch: Batch) -> dict[str, list[torch.Tensor]]:
        h = self.reduce(self.part_features(batch))
        return {"logits": [fc(h[:, i]) for i, fc in enumerate(self.classifiers)]}

    def loss(self, outputs: dict[str, list[torch.Tensor]], batch: Batch) -> dict[str, torch.Tensor]:
        ce = torch.stack([F.cross_entropy(z.float(), batch.pid) for z in outputs["logits"]])
        return {"total": ce.sum(), "id": ce.mean().detach()}

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """``[B, 1, parts·D]``: the parts (``g`` or ``h``), each L2-normalised, concatenated."""
        parts = self.part_features(batch)
        if self.config.test_feature == "h":
            parts = self.reduce(parts)
        return F.normalize(parts, dim=2).flatten(1).unsqueeze(1)


def pcb_config(preset: str, **changes: object) -> PCBConfig:
    """PCB's model at a preset (``changes``: e.g. ``rpp=True``)."""
    check_preset("pcb", preset)
    return replace(PCBConfig(backbone=BackboneConfig(backbone_kind(preset))), **changes)


def pcb_recipe(preset: str) -> Recipe:
    """PCB's recipe (official ``train_PCB.sh``: SGD 0.1 / 0.01, 60 epochs, step 40)."""
    check_preset("pcb", preset)
    paper = Recipe(
        optimizer="sgd", lr=0.01, weight_decay=5e-4, momentum=0.9, nesterov=True, no_decay_patterns=(),
        lr_mult=10.0, lr_mult_patterns=("^reduction\\.", "^classifiers\\.", "^part_classifier\\."),
        epochs=60, iters_per_epoch=200, warmup_epochs=0, schedule="multistep", milestones=(40,), gamma=0.1,
        step_per="epoch", sampler="random", num_identities=16, num_instances=4,
        input_size=(384, 128), flip_p=0.5, pad=0, random_erasing_p=0.0, flip_test=False,
    )  # fmt: skip
    return paper if preset == "paper" else tiny_from_paper(paper)


def build_pcb(labels: LabelSpace, preset: str, pretrained: Path | None = None, **changes: object) -> PCB:
    """Build PCB at a preset; with ``rpp=True`` the RPP epochs are moved onto the tiny clock at ``tiny``."""
    log_random_init("pcb", preset, pretrained)
    config = pcb_config(preset, **changes)
    if preset == "tiny" and config.rpp:
        paper, start = pcb_recipe("paper"), config.rpp_start_epoch
        tiny_start = tiny_epoch(start, paper)
        alone = max(1, tiny_epoch(start + config.rpp_alone_epochs, paper) - tiny_start)
        config = replace(config, rpp_start_epoch=tiny_start, rpp_alone_epochs=alone)
    return PCB(config, labels, pretrained)


@register_method
def pcb() -> MethodSpec:
    return MethodSpec(
        name="pcb",
        family="Tr-ReID",
        summary="PCB: ResNet-50 last stride 1 at 384x128, 6 stripes, 1x1 reduction + 6 classifiers; 12,288-d",
        build=build_pcb,
        recipe=pcb_recipe,
    )
