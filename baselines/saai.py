"""SAAI (Fang, Yang & Fu, "Visible-Infrared Person Re-Identification via Semantic Alignment and
Affinity Inference", ICCV 2023; xiaoye-hhh/SAAI, run with its ``train.sh`` arguments
``--num_parts 7 --update_rate 0.02 --margin1 0.01 --margin2 0.7 --dp l2 --dp_w 0.5 --cs_w 1``,
which override the YAML's 6 parts and 0.2).

Model: one shared ResNet-50 (no modality-specific stem), last stride 1, with a modality
alleviation module (:class:`~atustc.models.mam.MAM`) after ``layer3`` and ``layer4`` (the SYSU
setting ``modality_attention: 2``; on the tiny Lite0: after the second stride-16 stage and after
``conv_head``). The map feeds semantic-aligned part features
(:class:`~atustc.models.pooling.PartPrototypes`: P = 7 prototypes, sigmoid attention, a position
embedding in the attention only) and global average pooling, concatenated parts first:
``(P + 1)·C`` = **16,384-d** at ``paper`` (10,240-d at ``tiny``). A DualBNNeck
(:class:`~atustc.models.bnneck.ModalityBN`: a BNNeck BN per modality, chosen by ``Batch.modality``,
which the official code reads off the SYSU cameras 3 and 6) gives the post-BN feature.

Classifiers (bias-free ``nn.Linear``, PyTorch's default init as the official code): a shared one,
a visible-only one on the RGB samples and an infrared-only one on the IR samples. Each has an EMA
copy (a buffer, saved in checkpoints), updated at every training forward, before use, as
``ema <- (1 - r)·ema + r·W`` with ``r = 0.02·min(1, T / (e + 1))``, ``e`` the 1-based epoch and
``T = 100`` of 160 epochs at ``paper`` (10 of 16 at ``tiny``): the rate decays over
the last epochs.

Losses (no triplet, no label smoothing):

- ``id``: CE(shared) + CE(visible classifier, RGB samples) + CE(infrared classifier, IR samples);
- ``consistency`` (cross-modality, MPANet's mutual learning): RGB samples scored by the EMA
  *infrared* classifier and IR samples by the EMA *visible* one; their softmax is the soft target
  of the own-modality classifier's logits (soft CE over the concatenated samples, weight 1; the
  official code adds it to ``id``);
- ``cs``: the centre-separation loss (:func:`~atustc.models.losses.center_separation_loss`,
  margins 0.01 and 0.7, weight 1) on the pre-BN feature;
- ``dp``: the part-diversity loss (:func:`~atustc.models.losses.part_diversity_loss`) at weight
  0.25: the official code multiplies by ``dp_w = 0.5`` twice.

Embedding: one head, ``"global"``: the post-DualBN feature (the scorer's cosine is the official
L2-normalised squared Euclidean ranking). ``saai-ai`` is the same model scored with affinity
inference (:mod:`atustc.affinity`, k1 = 20, k2 = 6 by default; ``--set extra.ai_k1=..
extra.ai_k2=..``), which uses the gallery at test (set-dependent, marked † as in the paper):
:attr:`MethodSpec.scoring` applies it to every ranked block in ``bench`` and ``eval --run``.

Recipe ``paper``: Adam 3.5e-4, weight decay 5e-4 on every parameter, 160 epochs × 200
iterations; warm-up ``(e + 1) / 10`` over epochs 0-9, × 0.1 from epoch 80 and × 0.01 from 120
(0-based; milestones 81 and 121 in the engine's 1-based count); P×K 10×8 with 4 RGB + 4 IR per
identity; 288×144; flip, pad 10 + crop, random erasing 0.5. Not reproduced: the random
channel-replication grayscale augmentation (p = 3/11; the engine has no such transform), fp16
(``--amp fp16`` is the user's choice) and the official best-on-test checkpoint selection (every
method is reported at its last epoch). ``tiny``: the same optimiser on the shared budget, with
milestones and ``T`` on the tiny clock (:func:`~atustc.methods.budget.tiny_epoch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, MethodSpec, Recipe, register_method
from atustc.models.cnn import BackboneConfig
from baselines._cnn import backbone_kind, check_preset, cnn_builder, preset_epoch, tiny_from_paper

#: MAM positions per backbone: after ResNet layer3/layer4; after Lite0's blocks.4 (stride 16) and conv_head.
SAAI_MAM: dict[str, tuple[int, ...]] = {"resnet50": (2, 3), "lite0": (4, 7)}
#: The epoch (1-based, of 160) from which the EMA rate decays as 100 / (e + 1).
PAPER_EMA_EPOCH = 100
#: Stride of the last-stride-1 backbones (map = input / 16).
MAP_STRIDE = 16


@dataclass(frozen=True)
class SAAIConfig:
    """SAAI's knobs.

    Attributes:
        backbone: the CNN backbone (MAM positions in ``mam_after``).
        grid: the map size ``(H, W)`` the part position embedding is built for.
        parts: P, the part prototypes.
        update_rate: the EMA rate of the classifier copies.
        ema_epoch: ``T`` of the rate's decay ``min(1, T / (e + 1))`` (1-based epoch ``e``).
        margin_center, margin_sep: CSLoss margins.
        cs_weight, dp_weight, consistency_weight: loss weights (dp: 0.5 applied twice).
    """

    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(mam_after=SAAI_MAM["resnet50"]))
    grid: tuple[int, int] = (18, 9)
    parts: int = 7
    update_rate: float = 0.02
    ema_epoch: int = PAPER_EMA_EPOCH
    margin_center: float = 0.01
    margin_sep: float = 0.7
    cs_weight: float = 1.0
    dp_weight: float = 0.25
    consistency_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.parts < 2 or min(self.grid) < 1:
            raise AtustcError(f"SAAI: need parts >= 2 and a positive grid, got {self.parts}, {self.grid}")
        if not 0 < self.update_rate <= 1 or self.ema_epoch < 1:
            raise AtustcError(f"SAAI: need 0 < update_rate <= 1 and ema_epoch >= 1, got {self.update_rate}")
        if min(self.cs_weight, self.dp_weight, self.consistency_weight, self.margin_center, self.margin_sep) < 0:
            raise AtustcError("SAAI: loss weights and margins must be >= 0")


class SAAI(nn.Module):
    """SAAI: see the module docstring."""

    head_names: tuple[str, ...] = ("global",)

    def __init__(self, config: SAAIConfig, labels: LabelSpace, pretrained: Path | None = None) -> None:
        super().__init__()
        from atustc.models.bnneck import ModalityBN
        from atustc.models.cnn import build_backbone
        from atustc.models.pooling import PartPrototypes

        self.config = config
        self.backbone, self.load_report = build_backbone(config.backbone, pretrained)
        c = self.backbone.out_channels
        dim = (config.parts + 1) * c
        self.parts = PartPrototypes(c, config.parts, config.grid)
        self.neck = ModalityBN(dim)
        n = labels.num_pids
        self.classifier = nn.Linear(dim, n, bias=False)
        self.visible_classifier = nn.Linear(dim, n, bias=False)
        self.infrared_classifier = nn.Linear(dim, n, bias=False)
        self.register_buffer("ema_visible", self.visible_classifier.weight.detach().clone())
        self.register_buffer("ema_infrared", self.infrared_classifier.weight.detach().clone())
        self.epoch = 0

    @property
    def embed_dim(self) -> int:
        return self.neck.bns[0].num_features

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def ema_rate(self) -> float:
        """``update_rate · min(1, T / (e + 1))`` with ``e = epoch + 1`` (the official 1-based epoch)."""
        cfg = self.config
        return cfg.update_rate * min(1.0, cfg.ema_epoch / (self.epoch + 2))

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema <- (1 - r)·ema + r·W`` for the visible and infrared classifiers."""
        r = self.ema_rate
        self.ema_visible.mul_(1 - r).add_(self.visible_classifier.weight.detach(), alpha=r)
        self.ema_infrared.mul_(1 - r).add_(self.infrared_classifier.weight.detach(), alpha=r)

    def features(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The pre-BN feature ``[B, (P+1)C]`` (parts then global average) and the part attention ``[B, P, N]``."""
        fmap = self.backbone(batch.images)
        parts, attn = self.parts(fmap)
        return torch.cat([parts.flatten(1), fmap.mean(dim=(2, 3))], dim=1), attn

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        feat, attn = self.features(batch)
        if self.training:
            self.update_ema()
        return {"feat": feat, "attn": attn, "post": self.neck(feat, batch.modality)}

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        from atustc.models.losses import center_separation_loss, part_diversity_loss, soft_cross_entropy

        cfg, post, pid = self.config, outputs["post"], batch.pid
        vis, ir = batch.modality == 0, batch.modality == 1
        id_loss = F.cross_entropy(self.classifier(post).float(), pid)
        own, target = [], []
        for mask, head, other in (
            (vis, self.visible_classifier, self.ema_infrared),
            (ir, self.infrared_classifier, self.ema_visible),
        ):
            if mask.any():
                logits = head(post[mask]).float()
                id_loss = id_loss + F.cross_entropy(logits, pid[mask])
                own.append(logits)
                with torch.no_grad():
                    target.append(F.linear(post[mask].detach(), other).float().softmax(1))
        consistency = soft_cross_entropy(torch.cat(own), torch.cat(target)) if own else post.sum() * 0.0
        cs = center_separation_loss(outputs["feat"], pid, cfg.margin_center, cfg.margin_sep)
        dp = part_diversity_loss(outputs["attn"])
        total = id_loss + cfg.consistency_weight * consistency + cfg.cs_weight * cs + cfg.dp_weight * dp
        return {
            "total": total,
            "id": id_loss.detach(),
            "consistency": consistency.detach(),
            "cs": cs.detach(),
            "dp": dp.detach(),
        }

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """``[B, 1, (P+1)C]``: the post-DualBN feature of each sample's modality (the scorer L2-normalises)."""
        return self.neck(self.features(batch)[0], batch.modality).unsqueeze(1)


def saai_recipe(preset: str) -> Recipe:
    """SAAI's recipe (xiaoye-hhh/SAAI ``configs/SYSU.yml`` with the ``train.sh`` arguments)."""
    check_preset("saai", preset)
    paper = Recipe(
        optimizer="adam", lr=3.5e-4, weight_decay=5e-4, no_decay_patterns=(),
        epochs=160, iters_per_epoch=200, warmup_epochs=10, warmup_start_factor=0.0,
        schedule="multistep", milestones=(81, 121), gamma=0.1, step_per="epoch",
        sampler="pk_modality", num_identities=10, num_instances=8,
        input_size=(288, 144), flip_p=0.5, pad=10, random_erasing_p=0.5, flip_test=False,
    )  # fmt: skip
    return paper if preset == "paper" else tiny_from_paper(paper)


def saai_config(preset: str) -> SAAIConfig:
    """SAAI's model at a preset: MAM positions of the backbone, the grid of the recipe's input, T on the preset's clock."""
    check_preset("saai", preset)
    kind = backbone_kind(preset)
    recipe = saai_recipe(preset)
    h, w = recipe.input_size
    return SAAIConfig(
        backbone=BackboneConfig(kind, mam_after=SAAI_MAM[kind]),
        grid=(h // MAP_STRIDE, w // MAP_STRIDE),
        ema_epoch=preset_epoch(PAPER_EMA_EPOCH, preset, saai_recipe("paper")),
    )


build_saai = cnn_builder("saai", SAAI, saai_config)


def affinity_scoring(recipe: Recipe) -> Any:
    """The affinity inference of ``saai-ai``: k1/k2 from ``recipe.extra`` (``ai_k1``, ``ai_k2``), else 20 and 6."""
    from atustc.affinity import AffinityConfig

    extra = recipe.extra
    return AffinityConfig(k1=extra.get("ai_k1", AffinityConfig.k1), k2=extra.get("ai_k2", AffinityConfig.k2))


@register_method
def saai() -> MethodSpec:
    return MethodSpec(
        name="saai",
        family="CM-ReID",
        summary="SAAI: ResNet-50 + MAM, 7 part prototypes + global (16,384-d), DualBNNeck, EMA cross-modality "
        "consistency, CSLoss",
        build=build_saai,
        recipe=saai_recipe,
        needs=("modality",),
    )


@register_method
def saai_ai() -> MethodSpec:
    return MethodSpec(
        name="saai-ai",
        family="CM-ReID",
        summary="SAAI† with affinity inference: SAAI re-scored over the gallery (k1 20, k2 6; set-dependent, †)",
        build=build_saai,
        recipe=saai_recipe,
        needs=("modality",),
        scoring=affinity_scoring,
    )
