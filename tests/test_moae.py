"""MoAE (paper §4.2) and the Table 2 alternatives: layouts, sparse routing, gate gradients, parameter cost."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from atustc.errors import AtustcError
from atustc.methods.contract import SCENARIOS, LabelSpace
from atustc.methods.uniat import TABLE2_MOE, build_uniat, uniat_config
from atustc.models import moae as moae_module
from atustc.models.config import MoEConfig, expert_layout
from atustc.models.moae import ScenarioMoE

D, HID = 8, 16


def make(config: MoEConfig, seed: int = 0) -> ScenarioMoE:
    torch.manual_seed(seed)
    moe = ScenarioMoE(D, HID, config)
    with torch.no_grad():  # distinct layers, so a wrong route gives a wrong number
        for p in (moe.first_weight, moe.first_bias, moe.second_weight, moe.second_bias):
            p.normal_()
        if moe.gate is not None:
            moe.gate.normal_()
    return moe


def reference(moe: ScenarioMoE, x: torch.Tensor) -> torch.Tensor:
    """Dense per-token reference of eq. 3-5: every candidate computed, top-k weights applied."""
    layout = moe.layout
    out = torch.zeros_like(x)
    for s in range(len(SCENARIOS)):
        cands = layout.candidates[s]
        if moe.gate is None:
            weights = torch.ones(x.shape[0], 1)
        else:
            weights = (x[:, s] @ moe.gate[s].T).softmax(-1)
        k = moe.top_k
        top_w, top_i = weights.topk(k, dim=-1)
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
    assert expert_layout(MoEConfig("vlmo", 3)).candidates == ((0,), (0,), (1,), (1,), (2,), (2,))


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
    assert torch.allclose(moe(x), reference(moe, x), atol=1e-4)


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


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"kind": "moae", "num_experts": 8}, "moae needs num_experts 6 or 12, got 8"),
        ({"kind": "ple", "num_experts": 6}, "ple needs num_experts >= 7"),
        ({"kind": "vlmo", "num_experts": 4}, "vlmo needs num_experts 3"),
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
TABLE2_PARAMS = {"mmoe6": 4.9, "mmoe12": 8.8, "ple7": 5.6, "ple12": 8.8, "vlmo3": 3.0, "moae6": 2.6, "moae12": 4.2}


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
        gates = 6 * n_cand * 768 if n_cand > 1 else 0
        per_block = len(layout.first) * fc1 + len(layout.second) * fc2 + gates
        assert backbone - base_backbone == 12 * per_block, name
    # MoAE 12 = five extra FFNs per block (5 first + 5 second attribute layers), 6 = two and a half
    assert count(TABLE2_MOE["moae12"])[1] - base_backbone == 12 * (5 * (fc1 + fc2) + 6 * 2 * 768)
