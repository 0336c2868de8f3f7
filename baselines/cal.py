"""CAL, clothes-based adversarial loss (Gu et al., "Clothes-Changing Person Re-identification with
RGB Modality Only", CVPR 2022; guxinqian/Simple-CCReID).

Model: ResNet-50 with last stride 1 at 384×192 -> max and average pooling concatenated
(**4,096-d**) -> BatchNorm1d (weight N(1, 0.02), bias 0 and trainable) = ``f``, the one feature.
Heads: an identity classifier Linear(4,096 -> #IDs) with bias (N(0, 0.001)) and a cosine clothes
classifier over the outfits (:class:`~atustc.models.bnneck.CosineClassifier`, logits × s = 16,
CosFace with m = 0). Clothes labels are the table's outfits (``Batch.outfit``), so the method
needs the ``clothes`` column.

Losses and schedule (``train.py::train_cal``): the identity loss is label-smoothed CE (ε = 0.1)
throughout; from ``start_epoch`` (25 at ``paper``) the clothes classifier is trained with CE on
``f.detach()`` and the backbone additionally with the clothes-based adversarial loss
(:func:`~atustc.models.losses.clothes_adversarial_loss`, ε = 0.1) through the clothes classifier's
*detached* weights. The pair-loss weight is 0 (no triplet). One backward serves both: the
clothes classifier's gradient comes only from its CE, the backbone's only from the ID and
adversarial terms. The official code steps the clothes classifier first and then recomputes the
adversarial loss with the updated weights; here both use the weights of the iteration's start
(one step of lag). The clothes classifier has its own Adam (same lr and weight decay, no
schedule): ``optim_groups``. The switch follows ``set_epoch`` (0 until the engine calls it).

Embedding: one head, ``"global"``: ``f`` (un-normalised); the recipe's ``flip_test`` averages it
with the mirrored image's, which the scorer's cosine ranks exactly as the official flip-sum.

Recipe ``paper``: Adam 3.5e-4, weight decay 5e-4, 60 epochs × 200 iterations, × 0.1 at 20 and 40,
no warm-up; P×K 8×8; 384×192; flip 0.5, pad 10 + crop (the official "RandomCroping" upscales by
1.125 then crops), random erasing 0.5; flip-sum at test. ``tiny``: the same optimiser on the
shared budget, milestones and ``start_epoch`` on the tiny clock (:func:`~atustc.methods.budget.tiny_epoch`:
steps at epochs 8 and 12 of 16, the switch at 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
from baselines._cnn import (
    backbone_kind,
    check_preset,
    cnn_builder,
    preset_epoch,
    tiny_from_paper,
)

#: The paper's switch epoch of the clothes classifier and the adversarial loss (START_EPOCH_CC/ADV).
PAPER_START_EPOCH = 25


@dataclass(frozen=True)
class CALConfig:
    """CAL's knobs.

    Attributes:
        backbone: the CNN backbone.
        scale: CosFace scale ``s`` of the clothes logits.
        epsilon: smoothing of the adversarial loss over the identity's outfits.
        label_smoothing: ε of the identity loss.
        start_epoch: first epoch (0-based) of clothes classification and the adversarial loss.
        clothes_lr: lr of the clothes classifier's own Adam (the recipe's lr).
        clothes_weight_decay: its weight decay.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    scale: float = 16.0
    epsilon: float = 0.1
    label_smoothing: float = 0.1
    start_epoch: int = PAPER_START_EPOCH
    clothes_lr: float = 3.5e-4
    clothes_weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        if self.scale <= 0 or not 0 <= self.epsilon < 1 or not 0 <= self.label_smoothing < 1:
            raise AtustcError("CAL: need scale > 0 and epsilon, label_smoothing in [0, 1)")
        if self.start_epoch < 0 or self.clothes_lr <= 0:
            raise AtustcError("CAL: need start_epoch >= 0 and clothes_lr > 0")


class CAL(nn.Module):
    """CAL: see the module docstring."""

    head_names: tuple[str, ...] = ("global",)

    def __init__(self, config: CALConfig, labels: LabelSpace, pretrained: Path | None = None) -> None:
        super().__init__()
        from atustc.models.bnneck import CosineClassifier, id_classifier
        from atustc.models.cnn import build_backbone

        self.config = config
        self.backbone, self.load_report = build_backbone(config.backbone, pretrained)
        dim = 2 * self.backbone.out_channels
        self.bn = nn.BatchNorm1d(dim)
        nn.init.normal_(self.bn.weight, 1.0, 0.02)
        nn.init.zeros_(self.bn.bias)
        self.classifier = id_classifier(dim, labels.num_pids, bias=True)
        self.clothes_classifier = CosineClassifier(dim, labels.num_outfits)
        self.register_buffer("outfit_to_pid", torch.tensor(labels.outfit_to_pid, dtype=torch.long), persistent=False)
        self.epoch = 0

    @property
    def embed_dim(self) -> int:
        return self.bn.num_features

    @property
    def adversarial(self) -> bool:
        """Whether the clothes classifier and the adversarial loss are on (``epoch >= start_epoch``)."""
        return self.epoch >= self.config.start_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def main_features(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone map ``[B, C, h, w]`` and ``f`` ``[B, 2C]``."""
        from atustc.models.pooling import max_avg_pool

        fmap = self.backbone(batch.images, batch.modality)
        return fmap, self.bn(max_avg_pool(fmap))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        _, f = self.main_features(batch)
        return {"f": f, "logits": self.classifier(f)}

    def clothes_losses(self, f: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """``clothes`` (CE of the classifier on ``f.detach()``) and ``cal`` (adversarial, detached weights); {} before the switch."""
        from atustc.models.losses import clothes_adversarial_loss

        if not self.adversarial:
            return {}
        s, cc = self.config.scale, self.clothes_classifier
        clothes = nn.functional.cross_entropy(s * cc(f.detach()), batch.outfit)
        logits = s * nn.functional.linear(
            nn.functional.normalize(f, dim=1), nn.functional.normalize(cc.weight.detach(), dim=1)
        )
        cal = clothes_adversarial_loss(logits, batch.outfit, batch.pid, self.outfit_to_pid, self.config.epsilon)
        return {"clothes": clothes, "cal": cal}

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        from atustc.models.losses import ls_cross_entropy

        id_loss = ls_cross_entropy(outputs["logits"], batch.pid, self.config.label_smoothing)
        extra = self.clothes_losses(outputs["f"], batch)
        total = id_loss + sum(extra.values())
        return {"total": total, "id": id_loss.detach(), **{k: v.detach() for k, v in extra.items()}}

    def optim_groups(self) -> list[OptimGroup]:
        """The clothes classifier: Adam at ``clothes_lr`` with weight decay, never scheduled."""
        cfg = self.config
        params = tuple(self.clothes_classifier.parameters())
        return [OptimGroup("clothes", params, "adam", lr=cfg.clothes_lr, weight_decay=cfg.clothes_weight_decay)]

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """``[B, 1, 2C]``: ``f`` (the scorer L2-normalises; flip-averaged by the recipe)."""
        return self.main_features(batch)[1].unsqueeze(1)


def cal_recipe(preset: str) -> Recipe:
    """CAL's recipe (Simple-CCReID ``configs/res50_cels_cal.yaml``)."""
    check_preset("cal", preset)
    paper = Recipe(
        optimizer="adam", lr=3.5e-4, weight_decay=5e-4, no_decay_patterns=(),
        epochs=60, iters_per_epoch=200, warmup_epochs=0, schedule="multistep", milestones=(20, 40), gamma=0.1,
        step_per="epoch", sampler="pk", num_identities=8, num_instances=8,
        input_size=(384, 192), flip_p=0.5, pad=10, random_erasing_p=0.5, flip_test=True,
    )  # fmt: skip
    return paper if preset == "paper" else tiny_from_paper(paper)


def cal_config(preset: str) -> CALConfig:
    """CAL's model at a preset: the switch epoch on the preset's clock, the clothes lr the recipe's lr."""
    check_preset("cal", preset)
    recipe = cal_recipe(preset)
    start = preset_epoch(PAPER_START_EPOCH, preset, cal_recipe("paper"))
    return CALConfig(
        backbone=BackboneConfig(backbone_kind(preset)), start_epoch=start,
        clothes_lr=recipe.lr, clothes_weight_decay=recipe.weight_decay,
    )  # fmt: skip


#: Build CAL at a preset.
build_cal = cnn_builder("cal", CAL, cal_config)


@register_method
def cal() -> MethodSpec:
    return MethodSpec(
        name="cal",
        family="CC-ReID",
        summary="CAL: ResNet-50 last stride 1, max+avg pooling (4,096-d), cosine clothes classifier, adversarial loss",
        build=build_cal,
        recipe=cal_recipe,
        needs=("clothes",),
    )
