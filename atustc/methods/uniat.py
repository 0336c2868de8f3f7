"""Uni-AT (paper §4), its ablations and the MoE rows of Table 2, registered as methods.

The network is :class:`atustc.models.msreid.MSReID`; its switches are :class:`atustc.models.config.UniATConfig`.

Registered methods (family AT-ReID): the rows of the paper's Table 3, the unified embedding, the
official-code Uni-AT and the MoE alternatives of Table 2 (all with the scenario-aware ID loss):

===================== ==== ======== ====== ==== ===============================================
name                  SAID mixture  HDW    CLS  paper row
===================== ==== ======== ====== ==== ===============================================
``uniat-baseline``    -    -        -      6    Table 3: Baseline (plain person-ID loss)
``uniat-said``        yes  -        -      6    Table 3: +L_id^s; Table 2: MS-ReID
``uniat-said-moae``   yes  MoAE 12  -      6    Table 3: +L_id^s +MoAE; Table 2: +MoAE (12)
``uniat-said-hdw``    yes  -        paper  6    Table 3: +L_id^s +HDW
``uniat``             yes  MoAE 12  paper  6    Uni-AT (full)
``uniat-official``    yes  MoAE 12  offic. 6    Uni-AT with the official code's choices
``uniat-unified``     -    -        -      1    unified embedding (one CLS token for all heads)
``uniat-said-mmoe6``  yes  MMoE 6   -      6    Table 2: +MMoE (6)
``uniat-said-mmoe12`` yes  MMoE 12  -      6    Table 2: +MMoE (12)
``uniat-said-ple7``   yes  PLE 7    -      6    Table 2: +PLE (7)
``uniat-said-ple12``  yes  PLE 12   -      6    Table 2: +PLE (12)
``uniat-said-vlmo3``  yes  VLMo 3   -      6    Table 2: +VLMo (3)
``uniat-said-moae6``  yes  MoAE 6   -      6    Table 2: +MoAE (6)
===================== ==== ======== ====== ==== ===============================================

Where the paper and the official code (kw66/AT-ReID) differ, three ``--set`` options choose
(:data:`OPTIONS`; each method lists those that apply to it): ``moae_gate=paper|official``
(top-k softmax weight, or renormalised to 1 so the gate gets no gradient), ``hdw_norm=paper|official``
(eq. 8 per group and the sum of head means, or each group weight over its group maximum and the
per-sample sum over the batch size) and ``fill_value=-inf|<number>`` (the logit of a sample's other
outfits in the ST heads: removed, or -10 as the official code). ``uniat`` has the paper's values,
``uniat-official`` the official code's. This module imports no torch at import time; building does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atustc.errors import AtustcError
from atustc.methods import register_method
from atustc.methods.budget import STEM_LR_MULT, STEM_PATTERN, TINY, TINY_STEM_STRIDE, tiny_recipe, tiny_stem_options
from atustc.methods.contract import LabelSpace, MethodOption, MethodSpec, Recipe, check_preset
from atustc.models.config import MoEConfig, UniATConfig, ViTConfig, expert_layout, vit_config

if TYPE_CHECKING:
    from atustc.models.msreid import MSReID

log = logging.getLogger(__name__)

#: The MoE modules of the paper's Table 2 (name -> config); the "Params" column is checked in tests.
TABLE2_MOE: dict[str, MoEConfig] = {
    "mmoe6": MoEConfig("mmoe", 6, top_k=None),
    "mmoe12": MoEConfig("mmoe", 12, top_k=None),
    "ple7": MoEConfig("ple", 7, top_k=None),
    "ple12": MoEConfig("ple", 12, top_k=None),
    "vlmo3": MoEConfig("vlmo", 3),
    "moae6": MoEConfig("moae", 6),
    "moae12": MoEConfig("moae", 12),
}


@dataclass(frozen=True)
class Table2Row:
    """One row of the paper's Table 2: the registered method, its label, its mixture and the paper's figures."""

    method: str
    label: str
    moe: str | None  # a TABLE2_MOE key; None for MS-ReID
    params: float  # paper "Params" over MS-ReID
    time: float  # paper "Time" over MS-ReID
    r1: float  # paper Rank-1 (%)
    map: float  # paper mAP (%)

    @property
    def experts(self) -> int | None:
        return None if self.moe is None else TABLE2_MOE[self.moe].num_experts


#: The paper's Table 2 in its row order; the first row (MS-ReID) is the reference of the ratios.
TABLE2: tuple[Table2Row, ...] = (
    Table2Row("uniat-said", "MS-ReID", None, 1.0, 1.0, 50.1, 36.7),
    Table2Row("uniat-said-mmoe6", "+MMoE", "mmoe6", 4.9, 1.2, 51.1, 37.1),
    Table2Row("uniat-said-mmoe12", "+MMoE", "mmoe12", 8.8, 1.5, 51.8, 37.8),
    Table2Row("uniat-said-ple7", "+PLE", "ple7", 5.6, 1.2, 51.6, 37.9),
    Table2Row("uniat-said-ple12", "+PLE", "ple12", 8.8, 1.3, 52.0, 38.3),
    Table2Row("uniat-said-vlmo3", "+VLMo", "vlmo3", 3.0, 1.1, 51.9, 37.9),
    Table2Row("uniat-said-moae6", "+MoAE", "moae6", 2.6, 1.1, 52.5, 38.4),
    Table2Row("uniat-said-moae", "+MoAE", "moae12", 4.2, 1.2, 53.2, 38.7),
)


def _fill_value(text: str) -> float:
    value = float(text)
    if math.isnan(value) or value == math.inf:
        raise ValueError("expected -inf or a finite number")
    return value


_GATE = MethodOption(
    "moae_gate", "paper", ("paper", "official"), help="paper: softmax weight, official: renormalised (no gradient)"
)
_HDW = MethodOption(
    "hdw_norm", "paper", ("paper", "official"), help="paper: eq. 8; official: over the group maximum, sum / B"
)
_FILL = MethodOption(
    "fill_value", "-inf", parse=_fill_value, help="expected -inf (the paper) or a finite number (official: -10)"
)
#: The switches between the paper and the official code, with the paper's values as defaults.
OPTIONS: dict[str, MethodOption] = {o.name: o for o in (_GATE, _HDW, _FILL)}
#: The official code's values of :data:`OPTIONS` (``uniat-official``'s defaults).
OFFICIAL: dict[str, str] = {"moae_gate": "official", "hdw_norm": "official", "fill_value": "-10"}


#: Backbones per preset: ViT-B/16 at 256x128 (paper) and a CPU-sized hybrid at the tiny input size
#: (tiny: EfficientNet-Lite0 stages to stride 16 as the stem, four 192-wide blocks; the stem's init
#: follows ``$ATUSTC_TINY_STEM_INIT``, ImageNet (frozen) by default, see :func:`atustc.methods.budget.tiny_stem_options`).
_BACKBONES: dict[str, ViTConfig] = {
    "paper": vit_config("base", img_size=(256, 128), patch_size=16, stride=16, num_cls=6, drop_path=0.2),
    "tiny": ViTConfig(
        img_size=TINY.input_size,
        patch_size=TINY_STEM_STRIDE,
        stride=TINY_STEM_STRIDE,
        embed_dim=192,
        depth=4,
        num_heads=3,
        num_cls=6,
        drop_path=0.1,
        stem="lite0",
    ),
}


@dataclass(frozen=True)
class Variant:
    """A registered Uni-AT method: its switches, the defaults of its options and its summary line."""

    said: bool
    moe: str | None  # a TABLE2_MOE key
    hdw: bool
    num_cls: int
    summary: str
    defaults: Mapping[str, str] | None = None  # option defaults (the paper's when None)

    def options(self) -> tuple[MethodOption, ...]:
        """The :data:`OPTIONS` that change this variant (the gate only where one is learned and top-k cuts)."""
        moe = TABLE2_MOE[self.moe] if self.moe else None
        gated = (
            moe is not None
            and moe.kind != "vlmo"
            and moe.top_k is not None
            and moe.top_k < len(expert_layout(moe).candidates[0])
        )
        wanted = [("moae_gate", gated), ("hdw_norm", self.hdw), ("fill_value", self.said)]
        defaults = self.defaults or {}
        return tuple(replace(OPTIONS[n], default=defaults.get(n, OPTIONS[n].default)) for n, on in wanted if on)


_VARIANTS: dict[str, Variant] = {
    "uniat": Variant(True, "moae12", True, 6, "Uni-AT: six scenario tokens, scenario-aware ID loss, MoAE (12 experts), HDW"),
    "uniat-official": Variant(
        True, "moae12", True, 6,
        "Uni-AT as the official code: renormalised top-1 gate, max-normalised HDW summed / B, -10 fill",
        OFFICIAL,
    ),
    "uniat-baseline": Variant(False, None, False, 6, "MS-ReID baseline: six tokens, plain person-ID loss on every head"),
    "uniat-said": Variant(True, None, False, 6, "MS-ReID + scenario-aware ID loss (Table 3 row 2, Table 2 MS-ReID)"),
    "uniat-said-moae": Variant(True, "moae12", False, 6, "MS-ReID + scenario-aware ID loss + MoAE-12 (Table 3 row 3)"),
    "uniat-said-hdw": Variant(True, None, True, 6, "MS-ReID + scenario-aware ID loss + HDW (Table 3 row 4)"),
    "uniat-unified": Variant(False, None, False, 1, "unified embedding: one CLS token shared by the six heads"),
    "uniat-said-mmoe6": Variant(True, "mmoe6", False, 6, "MS-ReID + SAID + MMoE, 6 shared experts (Table 2)"),
    "uniat-said-mmoe12": Variant(True, "mmoe12", False, 6, "MS-ReID + SAID + MMoE, 12 shared experts (Table 2)"),
    "uniat-said-ple7": Variant(True, "ple7", False, 6, "MS-ReID + SAID + PLE, 6 specific + 1 shared expert (Table 2)"),
    "uniat-said-ple12": Variant(True, "ple12", False, 6, "MS-ReID + SAID + PLE, 6 specific + 6 shared (Table 2)"),
    "uniat-said-vlmo3": Variant(True, "vlmo3", False, 6, "MS-ReID + SAID + VLMo RGB/IR/cross experts (Table 2)"),
    "uniat-said-moae6": Variant(True, "moae6", False, 6, "MS-ReID + SAID + MoAE, 6 experts (Table 2)"),
}  # fmt: skip


def uniat_config(variant: str, preset: str, options: Mapping[str, Any] | None = None) -> UniATConfig:
    """The :class:`UniATConfig` of a registered variant at a preset.

    Args:
        variant: a registered name (:data:`_VARIANTS`).
        preset: ``tiny`` or ``paper``.
        options: parsed values of the variant's options (``moae_gate``, ``hdw_norm``, ``fill_value``);
            missing ones take the variant's defaults.

    Raises:
        AtustcError: unknown variant, preset or option.
    """
    if variant not in _VARIANTS:
        raise AtustcError(f"unknown Uni-AT variant {variant!r}; choose one of {', '.join(_VARIANTS)}")
    check_preset(preset)
    v = _VARIANTS[variant]
    known = {o.name: o for o in v.options()}
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise AtustcError(f"{variant}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(known) or 'none'}")
    opts = {name: o.value(o.default) for name, o in known.items()} | dict(options or {})
    moe = TABLE2_MOE[v.moe] if v.moe else None
    if moe is not None and "moae_gate" in opts:
        moe = replace(moe, gate=opts["moae_gate"])
    return UniATConfig(
        vit=replace(_BACKBONES[preset], num_cls=v.num_cls, **(tiny_stem_options() if preset == "tiny" else {})),
        said=v.said,
        said_fill=opts.get("fill_value", -math.inf),
        moe=moe,
        hdw=opts.get("hdw_norm", "paper") if v.hdw else None,
    )


def uniat_recipe(preset: str) -> Recipe:
    """The training recipe of every Uni-AT variant at ``preset``.

    ``paper`` is the official recipe (reference §1.2). ``tiny`` trains the CPU-sized hybrid (the
    ImageNet EfficientNet-Lite0 stages to stride 16 as the patch stem, then four ViT-Ti-wide blocks
    carrying the six CLS tokens and MoAE) on the shared :data:`~atustc.methods.budget.TINY` budget
    (400 iterations of P x K = 8 x 4 at 96x48): AdamW at 1e-3 for the randomly initialised blocks
    and heads; the ImageNet stem stays frozen (a random stem trains at a fifth of the rate).
    """
    check_preset(preset)
    if preset == "paper":
        return Recipe(
            optimizer="sgd", lr=0.008, weight_decay=5e-4, momentum=0.9, nesterov=True,
            no_decay_patterns=("pos_embed", "cls_token", "norm"),
            lr_mult=10.0,
            lr_mult_patterns=("backbone.blocks.10.", "backbone.blocks.11.", "backbone.norm.", "heads."),
            clip_grad_norm=20.0,
            epochs=120, iters_per_epoch=200, warmup_epochs=10, warmup_start_factor=0.1,
            schedule="cosine", min_lr_factor=0.002, step_per="epoch",
            sampler="pk_modality", num_identities=8, num_instances=8,
            input_size=(256, 128), flip_p=0.5, pad=10, random_erasing_p=0.5,
        )  # fmt: skip
    return tiny_recipe(Recipe(
        optimizer="adamw", lr=1e-3, weight_decay=0.05,
        no_decay_patterns=("pos_embed", "cls_token", "norm", "bias"),
        lr_mult=STEM_LR_MULT, lr_mult_patterns=(STEM_PATTERN,),
        clip_grad_norm=20.0, warmup_start_factor=0.1,
        schedule="cosine", min_lr_factor=0.01,
        sampler="pk_modality", flip_p=0.5,
    ))  # fmt: skip


def build_uniat(labels: LabelSpace, config: UniATConfig, pretrained: Path | None = None) -> MSReID:
    """Build the model; load a local timm ViT checkpoint into the backbone when given.

    The load's :class:`~atustc.models.pretrained.LoadReport` is kept as ``model.load_report``.

    Without ``pretrained`` the backbone is randomly initialised (logged as a warning for
    ViT-B-sized backbones, which the paper always starts from ImageNet weights).
    """
    from atustc.models.msreid import MSReID
    from atustc.models.pretrained import load_vit_pretrained

    model = MSReID(config, labels)
    if pretrained is not None:
        model.load_report = load_vit_pretrained(model.backbone, pretrained)
    elif config.vit.embed_dim >= 768:
        log.warning("Uni-AT: no pretrained checkpoint given: the ViT-B backbone is randomly initialised")
    return model


def _spec(name: str) -> MethodSpec:
    v = _VARIANTS[name]

    def build(
        labels: LabelSpace, preset: str, pretrained: Path | None = None, options: Mapping[str, Any] | None = None
    ) -> MSReID:
        return build_uniat(labels, uniat_config(name, preset, options), pretrained)

    return MethodSpec(
        name=name, family="AT-ReID", summary=v.summary, build=build, recipe=uniat_recipe, options=v.options()
    )


for _name in _VARIANTS:
    register_method(_spec(_name))
