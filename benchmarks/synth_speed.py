"""Synthetic data generation speed: images per second for a named size and worker counts.

Generates the dataset into a temporary folder (written, then removed) and prints wall time and
throughput for each worker count; the render-only rate (no JPEG, no disk) is printed too.

    .venv/bin/python benchmarks/synth_speed.py [--size default] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from atustc.synth import SynthConfig, make_plan, render_image, synthesize


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=["test", "default", "large"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    config = SynthConfig.named(args.size)
    plan = make_plan(config)
    print(
        f"size {args.size}: {len(plan):,} images of {config.identities} identities, "
        f"{config.image_size[0]}x{config.image_size[1]} JPEG q{config.jpeg_quality}"
    )
    n = min(2000, len(plan))
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        render_image(config, *(int(getattr(plan, k)[i]) for k in ("pid", "date", "clothes", "camera", "frame")))
    print(
        f"render only (1 process): {n / (time.perf_counter() - t0):,.0f} images/s wall, "
        f"{(time.process_time() - c0) / n * 1e3:.2f} ms CPU per image"
    )
    for workers in args.workers:
        tmp = Path(tempfile.mkdtemp(prefix="atustc-synth-bench-"))
        try:
            c0 = _cpu()
            res = synthesize(tmp / "ds", config, progress=False, workers=workers)
            cpu = (_cpu() - c0) / res.images * 1e3
            print(
                f"synthesize, {workers} worker(s): {res.seconds:.2f} s, {res.images_per_s:,.0f} images/s wall; "
                f"{cpu:.2f} ms CPU per image (all processes, incl. JPEG and writing)"
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
