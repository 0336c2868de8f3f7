"""Who is seen when, where and wearing what: the capture plan of the synthetic dataset.

Per person (seeded by ``(seed, pid)``): a few outfits and a few capture dates; every outfit is
worn on at least one date and the remaining dates repeat one (so both same-outfit pairs across
dates and changed-outfit pairs exist); on each date a few RGB cameras (1-8) and a few IR
cameras (9-16) each keep a short run of frames. Flags come from
:func:`atustc.split.flags.assign_flags`, the rule ``atustc split --strategy resplit`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atustc.split.flags import assign_flags
from atustc.synth.config import SynthConfig


@dataclass(frozen=True)
class Plan:
    """One entry per image (aligned int64 arrays) and its relative path."""

    pid: np.ndarray
    date: np.ndarray
    clothes: np.ndarray
    camera: np.ndarray
    frame: np.ndarray
    flag: np.ndarray
    relpath: list[str]

    def __len__(self) -> int:
        return len(self.pid)


def _between(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def make_plan(config: SynthConfig) -> Plan:
    """The capture plan and flags of a config (deterministic in ``config.seed``)."""
    cols: dict[str, list[int]] = {k: [] for k in ("pid", "date", "clothes", "camera", "frame")}
    for pid in range(1, config.identities + 1):
        rng = np.random.default_rng([config.seed, pid, 1])
        n_outfits = _between(rng, config.outfits_per_id)
        n_dates = max(n_outfits, _between(rng, config.dates_per_id))
        dates = np.sort(rng.choice(np.arange(1, config.dates + 1), n_dates, replace=False))
        outfits = np.concatenate([np.arange(1, n_outfits + 1), rng.integers(1, n_outfits + 1, n_dates - n_outfits)])
        rng.shuffle(outfits)
        for date, clothes in zip(dates.tolist(), outfits.tolist()):
            rgb = rng.choice(np.arange(1, 9), _between(rng, config.rgb_cams_per_capture), replace=False)
            ir = rng.choice(np.arange(9, 17), _between(rng, config.ir_cams_per_capture), replace=False)
            for cam in np.sort(np.concatenate([rgb, ir])).tolist():
                n = _between(rng, config.frames_per_camera)
                start, step = int(rng.integers(1, 8000)), int(rng.integers(3, 12))
                for f in range(start, start + n * step, step):
                    cols["pid"].append(pid)
                    cols["date"].append(date)
                    cols["clothes"].append(clothes)
                    cols["camera"].append(cam)
                    cols["frame"].append(f)
    arr = {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}
    flag = assign_flags(
        arr["pid"],
        arr["camera"],
        arr["clothes"],
        arr["camera"] >= 9,
        arr["date"],
        arr["frame"],
        seed=config.seed,
        val_fraction=config.val_fraction,
    )
    relpath = [
        f"p{p:03d}-d{d:02d}-c{c:02d}/cam{k:02d}-f{g}-{f:04d}.jpg"
        for p, d, c, k, f, g in zip(
            *(arr[k].tolist() for k in ("pid", "date", "clothes", "camera", "frame")), flag.tolist(), strict=True
        )
    ]
    return Plan(flag=flag, relpath=relpath, **arr)
