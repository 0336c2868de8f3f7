"""Given galleries for sampled scenarios: recorded trials of an eval file, or an official draw file.

``atustc eval --galleries FILE`` scores a protocol's sampled scenarios on galleries that were
drawn elsewhere instead of drawing them: an eval JSON written by ``atustc eval --json`` (its
``trials`` record, so a result is re-scored on exactly the same galleries), or SYSU-MM01's
official ``rand_perm_cam.mat`` (:func:`atustc.datasets.sysu_mm01.rand_perm_galleries`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

    from atustc.protocol import Protocol


def load_galleries(
    path: str | os.PathLike[str], protocol: Protocol, table: pd.DataFrame
) -> dict[str, list[np.ndarray]]:
    """Scenario -> the gallery table rows of each sampled run, read from ``path``.

    Raises:
        AtustcError: a missing file, an unknown kind of file, an eval file of another protocol
            or without recorded trials, or a recorded image that is not a row of the table.
    """
    p = Path(path)
    if not p.is_file():
        raise AtustcError(f"--galleries {p}: file not found")
    if p.suffix == ".mat":
        from atustc.datasets.sysu_mm01 import rand_perm_galleries

        return rand_perm_galleries(p, protocol, table)
    if p.suffix != ".json":
        raise AtustcError(f"--galleries {p}: expected an eval .json (with trials) or SYSU-MM01's rand_perm_cam.mat")
    from atustc.io import read_json

    record = read_json(p)
    if record.get("protocol") != protocol.name:
        raise AtustcError(f"--galleries {p}: scored protocol {record.get('protocol')!r}, not {protocol.name!r}")
    trials = record.get("trials")
    if not isinstance(trials, dict) or not trials:
        raise AtustcError(f"--galleries {p}: no recorded trials (the protocol it scored samples no gallery)")
    index = {r: i for i, r in enumerate(table["relpath"].astype(str))}
    out = {}
    for name, runs in trials.items():
        rows = []
        for run in runs:
            missing = [r for r in run["gallery"] if r not in index]
            if missing:
                raise AtustcError(
                    f"--galleries {p}: scenario {name} run {run['run']}: image {missing[0]} is not in the table"
                )
            rows.append(np.array(sorted(index[r] for r in run["gallery"]), dtype=np.int64))
        out[name] = rows
    return out
