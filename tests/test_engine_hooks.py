"""The engine's optional method hooks: ``optim_groups()``, ``set_epoch()``, ``MethodSpec.needs``, DDP's unused-parameter search."""

from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd
import pytest
import torch

from atustc.engine import train_run
from atustc.engine.checkpoint import load_checkpoint
from atustc.engine.distributed import DistInfo
from atustc.engine.optim import Optimisers, lr_factor
from atustc.engine.setup import check_needs
from atustc.engine.step import wrap_step
from atustc.errors import AtustcError
from atustc.methods import LabelSpace, MethodSpec, OptimGroup, Recipe, temporary_method
from engine_helpers import TinyNet, make_dataset, tiny_spec

HOOKED = "engine-test-hooked"


class HookedNet(TinyNet):
    """TinyNet plus centres trained by their own SGD (BoT-style) and an epoch log."""

    def __init__(self, labels: LabelSpace) -> None:
        super().__init__(labels)
        self.centres = torch.nn.Parameter(torch.zeros(labels.num_pids, 16))
        self.epochs: list[int] = []

    def optim_groups(self) -> list[OptimGroup]:
        return [OptimGroup("centres", (self.centres,), optimizer="sgd", lr=0.5, grad_scale=2.0)]

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)
        if os.environ.get("HOOK_STOP_AT") == str(epoch):
            raise KeyboardInterrupt(f"stopped at epoch {epoch}")

    def loss(self, outputs, batch):
        out = super().loss(outputs, batch)
        feats = self.features(batch.images)
        centre = ((feats - self.centres[batch.pid]) ** 2).sum(1).mean() * 0.01
        return {"total": out["total"] + centre, "ce": out["ce"], "centre": centre}


BUILT: list[HookedNet] = []


def _hooked_spec() -> MethodSpec:
    def build(labels, preset, pretrained):
        BUILT.append(HookedNet(labels))
        return BUILT[-1]

    return dataclasses.replace(tiny_spec(), name=HOOKED, build=build)


def _labels(n: int = 3) -> LabelSpace:
    return LabelSpace(num_pids=n, num_outfits=n, outfit_to_pid=tuple(range(n)), num_cameras=1)


def test_optim_groups_get_their_own_optimiser_scale_and_schedule():
    model = HookedNet(_labels())
    recipe = Recipe(lr=0.1, epochs=4, iters_per_epoch=1, warmup_epochs=2, warmup_start_factor=0.1, nesterov=False)
    optim = Optimisers(model, recipe)
    main_ids = {id(p) for g in optim.main.param_groups for p in g["params"]}
    assert id(model.centres) not in main_ids and id(model.conv.weight) in main_ids
    assert [id(p) for p in optim.main_params] == [id(p) for n, p in model.named_parameters() if n != "centres"]
    # unscheduled group: constant lr 0.5; grads times grad_scale 2 before the plain SGD step
    model.centres.grad = torch.ones_like(model.centres)
    for p in optim.main_params:
        p.grad = torch.zeros_like(p)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    optim.step(scaler)
    assert torch.allclose(model.centres.detach(), torch.full_like(model.centres, -0.5 * 2.0))
    optim.schedule.step()
    assert optim.extra[0].param_groups[0]["lr"] == 0.5
    assert optim.main.param_groups[0]["lr"] == pytest.approx(0.1 * lr_factor(recipe, 1))
    # a scheduled group follows the main factor

    class Scheduled(HookedNet):
        def optim_groups(self):
            return [OptimGroup("centres", (self.centres,), lr=0.5, scheduled=True)]

    s_optim = Optimisers(Scheduled(_labels()), recipe)
    assert s_optim.extra[0].param_groups[0]["lr"] == pytest.approx(0.5 * lr_factor(recipe, 0))
    s_optim.schedule.step()
    assert s_optim.extra[0].param_groups[0]["lr"] == pytest.approx(0.5 * lr_factor(recipe, 1))


def test_optim_groups_are_checked():
    class Bad(HookedNet):
        def optim_groups(self):
            return [OptimGroup("a", (self.centres,)), OptimGroup("b", (self.centres,))]

    with pytest.raises(AtustcError, match="optim group 'b': shares parameters"):
        Optimisers(Bad(_labels()), Recipe())

    class Foreign(HookedNet):
        def optim_groups(self):
            return [OptimGroup("x", (torch.nn.Parameter(torch.zeros(1)),))]

    with pytest.raises(AtustcError, match="not the model's"):
        Optimisers(Foreign(_labels()), Recipe())


@pytest.mark.slow
def test_hooks_in_a_run_and_an_exact_resume(engine_data, tmp_path, monkeypatch):
    _, table, split = engine_data
    sets = {"num_workers": 0, "log_every": 2, "eval_every_epochs": 0}
    with temporary_method(_hooked_spec):
        ref = train_run(HOOKED, table, split, "tiny", tmp_path / "ref", overrides=sets, progress=False)
        assert BUILT[-1].epochs == [0, 1, 2]  # before each epoch, 0-based
        ckpt = load_checkpoint(ref / "checkpoints/last.pt")
        assert set(ckpt["optim_groups"]) == {"centres"}
        assert ckpt["optim_groups"]["centres"]["param_groups"][0]["lr"] == 0.5
        assert not torch.equal(ckpt["model"]["centres"], torch.zeros_like(ckpt["model"]["centres"]))

        out = tmp_path / "cut"
        monkeypatch.setenv("HOOK_STOP_AT", "2")
        with pytest.raises(KeyboardInterrupt):
            train_run(HOOKED, table, split, "tiny", out, overrides=sets, progress=False)
        monkeypatch.delenv("HOOK_STOP_AT")
        assert load_checkpoint(out / "checkpoints/last.pt")["iter"] == 8
        train_run(HOOKED, table, split, "tiny", out, resume=True, overrides=sets, progress=False)
        assert BUILT[-1].epochs == [2]  # a resumed run starts its epoch with set_epoch too
    a, b = load_checkpoint(ref / "checkpoints/last.pt"), load_checkpoint(out / "checkpoints/last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def _table(**cols):
    base = {"pid": [1, 1, 2, 2], "clothes": [1, 2, 1, 2], "camera": [1, 2, 1, 2], "modality": ["rgb", "ir"] * 2}
    return pd.DataFrame({**base, **cols})


@pytest.mark.parametrize(
    ("field", "values", "match"),
    [
        ("clothes", [-1, -1, -1, -1], "needs 'clothes', but T has only -1"),
        ("clothes", [3, 3, -1, 3], r"needs 'clothes', but T has one value \(3\)"),
        ("camera", [5, 5, 5, 5], r"needs 'camera', but T has one value \(5\)"),
        ("modality", ["rgb"] * 4, r"needs 'modality', but T has one value \(rgb\)"),
    ],
)
def test_needs_refuses_unknown_or_constant_fields(field, values, match):
    spec = dataclasses.replace(tiny_spec(), needs=(field,))
    with pytest.raises(AtustcError, match=f"method engine-test-net {match}"):
        check_needs(spec, _table(**{field: values}), "T")
    check_needs(spec, _table(), "T")


def test_needs_is_checked_before_training(tmp_path):
    import shutil

    _, table_path, split = make_dataset(tmp_path / "d", ids=4)
    flat = tmp_path / "split"
    shutil.copytree(split, flat)
    train = pd.read_parquet(flat / "train.parquet")
    train.assign(camera=3).to_parquet(flat / "train.parquet", index=False)

    def spec():
        return dataclasses.replace(tiny_spec(), name="needs-camera", needs=("camera",))

    with (
        temporary_method(spec),
        pytest.raises(AtustcError, match=r"needs 'camera', but .*train.parquet has one value \(3\)"),
    ):
        train_run("needs-camera", table_path, flat, "tiny", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_ddp_searches_unused_parameters_only_when_the_method_says_so(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model, cpu = TinyNet(_labels()), torch.device("cpu")
        assert wrap_step(model, DistInfo(world=2), cpu).find_unused_parameters is False
        assert wrap_step(model, DistInfo(world=2), cpu, unused=True).find_unused_parameters is True
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_resume_reuses_the_saved_recipe(engine_method, engine_data, tmp_path):
    _, table, split = engine_data
    fast = {"num_workers": 0, "log_every": 2}
    out = train_run(
        engine_method, table, split, "tiny", tmp_path / "run", overrides={**fast, "epochs": 1}, progress=False
    )
    # no --set epochs=1 this time: the saved recipe is reused, not the method's default (3 epochs)
    train_run(engine_method, table, split, "tiny", out, resume=True, overrides=fast, progress=False)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["iter"] == 4
    with pytest.raises(
        AtustcError, match=r"recipe differs from the saved run: epochs \(1 there, 2 now\); resume without"
    ):
        train_run(engine_method, table, split, "tiny", out, resume=True, overrides={"epochs": 2}, progress=False)


@pytest.mark.slow
def test_too_few_validation_identities_turn_selection_off_and_say_so(engine_method, engine_data, tmp_path):
    import shutil

    _, table, split = engine_data
    one = tmp_path / "one-val-id"
    shutil.copytree(split, one)
    val = pd.read_parquet(one / "val-protocol.parquet")
    val[val["pid"] == val["pid"].min()].to_parquet(one / "val-protocol.parquet", index=False)
    sets = {"num_workers": 0, "log_every": 4, "epochs": 1}
    out = train_run(engine_method, table, one, "tiny", tmp_path / "run", overrides=sets, progress=False)
    status = json.loads((out / "status.json").read_text())
    assert status["selection"]["validation_identities"] == 1
    assert "val-protocol.parquet holds 1 validation identity (selection needs >= 2" in status["selection"]["note"]
    assert status["best"]["metric"] == "last (no validation score)" and status["best"]["reason"]
    assert any('"val"' in line for line in (out / "metrics.jsonl").read_text().splitlines())  # still logged
