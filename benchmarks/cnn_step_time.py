"""Step time of the CNN baselines: one forward + backward at a preset's input size (CPU).

For each method: build the model at the preset (random init, an 8-person label space with two
outfits each), switch its clothes/adversarial losses on (``set_epoch`` at the recipe's last
epoch), then time ``--repeats`` forward + loss + backward passes of one batch after one warm-up
pass (``--warmup``). Also prints the parameter count and the embedding size ``[H, D]``.

Two figures per method, each the median over the repeats: the wall time of a pass and the
process CPU time it took (all threads). Other work on the machine stretches the wall time;
with ``OMP_NUM_THREADS=1`` the CPU time stays close to what a quiet one-thread pass takes.

    python benchmarks/cnn_step_time.py --preset paper --batch 8
    python benchmarks/cnn_step_time.py --preset tiny --batch 32 --methods bot,aim
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from atustc.methods import Batch, LabelSpace, get_method

LABELS = LabelSpace(num_pids=8, num_outfits=16, outfit_to_pid=tuple(i // 2 for i in range(16)), num_cameras=8)


def make_batch(size: tuple[int, int], n: int) -> Batch:
    g = torch.Generator().manual_seed(0)
    outfit = torch.arange(n) % LABELS.num_outfits
    return Batch(
        images=torch.randn(n, 3, *size, generator=g),
        pid=torch.tensor(LABELS.outfit_to_pid)[outfit],
        outfit=outfit,
        modality=torch.arange(n) % 2,
        camera=torch.arange(n) % LABELS.num_cameras,
    )


def step_time(name: str, preset: str, batch_size: int, repeats: int, warmup: int = 1) -> dict[str, object]:
    spec = get_method(name)
    recipe = spec.recipe(preset)
    torch.manual_seed(0)
    model = spec.create(LABELS, preset, None)
    if hasattr(model, "set_epoch"):
        model.set_epoch(recipe.epochs - 1)
    model.train()
    batch = make_batch(recipe.input_size, batch_size)
    times, cpu = [], []
    for i in range(warmup + repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=True)
        model.loss(model(batch), batch)["total"].backward()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    model.eval()
    with torch.no_grad():
        dim = tuple(model.embed(make_batch(recipe.input_size, 2)).shape[1:])
    return {
        "method": name,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "embed": dim,
        "input": recipe.input_size,
        "step_s": statistics.median(times),
        "step_cpu_s": statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["tiny", "paper"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    parser.add_argument("--methods", default="bot,pcb,agw,cal,aim")
    args = parser.parse_args()
    print(f"preset {args.preset}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'method':8} {'params':>9} {'embed [H, D]':>14} {'input':>10} {'wall s':>9} {'CPU s':>9} {'img/s':>7}")
    for name in args.methods.split(","):
        r = step_time(name, args.preset, args.batch, args.repeats, args.warmup)
        h, w = r["input"]
        print(
            f"{name:8} {r['params_M']:8.2f}M {list(r['embed'])!s:>14} {f'{h}x{w}':>10} "
            f"{r['step_s']:9.3f} {r['step_cpu_s']:9.3f} {args.batch / r['step_s']:7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
