"""AIM, "Good is Bad: Causality Inspired Cloth-debiasing for Cloth-changing Person
Re-identification" (Yang et al., CVPR 2023; BoomShakaY/AIM-CCReID, built on Simple-CCReID).

AIM = CAL's model (``baselines/cal.py``: the main branch, its losses and schedule) + a
clothes-bias branch + a fusion ("auto-intervention") head used at training only.

Clothes-bias branch (``models/PM.py``): a second backbone (ResNet-50, last stride 1) whose map
is max-pooled over 1 + 2 + 4 + 8 horizontal stripes (15 regions), each through its own 1×1
conv C -> 256 (no bias) + BN + ReLU; concatenated (3,840-d) -> Linear(3,840 -> 2C, no bias) ->
BN1d -> its own cosine clothes classifier, trained with CosFace CE (s = 16, m = 0) on the
outfits; from ``start_epoch`` plus ``k_kl`` × the symmetric KL between the softmax of its
(scaled) clothes logits and the main clothes classifier's on the main features (detached), summed
over the batch as the official ``reduction='sum'``. Its parameters have their own Adam (the
recipe's lr and weight decay, following the schedule): ``optim_groups`` ``bias``.

Fusion (``models/Fusion.py``): from the bias branch's map (**detached**), 8 attention maps (1×1
conv C -> 8 + BN(eps 1e-3) + ReLU) pool the **main** map bilinearly (``sum_hw a_m F / (h·w)``,
8 × C), signed square root, L2-normalise, Linear(8C -> 2C, no bias, N(0, 0.001)), BN1d, then the
main branch's identity classifier: the clothes-biased logits ``o_b``.

Debiasing: from ``start_epoch`` the identity loss is ``CE_ls(o, y) + k_cal · CE_ls(o - o_b, y)``
(k_cal = 1), plus CAL's adversarial and clothes losses. The main, clothes and bias parameter sets
receive gradients from disjoint terms, so one backward of the sum equals the official separate
steps (with CAL's one-step lag of the clothes weights).

Embedding: the main branch's ``f`` only (4,096-d at ``paper``), flip-averaged by the recipe.

Size: 137.8 M parameters at ``paper`` without the label-sized classifiers (CAL's 23.5 M main
branch, a 47.1 M bias branch, a 67.1 M fusion, mostly its 16,384 -> 4,096 projection), 47.7 M at
``tiny``, where the same layers are sized by Lite0's C = 1,280 (main branch 3.4 M, bias branch
18.1 M, fusion 26.2 M). Everything beyond CAL's main branch trains only: the test-time network is
CAL's, and the tiny budget (iterations, batch, input) is every method's.

Recipe: CAL's, with 100 epochs at ``paper`` (the official 2-GPU config; its steps stay at 20 and
40); ``tiny`` on the shared budget, milestones and ``start_epoch`` on the tiny clock
(:func:`~atustc.methods.budget.tiny_epoch`: steps at epochs 8 and 10 of 16, the switch at 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
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
from baselines.cal import CAL, PAPER_START_EPOCH, CALConfig, cal_recipe


@dataclass(frozen=True)
class AIMConfig:
    """AIM's knobs beyond CAL's.

    Attributes:
        cal: the main branch (CAL).
        k_cal: weight of the debiased identity term.
        k_kl: weight of the knowledge-transfer KL.
        granularities: stripes of the bias branch's max pooling (1 + 2 + 4 + 8 = 15 regions).
        region_dim: width of each region's reduction.
        attention_maps: M, the fusion's attention maps.
    """

    cal: CALConfig = field(default_factory=CALConfig)
    k_cal: float = 1.0
    k_kl: float = 1.0
    granularities: tuple[int, ...] = (1, 2, 4, 8)
    region_dim: int = 256
    attention_maps: int = 8

    def __post_init__(self) -> None:
        if self.k_cal < 0 or self.k_kl < 0 or self.region_dim < 1 or self.attention_maps < 1:
            raise AtustcError("AIM: need k_cal, k_kl >= 0 and region_dim, attention_maps >= 1")
        if not self.granularities or min(self.granularities) < 1:
            raise AtustcError(f"AIM: granularities must be positive, got {self.granularities}")


def _bn1d(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)
    nn.init.normal_(bn.weight, 1.0, 0.02)
    nn.init.zeros_(bn.bias)
    return bn


class BiasBranch(nn.Module):
    """The clothes-bias branch: backbone, multi-granularity max pooling, reduction, BN, cosine clothes classifier."""

    def __init__(self, config: AIMConfig, labels: LabelSpace, pretrained: Path | None) -> None:
        super().__init__()
        from atustc.models.bnneck import CosineClassifier
        from atustc.models.cnn import build_backbone

        self.granularities = config.granularities
        self.backbone, _ = build_backbone(config.cal.backbone, pretrained)
        c, r = self.backbone.out_channels, config.region_dim
        regions = sum(config.granularities)
        self.regions = nn.ModuleList(
            nn.Sequential(nn.Linear(c, r, bias=False), nn.BatchNorm1d(r), nn.ReLU(inplace=True)) for _ in range(regions)
        )
        self.fc = nn.Linear(regions * r, 2 * c, bias=False)
        self.bn = _bn1d(2 * c)
        self.clothes_classifier = CosineClassifier(2 * c, labels.num_outfits)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The map ``[B, C, h, w]`` and the clothes feature ``[B, 2C]``."""
        from atustc.models.pooling import stripe_max_pool

        fmap = self.backbone(batch.images, batch.modality)
        pooled = torch.cat([stripe_max_pool(fmap, n) for n in self.granularities], dim=1)  # [B, 15, C]
        reduced = torch.cat([red(pooled[:, i]) for i, red in enumerate(self.regions)], dim=1)
        return fmap, self.bn(self.fc(reduced))


class Fusion(nn.Module):
    """Bilinear attention pooling of the main map with attention from the (detached) bias map."""

    def __init__(self, channels: int, maps: int, out_dim: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv2d(channels, maps, 1, bias=False), nn.BatchNorm2d(maps, eps=1e-3), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(maps * channels, out_dim, bias=False)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)
        self.bn = _bn1d(out_dim)

    def forward(self, main_map: torch.Tensor, bias_map: torch.Tensor) -> torch.Tensor:
        att = self.attention(bias_map.detach())  # [B, M, h, w]
        h, w = main_map.shape[-2:]
        pooled = torch.einsum("bmhw,bchw->bmc", att, main_map).flatten(1) / (h * w)
        pooled = torch.sign(pooled) * torch.sqrt(pooled.abs() + 1e-12)
        return self.bn(self.fc(F.normalize(pooled, dim=1)))


class AIM(CAL):
    """AIM: CAL's main branch, the clothes-bias branch and the fusion head (see the module docstring)."""

    def __init__(self, config: AIMConfig, labels: LabelSpace, pretrained: Path | None = None) -> None:
        super().__init__(config.cal, labels, pretrained)
        self.aim_config = config
        self.bias_branch = BiasBranch(config, labels, pretrained)
        self.fusion = Fusion(self.backbone.out_channels, config.attention_maps, self.embed_dim)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        fmap, f = self.main_features(batch)
        bias_map, f_bias = self.bias_branch(batch)
        out = {"f": f, "logits": self.classifier(f), "f_bias": f_bias}
        if self.adversarial:
            out["logits_bias"] = self.classifier(self.fusion(fmap, bias_map))
        return out

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        from atustc.models.losses import ls_cross_entropy, symmetric_kl

        cfg, eps, s = self.aim_config, self.config.label_smoothing, self.config.scale
        logits = outputs["logits"]
        id_loss = ls_cross_entropy(logits, batch.pid, eps)
        out: dict[str, torch.Tensor] = {"id": id_loss.detach()}
        total = id_loss
        bias_logits = s * self.bias_branch.clothes_classifier(outputs["f_bias"])
        clothes_bias = F.cross_entropy(bias_logits, batch.outfit)
        total = total + clothes_bias
        out["clothes_bias"] = clothes_bias.detach()
        if self.adversarial:
            debias = ls_cross_entropy(logits - outputs["logits_bias"], batch.pid, eps)
            main_clothes = s * self.clothes_classifier(outputs["f"].detach())
            kl = symmetric_kl(bias_logits, main_clothes)
            total = total + cfg.k_cal * debias + cfg.k_kl * kl
            out.update(debias=debias.detach(), kl=kl.detach())
        extra = self.clothes_losses(outputs["f"], batch)
        total = total + sum(extra.values())
        out.update({k: v.detach() for k, v in extra.items()})
        out["total"] = total
        return out

    def optim_groups(self) -> list[OptimGroup]:
        """CAL's clothes classifier, and the bias branch (Adam, the recipe's lr and decay, scheduled)."""
        cfg = self.config
        bias = OptimGroup(
            "bias", tuple(self.bias_branch.parameters()), "adam", lr=cfg.clothes_lr,
            weight_decay=cfg.clothes_weight_decay, scheduled=True,
        )  # fmt: skip
        return [*super().optim_groups(), bias]


def aim_recipe(preset: str) -> Recipe:
    """AIM's recipe: CAL's with 100 epochs at ``paper`` (steps at 20 and 40)."""
    check_preset("aim", preset)
    paper = replace(cal_recipe("paper"), epochs=100)
    return paper if preset == "paper" else tiny_from_paper(paper)


def aim_config(preset: str) -> AIMConfig:
    """AIM's model at a preset (the switch epoch, 25 of 100, on the preset's clock)."""
    check_preset("aim", preset)
    recipe = aim_recipe(preset)
    cal = CALConfig(
        backbone=BackboneConfig(backbone_kind(preset)),
        start_epoch=preset_epoch(PAPER_START_EPOCH, preset, aim_recipe("paper")),
        clothes_lr=recipe.lr, clothes_weight_decay=recipe.weight_decay,
    )  # fmt: skip
    return AIMConfig(cal=cal)


#: Build AIM at a preset (both backbones start from the same pretrained file when given).
build_aim = cnn_builder("aim", AIM, aim_config)


@register_method
def aim() -> MethodSpec:
    return MethodSpec(
        name="aim",
        family="CC-ReID",
        summary="AIM: CAL + clothes-bias ResNet-50 branch + causal-intervention fusion (training only); 4,096-d",
        build=build_aim,
        recipe=aim_recipe,
        needs=("clothes",),
    )
