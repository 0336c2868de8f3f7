"""SAAI and CIFT (the visible-infrared baselines): shapes, the distinctive losses against hand
computations, the EMA classifiers, DualBNNeck routing, CIFT's graph transfer, recipes, and the
paper-preset architectures against hand-counted sizes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from baseline_helpers import LABELS, build_seeded, make_batch

from atustc.errors import AtustcError
from atustc.methods import Batch, get_method
from atustc.methods.budget import TINY
from atustc.models.bnneck import ModalityBN
from atustc.models.losses import center_separation_loss, part_diversity_loss, soft_cross_entropy
from atustc.models.mam import MAM
from atustc.models.pooling import PartPrototypes


def _batch(n: int = 8, size: tuple[int, int] = (96, 48), seed: int = 0) -> Batch:
    return make_batch(n, size, seed)


@pytest.mark.parametrize(
    ("name", "dim"),
    [("saai", 8 * 1280), ("saai-ai", 8 * 1280), ("cift", 1280), ("cift-h2ft", 1280), ("cift-base", 1280)],
)
def test_tiny_embedding_sizes_and_registration(name: str, dim: int) -> None:
    spec = get_method(name)
    assert spec.family == "CM-ReID" and spec.needs == ("modality",)
    model = build_seeded(name).eval()
    emb = model.embed(_batch(2))
    assert emb.shape == (2, 1, dim) and model.embed_dim == dim and model.head_names == ("global",)
    assert (spec.scoring is not None) == (name == "saai-ai")


# ---------------------------------------------------------------- shared blocks


def test_center_separation_loss_hand_computed() -> None:
    # 1-d features, two identities: centres 1 (samples 0, 2) and 4 (samples 3, 5)
    feat = torch.tensor([[0.0], [3.0], [2.0], [5.0]])
    labels = torch.tensor([0, 1, 0, 1])
    m1, m2 = 0.5, 4.0
    center = (max(1 - m1, 0) * 4) / 4  # every sample is 1 from its centre
    # anchors: sample 0 (centre 1) and sample 1 (centre 4); negatives are 2 samples each, centre gap 3
    sep = max(m2 - 3.0, 0.0)
    expected = center + sep
    assert center_separation_loss(feat, labels, m1, m2).item() == pytest.approx(expected, rel=1e-6)
    # two lone samples sit on their centres (finite gradient), centres beyond the margin
    x = torch.tensor([[1.0], [2.0]], requires_grad=True)
    loss = center_separation_loss(x, torch.tensor([0, 1]), 0.01, 0.7)
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # one identity: no separation term
    assert center_separation_loss(feat[:2], torch.tensor([0, 0]), 0.0, 0.7).item() == pytest.approx(1.5)


def test_part_diversity_and_soft_cross_entropy_hand_computed() -> None:
    attn = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]])  # [1, 3, 4]
    # pairs (0,1), (0,2): |a_i - a_j| = sqrt(2) -> sqrt(2/4); pair (1,2): 0
    expected = -(2 * math.sqrt(0.5) + 0.0) / 3
    assert part_diversity_loss(attn).item() == pytest.approx(expected, rel=1e-5)
    logits = torch.tensor([[1.0, 2.0, 0.0]])
    q = torch.tensor([[0.25, 0.5, 0.25]])
    logp = logits.log_softmax(1)[0]
    assert soft_cross_entropy(logits, q).item() == pytest.approx(
        -(0.25 * logp[0] + 0.5 * logp[1] + 0.25 * logp[2]).item()
    )


def test_modality_bn_routes_each_sample_by_modality() -> None:
    bn = ModalityBN(2)
    with torch.no_grad():
        bn.bns[0].weight.fill_(1.0)
        bn.bns[1].weight.fill_(3.0)
    assert not bn.bns[0].bias.requires_grad and not bn.bns[1].bias.requires_grad
    x = torch.tensor([[0.0, 1.0], [10.0, 10.0], [2.0, 3.0], [30.0, 50.0]])
    modality = torch.tensor([0, 1, 0, 1])
    bn.train()
    y = bn(x, modality)
    eps = bn.bns[0].eps
    # each modality is normalised with its own batch statistics (biased variance) and its own weight
    rgb = (x[[0, 2]] - x[[0, 2]].mean(0)) / torch.sqrt(x[[0, 2]].var(0, unbiased=False) + eps)
    ir = 3 * (x[[1, 3]] - x[[1, 3]].mean(0)) / torch.sqrt(x[[1, 3]].var(0, unbiased=False) + eps)
    torch.testing.assert_close(y[[0, 2]], rgb)
    torch.testing.assert_close(y[[1, 3]], ir)
    torch.testing.assert_close(bn.bns[0].running_mean, 0.1 * x[[0, 2]].mean(0))
    torch.testing.assert_close(bn.bns[1].running_mean, 0.1 * x[[1, 3]].mean(0))
    # eval: the running statistics of the sample's own modality; an absent modality is skipped
    bn.eval()
    only_ir = bn(x[[1]], torch.tensor([1]))
    expected = 3 * (x[1] - bn.bns[1].running_mean) / torch.sqrt(bn.bns[1].running_var + eps)
    torch.testing.assert_close(only_ir[0], expected)
    # a lone sample of a modality in a training batch uses the running statistics
    bn.train()
    lone = bn(x[:3], torch.tensor([0, 1, 0]))
    torch.testing.assert_close(lone[1], 3 * (x[1] - bn.bns[1].running_mean) / torch.sqrt(bn.bns[1].running_var + eps))


def test_mam_blends_the_map_with_its_instance_norm() -> None:
    torch.manual_seed(0)
    mam = MAM(32, reduction=16)
    x = torch.randn(2, 32, 3, 4)
    m = torch.sigmoid(mam.gate[2](torch.relu(mam.gate[0](x.mean(dim=(2, 3), keepdim=True)))))
    mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
    expected = m * x + (1 - m) * (x - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(mam(x), expected)


def test_part_prototypes_hand_computed_and_resized_grid() -> None:
    pool = PartPrototypes(channels=2, parts=2, grid=(1, 2))
    with torch.no_grad():
        pool.prototypes.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        pool.pos_embed.zero_()
    x = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # [1, C=2, H=1, W=2]: tokens (2, 0) and (0, 1)
    parts, attn = pool(x)
    s = torch.sigmoid
    expected_attn = torch.tensor([[[s(torch.tensor(2.0)), s(torch.tensor(0.0))], [0.5, s(torch.tensor(1.0))]]])
    torch.testing.assert_close(attn, expected_attn)
    tokens = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(parts[0], expected_attn[0] @ tokens / 2)
    # another map size: the position embedding is resized, the output follows the map
    parts, attn = pool(torch.randn(3, 2, 2, 4))
    assert parts.shape == (3, 2, 2) and attn.shape == (3, 2, 8)


# ---------------------------------------------------------------- SAAI


def test_saai_ema_update_and_consistency_loss_hand_computed() -> None:
    model = build_seeded("saai").train()
    batch = _batch()
    assert model.config.ema_epoch == 10  # 100 of 160 epochs; SAAI's first step (81) is after the half already
    model.set_epoch(0)
    assert model.ema_rate == pytest.approx(0.02)
    model.set_epoch(TINY.epochs - 1)  # 1-based epoch E: 0.02 * T / (E + 1)
    assert model.ema_rate == pytest.approx(0.02 * model.config.ema_epoch / (TINY.epochs + 1))
    model.set_epoch(0)
    with torch.no_grad():
        model.visible_classifier.weight.normal_()
        model.infrared_classifier.weight.normal_()
    ema_v, ema_i = model.ema_visible.clone(), model.ema_infrared.clone()
    w_v, w_i = model.visible_classifier.weight.detach().clone(), model.infrared_classifier.weight.detach().clone()
    out = model(batch)  # one training forward updates both copies, before they are used
    torch.testing.assert_close(model.ema_visible, 0.98 * ema_v + 0.02 * w_v)
    torch.testing.assert_close(model.ema_infrared, 0.98 * ema_i + 0.02 * w_i)
    losses = model.loss(out, batch)
    post, pid = out["post"], batch.pid
    vis, ir = batch.modality == 0, batch.modality == 1
    own = torch.cat([post[vis] @ w_v.T, post[ir] @ w_i.T])
    target = torch.cat([(post[vis] @ model.ema_infrared.T).softmax(1), (post[ir] @ model.ema_visible.T).softmax(1)])
    consistency = -(target * own.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(losses["consistency"], consistency.detach())
    id_loss = (
        F.cross_entropy(model.classifier(post), pid)
        + F.cross_entropy(post[vis] @ w_v.T, pid[vis])
        + F.cross_entropy(post[ir] @ w_i.T, pid[ir])
    )
    torch.testing.assert_close(losses["id"], id_loss.detach())
    expected = (
        id_loss
        + consistency
        + center_separation_loss(out["feat"], pid, 0.01, 0.7)
        + 0.25 * part_diversity_loss(out["attn"])
    )
    torch.testing.assert_close(losses["total"], expected)
    # the soft targets are constants: no gradient reaches the EMA copies (buffers) or through them
    assert "ema_visible" in model.state_dict() and not model.ema_visible.requires_grad
    model.eval()
    before = model.ema_visible.clone()
    model(batch)
    torch.testing.assert_close(model.ema_visible, before)  # no update outside training


def test_saai_embedding_is_the_dual_bn_feature() -> None:
    model = build_seeded("saai").eval()
    batch = _batch(4)
    with torch.no_grad():
        model.neck.bns[1].weight.mul_(2.0)
        feat, _ = model.features(batch)
        emb = model.embed(batch)[:, 0]
    torch.testing.assert_close(emb[batch.modality == 0], model.neck.bns[0](feat[batch.modality == 0]))
    torch.testing.assert_close(emb[batch.modality == 1], model.neck.bns[1](feat[batch.modality == 1]))


# ---------------------------------------------------------------- CIFT


def test_cift_transfer_hand_computed() -> None:
    model = build_seeded("cift")
    dim = model.embed_dim
    for module in (model.graph_homo, model.graph_hetero):
        with torch.no_grad():
            module.theta.weight.zero_()  # uniform affinities over the allowed neighbours
            module.value.weight.copy_(torch.eye(dim))
            module.gate.fill_(1.0)
    x = torch.randn(5, dim)
    modality = torch.tensor([0, 0, 0, 1, 1])
    query, gallery = model.transfer(x, modality)
    homo = x.clone()
    homo[0] += (x[1] + x[2]) / 2
    homo[1] += (x[0] + x[2]) / 2
    homo[2] += (x[0] + x[1]) / 2
    homo[3] += x[4]
    homo[4] += x[3]
    torch.testing.assert_close(gallery, homo)
    hetero = x.clone()
    hetero[:3] += (homo[3] + homo[4]) / 2  # each RGB sample is the lone query over the refined IR nodes
    hetero[3:] += homo[:3].mean(0)
    torch.testing.assert_close(query, hetero)
    # a modality alone in the batch: the heterogeneous transfer has no neighbour and changes nothing
    q, _ = model.transfer(x[:3], modality[:3])
    torch.testing.assert_close(q, x[:3])


@pytest.mark.slow
def test_cift_losses_per_variant_and_cri_effect() -> None:
    batch = _batch()
    base = build_seeded("cift-base").train()
    out = base(batch)
    assert set(base.loss(out, batch)) == {"total", "id", "triplet"} and not hasattr(base, "graph_homo")
    h2ft = build_seeded("cift-h2ft").train()
    assert set(h2ft.loss(h2ft(batch), batch)) == {"total", "id", "triplet", "h2ft"}
    model = build_seeded("cift").train()
    out = model(batch)
    losses = model.loss(out, batch)
    assert set(losses) == {"total", "id", "triplet", "h2ft", "cri"}
    # with factual affinities the counterfactual query equals the factual one: no effect, CE = log(#IDs)
    out["query_cf"] = out["query"]
    assert model.loss(out, batch)["cri"].item() == pytest.approx(math.log(LABELS.num_pids), rel=1e-5)
    # the counterfactual logits are normalised with the factual batch statistics (no running-stat update)
    running = model.graph_neck.bn.running_mean.clone()
    model.graph_logits(out["query"] + 1.0, stats_of=out["query"])
    torch.testing.assert_close(model.graph_neck.bn.running_mean, running)
    with pytest.raises(AtustcError, match="cri intervenes on the H2FT graphs"):
        from baselines.cift import cift_config

        cift_config("tiny", h2ft=False, cri=True)


# ---------------------------------------------------------------- recipes and sizes


def test_recipes_paper_and_tiny() -> None:
    saai = get_method("saai").recipe("paper")
    assert (saai.optimizer, saai.lr, saai.weight_decay, saai.epochs, saai.milestones) == (
        "adam",
        3.5e-4,
        5e-4,
        160,
        (81, 121),
    )
    assert (saai.warmup_epochs, saai.warmup_start_factor, saai.sampler) == (10, 0.0, "pk_modality")
    assert (saai.num_identities, saai.num_instances, saai.input_size) == (10, 8, (288, 144))
    cift = get_method("cift").recipe("paper")
    assert (cift.optimizer, cift.lr, cift.lr_mult, cift.nesterov, cift.epochs, cift.milestones) == (
        "sgd",
        0.01,
        10.0,
        True,
        81,
        (21, 51),
    )
    assert (cift.num_identities, cift.num_instances, cift.random_erasing_p) == (8, 8, 0.0)
    for name in ("saai", "saai-ai", "cift", "cift-h2ft", "cift-base"):
        spec = get_method(name)
        paper, tiny = spec.recipe("paper"), spec.recipe("tiny")
        assert (tiny.epochs, tiny.iters_per_epoch, tiny.input_size, tiny.batch_size) == (
            TINY.epochs,
            TINY.iters_per_epoch,
            TINY.input_size,
            TINY.num_identities * TINY.num_instances,
        )
        # CIFT's tiny rate was chosen on the validation identities (AGW-VI's 0.01 diverges there)
        assert tiny.optimizer == paper.optimizer and tiny.mean == (0.5, 0.5, 0.5)
        assert tiny.lr == (0.001 if name.startswith("cift") else paper.lr)
        assert tiny.milestones == (8, 12)  # SAAI 81, 121 of 160 in proportion; CIFT's 21 of 81 moved to the half
    # the graph modules and necks train at 10x the backbone's lr
    from atustc.engine.optim import param_groups

    groups = param_groups(build_seeded("cift"), get_method("cift").recipe("tiny"))
    boosted = {n.split(".")[0] for g in groups if g["lr_scale"] == 10.0 for n in g["names"]}
    assert boosted == {"neck", "graph_homo", "graph_hetero", "graph_neck"}
    with pytest.raises(AtustcError, match="saai: unknown preset 'huge'"):
        get_method("saai").recipe("huge")


R50 = 23_508_032  # ResNet-50 without its classifier


def _paper_params(name: str) -> int:
    """Hand-counted parameters of the paper architectures (4 persons)."""
    n = LABELS.num_pids
    if name == "saai":
        mam = 2 * 1024 * 64 + 2 * 2048 * 128  # after layer3 and layer4, reduction 16, no bias
        parts = 7 * 2048 + 18 * 9 * 2048  # prototypes, position embedding of the 18x9 map
        dim = 8 * 2048
        return R50 + mam + parts + 2 * 2 * dim + 3 * dim * n  # DualBN, three bias-free classifiers
    nl = 2 * (3 * 513 + 2 * 512 + 2 * 512) + 3 * (3 * 1025 + 2 * 1024 + 2 * 1024)
    ir_stem = 64 * 3 * 7 * 7 + 2 * 64
    base = R50 + nl + ir_stem + 2 * 2048 + 2048 * n  # GeM's p is fixed (a buffer)
    if name == "cift-base":
        return base
    graph = 2 * (2 * 2048 * 256 + 2048 * 2048 + 2048)  # θ, φ (C/8), V, gate; homogeneous and heterogeneous
    return base + graph + 2 * 2048 + 2048 * n


@pytest.mark.parametrize("name", ["saai", "cift", "cift-base"])
def test_paper_architectures_match_hand_counted_sizes(name: str) -> None:
    model = build_seeded(name, "paper")
    assert sum(p.numel() for p in model.parameters()) == _paper_params(name)
    assert model.embed_dim == (8 * 2048 if name == "saai" else 2048)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["saai", "cift"])
def test_few_steps_lower_the_loss(name: str) -> None:
    model = build_seeded(name).train()
    batch = _batch(n=8, seed=3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    first = None
    for _ in range(4):
        opt.zero_grad()
        loss = model.loss(model(batch), batch)["total"]
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    with torch.no_grad():
        final = model.loss(model(batch), batch)["total"].item()
    assert final < 0.8 * first
    model.eval()
    emb = model.embed(batch)
    assert emb.shape == (8, 1, model.embed_dim) and torch.isfinite(emb).all()
