"""Write the synthetic AT-USTC tree: plan, render in worker processes, publish atomically."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from atustc.errors import AtustcError
from atustc.io import atomic_dir
from atustc.synth.config import SYNTH_VERSION, SynthConfig
from atustc.synth.people import Camera, draw_camera, draw_identity, draw_outfit
from atustc.synth.plan import Plan, make_plan
from atustc.synth.render import draw_shot, encode_jpeg, render, sprite
from atustc.synthmark import MARKER_NAME, marker_text


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote."""

    root: Path
    images: int
    identities: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        """Generation throughput."""
        return self.images / max(self.seconds, 1e-9)


@lru_cache(maxsize=256)
def _camera(seed: int, cam: int, size: tuple[int, int]) -> Camera:
    return draw_camera(seed, cam, size)


@lru_cache(maxsize=2048)
def _sprite(seed: int, pid: int, clothes: int, step: int, height: int) -> np.ndarray:
    return sprite(draw_identity(seed, pid), draw_outfit(seed, pid, clothes), step, height)


def render_image(config: SynthConfig, pid: int, date: int, clothes: int, camera: int, frame: int) -> np.ndarray:
    """The pixels of one image, ``[H, W, 3]`` uint8; seeded by (seed, pid, date, camera, frame)."""
    seed = config.seed
    identity = draw_identity(seed, pid)
    light = np.random.default_rng([seed, 5, date, camera]).uniform(0.75, 1.2)
    rng = np.random.default_rng([seed, pid, date, camera, frame])
    shot = draw_shot(rng, identity, frame, light)
    person = _sprite(seed, pid, clothes, shot.step, config.image_size[0])
    cam = _camera(seed, camera, config.image_size)
    return render(identity, draw_outfit(seed, pid, clothes), person, cam, shot, rng)


def _write_rows(config: SynthConfig, root: str, rows: list[tuple[int, int, int, int, int, str]]) -> int:
    for pid, date, clothes, camera, frame, rel in rows:
        path = os.path.join(root, rel)
        data = encode_jpeg(render_image(config, pid, date, clothes, camera, frame), config.jpeg_quality)
        with open(path, "wb") as fh:
            fh.write(data)
    return len(rows)


def _chunks(plan: Plan, per_chunk: int) -> list[list[tuple[int, int, int, int, int, str]]]:
    rows = list(
        zip(
            *(getattr(plan, k).tolist() for k in ("pid", "date", "clothes", "camera", "frame")),
            plan.relpath,
            strict=True,
        )
    )
    return [rows[i : i + per_chunk] for i in range(0, len(rows), per_chunk)]


def synthesize(
    out_dir: str | os.PathLike[str],
    config: SynthConfig,
    progress: bool = True,
    *,
    workers: int = 1,
    overwrite: bool = False,
) -> SynthResult:
    """Generate the synthetic dataset under ``out_dir`` in the AT-USTC layout.

    The tree is written into a temporary folder beside ``out_dir`` and renamed into place at the
    end, so a failed or interrupted run leaves no partial dataset.

    Args:
        out_dir: the dataset root to create (``out_dir/pXXX-dYY-cZZ/camNN-fF-FFFF.jpg``).
        config: sizes and seed.
        progress: show a progress bar.
        workers: rendering processes (1 renders in this process).
        overwrite: replace an existing non-empty ``out_dir``.

    Returns:
        The root, the image and identity counts and the time taken.

    Raises:
        AtustcError: ``out_dir`` is a file, or a non-empty folder without ``overwrite``.
    """
    from atustc.richprogress import progress_bar

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AtustcError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise AtustcError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    if workers < 1:
        raise AtustcError(f"workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    plan = make_plan(config)
    with atomic_dir(out) as tmp:  # the mode of an ordinary mkdir; the old tree kept on failure
        for d in sorted({r.split("/", 1)[0] for r in plan.relpath}):
            (tmp / d).mkdir()
        (tmp / MARKER_NAME).write_text(
            marker_text("atustc", config.seed, SYNTH_VERSION, asdict(config)), encoding="utf-8"
        )
        chunks = _chunks(plan, per_chunk=max(16, len(plan) // (workers * 8) + 1))
        with progress_bar(f"synth {out.name}", total=len(plan), enabled=progress) as advance:
            if workers == 1:
                for chunk in chunks:
                    advance(_write_rows(config, str(tmp), chunk))
            else:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    futures = [pool.submit(_write_rows, config, str(tmp), chunk) for chunk in chunks]
                    for fut in as_completed(futures):
                        advance(fut.result())
    return SynthResult(out.resolve(), len(plan), config.identities, time.perf_counter() - t0)
