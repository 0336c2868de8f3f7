"""Unit tests of the engine parts: labels, samplers, transforms, schedule, param groups, overrides, checkpoints."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from atustc.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from atustc.engine.config import EngineConfig, apply_overrides, parse_set_options
from atustc.engine.data import build_label_maps, build_label_space
from atustc.engine.optim import Schedule, build_optimizer, lr_factor, param_groups
from atustc.engine.samplers import BatchPlan, BatchStream
from atustc.engine.transforms import TestTransform as EvalTransform
from atustc.engine.transforms import TrainTransform
from atustc.errors import AtustcError
from atustc.methods.budget import tiny_epoch
from atustc.methods.contract import Recipe


def _table(pids, clothes, modality, cameras=None):
    n = len(pids)
    return pd.DataFrame(
        {
            "pid": pids,
            "clothes": clothes,
            "camera": cameras or [1] * n,
            "modality": modality,
            "relpath": [f"x{i}.jpg" for i in range(n)],
        }
    )


# --- labels -------------------------------------------------------------------------------------


def test_label_maps_are_contiguous_over_sorted_raw_values():
    t = _table([5, 3, 5, 9], [1, 2, 2, 1], ["rgb", "ir", "rgb", "ir"], [9, 1, 2, 9])
    maps = build_label_maps(t)
    space = build_label_space(t)
    assert maps.pids == (3, 5, 9)
    assert maps.outfits == ((3, 2), (5, 1), (5, 2), (9, 1))
    assert (space.num_pids, space.num_outfits, space.num_cameras) == (3, 4, 3)
    assert space.outfit_to_pid == (0, 1, 1, 2)
    enc = maps.encode(_table([5, 9, 7], [2, 1, 1], ["ir", "rgb", "rgb"], [2, 9, 4]))
    assert enc["pid"].tolist() == [1, 2, -1]
    assert enc["outfit"].tolist() == [2, 3, -1]
    assert enc["camera"].tolist() == [1, 2, -1]
    assert enc["modality"].tolist() == [1, 0, 0]
    assert type(maps).from_dict(maps.to_dict()) == maps


def test_label_maps_reject_empty_train_table():
    with pytest.raises(AtustcError, match="no train rows"):
        build_label_maps(_table([], [], []))


# --- samplers -----------------------------------------------------------------------------------


def _plan_data():
    # ids 0-3: 6 RGB + 6 IR; id 4: 6 RGB + 1 IR; id 5: RGB only (3 images)
    pid, mod = [], []
    for i in range(4):
        pid += [i] * 12
        mod += [0] * 6 + [1] * 6
    pid += [4] * 7
    mod += [0] * 6 + [1]
    pid += [5] * 3
    mod += [0] * 3
    return np.array(pid), np.array(mod)


def test_pk_modality_batches_are_p_by_k_and_balanced():
    pid, mod = _plan_data()
    plan = BatchPlan(pid, mod, "pk_modality", 3, 4, iters_per_epoch=50, seed=1)
    seen_short = seen_rgb_only = 0
    for it in range(100):
        rows = plan.batch(it).reshape(3, 4)
        ids = pid[rows[:, 0]]
        assert len(set(ids.tolist())) == 3
        for group in rows:
            assert len(set(pid[group].tolist())) == 1
            ident = pid[group[0]]
            if ident == 5:  # one modality only: all K from it, with replacement (3 < 4)
                seen_rgb_only += 1
                assert (mod[group] == 0).all()
                continue
            assert mod[group].tolist() == [0, 0, 1, 1]
            if ident == 4:  # a single IR image: drawn twice
                seen_short += 1
                assert group[2] == group[3]
            else:  # enough of each: no repeats
                assert len(set(group.tolist())) == 4
    assert seen_short and seen_rgb_only


def test_pk_and_random_samplers():
    pid, mod = _plan_data()
    pk = BatchPlan(pid, mod, "pk", 2, 4, iters_per_epoch=10, seed=0)
    for it in range(10):
        groups = pk.batch(it).reshape(2, 4)
        assert all(len(set(pid[g].tolist())) == 1 for g in groups)
    rnd = BatchPlan(pid, mod, "random", 2, 4, iters_per_epoch=7, seed=0)
    epoch = rnd.epoch_batches(0)
    assert epoch.shape == (7, 8)
    assert len(set(epoch.ravel().tolist())) == 56 == len(epoch.ravel())  # a permutation: no repeats


def test_plans_are_deterministic_per_seed_and_resume_mid_epoch():
    pid, mod = _plan_data()
    a = BatchPlan(pid, mod, "pk_modality", 3, 4, iters_per_epoch=5, seed=7)
    b = BatchPlan(pid, mod, "pk_modality", 3, 4, iters_per_epoch=5, seed=7)
    c = BatchPlan(pid, mod, "pk_modality", 3, 4, iters_per_epoch=5, seed=8)
    full = list(BatchStream(a, 0, 12))
    assert full == list(BatchStream(b, 0, 12))
    assert full != list(BatchStream(c, 0, 12))
    assert list(BatchStream(b, 7, 12)) == full[7:]  # resume at iteration 7 (epoch 1, position 2)
    assert len(BatchStream(b, 7, 12)) == 5


def test_distributed_shards_take_whole_identities():
    pid, mod = _plan_data()
    plan = BatchPlan(pid, mod, "pk_modality", 4, 4, iters_per_epoch=5, seed=3, world=2)
    single = list(BatchStream(BatchPlan(pid, mod, "pk_modality", 4, 4, 5, seed=3), 0, 5))
    r0, r1 = list(BatchStream(plan, 0, 5, rank=0)), list(BatchStream(plan, 0, 5, rank=1))
    for full, a, b in zip(single, r0, r1):
        ids_a = {pid[r] for r, _ in a}
        ids_b = {pid[r] for r, _ in b}
        assert len(a) == len(b) == 8 and len(ids_a) == len(ids_b) == 2 and not ids_a & ids_b
        assert sorted(a + b) == sorted(full)  # same samples and augmentation seeds as one process


@pytest.mark.parametrize(
    ("kind", "p", "k", "world", "match"),
    [
        ("pk", 7, 2, 1, r"P=7 identities per batch but the train table has 6"),
        ("pk", 3, 2, 2, r"P=3 identities per batch is not divisible by 2"),
        ("random", 20, 20, 1, r"batch of 400 images is larger than the 58 train images"),
        ("bogus", 2, 2, 1, r"unknown sampler 'bogus'"),
    ],
)
def test_plan_rejects_what_does_not_fit(kind, p, k, world, match):
    pid, mod = _plan_data()
    with pytest.raises(AtustcError, match=match):
        BatchPlan(pid, mod, kind, p, k, iters_per_epoch=2, seed=0, world=world)


def test_pk_modality_counts_identities_with_both_modalities():
    pid, mod = _plan_data()  # 5 ids have both modalities, id 5 has RGB only
    BatchPlan(pid, mod, "pk_modality", 5, 2, 2, seed=0)
    with pytest.raises(
        AtustcError, match="at least P=6 identities with both RGB and IR .* has 5; use --set sampler=pk"
    ):
        BatchPlan(pid, mod, "pk_modality", 6, 2, 2, seed=0)


# --- transforms ---------------------------------------------------------------------------------


def test_test_transform_resizes_and_normalises_exactly():
    img = Image.new("RGB", (10, 20), (255, 0, 51))
    x = EvalTransform((8, 4), (0.5, 0.5, 0.5), (0.5, 0.25, 0.2))(img)
    assert x.shape == (3, 8, 4)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, -2.0, -1.5]))


def test_train_transform_is_a_function_of_its_seed():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8))
    tf = TrainTransform((32, 16), (0.0,) * 3, (1.0,) * 3, flip_p=0.5, pad=4, erasing_p=0.5)
    outs = [tf(img, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert outs[0].shape == (3, 32, 16)
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])
    plain = TrainTransform((32, 16), (0.0,) * 3, (1.0,) * 3, flip_p=0.0, pad=0, erasing_p=0.0)
    torch.testing.assert_close(plain(img, torch.Generator()), EvalTransform((32, 16), (0.0,) * 3, (1.0,) * 3)(img))
    flip = TrainTransform((32, 16), (0.0,) * 3, (1.0,) * 3, flip_p=1.0, pad=0, erasing_p=0.0)
    torch.testing.assert_close(flip(img, torch.Generator()), plain(img, torch.Generator()).flip(-1))
    erase = TrainTransform((32, 16), (0.0,) * 3, (1.0,) * 3, flip_p=0.0, pad=0, erasing_p=1.0)
    changed = (erase(img, torch.Generator().manual_seed(0)) != plain(img, torch.Generator())).any(0)
    rows, cols = changed.nonzero(as_tuple=True)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0.02 * 512 * 0.5 <= box <= 0.4 * 512 * 1.5  # one box of 2-40 % of the image


# --- schedule and optimiser ---------------------------------------------------------------------


def _recipe(**kw):
    base = dict(epochs=10, iters_per_epoch=5, warmup_epochs=2, warmup_start_factor=0.1, min_lr_factor=0.002)
    return Recipe(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "it", "expected"),
    [
        ({}, 0, 0.55),  # per epoch: the 1st epoch is e = 1 of a 2-epoch warm-up
        ({}, 4, 0.55),  # constant within the epoch
        ({}, 5, 1.0),  # the 2nd epoch reaches 1.0
        ({}, 10, 0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi / 8))),  # e = 3: t = 1/8
        ({}, 30, 0.002 + 0.998 * 0.5 * (1 + math.cos(5 * math.pi / 8))),  # e = 7
        ({}, 49, 0.002),  # the last epoch ends the cosine
        ({"step_per": "iter"}, 0, 0.1),
        ({"step_per": "iter"}, 7, 0.73),  # epoch 1.4 of the warmup
        ({"step_per": "iter"}, 35, 0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi * 5 / 8))),
        ({"schedule": "multistep", "milestones": (4, 8)}, 14, 1.0),  # e = 3
        ({"schedule": "multistep", "milestones": (4, 8)}, 15, 0.1),  # e = 4
        ({"schedule": "multistep", "milestones": (4, 8)}, 35, 0.01),  # e = 8
        ({"schedule": "constant", "warmup_epochs": 0}, 0, 1.0),
    ],
)
def test_lr_factor_hand_computed(kw, it, expected):
    assert lr_factor(_recipe(**kw), it) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("milestones", "epochs", "epoch", "expected"),
    [
        ((40, 70), 16, 40, 8),  # BoT: 40 of 120 in proportion is 5.33; the knee is the half, 8
        ((40, 70), 16, 70, 11),  # 8 + (70 - 40) * (16 - 8) / (120 - 40)
        ((40, 70), 16, 20, 4),  # before the first step: 20 * 8 / 40
        ((40, 70), 16, 120, 16),
        ((80, 100), 16, 80, 11),  # 80 of 120 is 10.67, after the half: proportional (rounded)
        ((80, 100), 16, 100, 13),  # 10.67 + 20 * 5.33 / 40 = 13.33
        ((), 16, 40, 5),  # no milestones: proportional, 5.33
        ((40, 70), 120, 25, 25),  # a run as long as the paper's keeps its clock
        ((40, 70), 16, 0, 1),  # at least 1
        ((60, 70), 16, 60, 8),  # 8.0 exactly
        ((40, 70), 16, 45, 9),  # 8 + 5 * 8 / 80 = 8.5: halves round up
        ((40, 70), 20, 50, 11),  # knee 10: 10 + 10 * 10 / 80 = 11.25
    ],
)
def test_tiny_epoch_warps_the_paper_clock(milestones, epochs, epoch, expected):
    paper = Recipe(epochs=120, schedule="multistep", milestones=milestones)
    assert tiny_epoch(epoch, paper, epochs) == expected


def test_tiny_bot_schedule_steps_at_half_way():
    """BoT's tiny run: warm-up over 25 iterations, the full rate to iteration 200, x0.1, x0.01 from 275."""
    import baselines  # noqa: F401  (registers the baselines)
    from atustc.methods import get_method

    tiny = get_method("bot").recipe("tiny")
    factors = [lr_factor(tiny, it) for it in (24, 25, 199, 200, 274, 275, 399)]
    assert factors == pytest.approx([0.01 + 0.99 * 24 / 25, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rel=1e-9)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 4))
        self.classifier = torch.nn.Linear(4, 2, bias=False)
        self.frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (1, 0.19),
        (9, 0.91),
        (10, 1.0),
        (11, 0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi / 110))),
        (65, 0.501),
        (120, 0.002),
    ],
)
def test_official_schedule_by_1_based_epoch(epoch, expected):
    """Paper recipe: warm-up 0.1 -> 1.0 at epoch 10, then cosine t = (e - 10) / 110 down to 0.002 at epoch 120."""
    recipe = Recipe()
    assert (recipe.epochs, recipe.warmup_epochs, recipe.step_per) == (120, 10, "epoch")
    for it in ((epoch - 1) * recipe.iters_per_epoch, epoch * recipe.iters_per_epoch - 1):
        assert lr_factor(recipe, it) == pytest.approx(expected, rel=1e-12)


def test_param_groups_split_decay_and_lr_multiplier():
    recipe = _recipe(lr=0.01, weight_decay=5e-4, lr_mult=10.0, lr_mult_patterns=(r"^classifier\.", r"^norm\."))
    groups = {tuple(g["names"]): (g["weight_decay"], g["lr_scale"]) for g in param_groups(_Net(), recipe)}
    assert groups == {
        ("classifier.weight",): (5e-4, 10.0),
        ("conv.weight",): (5e-4, 1.0),
        ("norm.weight", "norm.bias"): (0.0, 10.0),
        ("pos_embed", "conv.bias"): (0.0, 1.0),
    }
    opt = build_optimizer(_Net(), recipe)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    sched = Schedule(opt, recipe)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([0.0055, 0.0055, 0.055, 0.055])
    for _ in range(5):
        sched.step()
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([0.01, 0.01, 0.1, 0.1])
    again = Schedule(build_optimizer(_Net(), recipe), recipe)
    again.load_state_dict(sched.state_dict())
    assert again.lr == sched.lr == pytest.approx(0.01)
    assert isinstance(build_optimizer(_Net(), _recipe(optimizer="adamw")), torch.optim.AdamW)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_fused_optimiser_equals_the_per_tensor_loop(optimizer):
    """build_optimizer fuses on the CPU; five steps land where torch's default for-loop lands."""
    recipe = _recipe(optimizer=optimizer, lr=0.01, weight_decay=5e-4, lr_mult=10.0, lr_mult_patterns=(r"^norm\.",))
    torch.manual_seed(0)
    nets = [_Net(), _Net()]
    nets[1].load_state_dict(nets[0].state_dict())
    start = [p.detach().clone() for p in nets[0].parameters()]
    fused = build_optimizer(nets[0], recipe)
    assert fused.defaults["fused"] is True
    loop = build_optimizer(nets[1], recipe)
    for g in loop.param_groups:
        g["fused"], g["foreach"] = None, False
    for step in range(5):
        for net, opt in zip(nets, (fused, loop)):
            torch.manual_seed(step)
            for p in net.parameters():
                p.grad = torch.randn_like(p)
            opt.step()
    for a, b, a0 in zip(nets[0].parameters(), nets[1].parameters(), start):
        assert torch.allclose(a, b, atol=1e-6)
        assert not a.requires_grad or not torch.equal(a, a0)


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_coerce_text_to_field_types():
    sets = parse_set_options(
        [
            "epochs=2",
            "warmup_epochs=1",
            "input_size=64, 32",
            "clip_grad_norm=none",
            "sampler=pk",
            "nesterov=false",
            "lr=1e-3",
            "milestones=1,2",
            "extra.depth=3",
            "extra.name=abc",
            "num_workers=0",
        ]
    )
    recipe, engine = apply_overrides(Recipe(clip_grad_norm=20.0), EngineConfig(), sets)
    assert recipe.epochs == 2 and recipe.input_size == (64, 32) and recipe.clip_grad_norm is None
    assert recipe.sampler == "pk" and recipe.nesterov is False and recipe.lr == 1e-3 and recipe.milestones == (1, 2)
    assert recipe.extra == {"depth": 3, "name": "abc"}
    assert engine.num_workers == 0


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("epoch=2", r"--set epoch: unknown key; known keys: optimizer, lr"),
        ("epochs=two", r"--set epochs=two: expected an integer"),
        ("sampler=bogus", r"expected one of pk_modality, pk, random"),
        ("nesterov=maybe", r"expected true or false"),
        ("input_size=a,b", r"comma-separated list of int"),
        ("epochs=0", r"recipe: epochs and iters_per_epoch must be >= 1"),
        ("val_metric=AUC", r"val_metric must be"),
    ],
)
def test_overrides_reject_bad_input(item, match):
    with pytest.raises(AtustcError, match=match):
        apply_overrides(Recipe(), EngineConfig(), parse_set_options([item]))


def test_set_option_needs_key_value():
    with pytest.raises(AtustcError, match=r"--set 'epochs': expected key=value"):
        parse_set_options(["epochs"])


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_errors(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, "last", {"model": {"w": torch.arange(3.0)}, "iter": 5})
    state = load_checkpoint(path, kind="last")
    assert state["iter"] == 5 and torch.equal(state["model"]["w"], torch.arange(3.0))
    with pytest.raises(AtustcError, match=r"ck.pt is a 'last' checkpoint, expected 'best'"):
        load_checkpoint(path, kind="best")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AtustcError, match=r"checkpoint .*ck.pt is corrupt or unreadable"):
        load_checkpoint(path)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(AtustcError, match=r"other.pt is not an atustc checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(AtustcError, match=r"checkpoint .*missing.pt not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "r.pt", "last", {"model": {}, "rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_schedule_resumes_from_a_checkpoint_written_before_lambdalr():
    recipe = _recipe(step_per="iter")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": recipe.lr, "lr_scale": 1.0}], lr=recipe.lr)
    sched = Schedule(opt, recipe)
    sched.load_state_dict({"it": 7})  # the old format: the iteration only
    assert sched.it == 7 and opt.param_groups[0]["lr"] == pytest.approx(recipe.lr * lr_factor(recipe, 7), rel=1e-12)


def test_model_record_is_plain_json_of_the_models_dataclass_configs():
    import dataclasses
    import json
    from pathlib import Path

    from atustc.engine.run import model_record

    @dataclasses.dataclass(frozen=True)
    class Inner:
        size: tuple[int, int] = (96, 48)

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: Inner = dataclasses.field(default_factory=Inner)
        fill: float = -math.inf
        where: Path = Path("/x/y")
        name: str | None = None

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config, self.aim_config, self.width = Outer(), Inner((1, 2)), 3
            self.lin = torch.nn.Linear(2, 2)

    record = model_record(Net())
    assert record == {
        "aim_config": {"size": [1, 2]},
        "config": {"inner": {"size": [96, 48]}, "fill": "-inf", "where": "/x/y", "name": None},
    }
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert model_record(torch.nn.Linear(2, 2)) == {}


def test_manifest_records_the_environment_that_changes_training(monkeypatch):
    from atustc.engine.run import build_manifest

    monkeypatch.delenv("ATUSTC_TINY_STEM_INIT", raising=False)
    assert build_manifest(0, "cpu", 1, "t", "s")["environment"] == {}
    monkeypatch.setenv("ATUSTC_TINY_STEM_INIT", "random")
    assert build_manifest(0, "cpu", 1, "t", "s")["environment"] == {"ATUSTC_TINY_STEM_INIT": "random"}
