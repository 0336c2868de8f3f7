"""AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", TPAMI 2021;
mangye16/ReID-Survey ``configs/AGW_baseline.yml`` and mangye16/Cross-Modal-Re-ID-baseline).

AGW is BoT (``baselines/bot.py``, the same model class and recipe) plus:

- non-local blocks (:mod:`atustc.models.nonlocal_block`) after the last 2 bottlenecks of
  ``layer2`` and the last 3 of ``layer3`` (``non_layers=[0, 2, 3, 0]``: five blocks), with the
  official inter-channel width 1 (fast-reid uses C/2). On the tiny Lite0 the same places are
  the two blocks of the stride-8 stage (40 channels) and the three of the second stride-16
  stage (112 channels);
- GeM pooling with p learnable from 3;
- the weighted-regularisation triplet (no margin) instead of the batch-hard one;
- the centre loss kept on (5e-4, SGD 0.5), as the official config does although the paper
  describes AGW as BoT + NL + GeM + WRT.

Cross-modality (the two-stream AGW of the VI baseline): the model has a second stem
(``conv1/bn1/act1/maxpool``, shared layers 1-4); a sample with ``modality == 1`` (IR) goes
through it, at training and at test. On training data with IR (AT-USTC) the two-stream variant
is therefore in use; on RGB-only data the IR stem never sees a sample and the model is the
single-modality AGW. The VI repository's own recipe (SGD, 288×144, fixed p = 3, no label
smoothing, no centre loss) is not the ``paper`` recipe here: AGW is trained with the
ReID-Survey recipe at every preset.
"""

from __future__ import annotations

from atustc.methods import MethodSpec, Recipe, register_method
from atustc.models.cnn import BackboneConfig
from baselines._cnn import backbone_kind, check_preset, cnn_builder
from baselines.bot import GlobalReID, GlobalReIDConfig, bot_recipe

#: Non-local positions ``(stage, blocks)`` per backbone (ResNet stages are layer1..layer4).
AGW_NONLOCAL: dict[str, tuple[tuple[int, tuple[int, ...]], ...]] = {
    "resnet50": ((1, (2, 3)), (2, (3, 4, 5))),
    "lite0": ((2, (0, 1)), (4, (0, 1, 2))),
}


def agw_config(preset: str) -> GlobalReIDConfig:
    """AGW's model at a preset: non-local, GeM, WRT, centre loss, two stems."""
    check_preset("agw", preset)
    kind = backbone_kind(preset)
    backbone = BackboneConfig(kind, nonlocal_after=AGW_NONLOCAL[kind], nonlocal_inter=1, two_stream=True)
    return GlobalReIDConfig(backbone=backbone, pool="gem", triplet="wrt")


def agw_recipe(preset: str) -> Recipe:
    """AGW's recipe: BoT's (ReID-Survey ``AGW_baseline.yml`` changes only the model and losses)."""
    check_preset("agw", preset)
    return bot_recipe(preset)


#: Build AGW at a preset (pretrained weights are loaded before the non-local blocks are inserted).
build_agw = cnn_builder("agw", GlobalReID, agw_config)


@register_method
def agw() -> MethodSpec:
    return MethodSpec(
        name="agw",
        family="CM-ReID",
        summary="AGW: BoT + non-local (layer2/3) + GeM (learnable p) + weighted-regularisation triplet; IR stem",
        build=build_agw,
        recipe=agw_recipe,
    )
