"""Gallery trials of sampled scenarios: the runs of a scenario, the seeded draw, and given galleries.

A scenario with ``sampling`` is ranked once per trial (and direction) against a gallery drawn
from its pool (:func:`draw_gallery`), or against galleries given from elsewhere (recorded
trials, an official draw file: :mod:`atustc.galleries`), checked by :func:`check_galleries`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

    from atustc.protocol import Protocol, Scenario


@dataclass(frozen=True)
class Run:
    """One ranked (query rows, gallery rows) pair of a scenario: a trial and a direction.

    Attributes:
        query: table rows of the queries.
        gallery: table rows of the gallery (after sampling).
        trial: the sampling trial (None without sampling).
        direction: ``"forward"`` (query pool -> gallery pool) or ``"reverse"``.
        seed: the ``default_rng`` seed of the draw (None without sampling or for a given gallery).
    """

    query: np.ndarray
    gallery: np.ndarray
    trial: int | None = None
    direction: str = "forward"
    seed: tuple[int, int] | None = None
    pool: np.ndarray | None = None  # with sampling: the gallery pool the draw came from


def plan_runs(
    scenario: Scenario, q: np.ndarray, g: np.ndarray, table: pd.DataFrame, given: Sequence[np.ndarray] | None = None
) -> list[Run]:
    """Every trial and direction of a scenario; ``given`` replaces the drawn galleries, run by run."""
    pairs = [("forward", q, g)] if scenario.directions == "forward" else [("forward", q, g), ("reverse", g, q)]
    if scenario.sampling is None:
        return [Run(qr, gr, None, d) for d, qr, gr in pairs]
    s = scenario.sampling
    out = []
    for t in range(s.trials):
        for d, qr, gr in pairs:
            if given is None:
                out.append(Run(qr, draw_gallery(gr, table, s.shots, s.seed, t), t, d, (s.seed, t), gr))
            else:
                out.append(Run(qr, np.asarray(given[len(out)], dtype=np.int64), t, d, None, gr))
    return out


def draw_gallery(rows: np.ndarray, table: pd.DataFrame, shots: int, seed: int, trial: int) -> np.ndarray:
    """Keep ``shots`` random rows per (pid, camera) (all of a smaller group), for ``trial`` of ``seed``.

    The draw uses ``numpy.random.default_rng([seed, trial])`` over the rows sorted by ``relpath``,
    so it depends on neither the table's row order nor the machine, and trials are independent
    streams (not ``seed + trial``, which would make trial 1 of seed 0 equal trial 0 of seed 1).
    The kept rows are returned in table order.
    """
    relpath = table["relpath"].to_numpy()[rows].astype(str)
    by_name = np.argsort(relpath, kind="stable")
    key = np.empty(rows.size)
    key[by_name] = np.random.default_rng([seed, trial]).random(rows.size)
    pid = table["pid"].to_numpy()[rows]
    cam = table["camera"].to_numpy()[rows]
    order = np.lexsort((key, cam, pid))
    p, c = pid[order], cam[order]
    start = np.ones(rows.size, dtype=bool)
    start[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1])
    group_start = np.maximum.accumulate(np.where(start, np.arange(rows.size), 0))
    keep = (np.arange(rows.size) - group_start) < shots
    return np.sort(rows[order[keep]])


def check_galleries(protocol: Protocol, galleries: Mapping[str, Sequence[np.ndarray]]) -> dict[str, list]:
    """Given galleries, checked against the protocol: sampled scenarios and their number of runs."""
    by_name = {s.name: s for s in protocol.scenarios}
    out = {}
    for name, runs in galleries.items():
        s = by_name.get(name)
        if s is None or s.sampling is None:
            raise AtustcError(f"galleries: scenario {name!r} is not a sampled scenario of protocol {protocol.name}")
        want = s.sampling.trials * (1 if s.directions == "forward" else 2)
        if len(runs) != want:
            raise AtustcError(
                f"galleries: scenario {name!r} has {len(runs)} galleries, protocol {protocol.name} runs it {want} times"
            )
        out[name] = list(runs)
    return out
