"""Uni-AT (paper §4) and its ablations, registered as methods: model configs and recipes per preset.

The network is :class:`atustc.models.msreid.MSReID`; its switches are :class:`atustc.models.config.UniATConfig`.

Registered methods (family AT-ReID), the rows of the paper's Table 3 plus the unified embedding:

=================== ==== ===== ====== ==== =============================================
name                SAID MoAE  HDW    CLS  paper row
=================== ==== ===== ====== ==== =============================================
``uniat-baseline``  -    -     -      6    Baseline (six tokens, plain person-ID loss)
``uniat-said``      yes  -     -      6    +L_id^s
``uniat-said-moae`` yes  12    -      6    +L_id^s +MoAE
``uniat-said-hdw``  yes  -     paper  6    +L_id^s +HDW
``uniat``           yes  12    paper  6    Uni-AT (full)
``uniat-unified``   -    -     -      1    unified embedding (one CLS token for all heads)
=================== ==== ===== ====== ==== =============================================

The Table 2 alternatives (MMoE, PLE, VLMo, 6-expert MoAE) are :data:`TABLE2_MOE` configs for
:func:`build_uniat`. This module imports no torch at import time; building does.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from atustc.errors import AtustcError
from atustc.methods import register_method
from atustc.methods.budget import STEM_LR_MULT, STEM_PATTERN, TINY, TINY_STEM_STRIDE, tiny_recipe, tiny_stem_options
from atustc.methods.contract import LabelSpace, MethodSpec, Recipe, check_preset
from atustc.models.config import MoEConfig, UniATConfig, ViTConfig, vit_config

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

#: Registered variant -> (SAID, MoAE, HDW, number of CLS tokens).
_VARIANTS: dict[str, tuple[bool, bool, bool, int]] = {
    "uniat": (True, True, True, 6),
    "uniat-baseline": (False, False, False, 6),
    "uniat-said": (True, False, False, 6),
    "uniat-said-moae": (True, True, False, 6),
    "uniat-said-hdw": (True, False, True, 6),
    "uniat-unified": (False, False, False, 1),
}


def uniat_config(variant: str, preset: str) -> UniATConfig:
    """The :class:`UniATConfig` of a registered variant at a preset.

    Raises:
        AtustcError: unknown variant or preset.
    """
    if variant not in _VARIANTS:
        raise AtustcError(f"unknown Uni-AT variant {variant!r}; choose one of {', '.join(_VARIANTS)}")
    check_preset(preset)
    said, moae, hdw, num_cls = _VARIANTS[variant]
    return UniATConfig(
        vit=replace(_BACKBONES[preset], num_cls=num_cls, **(tiny_stem_options() if preset == "tiny" else {})),
        said=said,
        moe=MoEConfig("moae", 12) if moae else None,
        hdw="paper" if hdw else None,
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


def _spec(name: str, summary: str) -> MethodSpec:
    def build(labels: LabelSpace, preset: str, pretrained: Path | None = None) -> MSReID:
        return build_uniat(labels, uniat_config(name, preset), pretrained)

    return MethodSpec(name=name, family="AT-ReID", summary=summary, build=build, recipe=uniat_recipe)


register_method(_spec("uniat", "Uni-AT: six scenario tokens, scenario-aware ID loss, MoAE (12 experts), HDW"))


register_method(_spec("uniat-baseline", "MS-ReID baseline: six tokens, plain person-ID loss on every head"))


register_method(_spec("uniat-said", "MS-ReID + scenario-aware ID loss (Table 3 row 2)"))


register_method(_spec("uniat-said-moae", "MS-ReID + scenario-aware ID loss + MoAE (Table 3 row 3)"))


register_method(_spec("uniat-said-hdw", "MS-ReID + scenario-aware ID loss + HDW (Table 3 row 4)"))


register_method(_spec("uniat-unified", "unified embedding: one CLS token shared by the six heads, person-ID loss"))
