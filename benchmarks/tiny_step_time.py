"""Step time of the tiny presets and the wall time of ``atustc bench`` estimated from it (issue 11).

For each method (default: the bench's, uniat and transreid) builds the registered tiny model on
the label space of the default synthetic set, times ``--steps`` training steps on random images
(forward, loss, backward, AdamW; the first two are warm-up and not counted) and embedding at
batch 128, then estimates a bench from an empty cache as

    synth images / synth rate + sum over methods of (iterations x step + (val + test) images / embed rate)

(data loading, imports and evaluation are left out: a few seconds each). On a loaded machine the
minimum step time is the steadier figure; the estimate uses it.

Usage: ``python benchmarks/tiny_step_time.py [--methods uniat,transreid] [--steps 8]``.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="uniat,transreid")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import atustc.methods.builtin  # noqa: F401 - registers the methods
    from atustc.methods import Batch, LabelSpace, get_method
    from atustc.synth import SynthConfig, make_plan, render_image

    cfg = SynthConfig.named("default")
    plan = make_plan(cfg)
    train = plan.flag == 0
    pairs = sorted(set(zip(plan.pid[train].tolist(), plan.clothes[train].tolist())))
    pids = sorted({p for p, _ in pairs})
    labels = LabelSpace(len(pids), len(pairs), tuple(pids.index(p) for p, _ in pairs), 16)
    n_embed = int((plan.flag >= 1).sum())
    t0 = time.perf_counter()
    for i in range(300):
        render_image(
            cfg, int(plan.pid[i]), int(plan.date[i]), int(plan.clothes[i]), int(plan.camera[i]), int(plan.frame[i])
        )
    synth_s = len(plan) * (time.perf_counter() - t0) / 300 / 2  # two rendering workers
    print(
        f"threads {torch.get_num_threads()}; default synth: {len(plan)} images, {labels.num_pids} train ids, "
        f"{n_embed} val+test images; synth about {synth_s:.0f} s with 2 workers (render only)"
    )
    total = synth_s
    for name in args.methods.split(","):
        spec = get_method(name)
        recipe = spec.recipe("tiny")
        torch.manual_seed(0)
        model = spec.create(labels, "tiny", None).train()
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
        b = recipe.batch_size
        g = torch.Generator().manual_seed(0)
        batch = Batch(
            images=torch.randn(b, 3, *recipe.input_size, generator=g),
            pid=torch.arange(b) // recipe.num_instances % labels.num_pids,
            outfit=torch.arange(b) // 2 % labels.num_outfits,
            modality=torch.arange(b) % 2,
            camera=torch.arange(b) % 16,
        )
        times = []
        for _ in range(args.steps + 2):
            t = time.perf_counter()
            loss = model.loss(model(batch), batch)["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        step = float(np.min(times[2:]))
        model.eval()
        with torch.no_grad():
            x = Batch(
                images=torch.randn(128, 3, *recipe.input_size),
                pid=torch.zeros(128, dtype=torch.long),
                outfit=torch.zeros(128, dtype=torch.long),
                modality=torch.zeros(128, dtype=torch.long),
                camera=torch.zeros(128, dtype=torch.long),
            )
            model.embed(x)
            t = time.perf_counter()
            model.embed(x)
            rate = 128 / (time.perf_counter() - t)
        run_s = recipe.total_iters * step + n_embed / rate
        total += run_s
        print(
            f"{name}: step min {step:.3f} s / median {np.median(times[2:]):.3f} s (batch {b}, "
            f"{recipe.input_size[0]}x{recipe.input_size[1]}), embed {rate:.0f} img/s; "
            f"{recipe.total_iters} iterations -> about {run_s:.0f} s"
        )
    print(f"estimated `atustc bench` from an empty cache: about {total:.0f} s (+ imports, loading, evaluation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
