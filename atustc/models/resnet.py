"""ResNet-50 with last stride 1 (timm), and local loading of torchvision or timm ResNet-50 checkpoints.

Every CNN baseline (BoT, PCB, AGW, CAL, AIM) uses torchvision's ImageNet ResNet-50
(``resnet50-19c8e357.pth``; in timm ``resnet50.tv_in1k``, not timm's default ``a1_in1k``) with the
stride of ``layer4[0].conv2`` and ``layer4[0].downsample[0]`` set to 1 (Luo et al., BoT, CVPRW
2019), so a 256×128 input gives a 16×8 map of 2,048 channels. torchvision and timm name the
ResNet-50 tensors alike (``conv1``, ``bn1``, ``layerN.M.convK``, ``downsample.0/1``, ``fc``), so
one by-name loader reads both formats; the ImageNet classifier ``fc`` is skipped. Nothing touches
the network.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from atustc.errors import AtustcError
from atustc.models.pretrained import LoadReport, read_state_dict

log = logging.getLogger(__name__)

#: Output channels of ResNet-50's four stages.
RESNET50_STAGE_CHANNELS: tuple[int, ...] = (256, 512, 1024, 2048)


def build_resnet50(last_stride: int = 1) -> nn.Module:
    """A randomly initialised timm ResNet-50 without classifier, last stride ``last_stride``."""
    import timm

    model = timm.create_model("resnet50", pretrained=False, num_classes=0)
    if last_stride != 2:
        block = model.layer4[0]
        block.conv2.stride = (last_stride, last_stride)
        block.downsample[0].stride = (last_stride, last_stride)
    return model


def load_resnet_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load a torchvision- or timm-format ResNet-50 checkpoint into ``model`` by name.

    The classifier (``fc.*``) is skipped; BN ``num_batches_tracked`` counters absent from old
    torchvision files are not reported as missing.

    Raises:
        AtustcError: unreadable file, no ResNet tensor in it, or a tensor of the wrong shape
            (e.g. a ResNet-18 checkpoint).
    """
    path = Path(path)
    source = read_state_dict(path)
    target = model.state_dict()
    skipped = tuple(sorted(k for k in source if k.startswith("fc.")))
    new: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key in target and key not in skipped:
            if tuple(value.shape) != tuple(target[key].shape):
                raise AtustcError(
                    f"pretrained checkpoint {path}: {key} has shape {tuple(value.shape)}, the model needs "
                    f"{tuple(target[key].shape)} (not a ResNet-50?)"
                )
            new[key] = value
    if not new:
        raise AtustcError(f"pretrained checkpoint {path}: no ResNet-50 tensor (conv1, layer1 ...) in it")
    model.load_state_dict(new, strict=False)
    report = LoadReport(
        path=path,
        loaded=tuple(sorted(new)),
        missing=tuple(sorted(k for k in target if k not in new and not k.endswith("num_batches_tracked"))),
        unexpected=tuple(sorted(k for k in source if k not in target and k not in skipped)),
        skipped=skipped,
        resized=(),
    )
    log.info(report.summary())
    return report
