"""Shared baseline blocks: losses on hand-built batches, pooling, non-local, BNNeck, backbones, loaders."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from atustc.errors import AtustcError
from atustc.models.bnneck import BNNeck, CosineClassifier, neck_bn
from atustc.models.losses import (
    batch_hard_triplet,
    center_loss,
    clothes_adversarial_loss,
    ls_cross_entropy,
    soft_margin_triplet,
    symmetric_kl,
    weighted_regularized_triplet,
)
from atustc.models.nonlocal_block import NonLocalBlock
from atustc.models.pooling import GeM, max_avg_pool, stripe_max_pool, stripe_pool

# 1-d features: distances are |a - b|
FEAT = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_ls_cross_entropy_hand_computed() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    logp = logits.log_softmax(1)[0]
    eps = 0.1
    # target (1 - eps) onehot + eps / K
    expected = -((1 - eps + eps / 3) * logp[0] + eps / 3 * logp[1] + eps / 3 * logp[2])
    assert ls_cross_entropy(logits, torch.tensor([0]), eps).item() == pytest.approx(expected.item(), rel=1e-6)
    assert ls_cross_entropy(logits, torch.tensor([0]), 0.0).item() == pytest.approx(-logp[0].item(), rel=1e-6)


def test_batch_hard_and_soft_margin_triplets_hand_computed() -> None:
    # per anchor (hardest positive, hardest negative): 0: (1, 3), 1: (1, 2), 2: (3, 2), 3: (3, 5)
    pairs = [(1, 3), (1, 2), (3, 2), (3, 5)]
    hinge = sum(max(0.0, p - n + 0.3) for p, n in pairs) / 4
    soft = sum(math.log1p(math.exp(p - n)) for p, n in pairs) / 4
    assert batch_hard_triplet(FEAT, LABELS, 0.3).item() == pytest.approx(hinge, rel=1e-6)
    assert soft_margin_triplet(FEAT, LABELS).item() == pytest.approx(soft, rel=1e-6)
    assert soft_margin_triplet(FEAT, torch.tensor([0, 1, 2, 3])).item() == 0.0  # no positive anywhere


def test_weighted_regularized_triplet_hand_computed() -> None:
    d = (FEAT - FEAT.T).abs()
    total = 0.0
    for i in range(4):
        pos = [j for j in range(4) if LABELS[j] == LABELS[i]]  # the anchor itself included
        neg = [j for j in range(4) if LABELS[j] != LABELS[i]]
        wp = torch.softmax(d[i, pos], 0)
        wn = torch.softmax(-d[i, neg], 0)
        gap = (wp * d[i, pos]).sum() - (wn * d[i, neg]).sum()
        total += math.log1p(math.exp(gap.item()))
    assert weighted_regularized_triplet(FEAT, LABELS).item() == pytest.approx(total / 4, rel=1e-5)
    # gradients stay finite although the anchor's own distance is 0
    feat = FEAT.clone().requires_grad_(True)
    weighted_regularized_triplet(feat, LABELS).backward()
    assert torch.isfinite(feat.grad).all()


def test_center_loss_hand_computed() -> None:
    feat = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # |(1,0)-(0,0)|^2 = 1 ; |(0,2)-(1,1)|^2 = 2 -> mean 1.5
    assert center_loss(feat, torch.tensor([0, 1]), centers).item() == pytest.approx(1.5)


def test_clothes_adversarial_loss_hand_computed() -> None:
    # 4 outfits: 0, 1 of person 0; 2, 3 of person 1. One sample of person 0 wearing outfit 0.
    z = torch.tensor([[1.0, 2.0, 0.5, -1.0]])
    outfit_to_pid = torch.tensor([0, 0, 1, 1])
    eps = 0.1
    neg = math.exp(0.5) + math.exp(-1.0)  # the other identity's outfits
    logp = [zc - math.log(math.exp(zc) + neg) for zc in (1.0, 2.0)]  # own outfits only in S+
    q = [1 - eps + eps / 2, eps / 2]
    expected = -(q[0] * logp[0] + q[1] * logp[1])
    got = clothes_adversarial_loss(z, torch.tensor([0]), torch.tensor([0]), outfit_to_pid, eps)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # an identity with one outfit and eps = 0: plain CE against the other identities' outfits
    z2 = torch.tensor([[0.3, 1.0, 2.0]])
    got2 = clothes_adversarial_loss(z2, torch.tensor([2]), torch.tensor([1]), torch.tensor([0, 0, 1]), 0.0)
    assert got2.item() == pytest.approx(-(2.0 - math.log(math.exp(2.0) + math.exp(0.3) + math.exp(1.0))), rel=1e-6)


def test_symmetric_kl_is_summed_and_q_detached() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    p, q = a.softmax(1), b.softmax(1)
    expected = (p * (p / q).log()).sum() + (q * (q / p).log()).sum()  # the identical second rows add 0
    loss = symmetric_kl(a, b)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert b.grad is None and a.grad.abs().sum() > 0


def test_gem_limits() -> None:
    x = torch.rand(2, 3, 4, 5) + 0.1
    torch.testing.assert_close(GeM(p=1.0)(x), x.mean(dim=(2, 3)))
    big = GeM(p=200.0, learnable=False)(x)
    assert (big - x.amax(dim=(2, 3))).abs().max() < 0.02 and (big <= x.amax(dim=(2, 3)) + 1e-5).all()
    assert isinstance(GeM().p, torch.nn.Parameter) and GeM().p.item() == 3.0
    assert not isinstance(GeM(learnable=False).p, torch.nn.Parameter)


def test_stripe_and_max_avg_pooling_hand_computed() -> None:
    x = torch.arange(24.0).view(1, 1, 6, 4)  # row r holds 4r..4r+3
    stripes = stripe_pool(x, 3)  # rows (0,1), (2,3), (4,5): means 3.5, 11.5, 19.5
    assert stripes.shape == (1, 3, 1) and stripes.flatten().tolist() == [3.5, 11.5, 19.5]
    assert stripe_max_pool(x, 2).flatten().tolist() == [11.0, 23.0]
    assert max_avg_pool(x).flatten().tolist() == [23.0, 11.5]


def test_nonlocal_is_identity_at_init_and_matches_the_quadratic_form() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(4, inter_channels=2).eval()
    x = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(block(x), x)
    torch.nn.init.normal_(block.W[1].weight)
    theta = block.theta(x).flatten(2)  # [B, c, N]
    phi = block.phi(x).flatten(2)
    g = block.g(x).flatten(2)
    f = theta.transpose(1, 2) @ phi / 15  # [B, N, N], no softmax
    y = (f @ g.transpose(1, 2)).transpose(1, 2).reshape(2, 2, 3, 5)
    torch.testing.assert_close(block(x), block.W(y) + x, rtol=1e-5, atol=1e-5)


def test_bnneck_and_cosine_classifier() -> None:
    neck = BNNeck(8, 5)
    assert not neck.bn.bias.requires_grad and torch.all(neck.bn.weight == 1)
    assert neck.classifier.bias is None and neck.classifier.weight.std() < 0.01
    assert neck_bn(8, weight_std=0.01).weight.std() > 0
    cos = CosineClassifier(3, 2)
    with torch.no_grad():
        cos.weight.copy_(torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))
    out = cos(torch.tensor([[3.0, 0.0, 3.0]]))
    torch.testing.assert_close(out, torch.tensor([[1 / math.sqrt(2), -1 / math.sqrt(2)]]))


def test_backbones_last_stride_and_two_streams() -> None:
    from atustc.models.cnn import BackboneConfig, build_backbone

    torch.manual_seed(0)
    net, report = build_backbone(BackboneConfig("lite0", init="random", two_stream=True))
    assert report is None and net.out_channels == 1280
    net.eval()
    x = torch.randn(4, 3, 128, 64)
    rgb = net(x, torch.zeros(4, dtype=torch.long))
    assert rgb.shape == (4, 1280, 8, 4)  # stride 16 with last stride 1
    with torch.no_grad():
        net.stem_ir[0].weight.mul_(-1.0)
    mixed = net(x, torch.tensor([0, 1, 0, 1]))
    torch.testing.assert_close(mixed[[0, 2]], rgb[[0, 2]])  # RGB samples: the RGB stem
    assert (mixed[[1, 3]] - rgb[[1, 3]]).abs().max() > 1e-3  # IR samples: the IR stem
    net2, _ = build_backbone(BackboneConfig("lite0", init="random", last_stride=2))
    assert net2(x[:1]).shape == (1, 1280, 4, 2)


def test_lite0_imagenet_weights_from_the_wheel() -> None:
    from atustc.models.cnn import BackboneConfig, build_backbone

    _, report = build_backbone(BackboneConfig("lite0"))
    assert report is not None and len(report.loaded) > 200 and not report.missing


@pytest.fixture(scope="module")
def resnet_state() -> dict[str, torch.Tensor]:
    from atustc.models.resnet import build_resnet50

    torch.manual_seed(3)
    return build_resnet50(last_stride=2).state_dict()


def test_resnet50_last_stride_and_size(resnet_state) -> None:
    from atustc.models.resnet import build_resnet50

    net = build_resnet50(last_stride=1)
    assert net.layer4[0].conv2.stride == (1, 1) and net.layer4[0].downsample[0].stride == (1, 1)
    assert sum(p.numel() for p in net.parameters()) == 23_508_032  # ResNet-50 without fc
    assert net.forward_features(torch.randn(1, 3, 64, 32)).shape == (1, 2048, 4, 2)


@pytest.mark.parametrize("layout", ["torchvision", "timm-safetensors"])
def test_resnet_loader_reads_torchvision_and_timm_files(tmp_path, resnet_state, layout) -> None:
    from atustc.models.resnet import build_resnet50, load_resnet_pretrained

    state = {k: v for k, v in resnet_state.items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    if layout == "torchvision":
        path = tmp_path / "resnet50-19c8e357.pth"
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        path = tmp_path / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    net = build_resnet50()
    report = load_resnet_pretrained(net, path)
    assert report.skipped == ("fc.bias", "fc.weight") and not report.missing and not report.unexpected
    torch.testing.assert_close(net.layer3[2].conv2.weight, resnet_state["layer3.2.conv2.weight"])


def test_resnet_loader_errors(tmp_path) -> None:
    from atustc.models.resnet import build_resnet50, load_resnet_pretrained

    bad = tmp_path / "r18.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}, bad)
    with pytest.raises(AtustcError, match="layer1.0.conv1.weight has shape"):
        load_resnet_pretrained(build_resnet50(), bad)
    other = tmp_path / "vit.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 8)}, other)
    with pytest.raises(AtustcError, match="no ResNet-50 tensor"):
        load_resnet_pretrained(build_resnet50(), other)
    with pytest.raises(AtustcError, match="does not exist"):
        load_resnet_pretrained(build_resnet50(), tmp_path / "missing.pth")


def test_ls_ce_equals_torch_smoothing_on_a_batch() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(5, 7), torch.tensor([0, 3, 6, 2, 2])
    onehot = F.one_hot(target, 7).float()
    q = 0.9 * onehot + 0.1 / 7
    expected = -(q * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(ls_cross_entropy(logits, target), expected)
