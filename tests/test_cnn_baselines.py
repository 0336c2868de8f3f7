"""The CNN baselines (BoT, PCB, AGW, CAL, AIM): shapes, loss compositions, schedule switches,
optimiser groups, recipes, and the paper-preset architectures against hand-counted sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from baseline_helpers import LABELS, build_seeded, make_batch

from atustc.engine.run import model_record
from atustc.methods import Batch, get_method
from atustc.methods.budget import TINY
from atustc.models.losses import (
    batch_hard_triplet,
    center_loss,
    clothes_adversarial_loss,
    ls_cross_entropy,
    symmetric_kl,
    weighted_regularized_triplet,
)
from atustc.models.nonlocal_block import NonLocalBlock


def _batch(n: int = 8, size: tuple[int, int] = (128, 64), seed: int = 0) -> Batch:
    return make_batch(n, size, seed)


@pytest.mark.parametrize(
    ("name", "dim"), [("bot", 1280), ("agw", 1280), ("pcb", 6 * 1280), ("cal", 2560), ("aim", 2560)]
)
def test_tiny_embedding_sizes(name: str, dim: int) -> None:
    model = build_seeded(name).eval()
    emb = model.embed(_batch(2))
    assert emb.shape == (2, 1, dim) and model.embed_dim == dim and model.head_names == ("global",)
    record = model_record(model)["config"]  # what a run's status.json records of the architecture
    assert record["backbone"]["kind"] == "lite0" and record["backbone"]["last_stride"] == 1


def test_bot_loss_and_center_optimiser_group() -> None:
    model = build_seeded("bot").train()
    batch = _batch()
    out = model(batch)
    losses = model.loss(out, batch)
    feat = out["feat"]
    expected = (
        ls_cross_entropy(out["logits"], batch.pid, 0.1)
        + batch_hard_triplet(feat, batch.pid, 0.3)
        + 5e-4 * center_loss(feat, batch.pid, model.centers)
    )
    torch.testing.assert_close(losses["total"], expected)
    # the centres' own SGD: lr 0.5 on the gradient rescaled by 1 / 5e-4 moves them by 0.5 * dL_center/dc
    (group,) = model.optim_groups()
    assert (group.name, group.optimizer, group.lr) == ("center", "sgd", 0.5)
    assert group.grad_scale == pytest.approx(1 / 5e-4) and group.params[0] is model.centers
    opt = torch.optim.SGD(group.params, lr=group.lr)
    before = model.centers.detach().clone()
    model.zero_grad()
    losses["total"].backward()
    for p in group.params:
        p.grad.mul_(group.grad_scale)
    opt.step()
    ref = before.clone().requires_grad_(True)
    center_loss(feat.detach(), batch.pid, ref).backward()
    torch.testing.assert_close(model.centers.detach(), before - 0.5 * ref.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_agw_nonlocal_positions_gem_and_wrt(preset: str) -> None:
    from baselines.agw import agw_config

    cfg = agw_config(preset)
    assert cfg.pool == "gem" and cfg.triplet == "wrt" and cfg.center_weight == 5e-4 and cfg.backbone.two_stream
    expected = ((1, (2, 3)), (2, (3, 4, 5))) if preset == "paper" else ((2, (0, 1)), (4, (0, 1, 2)))
    assert cfg.backbone.nonlocal_after == expected
    if preset == "paper":
        return
    model = build_seeded("agw").train()
    blocks = [m for m in model.modules() if isinstance(m, NonLocalBlock)]
    assert len(blocks) == 5 and all(b.inter_channels == 1 for b in blocks)
    assert [b.theta.in_channels for b in blocks] == [40, 40, 112, 112, 112]
    assert isinstance(model.pool.p, torch.nn.Parameter) and model.pool.p.item() == 3.0
    batch = _batch()
    out = model(batch)
    expected_total = (
        ls_cross_entropy(out["logits"], batch.pid, 0.1)
        + weighted_regularized_triplet(out["feat"], batch.pid)
        + 5e-4 * center_loss(out["feat"], batch.pid, model.centers)
    )
    torch.testing.assert_close(model.loss(out, batch)["total"], expected_total)


def test_pcb_stripes_loss_and_embedding() -> None:
    from atustc.models.pooling import stripe_pool

    model = build_seeded("pcb").train()
    batch = _batch()
    out = model(batch)
    assert len(out["logits"]) == 6 and all(z.shape == (8, 4) for z in out["logits"])
    ce = sum(F.cross_entropy(z, batch.pid) for z in out["logits"])
    torch.testing.assert_close(model.loss(out, batch)["total"], ce)
    model.eval()
    with torch.no_grad():
        g = stripe_pool(model.backbone(batch.images), 6)  # 8x4 map: adaptive stripes
    torch.testing.assert_close(model.embed(batch)[:, 0], F.normalize(g, dim=2).flatten(1))


def test_pcb_h_feature_and_rpp_switch() -> None:
    from baselines.pcb import build_pcb

    torch.manual_seed(0)
    model = build_pcb(LABELS, "tiny", None, test_feature="h", rpp=True)
    assert model.embed_dim == 6 * 256
    cfg = model.config
    assert 0 < cfg.rpp_start_epoch < TINY.epochs  # scaled from 20 of 60 epochs
    batch = _batch(4)
    model.set_epoch(cfg.rpp_start_epoch - 1)
    assert not model.use_rpp and model.classifiers[0].weight.requires_grad
    model.set_epoch(cfg.rpp_start_epoch)  # RPP alone: only the part classifier trains
    assert model.use_rpp
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"part_classifier"}
    model.train()
    model.loss(model(batch), batch)["total"].backward()
    assert model.part_classifier.weight.grad is not None and model.classifiers[0].weight.grad is None
    model.set_epoch(cfg.rpp_start_epoch + cfg.rpp_alone_epochs)  # then everything
    assert model.classifiers[0].weight.requires_grad and model.use_rpp
    rebuilt = build_pcb(LABELS, "tiny", None, test_feature="h", rpp=True)
    rebuilt.load_state_dict(model.state_dict())  # as embed_run rebuilds a trained run
    assert rebuilt.use_rpp
    # RPP with a one-hot part assignment is the stripe average
    fmap = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 2, 4, 4)
    prob = torch.zeros(1, 2, 4, 4)
    prob[:, 0, :2], prob[:, 1, 2:] = 1, 1
    weighted = torch.einsum("bphw,bchw->bpc", prob, fmap) / prob.sum(dim=(2, 3)).unsqueeze(-1)
    assert weighted[0, :, 0].tolist() == [3.5, 11.5]


def test_cal_switch_and_gradient_isolation() -> None:
    model = build_seeded("cal").train()
    start = model.config.start_epoch
    assert start == 9  # 25 of 60 epochs: 5 after the first decay (20 -> 8), 5/40 of the rest: 8 + 8 * 5 / 40
    batch = _batch()
    model.set_epoch(start - 1)
    out = model(batch)
    losses = model.loss(out, batch)
    assert set(losses) == {"total", "id"}
    torch.testing.assert_close(losses["total"], ls_cross_entropy(out["logits"], batch.pid, 0.1))
    model.set_epoch(start)
    out = model(batch)
    losses = model.loss(out, batch)
    assert set(losses) == {"total", "id", "clothes", "cal"}
    f, w = out["f"], model.clothes_classifier.weight
    z = 16 * F.linear(F.normalize(f, dim=1), F.normalize(w, dim=1))
    clothes = F.cross_entropy(z, batch.outfit)
    cal = clothes_adversarial_loss(z, batch.outfit, batch.pid, torch.tensor(LABELS.outfit_to_pid))
    torch.testing.assert_close(losses["total"], ls_cross_entropy(out["logits"], batch.pid, 0.1) + clothes + cal)
    # the clothes classifier learns only from its CE, the backbone never from it
    g_total = torch.autograd.grad(losses["total"], [w], retain_graph=True)[0]
    g_clothes = torch.autograd.grad(clothes, [w], retain_graph=True)[0]
    torch.testing.assert_close(g_total, g_clothes)
    bn_w = model.bn.weight
    g_main = torch.autograd.grad(losses["total"], [bn_w], retain_graph=True)[0]
    g_ref = torch.autograd.grad(ls_cross_entropy(out["logits"], batch.pid, 0.1) + cal, [bn_w])[0]
    torch.testing.assert_close(g_main, g_ref)
    (group,) = model.optim_groups()
    assert (group.name, group.optimizer, group.scheduled, group.weight_decay) == ("clothes", "adam", False, 5e-4)
    assert group.params[0] is w
    torch.optim.Adam(group.params, lr=group.lr, weight_decay=group.weight_decay)


def test_aim_switch_fusion_and_main_branch_only_at_test() -> None:
    model = build_seeded("aim").train()
    start = model.config.start_epoch
    assert start == 9  # 25 of 100 epochs, steps at 20 and 40: 8 + 8 * 5 / 80 = 8.5, rounded half up
    batch = _batch()
    model.set_epoch(start - 1)
    out = model(batch)
    assert "logits_bias" not in out and set(model.loss(out, batch)) == {"total", "id", "clothes_bias"}
    model.set_epoch(start)
    out = model(batch)
    losses = model.loss(out, batch)
    assert set(losses) == {"total", "id", "clothes_bias", "debias", "kl", "clothes", "cal"}
    s = 16.0
    bias_logits = s * model.bias_branch.clothes_classifier(out["f_bias"])
    main_clothes = s * model.clothes_classifier(out["f"])
    pid, outfit = batch.pid, batch.outfit
    debias = ls_cross_entropy(out["logits"] - out["logits_bias"], pid, 0.1)
    expected = (
        ls_cross_entropy(out["logits"], pid, 0.1) + F.cross_entropy(bias_logits, outfit) + debias
        + symmetric_kl(bias_logits, main_clothes) + F.cross_entropy(main_clothes, outfit)
        + clothes_adversarial_loss(main_clothes, outfit, pid, torch.tensor(LABELS.outfit_to_pid))
    )  # fmt: skip
    torch.testing.assert_close(losses["total"], expected)
    # the fusion reads the bias map detached: the debiasing term sends no gradient into the bias branch
    grads = torch.autograd.grad(
        debias, list(model.bias_branch.backbone.parameters()), allow_unused=True, retain_graph=True
    )
    assert all(g is None or g.abs().max() == 0 for g in grads)
    assert torch.autograd.grad(debias, [model.fusion.fc.weight])[0].abs().max() > 0
    names = [g.name for g in model.optim_groups()]
    assert names == ["clothes", "bias"] and model.optim_groups()[1].scheduled
    # test: the main branch only
    model.eval()
    before = model.embed(batch)
    with torch.no_grad():
        for p in model.bias_branch.parameters():
            p.add_(1.0)
        model.fusion.fc.weight.add_(1.0)
    torch.testing.assert_close(model.embed(batch), before)


def test_fusion_bilinear_pooling_hand_computed() -> None:
    from baselines.aim import Fusion

    torch.manual_seed(0)
    fusion = Fusion(channels=3, maps=2, out_dim=4).eval()
    main, bias = torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2)
    att = fusion.attention(bias)  # [1, 2, 2, 2]
    pooled = torch.stack([(att[0, m] * main[0, c]).mean() for m in range(2) for c in range(3)])
    pooled = torch.sign(pooled) * torch.sqrt(pooled.abs() + 1e-12)
    expected = fusion.bn(fusion.fc(F.normalize(pooled, dim=0)[None]))
    torch.testing.assert_close(fusion(main, bias), expected)


def test_recipes_paper_and_tiny() -> None:
    bot = get_method("bot").recipe("paper")
    assert (bot.optimizer, bot.lr, bot.weight_decay, bot.milestones, bot.warmup_epochs, bot.warmup_start_factor) == (
        "adam",
        3.5e-4,
        5e-4,
        (40, 70),
        10,
        0.01,
    )
    assert (bot.num_identities, bot.num_instances, bot.input_size, bot.flip_test) == (16, 4, (256, 128), False)
    pcb = get_method("pcb").recipe("paper")
    assert (pcb.optimizer, pcb.lr, pcb.lr_mult, pcb.nesterov, pcb.epochs, pcb.milestones) == (
        "sgd",
        0.01,
        10.0,
        True,
        60,
        (40,),
    )
    assert (pcb.sampler, pcb.input_size, pcb.random_erasing_p, pcb.pad) == ("random", (384, 128), 0.0, 0)
    cal = get_method("cal").recipe("paper")
    assert (cal.epochs, cal.milestones, cal.input_size, cal.num_instances, cal.flip_test) == (
        60,
        (20, 40),
        (384, 192),
        8,
        True,
    )
    assert get_method("aim").recipe("paper").epochs == 100
    assert get_method("agw").recipe("paper") == bot
    # the paper's first decay no earlier than half-way (epoch 8 of 16), the rest after it in proportion
    tiny_steps = {"bot": (8, 11), "pcb": (11,), "agw": (8, 11), "cal": (8, 12), "aim": (8, 10)}
    for name, steps in tiny_steps.items():
        spec = get_method(name)
        paper, tiny = spec.recipe("paper"), spec.recipe("tiny")
        assert (tiny.epochs, tiny.iters_per_epoch, tiny.input_size) == (
            TINY.epochs,
            TINY.iters_per_epoch,
            TINY.input_size,
        )
        assert tiny.mean == (0.5, 0.5, 0.5) and tiny.optimizer == paper.optimizer and tiny.lr == paper.lr
        assert tiny.milestones == steps
    assert get_method("cal").needs == ("clothes",) and get_method("aim").needs == ("clothes",)
    assert get_method("agw").family == "CM-ReID" and get_method("pcb").family == "Tr-ReID"


def test_unknown_preset() -> None:
    from atustc.errors import AtustcError

    for name in ("bot", "pcb", "agw", "cal", "aim"):
        with pytest.raises(AtustcError, match=f"{name}: unknown preset 'huge'"):
            get_method(name).recipe("huge")


R50 = 23_508_032  # ResNet-50 without its classifier


def _paper_sizes(name: str) -> tuple[int, int]:
    """Hand-counted parameters and embedding size of the paper architectures (4 persons, 8 outfits)."""
    n, o = LABELS.num_pids, LABELS.num_outfits
    bnneck = 2 * 2048 + 2048 * n
    if name == "bot":
        return R50 + bnneck + n * 2048, 2048
    if name == "agw":
        nl = 2 * (3 * 513 + 2 * 512 + 2 * 512) + 3 * (3 * 1025 + 2 * 1024 + 2 * 1024)  # θ, φ, g, W conv (biases), W BN
        ir_stem = 64 * 3 * 7 * 7 + 2 * 64
        return R50 + nl + ir_stem + 1 + bnneck + n * 2048, 2048
    if name == "pcb":
        return R50 + 2048 * 256 + 2 * 256 + 6 * (256 * n + n), 6 * 2048
    cal = R50 + 2 * 4096 + (4096 * n + n) + o * 4096
    if name == "cal":
        return cal, 4096
    bias_branch = R50 + 15 * (2048 * 256 + 2 * 256) + 3840 * 4096 + 2 * 4096 + o * 4096
    fusion = 2048 * 8 + 2 * 8 + 16384 * 4096 + 2 * 4096
    return cal + bias_branch + fusion, 4096


@pytest.mark.parametrize("name", ["bot", "agw", "pcb", "cal", "aim"])
def test_paper_architectures_match_the_published_sizes(name: str) -> None:
    model = build_seeded(name, "paper")
    params, dim = _paper_sizes(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.embed_dim == dim
    assert model.backbone.out_channels == 2048
    model.eval()
    with torch.no_grad():
        fmap = model.backbone(torch.zeros(1, 3, 64, 32))
    assert fmap.shape[-2:] == (4, 2)  # last stride 1: stride 16
