"""TransReID baseline: shapes, SIE, JPM shuffle, losses, training steps, registry and recipes."""

from __future__ import annotations

import math

import pytest
import torch

from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, get_method
from baselines.transreid import (
    TransReID,
    TransReIDConfig,
    build_transreid,
    jigsaw,
    soft_margin_triplet,
    transreid_config,
    transreid_recipe,
)

LABELS = LabelSpace(num_pids=4, num_outfits=4, outfit_to_pid=(0, 1, 2, 3), num_cameras=16)


def _batch(n: int = 8, seed: int = 0, camera: torch.Tensor | None = None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        images=torch.randn(n, 3, 96, 48, generator=g),
        pid=torch.arange(n) % 4,
        outfit=torch.arange(n) % 4,
        modality=torch.zeros(n, dtype=torch.long),
        camera=camera if camera is not None else torch.arange(n) % 16,
    )


@pytest.fixture(scope="module")
def model() -> TransReID:
    torch.manual_seed(0)
    return build_transreid(LABELS, "tiny")


def test_shapes_and_embedding(model: TransReID) -> None:
    model.train()
    out = model(_batch())
    dim = model.config.vit.embed_dim
    assert len(out["feats"]) == 5 and all(f.shape == (8, dim) for f in out["feats"])
    assert all(z.shape == (8, LABELS.num_pids) for z in out["logits"])
    model.eval()
    emb = model.embed(_batch())
    assert model.head_names == ("global",)
    assert emb.shape == (8, 1, 5 * dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(8, 1))
    # JPM: the last block is moved into the two branches; the backbone runs the others
    assert len(model.backbone.blocks) == model.config.vit.depth - 1
    assert all(not neck.bias.requires_grad for neck in model.necks)


def test_embedding_is_global_plus_locals_over_k(model: TransReID) -> None:
    model.eval()
    batch = _batch()
    with torch.no_grad():
        feats = model.features(batch)
    expected = torch.cat([feats[0], *(f / 4 for f in feats[1:])], dim=1)
    torch.testing.assert_close(model.embed(batch)[:, 0], torch.nn.functional.normalize(expected, dim=1))


def test_sie_changes_output_with_camera(model: TransReID) -> None:
    model.eval()
    a = model.embed(_batch(camera=torch.zeros(8, dtype=torch.long)))
    b = model.embed(_batch(camera=torch.full((8,), 5)))
    unknown = model.embed(_batch(camera=torch.full((8,), -1)))
    assert (a - b).abs().max() > 1e-4 and (a - unknown).abs().max() > 1e-4
    no_sie = TransReID(TransReIDConfig(vit=model.config.vit, sie_coe=0.0), LABELS)
    no_sie.eval()
    torch.testing.assert_close(
        no_sie.embed(_batch(camera=torch.zeros(8, dtype=torch.long))), no_sie.embed(_batch(camera=torch.full((8,), 5)))
    )
    # λ scales the camera embedding: λ·S[cam], zero for an unknown camera
    side = model.side_embedding(torch.tensor([3, -1]))
    torch.testing.assert_close(side[0], 3.0 * model.sie[3])
    assert side[1].abs().max() == 0


def test_jigsaw_hand_computed() -> None:
    x = torch.arange(6.0).view(1, 6, 1)
    # shift 1: [1,2,3,4,5,0] -> (2, 3) [[1,2,3],[4,5,0]] -> transpose -> [1,4,2,5,3,0]
    assert jigsaw(x, shift=1, groups=2).flatten().tolist() == [1, 4, 2, 5, 3, 0]
    # odd length: pad with a copy of the second-to-last token, as the official code does
    y = torch.arange(5.0).view(1, 5, 1)
    assert jigsaw(y, shift=0, groups=2).flatten().tolist() == [0, 3, 1, 4, 2, 3]


@pytest.mark.parametrize(("n", "shift", "groups"), [(50, 4, 2), (210, 4, 2), (32, 4, 4), (9, 2, 3)])
def test_jigsaw_is_a_permutation(n: int, shift: int, groups: int) -> None:
    x = torch.arange(float(n)).view(1, n, 1).expand(2, n, 3)
    out = jigsaw(x, shift, groups)
    assert out.shape == (2, n, 3)
    assert sorted(out[0, :, 0].tolist()) == list(range(n))
    assert torch.equal(out[0], out[1])


def test_soft_margin_triplet_hand_computed() -> None:
    feat = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor: hardest positive, hardest negative distance
    # 0: 1, 3 | 1: 1, 2 | 2: 3, 2 | 3: 3, 5
    expected = sum(math.log1p(math.exp(p - n)) for p, n in [(1, 3), (1, 2), (3, 2), (3, 5)]) / 4
    assert soft_margin_triplet(feat, labels).item() == pytest.approx(expected, rel=1e-6)
    # no anchor has both a positive and a negative
    assert soft_margin_triplet(feat, torch.tensor([0, 1, 2, 3])).item() == 0.0


def test_loss_weights(model: TransReID) -> None:
    model.train()
    batch = _batch()
    torch.manual_seed(1)
    out = model(batch)
    losses = model.loss(out, batch)
    ce = [torch.nn.functional.cross_entropy(z, batch.pid) for z in out["logits"]]
    tri = [soft_margin_triplet(f, batch.pid) for f in out["feats"]]
    id_ = 0.5 * ce[0] + 0.5 * sum(ce[1:]) / 4
    tr = 0.5 * tri[0] + 0.5 * sum(tri[1:]) / 4
    torch.testing.assert_close(losses["total"], id_ + tr)
    torch.testing.assert_close(losses["id"], id_.detach())


def test_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = build_transreid(LABELS, "tiny")
    model.train()
    batch = _batch(n=16, seed=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    first = None
    for _ in range(8):
        opt.zero_grad()
        loss = model.loss(model(batch), batch)["total"]
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    with torch.no_grad():
        final = model.loss(model(batch), batch)["total"].item()
    assert final < 0.7 * first


def test_registered_and_recipes() -> None:
    spec = get_method("transreid")
    assert spec.family == "Tr-ReID" and spec.build is build_transreid
    paper = spec.recipe("paper")
    optim = (paper.optimizer, paper.lr, paper.weight_decay, paper.momentum, paper.nesterov)
    assert optim == ("sgd", 0.008, 1e-4, 0.9, False)
    assert (paper.epochs, paper.warmup_epochs, paper.warmup_start_factor, paper.min_lr_factor) == (120, 5, 0.01, 0.002)
    assert (paper.num_identities, paper.num_instances, paper.input_size) == (16, 4, (256, 128))
    assert paper.lr_mult == 2.0 and paper.lr_mult_patterns == ("bias",) and paper.mean == (0.5, 0.5, 0.5)
    cfg = transreid_config("paper")
    assert (cfg.vit.embed_dim, cfg.vit.depth, cfg.vit.stride, cfg.vit.grid, cfg.sie_coe) == (768, 12, 12, (21, 10), 3.0)
    for preset in ("tiny", "paper"):
        assert transreid_recipe(preset).input_size == transreid_config(preset).vit.img_size
    with pytest.raises(AtustcError, match="unknown preset 'huge'"):
        transreid_recipe("huge")


def test_config_validation() -> None:
    vit = transreid_config("tiny").vit
    with pytest.raises(AtustcError, match="exactly one CLS token"):
        TransReIDConfig(vit=vit.__class__(**{**vit.__dict__, "num_cls": 2}))
    with pytest.raises(AtustcError, match="num_local"):
        TransReIDConfig(vit=vit, num_local=0)


def test_pretrained_loading_reuses_the_vit_loader(tmp_path) -> None:
    from dataclasses import replace

    from atustc.models.vit import ViT

    torch.manual_seed(7)
    # a timm-style checkpoint: square 4x4 grid; interpolated to the 6x3 grid of the tiny hybrid
    source = ViT(replace(transreid_config("tiny").vit, img_size=(64, 64), stem="patch", stem_frozen=0)).state_dict()
    source["head.weight"] = torch.zeros(1000, 192)  # a classifier head is skipped by the loader
    path = tmp_path / "vit_tiny.pth"
    torch.save(source, path)
    model = build_transreid(LABELS, "tiny", pretrained=path)
    assert "head.weight" in model.load_report.skipped
    assert all(k.startswith("patch_embed.") for k in model.load_report.missing)  # the tiny hybrid stem keeps its own
    torch.testing.assert_close(model.backbone.blocks[0].attn.qkv.weight, source["blocks.0.attn.qkv.weight"])
    torch.testing.assert_close(model.backbone.pos_embed[:, 0], source["pos_embed"][:, 0])
    assert any("4x4 grid interpolated to 6x3" in note for note in model.load_report.resized)
    # both JPM branches start from the pretrained last block and final norm
    for branch in (model.b1, model.b2):
        torch.testing.assert_close(branch.block.mlp.fc2.weight, source["blocks.3.mlp.fc2.weight"])
        torch.testing.assert_close(branch.norm.weight, source["norm.weight"])
    with pytest.raises(AtustcError, match="does not exist"):
        build_transreid(LABELS, "tiny", pretrained=tmp_path / "missing.pth")
