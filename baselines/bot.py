"""BoT, the "strong baseline" (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person
Re-Identification", CVPRW 2019; michuanhaohao/reid-strong-baseline, ``softmax_triplet_with_center.yml``).

Model: ResNet-50 with last stride 1 -> global average pooling -> 2,048-d ``global_feat`` ->
BNNeck (:mod:`atustc.models.bnneck`) -> bias-free classifier over the training identities.

Loss: label-smoothed CE (ε = 0.1) on the post-BN logits + batch-hard triplet (margin 0.3, plain
Euclidean distances) + 0.0005 × centre loss, both on the pre-BN ``global_feat``. The centres are
trained by their own SGD at lr 0.5, their gradient multiplied by 1/0.0005 first (an
:class:`~atustc.methods.OptimGroup` from ``optim_groups``), so they move independently of the
weight.

Embedding: one head, ``"global"``: the post-BN 2,048-d feature (``NECK_FEAT: after``); the
scorer's cosine is the official L2-normalised Euclidean ranking. No flip at test.

The model class is shared with AGW (``baselines/agw.py``), which changes the pooling (GeM), the
triplet (weighted regularisation) and adds non-local blocks and the IR stem.

Recipe ``paper``: Adam 3.5e-4, weight decay 5e-4 on every parameter (biases included), 120
epochs × 200 iterations, 10 warm-up epochs from 0.01 × lr, × 0.1 at epochs 40 and 70, stepped per
epoch; P×K 16×4; 256×128; flip 0.5, pad 10 + crop, random erasing 0.5 (the engine's erasing fills
with noise, the official one with the ImageNet mean colour). ``tiny``: the same optimiser on the
shared tiny budget (Lite0; steps at epochs 8 and 11 of 16 on the tiny clock,
:func:`~atustc.methods.budget.tiny_epoch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from atustc.errors import AtustcError
from atustc.methods import (
    Batch,
    LabelSpace,
    MethodSpec,
    OptimGroup,
    Recipe,
    register_method,
)
from atustc.models.cnn import BackboneConfig
from baselines._cnn import backbone_kind, check_preset, cnn_builder, tiny_from_paper


@dataclass(frozen=True)
class GlobalReIDConfig:
    """A one-global-feature CNN baseline (BoT, AGW).

    Attributes:
        backbone: the CNN backbone.
        pool: ``avg`` (BoT) or ``gem`` (AGW).
        gem_learnable: learn GeM's p (from 3; AGW) or keep it at 3 (AGW-VI).
        triplet: ``hard`` (batch-hard with ``margin``) or ``wrt`` (weighted regularisation).
        margin: the batch-hard triplet margin.
        label_smoothing: ε of the ID loss.
        center_weight: weight of the centre loss (0: none).
        center_lr: lr of the centres' own SGD.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    pool: Literal["avg", "gem"] = "avg"
    gem_learnable: bool = True
    triplet: Literal["hard", "wrt"] = "hard"
    margin: float = 0.3
    label_smoothing: float = 0.1
    center_weight: float = 5e-4
    center_lr: float = 0.5

    def __post_init__(self) -> None:
        if self.pool not in ("avg", "gem") or self.triplet not in ("hard", "wrt"):
            raise AtustcError(f"config: pool must be avg/gem and triplet hard/wrt, got {self.pool!r}, {self.triplet!r}")
        if not 0.0 <= self.label_smoothing < 1.0 or self.center_weight < 0 or self.margin < 0:
            raise AtustcError("config: need 0 <= label_smoothing < 1, center_weight >= 0 and margin >= 0")


class GlobalReID(nn.Module):
    """Backbone -> pooling -> BNNeck; ID + triplet (+ centre) loss; the post-BN feature as embedding."""

    head_names: tuple[str, ...] = ("global",)

    def __init__(self, config: GlobalReIDConfig, labels: LabelSpace, pretrained: Path | None = None) -> None:
        super().__init__()
        from atustc.models.bnneck import BNNeck
        from atustc.models.cnn import build_backbone
        from atustc.models.pooling import GeM

        self.config = config
        self.backbone, self.load_report = build_backbone(config.backbone, pretrained)
        dim = self.backbone.out_channels
        self.pool = GeM(learnable=config.gem_learnable) if config.pool == "gem" else None
        self.neck = BNNeck(dim, labels.num_pids)
        self.centers = nn.Parameter(torch.randn(labels.num_pids, dim)) if config.center_weight > 0 else None

    @property
    def embed_dim(self) -> int:
        return self.backbone.out_channels

    def features(self, batch: Batch) -> torch.Tensor:
        """The pre-BN global feature ``[B, C]``."""
        fmap = self.backbone(batch.images, batch.modality)
        return self.pool(fmap) if self.pool is not None else fmap.mean(dim=(2, 3))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        feat = self.features(batch)
        _, logits = self.neck(feat)
        return {"feat": feat, "logits": logits}

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        from atustc.models.losses import (
            batch_hard_triplet,
            center_loss,
            ls_cross_entropy,
            weighted_regularized_triplet,
        )

        cfg, feat = self.config, outputs["feat"]
        id_loss = ls_cross_entropy(outputs["logits"], batch.pid, cfg.label_smoothing)
        if cfg.triplet == "wrt":
            tri = weighted_regularized_triplet(feat, batch.pid)
        else:
            tri = batch_hard_triplet(feat, batch.pid, cfg.margin)
        total = id_loss + tri
        out = {"id": id_loss.detach(), "triplet": tri.detach()}
        if self.centers is not None:
            cen = center_loss(feat, batch.pid, self.centers)
            total = total + cfg.center_weight * cen
            out["center"] = cen.detach()
        out["total"] = total
        return out

    def optim_groups(self) -> list[OptimGroup]:
        """The centres: SGD at ``center_lr``, gradient × 1/``center_weight`` (BoT's ``optimizer_center``)."""
        if self.centers is None:
            return []
        cfg = self.config
        return [OptimGroup("center", (self.centers,), "sgd", lr=cfg.center_lr, grad_scale=1.0 / cfg.center_weight)]

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """``[B, 1, C]``: the post-BN feature (the scorer L2-normalises)."""
        feat, _ = self.neck(self.features(batch))
        return feat.unsqueeze(1)


def bot_config(preset: str) -> GlobalReIDConfig:
    """BoT's model at a preset (ResNet-50 at ``paper``, Lite0 at ``tiny``; last stride 1)."""
    check_preset("bot", preset)
    return GlobalReIDConfig(backbone=BackboneConfig(backbone_kind(preset)))


def bot_recipe(preset: str) -> Recipe:
    """BoT's recipe (``reference``: ``softmax_triplet_with_center.yml``); also AGW's."""
    check_preset("bot", preset)
    paper = Recipe(
        optimizer="adam", lr=3.5e-4, weight_decay=5e-4, no_decay_patterns=(),
        epochs=120, iters_per_epoch=200, warmup_epochs=10, warmup_start_factor=0.01,
        schedule="multistep", milestones=(40, 70), gamma=0.1, step_per="epoch",
        sampler="pk", num_identities=16, num_instances=4,
        input_size=(256, 128), flip_p=0.5, pad=10, random_erasing_p=0.5, flip_test=False,
    )  # fmt: skip
    return paper if preset == "paper" else tiny_from_paper(paper)


#: Build BoT at a preset, from a local ResNet-50 (paper) or Lite0 (tiny) checkpoint if given.
build_bot = cnn_builder("bot", GlobalReID, bot_config)


@register_method
def bot() -> MethodSpec:
    return MethodSpec(
        name="bot",
        family="Tr-ReID",
        summary="BoT: ResNet-50 last stride 1, BNNeck, LS 0.1 + batch-hard triplet + centre loss; 2,048-d",
        build=build_bot,
        recipe=bot_recipe,
    )
