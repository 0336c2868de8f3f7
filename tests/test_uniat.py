"""Uni-AT: the scenario-aware ID loss, HDW, the registered variants, recipes and builds."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from atustc.engine.config import EngineConfig, apply_overrides, parse_set_options
from atustc.errors import AtustcError
from atustc.methods import SCENARIOS, Batch, LabelSpace, ReIDModel, get_method
from atustc.methods.uniat import build_uniat, uniat_config, uniat_recipe
from atustc.models.config import MoEConfig, UniATConfig
from atustc.models.losses import HeadLosses, batch_hard_triplet, combine_id_losses, hdw_weights, scenario_id_losses

VARIANTS = (
    "uniat", "uniat-official", "uniat-baseline", "uniat-said", "uniat-said-moae", "uniat-said-hdw", "uniat-unified",
    "uniat-said-mmoe6", "uniat-said-mmoe12", "uniat-said-ple7", "uniat-said-ple12", "uniat-said-vlmo3",
    "uniat-said-moae6",
)  # fmt: skip
# persons 0 (outfits 0, 1), 1 (outfit 2), 2 (outfits 3, 4)
LABELS = LabelSpace(num_pids=3, num_outfits=5, outfit_to_pid=(0, 0, 1, 2, 2), num_cameras=4)


def ce(logits: list[float], target: int, excluded: tuple[int, ...] = (), fill: float | None = None) -> float:
    """Cross-entropy by hand; ``excluded`` classes dropped (or their logit set to ``fill``)."""
    terms = [fill if (j in excluded and fill is not None) else v for j, v in enumerate(logits)]
    denom = sum(math.exp(v) for j, v in enumerate(terms) if fill is not None or j not in excluded)
    return -(terms[target] - math.log(denom))


# two samples: (pid 0, outfit 0, RGB) and (pid 2, outfit 4, IR)
ST = [[1.0, 2.0, 0.5, 3.0, -1.0], [0.2, -0.3, 1.5, 0.7, 0.9]]
LT = [[0.3, 1.2, -0.4], [2.0, 0.1, 0.6]]
PID, OUTFIT, MOD = torch.tensor([0, 2]), torch.tensor([0, 4]), torch.tensor([0, 1])


def said_logits() -> list[torch.Tensor]:
    return [torch.tensor(ST) if s.endswith("ST") else torch.tensor(LT) for s in SCENARIOS]


def test_said_masking_equals_hand_computation() -> None:
    head = scenario_id_losses(said_logits(), PID, OUTFIT, MOD, torch.tensor(LABELS.outfit_to_pid))
    st = [ce(ST[0], 0, excluded=(1,)), ce(ST[1], 4, excluded=(3,))]  # own other outfit is no negative
    lt = [ce(LT[0], 0), ce(LT[1], 2)]
    expected_mask = [[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]]  # DT: RGB, NT: IR, AD: all
    expected = [
        [st[0], 0.0], [lt[0], 0.0],  # DT-ST, DT-LT
        [0.0, st[1]], [0.0, lt[1]],  # NT-ST, NT-LT
        st, lt,  # AD-ST, AD-LT
    ]  # fmt: skip
    assert head.mask.int().tolist() == expected_mask
    assert torch.allclose(head.loss, torch.tensor(expected), atol=1e-5)
    assert head.head_means().tolist() == pytest.approx([st[0], lt[0], st[1], lt[1], sum(st) / 2, sum(lt) / 2], abs=1e-5)


def test_said_official_fill_uses_minus_ten() -> None:
    head = scenario_id_losses(said_logits(), PID, OUTFIT, MOD, torch.tensor(LABELS.outfit_to_pid), said_fill=-10.0)
    assert head.loss[4].tolist() == pytest.approx(
        [ce(ST[0], 0, (1,), fill=-10.0), ce(ST[1], 4, (3,), fill=-10.0)], abs=1e-5
    )


def test_baseline_is_person_id_on_every_sample() -> None:
    logits = [torch.tensor(LT)] * 6
    head = scenario_id_losses(logits, PID, OUTFIT, MOD, torch.tensor(LABELS.outfit_to_pid), said=False)
    assert head.mask.all()
    assert torch.allclose(head.loss, torch.tensor([[ce(LT[0], 0), ce(LT[1], 2)]] * 6), atol=1e-5)


# per-sample losses [6 heads, 3 samples] and masks, for the HDW hand computation
L = [[0.5, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.3, 0.7], [0.0, 1.5, 0.2], [0.1, 0.4, 0.9], [1.1, 2.2, 0.6]]
M = [[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]


def hand_hdw(gamma: float, official: bool) -> list[float]:
    def conf(heads: list[int]) -> float:
        vals = [math.exp(-L[h][i]) for h in heads for i in range(3) if M[h][i]]
        return sum(vals) / len(vals)

    tm = {g: (1 - conf(hs)) ** (gamma / 2) for g, hs in {"DT": [0, 1], "NT": [2, 3], "AD": [4, 5]}.items()}
    ti = {g: (1 - conf(hs)) ** (gamma / 2) for g, hs in {"ST": [0, 2, 4], "LT": [1, 3, 5]}.items()}
    if official:
        tm = {k: v / max(tm.values()) for k, v in tm.items()}
        ti = {k: v / max(ti.values()) for k, v in ti.items()}
    return [tm[s.split("-")[0]] * ti[s.split("-")[1]] for s in SCENARIOS]


def head_losses(requires_grad: bool = False) -> HeadLosses:
    return HeadLosses(torch.tensor(L, requires_grad=requires_grad), torch.tensor(M, dtype=torch.bool))


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_hdw_weights_equal_hand_computation(gamma: float) -> None:
    assert hdw_weights(head_losses(), gamma=gamma).tolist() == pytest.approx(hand_hdw(gamma, False), abs=1e-6)
    official = hdw_weights(head_losses(), gamma=gamma, mode="official").tolist()
    assert official == pytest.approx(hand_hdw(gamma, True), abs=1e-6)


def test_hdw_totals_equal_hand_computation() -> None:
    means = [sum(L[h][i] for i in range(3) if M[h][i]) / sum(M[h]) for h in range(6)]
    total, w = combine_id_losses(head_losses())
    assert w is None and total.item() == pytest.approx(sum(means), abs=1e-6)
    total, _ = combine_id_losses(head_losses(), hdw="paper")
    assert total.item() == pytest.approx(sum(a * b for a, b in zip(hand_hdw(1.0, False), means)), abs=1e-6)
    total, _ = combine_id_losses(head_losses(), hdw="official")
    sums = [sum(L[h][i] for i in range(3) if M[h][i]) for h in range(6)]
    assert total.item() == pytest.approx(sum(a * b for a, b in zip(hand_hdw(1.0, True), sums)) / 3, abs=1e-6)


def test_hdw_gradient_flows_unless_detached() -> None:
    assert hdw_weights(head_losses(True)).requires_grad
    assert not hdw_weights(head_losses(True), detach=True).requires_grad


def test_batch_hard_triplet_hand_case() -> None:
    feat = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchors: hardest pos / hardest neg: 1/3, 1/2, 0.5/2, 0.5/2.5 -> relu(d_ap - d_an + 0.3)
    expected = (0 + 0 + 0 + 0) / 4
    assert batch_hard_triplet(feat, labels).item() == pytest.approx(expected)
    feat = torch.tensor([[0.0], [2.0], [1.0], [1.2]])
    terms = [max(0.0, 2 - 1 + 0.3), max(0.0, 2 - 0.8 + 0.3), max(0.0, 0.2 - 1 + 0.3), max(0.0, 0.2 - 0.8 + 0.3)]
    assert batch_hard_triplet(feat, labels).item() == pytest.approx(sum(terms) / 4, abs=1e-5)
    assert batch_hard_triplet(feat, labels, mask=torch.tensor([1, 0, 1, 0], dtype=torch.bool)).item() == 0.0


def tiny_batch(n: int = 8, size: tuple[int, int] = (96, 48)) -> Batch:
    g = torch.Generator().manual_seed(0)
    outfit = torch.tensor([0, 1, 2, 2, 3, 4, 0, 3])[:n]
    return Batch(
        images=torch.randn(n, 3, *size, generator=g),
        pid=torch.tensor(LABELS.outfit_to_pid)[outfit],
        outfit=outfit,
        modality=torch.arange(n) % 2,
        camera=torch.zeros(n, dtype=torch.long),
    )


MINI_VIT = dict(img_size=(64, 32), embed_dim=48, depth=2, num_heads=2, drop_path=0.0)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_builds_and_trains(name: str) -> None:
    """Each variant (on a mini ViT, to stay fast) honours the contract and learns a fixed batch."""
    assert get_method(name).family == "AT-ReID"
    torch.manual_seed(0)
    cfg = uniat_config(name, "tiny")
    model = build_uniat(LABELS, replace(cfg, vit=replace(cfg.vit, **MINI_VIT)))
    assert isinstance(model, ReIDModel) and model.head_names == SCENARIOS
    batch = tiny_batch(size=(64, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(4):
        out = model.loss(model(batch), batch)
        opt.zero_grad()
        out["total"].backward()
        opt.step()
        losses.append(out["total"].item())
    assert losses[-1] < losses[0], losses
    assert {f"id/{s}" for s in SCENARIOS} <= set(out)
    assert ("hdw/AD-LT" in out) == (name in ("uniat", "uniat-official", "uniat-said-hdw"))
    model.eval()
    with torch.no_grad():
        feats = model.embed(batch)
        tokens = model(batch).tokens
    assert feats.shape == (8, 6, 48) and torch.isfinite(feats).all()
    if name == "uniat-unified":
        assert all(torch.equal(tokens[:, 0], tokens[:, i]) for i in range(6))
    else:
        assert not torch.equal(tokens[:, 0], tokens[:, 5])


def test_registered_tiny_build_embeds() -> None:
    torch.manual_seed(0)
    model = get_method("uniat").build(LABELS, "tiny", None).eval()
    with torch.no_grad():
        assert model.embed(tiny_batch(4)).shape == (4, 6, 192)


def test_hdw_is_finite_when_a_group_is_certain() -> None:
    head = HeadLosses(torch.zeros(6, 2, requires_grad=True), torch.ones(6, 2, dtype=torch.bool))
    total, w = combine_id_losses(HeadLosses(head.loss * 1.0, head.mask), hdw="paper")
    total.backward()
    assert torch.isfinite(w).all() and torch.isfinite(head.loss.grad).all()


def test_classifier_sizes_follow_said() -> None:
    def necks(name: str) -> torch.nn.ModuleList:
        with torch.device("meta"):
            return build_uniat(LABELS, uniat_config(name, "tiny")).heads.necks

    assert [neck.classifier.out_features for neck in necks("uniat-said")] == [5, 3, 5, 3, 5, 3]
    assert [neck.classifier.out_features for neck in necks("uniat-baseline")] == [3] * 6
    assert all(not neck.bn.bias.requires_grad for neck in necks("uniat"))


def test_triplet_switch_adds_a_loss() -> None:
    cfg = replace(uniat_config("uniat-said", "tiny"), triplet=True)
    model = build_uniat(LABELS, replace(cfg, vit=replace(cfg.vit, **MINI_VIT)))
    batch = tiny_batch(size=(64, 32))
    out = model.loss(model(batch), batch)
    assert out["total"].item() == pytest.approx(out["id"].item() + out["triplet"].item(), rel=1e-5)


def test_paper_config_and_recipe() -> None:
    cfg = uniat_config("uniat", "paper")
    vit = cfg.vit
    assert (vit.embed_dim, vit.depth, vit.grid, vit.num_cls, vit.drop_path) == (768, 12, (16, 8), 6, 0.2)
    assert cfg.moe == MoEConfig("moae", 12, top_k=1, gate="paper") and cfg.hdw == "paper" and cfg.said
    r = uniat_recipe("paper")
    assert (r.optimizer, r.lr, r.momentum, r.nesterov, r.weight_decay) == ("sgd", 0.008, 0.9, True, 5e-4)
    assert (r.epochs, r.iters_per_epoch, r.warmup_epochs, r.warmup_start_factor) == (120, 200, 10, 0.1)
    assert (r.schedule, r.min_lr_factor, r.step_per, r.clip_grad_norm) == ("cosine", 0.002, "epoch", 20.0)
    assert (r.sampler, r.batch_size, r.input_size) == ("pk_modality", 64, (256, 128))
    assert (r.flip_p, r.pad, r.random_erasing_p) == (0.5, 10, 0.5)
    with torch.device("meta"):
        names = [n for n, _ in build_uniat(LABELS, cfg).named_parameters()]
    boosted = {n for n in names if any(re.search(p, n) for p in r.lr_mult_patterns)}
    no_decay = {n for n in names if any(re.search(p, n) for p in r.no_decay_patterns)}
    assert r.lr_mult == 10
    assert "backbone.blocks.10.attn.qkv.weight" in boosted and "backbone.blocks.11.cls_ffn.gate" in boosted
    assert {"backbone.norm.weight", "heads.necks.0.bn.weight", "heads.necks.5.classifier.weight"} <= boosted
    assert not any(n.startswith(("backbone.blocks.1.", "backbone.blocks.9.", "backbone.patch")) for n in boosted)
    assert {"backbone.pos_embed", "backbone.cls_token", "backbone.blocks.3.norm2.weight"} <= no_decay
    assert not any("heads." in n or n.endswith("fc1.bias") for n in no_decay)  # BN and biases decay


def test_tiny_recipe_fits_the_tiny_backbone() -> None:
    r, cfg = uniat_recipe("tiny"), uniat_config("uniat", "tiny")
    assert r.input_size == cfg.vit.img_size == (96, 48) and cfg.vit.grid == (6, 3)
    assert r.batch_size == 32 and r.total_iters == 400 and cfg.moe is not None
    assert (cfg.vit.stem, cfg.vit.stem_init, r.mean, r.std) == ("lite0", "imagenet", (0.5,) * 3, (0.5,) * 3)
    assert cfg.vit.stem_frozen == 6  # the ImageNet stem (stem convolution + five stages) is frozen whole
    assert r.lr_mult == 0.2 and r.lr_mult_patterns == (r"patch_embed\.stem\.",)  # for a random stem


def test_tiny_stem_init_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATUSTC_TINY_STEM_INIT", "random")
    assert uniat_config("uniat", "tiny").vit.stem_init == "random"
    assert uniat_config("uniat", "tiny").vit.stem_frozen == 0  # a random stem trains
    assert uniat_config("uniat", "paper").vit.stem == "patch"  # the paper preset is ViT-B/16, unchanged
    monkeypatch.setenv("ATUSTC_TINY_STEM_INIT", "coco")
    with pytest.raises(AtustcError, match=r"\$ATUSTC_TINY_STEM_INIT must be imagenet or random, got 'coco'"):
        uniat_config("uniat", "tiny")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"vit": replace(uniat_config("uniat", "tiny").vit, num_cls=3)}, "num_cls must be 6"),
        ({"vit": replace(uniat_config("uniat", "tiny").vit, num_cls=1)}, "MoE needs the six scenario tokens"),
        ({"hdw": "focal"}, "hdw must be None, 'paper' or 'official'"),
        ({"hdw_gamma": 0.0}, "hdw_gamma must be > 0"),
        ({"said_fill": "zero"}, "said_fill must be a number or -inf"),
        ({"said_fill": math.inf}, "said_fill must be a number or -inf"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        UniATConfig(**kw)


def test_unknown_variant_and_preset() -> None:
    with pytest.raises(AtustcError, match="unknown preset 'huge'"):
        uniat_recipe("huge")
    with pytest.raises(AtustcError, match="unknown Uni-AT variant"):
        uniat_config("uniat-x", "tiny")


def test_build_with_pretrained_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A timm ViT-Ti-shaped checkpoint (224 px, 14x14 grid) into the tiny Uni-AT (8x4 grid, 6 CLS, MoAE)."""
    torch.manual_seed(0)
    timm_model = VisionTransformer(img_size=224, patch_size=16, embed_dim=192, depth=4, num_heads=3)
    torch.save(timm_model.state_dict(), tmp_path / "vit_tiny.pth")
    with caplog.at_level(logging.INFO, logger="atustc.models.pretrained"):
        model = get_method("uniat").build(LABELS, "tiny", tmp_path / "vit_tiny.pth")
    report = model.load_report
    assert report.unexpected == () and "patch_embed.proj.weight" in report.skipped  # the tiny hybrid stem keeps its own
    assert all(k.endswith("cls_ffn.gate") or k.startswith("patch_embed.") for k in report.missing)
    assert torch.equal(model.backbone.cls_token[0, 5], timm_model.cls_token[0, 0])
    assert torch.equal(model.backbone.blocks[3].cls_ffn.first_weight[4], timm_model.blocks[3].mlp.fc1.weight)
    assert "14x14 grid interpolated to 6x3" in caplog.text


def test_paper_build_without_pretrained_warns(caplog: pytest.LogCaptureFixture) -> None:
    with torch.device("meta"), caplog.at_level(logging.WARNING):
        get_method("uniat-baseline").build(LABELS, "paper", None)
    assert "randomly initialised" in caplog.text


def test_official_variant_has_the_official_code_choices() -> None:
    paper, official = uniat_config("uniat", "tiny"), uniat_config("uniat-official", "tiny")
    assert (paper.moe.gate, paper.hdw, paper.said_fill) == ("paper", "paper", -math.inf)
    assert (official.moe.gate, official.hdw, official.said_fill) == ("official", "official", -10.0)
    assert replace(official, moe=paper.moe, hdw="paper", said_fill=-math.inf) == paper  # nothing else differs


def options_config(name: str, sets: list[str]) -> UniATConfig:
    """The config a run of ``name`` with ``--set sets`` builds (through the recipe's extra, as the engine does)."""
    spec = get_method(name)
    recipe, _ = apply_overrides(spec.recipe("tiny"), EngineConfig(), parse_set_options(sets), spec.options)
    return uniat_config(name, "tiny", spec.resolve_options(recipe.extra))


def test_set_switches_reach_the_model() -> None:
    cfg = options_config("uniat", ["moae_gate=official", "hdw_norm=official", "fill_value=-10"])
    assert (cfg.moe.gate, cfg.hdw, cfg.said_fill) == ("official", "official", -10.0)
    assert options_config("uniat-official", ["hdw_norm=paper"]).hdw == "paper"
    assert options_config("uniat-said", ["fill_value=-inf"]).said_fill == -math.inf
    torch.manual_seed(0)
    spec = get_method("uniat")
    model = spec.create(LABELS, "tiny", None, {"moae_gate": "official", "fill_value": "-5"})
    assert model.config.moe.gate == "official" and model.config.said_fill == -5.0 and model.config.hdw == "paper"


@pytest.mark.parametrize(
    ("name", "item", "match"),
    [
        ("uniat", "hdw_norm=max", r"--set hdw_norm=max: expected one of paper, official"),
        ("uniat", "fill_value=low", r"--set fill_value=low: expected -inf \(the paper\) or a finite number"),
        ("uniat", "fill_value=nan", r"--set fill_value=nan: expected -inf"),
        ("uniat-said", "hdw_norm=official", r"--set hdw_norm: unknown key; known keys: .*fill_value"),
        ("uniat-said-moae6", "moae_gate=official", r"--set moae_gate: unknown key"),
    ],
)
def test_set_switches_reject_bad_values(name: str, item: str, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        options_config(name, [item])
