"""Training-step cost of MoAE: Uni-AT (SAID + 12-expert MoAE) over MS-ReID (SAID, no MoAE).

Times one training step (forward + loss, backward, the recipe's optimiser step) of both models on the same input,
for the ``tiny`` preset and for ViT-B/16 at 256x128 with a small batch. The paper's Table 2 reports 1.2x.
``--loop-optimizer`` steps with torch's per-tensor for-loop instead of the engine's fused optimiser (the cost
before the engine fused it). Run: ``.venv/bin/python benchmarks/moae_cost.py [--quick] [--loop-optimizer]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from atustc.engine.optim import build_optimizer
from atustc.methods.contract import Batch, LabelSpace, Recipe
from atustc.methods.uniat import build_uniat, uniat_config, uniat_recipe
from atustc.models.config import MoEConfig


def make_batch(batch_size: int, size: tuple[int, int], labels: LabelSpace) -> Batch:
    """A fixed random batch with half RGB, half IR and valid person/outfit labels."""
    g = torch.Generator().manual_seed(0)
    outfit = torch.randint(0, labels.num_outfits, (batch_size,), generator=g)
    pid = torch.tensor(labels.outfit_to_pid)[outfit]
    return Batch(
        images=torch.randn(batch_size, 3, *size, generator=g),
        pid=pid,
        outfit=outfit,
        modality=torch.arange(batch_size) % 2,
        camera=torch.zeros(batch_size, dtype=torch.long),
    )


def step_times(
    model: torch.nn.Module, batch: Batch, recipe: Recipe, steps: int, warmup: int, loop: bool = False
) -> list[list[float]]:
    """Per step: [forward+loss, backward, optimiser step, total] wall times and the total CPU time.

    ``steps`` timed steps after ``warmup`` untimed ones.

    The optimiser is the engine's (:func:`atustc.engine.optim.build_optimizer`) for the preset's recipe;
    ``loop`` switches it to torch's per-tensor for-loop implementation.
    """
    opt = build_optimizer(model, recipe)
    if loop:
        for group in opt.param_groups:
            group["fused"], group["foreach"] = None, False
    model.train()
    times = []
    for i in range(warmup + steps):
        c0, t0 = time.process_time(), time.perf_counter()
        loss = model.loss(model(batch), batch)["total"]
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3, c3 = time.perf_counter(), time.process_time()
        if i >= warmup:
            times.append([t1 - t0, t2 - t1, t3 - t2, t3 - t0, c3 - c0])
    return times


def compare(
    preset: str, batch_size: int, steps: int, warmup: int, rounds: int, loop: bool = False
) -> dict[str, list[float]]:
    """Minimum over steps of [fwd, bwd, optim, total wall, total CPU] seconds, per model.

    The machine is shared, so the minimum (the least-disturbed step) is the robust figure;
    rounds alternate the two models so that both see the same background load.
    """
    labels = LabelSpace(16, 40, tuple(i * 16 // 40 for i in range(40)), 4)
    said = uniat_config("uniat-said", preset)
    base_cfg = replace(said, vit=replace(said.vit, drop_path=0.0))
    moae_cfg = replace(base_cfg, moe=MoEConfig("moae", 12))
    recipe = uniat_recipe(preset)
    torch.manual_seed(0)
    models = {"MS-ReID": build_uniat(labels, base_cfg), "Uni-AT MoAE-12": build_uniat(labels, moae_cfg)}
    batch = make_batch(batch_size, base_cfg.vit.img_size, labels)
    times: dict[str, list[list[float]]] = {name: [] for name in models}
    for _ in range(rounds):  # interleave to spread machine noise over both
        for name, model in models.items():
            times[name] += step_times(model, batch, recipe, steps, warmup, loop)
    return {name: [min(col) for col in zip(*rows)] for name, rows in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    parser.add_argument("--loop-optimizer", action="store_true", help="torch's per-tensor loop, not fused")
    args = parser.parse_args()
    shapes = {  # preset: batch, timed steps, warm-up steps, rounds (normal, quick)
        "tiny": ((32, 8, 2, 4), (32, 4, 2, 2)),
        "paper": ((8, 2, 1, 2), (8, 1, 1, 1)),
    }
    runs = [(p, *shapes[p][args.quick]) for p in args.presets]
    kind = "per-tensor loop" if args.loop_optimizer else "fused"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, {kind} optimiser; min s per step")
    print(f"{'preset':7} {'batch':>5} {'model':15} {'fwd+loss':>8} {'bwd':>8} {'optim':>8} {'total':>8} {'CPU s':>8}")
    for preset, bs, steps, warmup, rounds in runs:
        res = compare(preset, bs, steps, warmup, rounds, args.loop_optimizer)
        for name, cols in res.items():
            print(f"{preset:7} {bs:5d} {name:15} " + " ".join(f"{c:8.4f}" for c in cols), flush=True)
        b, m = res["MS-ReID"], res["Uni-AT MoAE-12"]
        print(f"{preset:7} {bs:5d} {'ratio':15} " + " ".join(f"{y / x:8.3f}" for x, y in zip(b, m)), flush=True)


if __name__ == "__main__":
    main()
