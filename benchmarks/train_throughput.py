"""Training throughput of the engine: images/s for a method at the tiny and paper presets, fp32 and bf16.

Runs the engine's own training step (sampler, loader with workers, train transform, forward +
loss + backward + clipping + optimiser step under autocast) on a small synthetic AT-USTC set,
after one warm-up step. The paper preset keeps its model and input size (ViT-B/16 at 256x128)
but uses a small P x K batch so that a CPU finishes a few iterations.

    python benchmarks/train_throughput.py                   # uniat, tiny + paper, fp32 + bf16
    python benchmarks/train_throughput.py --presets tiny --iters 10 --method uniat-baseline
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_data(base: Path):
    """A small synthetic set, its table and split; returns (root, split)."""
    from atustc.datasets import index_dataset
    from atustc.split import make_split
    from atustc.synth import SynthConfig, synthesize

    root = base / "data"
    synthesize(root, SynthConfig(identities=40, frames_per_camera=(2, 3)), progress=False)
    table = index_dataset(root).table
    return root, make_split(table, "official", root=root)


def measure(
    method: str,
    preset: str,
    amp: str,
    iters: int,
    batch: tuple[int, int] | None,
    root: Path,
    split,
    device: str,
    workers: int,
) -> dict:
    import torch

    from atustc.engine.data import TableDataset, build_label_maps, collate, to_batch
    from atustc.engine.optim import Optimisers
    from atustc.engine.samplers import BatchPlan, BatchStream
    from atustc.engine.step import TrainStep, autocast_context, train_step
    from atustc.engine.transforms import build_transforms
    from atustc.methods import get_method

    torch.manual_seed(0)
    spec = get_method(method)
    recipe = spec.recipe(preset)
    if batch is not None:
        recipe = replace(recipe, num_identities=batch[0], num_instances=batch[1])
    dev = torch.device(device)
    maps = build_label_maps(split.train)
    enc = maps.encode(split.train)
    plan = BatchPlan(
        enc["pid"],
        enc["modality"],
        recipe.sampler,
        recipe.num_identities,
        recipe.num_instances,
        recipe.iters_per_epoch,
        seed=0,
    )
    train_tf, _ = build_transforms(recipe)
    loader = torch.utils.data.DataLoader(
        TableDataset(split.train, root, maps, train_tf),
        batch_sampler=BatchStream(plan, 0, iters + 1),
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        collate_fn=collate,
    )
    model = spec.create(maps.space, preset, None).to(dev).train()
    params = sum(p.numel() for p in model.parameters())
    optim = Optimisers(model, recipe)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    step = TrainStep(model)
    times = []
    t0 = time.perf_counter()
    for it, tensors in enumerate(loader):
        b = to_batch(tensors, dev)
        train_step(step, optim, scaler, b, recipe.clip_grad_norm, autocast_context(dev, amp), it)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
    measured = times[1:]  # the first step warms up allocators and kernels
    return {
        "method": method,
        "preset": preset,
        "amp": amp,
        "batch": recipe.batch_size,
        "input": "x".join(map(str, recipe.input_size)),
        "params_M": params / 1e6,
        "s_per_iter": sum(measured) / len(measured),
        "images_per_s": recipe.batch_size * len(measured) / sum(measured),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="uniat")
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--amp", nargs="+", default=["off", "bf16"])
    parser.add_argument("--iters", type=int, default=4, help="measured iterations (after one warm-up)")
    parser.add_argument("--paper-batch", default="2x4", help="P x K of the paper preset on this machine")
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import torch
    from rich.console import Console
    from rich.table import Table

    paper_batch = tuple(int(x) for x in args.paper_batch.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, split = make_data(Path(tmp))
        for preset in args.presets:
            for amp in args.amp:
                batch = paper_batch if preset == "paper" and args.device == "cpu" else None
                rows.append(
                    measure(args.method, preset, amp, args.iters, batch, root, split, args.device, args.workers)
                )
                r = rows[-1]
                print(f"{preset} {amp}: {r['s_per_iter']:.2f} s/iter, {r['images_per_s']:.2f} images/s", flush=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    table = Table(title=f"training throughput, {args.method}, {name}")
    for col in ("preset", "amp", "batch", "input", "params (M)", "s/iter", "images/s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["preset"],
            r["amp"],
            str(r["batch"]),
            r["input"],
            f"{r['params_M']:.1f}",
            f"{r['s_per_iter']:.2f}",
            f"{r['images_per_s']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
