"""MoAE (paper §4.2) and the Table 2 alternatives: layouts, sparse routing, gate gradients, parameter cost.

Hand cases use identity first layers and scaled-identity second layers, so an expert's output is
``scale * GELU(scale1 * x)`` per feature and a gate with set weights gives exact softmax weights.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from atustc.errors import AtustcError
from atustc.methods.contract import SCENARIOS, LabelSpace
from atustc.methods.uniat import TABLE2, TABLE2_MOE, build_uniat, uniat_config
from atustc.models import moae as moae_module
from atustc.models.config import MoEConfig, expert_layout
from atustc.models.moae import MIXTURES, MMoE, MoAE, ScenarioMixture, VLMo, top_k_gate

D, HID = 8, 16
MODALITY = torch.tensor([0, 1, 1, 0, 1])


def make(config: MoEConfig, seed: int = 0) -> ScenarioMixture:
    torch.manual_seed(seed)
    moe = MIXTURES[config.kind](D, HID, config)
    with torch.no_grad():  # distinct layers, so a wrong route gives a wrong number
        for p in (moe.first_weight, moe.first_bias, moe.second_weight, moe.second_bias):
            p.normal_()
        if moe.gate is not None:
            moe.gate.normal_()
    return moe


def reference(moe: ScenarioMixture, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """Dense per-token reference of eq. 3-5: every candidate computed, top-k weights applied."""
    layout = moe.layout
    out = torch.zeros_like(x)
    for s in range(len(SCENARIOS)):
        cands = layout.candidates[s]
        if isinstance(moe, VLMo):  # DT/NT tokens: the image's modality expert; AD tokens: cross
            top_i = torch.tensor([[2 if SCENARIOS[s].startswith("AD") else int(m)] for m in modality])
            top_w = torch.ones(x.shape[0], 1)
        elif moe.gate is None:
            top_w, top_i = torch.ones(x.shape[0], 1), torch.zeros(x.shape[0], 1, dtype=torch.long)
        else:
            top_w, top_i = (x[:, s] @ moe.gate[s].T).softmax(-1).topk(moe.top_k, dim=-1)
        if moe.config.gate == "official":
            top_w = top_w / top_w.sum(-1, keepdim=True)
        for b in range(x.shape[0]):
            for w, i in zip(top_w[b], top_i[b]):
                a1, a2 = layout.experts[cands[i]]
                h = F.gelu(x[b, s] @ moe.first_weight[a1].T + moe.first_bias[a1])
                out[b, s] += w * (h @ moe.second_weight[a2].T + moe.second_bias[a2])
    return out


def test_moae12_layout_is_both_orders_of_the_two_attributes() -> None:
    layout = expert_layout(MoEConfig("moae", 12))
    assert layout.first == layout.second == ("DT", "NT", "AD", "ST", "LT")
    named = {
        s: {(layout.first[a], layout.second[b]) for a, b in (layout.experts[e] for e in layout.candidates[i])}
        for i, s in enumerate(SCENARIOS)
    }
    assert named["DT-ST"] == {("DT", "ST"), ("ST", "DT")}
    assert named["NT-LT"] == {("NT", "LT"), ("LT", "NT")}
    assert named["AD-LT"] == {("AD", "LT"), ("LT", "AD")}
    assert len(layout.experts) == 12


def test_moae6_and_alternative_layouts() -> None:
    six = expert_layout(MoEConfig("moae", 6))
    assert (six.first, six.second) == (("DT", "NT", "AD"), ("ST", "LT"))
    assert [six.experts[c[0]] for c in six.candidates] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert expert_layout(MoEConfig("mmoe", 4, top_k=None)).candidates[3] == (0, 1, 2, 3)
    assert expert_layout(MoEConfig("ple", 8, top_k=None)).candidates[2] == (2, 6, 7)
    assert expert_layout(MoEConfig("vlmo", 3)).candidates == ((0, 1, 2),) * 6  # routed by modality


@pytest.mark.parametrize(
    "config",
    [
        MoEConfig("moae", 12),
        MoEConfig("moae", 12, gate="official"),
        MoEConfig("moae", 6),
        MoEConfig("mmoe", 4, top_k=None),
        MoEConfig("mmoe", 4, top_k=2),
        MoEConfig("ple", 8, top_k=None),
        MoEConfig("vlmo", 3),
    ],
    ids=lambda c: f"{c.kind}{c.num_experts}-k{c.top_k}-{c.gate}",
)
def test_forward_equals_dense_reference(config: MoEConfig) -> None:
    moe = make(config)
    x = torch.randn(5, 6, D)
    out = moe(x, MODALITY)
    assert out.shape == (5, 6, D)
    assert torch.allclose(out, reference(moe, x, MODALITY), atol=1e-4)


def test_only_the_selected_experts_are_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    real_linear = F.linear
    monkeypatch.setattr(moae_module.F, "linear", lambda x, w, b=None: rows.append(x.shape[0]) or real_linear(x, w, b))
    moe = make(MoEConfig("moae", 12))
    moe(torch.randn(7, 6, D))
    assert sum(rows) == 2 * 7 * 6  # each token: one first and one second layer, top-1
    assert len(rows) <= 10  # each of the 5 + 5 attribute layers at most once


def test_gate_learns_in_paper_mode_and_not_in_official_mode() -> None:
    x = torch.randn(16, 6, D)
    grads = {}
    for gate in ("paper", "official"):
        moe = make(MoEConfig("moae", 12, gate=gate))
        moe(x).pow(2).sum().backward()
        grads[gate] = moe.gate.grad.abs().max().item()
    assert grads["paper"] > 1e-3
    assert grads["official"] < 1e-6 * max(1.0, grads["paper"])


def test_routing_follows_the_gate() -> None:
    moe = make(MoEConfig("moae", 12))
    with torch.no_grad():
        moe.gate.zero_()
        moe.gate[:, 1, 0] = 10.0  # the second candidate wins when feature 0 is positive
    x = torch.randn(4, 6, D)
    x[:2, :, 0], x[2:, :, 0] = 1.0, -1.0
    moe(x)
    assert moe.last_choice[:2].eq(1).all() and moe.last_choice[2:].eq(0).all()


def gelu(v: float) -> float:
    return v * 0.5 * (1 + math.erf(v / math.sqrt(2)))


def hand_set(moe: ScenarioMixture, first_scale: list[float], second_scale: list[float]) -> None:
    """Identity layers scaled per layer (D = hidden = 2), zero biases, zero gates."""
    with torch.no_grad():
        for w, scales in ((moe.first_weight, first_scale), (moe.second_weight, second_scale)):
            w.copy_(torch.stack([c * torch.eye(2) for c in scales]))
        moe.first_bias.zero_()
        moe.second_bias.zero_()
        if moe.gate is not None:
            moe.gate.zero_()


def test_mmoe_hand_case_dense_softmax_over_shared_experts() -> None:
    """Gate logits (0, ln 3) on feature 0 give weights (1/4, 3/4): y = (1/4 * 1 + 3/4 * 2) GELU(x)."""
    moe = MMoE(2, 2, MoEConfig("mmoe", 2, top_k=None))
    hand_set(moe, [1.0, 1.0], [1.0, 2.0])
    with torch.no_grad():
        moe.gate[:, 1, 0] = math.log(3)
    x = torch.tensor([[1.0, -0.5]]).expand(1, 6, 2).clone()
    y = moe(x)
    expect = [1.75 * gelu(1.0), 0.25 * gelu(-0.5) + 0.75 * 2 * gelu(-0.5 * 1.0)]
    assert y.shape == (1, 6, 2)
    assert y[0].tolist() == [pytest.approx(expect, abs=1e-6)] * 6


@pytest.mark.parametrize(("gate", "weight"), [("paper", 0.75), ("official", 1.0)])
def test_moae12_hand_case_top1_weight(gate: str, weight: float) -> None:
    """DT-ST's candidates are DT->ST and ST->DT; gate (0, ln 3) picks ST->DT at 3/4 (paper) or 1 (official)."""
    moe = MoAE(2, 2, MoEConfig("moae", 12, gate=gate))
    hand_set(moe, [1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0, 40.0, 50.0])  # layers DT, NT, AD, ST, LT
    with torch.no_grad():
        moe.gate[0, 1, 0] = 2 * math.log(3)  # x[0] = 0.5: logit ln 3
    x = torch.tensor([[0.5, 0.25]]).expand(1, 6, 2).clone()
    y = moe(x)
    assert moe.last_choice[0, :, 0].tolist() == [1, 0, 0, 0, 0, 0]  # ties (equal logits) keep candidate 0
    st_dt = [weight * 10.0 * gelu(4.0 * v) for v in (0.5, 0.25)]  # first layer ST (x4), second DT (x10)
    assert y[0, 0].tolist() == pytest.approx(st_dt, abs=1e-5)
    nt_lt = [0.5 * 50.0 * gelu(2.0 * v) if gate == "paper" else 50.0 * gelu(2.0 * v) for v in (0.5, 0.25)]
    assert y[0, 3].tolist() == pytest.approx(nt_lt, abs=1e-5)  # NT-LT: NT->LT at 1/2 (paper) or 1


def test_ple_hand_case_specific_plus_shared() -> None:
    """PLE 7: scenario s gates over its own expert s and the shared expert 6."""
    moe = MIXTURES["ple"](2, 2, MoEConfig("ple", 7, top_k=None))
    hand_set(moe, [1.0] * 7, [float(i + 1) for i in range(7)])
    with torch.no_grad():
        moe.gate[2, 1, 0] = math.log(3)  # NT-ST: own expert 1/4, shared 3/4
    x = torch.tensor([[1.0, 0.0]]).expand(1, 6, 2).clone()
    y = moe(x)
    assert y[0, 2, 0].item() == pytest.approx((0.25 * 3 + 0.75 * 7) * gelu(1.0), abs=1e-6)
    assert y[0, 5, 0].item() == pytest.approx((0.5 * 6 + 0.5 * 7) * gelu(1.0), abs=1e-6)  # AD-LT: equal logits


def test_vlmo_routes_by_the_image_modality() -> None:
    moe = VLMo(2, 2, MoEConfig("vlmo", 3))
    assert moe.gate is None
    hand_set(moe, [1.0, 1.0, 1.0], [1.0, 2.0, 3.0])  # RGB x1, IR x2, cross x3
    x = torch.tensor([[1.0, 0.0]]).expand(2, 6, 2).clone()
    y = moe(x, torch.tensor([0, 1]))  # an RGB and an IR image
    g = gelu(1.0)
    assert y[:, :, 0].tolist() == [pytest.approx([g, g, g, g, 3 * g, 3 * g]), pytest.approx([2 * g] * 4 + [3 * g] * 2)]
    with pytest.raises(ValueError, match="routes by the input's modality"):
        moe(x)


def test_top_k_gate_hand_case() -> None:
    x = torch.tensor([[[1.0, 0.0]] * 6])
    gate = torch.zeros(6, 3, 2)
    gate[:, 1, 0], gate[:, 2, 0] = math.log(2), math.log(5)  # probs 1/8, 2/8, 5/8
    w, c = top_k_gate(x, gate, 2)
    assert c[0, 0].tolist() == [2, 1] and w[0, 0].tolist() == pytest.approx([5 / 8, 2 / 8])
    w, _ = top_k_gate(x, gate, 2, "official")
    assert w[0, 0].tolist() == pytest.approx([5 / 7, 2 / 7])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"kind": "moae", "num_experts": 8}, "moae needs num_experts 6 or 12, got 8"),
        ({"kind": "ple", "num_experts": 6}, "ple needs num_experts >= 7"),
        ({"kind": "vlmo", "num_experts": 4}, "vlmo needs num_experts 3"),
        ({"kind": "vlmo", "num_experts": 3, "top_k": None}, "one modality expert"),
        ({"kind": "soft"}, "kind must be one of"),
        ({"kind": "moae", "num_experts": 12, "top_k": 3}, r"top_k must be in \[1, 2\]"),
        ({"gate": "renorm"}, "gate must be 'paper' or 'official'"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        MoEConfig(**kw)


# AT-USTC train half: 135 persons; the paper counts 710 outfits over 270 persons -> about 355.
ATUSTC_TRAIN = LabelSpace(135, 355, tuple(sorted(i % 135 for i in range(355))), 16)
TABLE2_PARAMS = {row.moe: row.params for row in TABLE2 if row.moe is not None}


def count(moe: MoEConfig | None) -> tuple[int, int]:
    """(whole model, backbone) parameters of ViT-B/16 MS-ReID with ``moe``, built on the meta device."""
    cfg = replace(uniat_config("uniat-said", "paper"), moe=moe)
    with torch.device("meta"):
        model = build_uniat(ATUSTC_TRAIN, cfg)
    return sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.backbone.parameters())


def test_parameter_cost_matches_table2() -> None:
    """Paper Table 2 "Params" over MS-ReID, counting the whole model (backbone, BNNecks, classifiers)."""
    base_total, base_backbone = count(None)
    fc1, fc2 = 768 * 3072 + 3072, 3072 * 768 + 768  # one ViT-B FFN's two layers
    for name, expected in TABLE2_PARAMS.items():
        total, backbone = count(TABLE2_MOE[name])
        assert total / base_total == pytest.approx(expected, abs=0.1), name
        layout = expert_layout(TABLE2_MOE[name])
        n_cand = len(layout.candidates[0])
        gates = 6 * n_cand * 768 if n_cand > 1 and layout.first[0] != "RGB" else 0  # VLMo has no gate
        per_block = len(layout.first) * fc1 + len(layout.second) * fc2 + gates
        assert backbone - base_backbone == 12 * per_block, name
    # MoAE 12 = five extra FFNs per block (5 first + 5 second attribute layers), 6 = two and a half
    assert count(TABLE2_MOE["moae12"])[1] - base_backbone == 12 * (5 * (fc1 + fc2) + 6 * 2 * 768)
