"""Whether a leaderboard's cost figures can be trusted: the machine of each run, and its load.

Train time and img/s are wall-clock figures: they depend on the machine and on what else ran on
it. A run records both sides (:func:`atustc.engine.run.machine_info` in ``manifest.json``:
CPU model, cores, torch threads, GPUs; ``train_time_s`` and ``train_cpu_s``, the process CPU
time of the training steps, in ``status.json``), and the leaderboard marks a row's wall-clock
cost figures when

- ``loaded``: one of its CPU runs got less than :data:`LOADED_BELOW` of the CPU its threads could
  use, ``train_cpu_s / (train_time_s × threads) < 0.5``: the machine was busy with other work and
  the time is inflated by it. Quiet ``atustc bench`` runs on a 2-core AMD EPYC measured 0.95-0.96,
  runs beside seven other jobs 0.10-0.33. GPU runs are not judged (their CPU mostly waits);
- ``machines``: its runs, or the rows of the table, come from more than one machine, so the
  figures cannot be compared across them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

#: A CPU run whose training got less than this share of ``wall time × threads`` of CPU time ran loaded.
LOADED_BELOW = 0.5
#: Cost figures measured by the wall clock (marked when flagged); parameters are not.
WALL_CLOCK_METRICS: frozenset[str] = frozenset({"train_time_s", "images_per_s", "step_time_s"})
#: Flag values of the CSV's ``cost_flag`` column (``;``-joined).
FLAGS: tuple[str, ...] = ("loaded", "machines")
#: The marks the human-facing tables put on flagged cost figures.
MARKS: dict[str, str] = {"loaded": "*", "machines": "†"}


def machine_label(manifest: Mapping[str, Any]) -> str | None:
    """A short name for a run's machine (``manifest.json``'s ``machine``), or None for an older run.

    Example:
        >>> machine_label({"machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "threads": 2, "gpus": []}})
        'AMD EPYC 7B13, 2 cores'
        >>> machine_label({"machine": {"cpu": "Intel Xeon", "cores": 16, "gpus": ["NVIDIA H200", "NVIDIA H200"]}})
        '2x NVIDIA H200, Intel Xeon, 16 cores'
    """
    info = manifest.get("machine")
    if not isinstance(info, Mapping):
        return None
    parts = []
    gpus = list(info.get("gpus") or [])
    for name in dict.fromkeys(gpus):
        n = gpus.count(name)
        parts.append(f"{n}x {name}" if n > 1 else str(name))
    parts.append(str(info.get("cpu") or "unknown CPU"))
    if info.get("cores"):
        parts.append(f"{info['cores']} cores")
    return ", ".join(parts)


def cpu_utilisation(status: Mapping[str, Any], manifest: Mapping[str, Any]) -> float | None:
    """``train_cpu_s / (train_time_s × threads)`` of a CPU run, or None (a GPU run, or not recorded)."""
    if (manifest.get("device") or {}).get("type", "cpu") != "cpu":
        return None
    wall, cpu = status.get("train_time_s"), status.get("train_cpu_s")
    threads = (manifest.get("machine") or {}).get("threads") or (manifest.get("device") or {}).get("threads")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (wall, cpu, threads)):
        return None
    return float(cpu) / (float(wall) * float(threads))


def row_flags(machines: Iterable[str | None], utilisations: Iterable[float | None], board_machines: int) -> str:
    """The ``cost_flag`` of a leaderboard row (``;``-joined :data:`FLAGS`, empty when none applies).

    Args:
        machines: the machine label of each of the row's runs (None: not recorded).
        utilisations: the :func:`cpu_utilisation` of each of its runs.
        board_machines: how many distinct machines the whole table's runs came from.
    """
    flags = []
    if any(u is not None and u < LOADED_BELOW for u in utilisations):
        flags.append("loaded")
    if len({m for m in machines if m is not None}) > 1 or board_machines > 1:
        flags.append("machines")
    return ";".join(flags)


def cost_notes(machine_rows: Mapping[str, list[str]], flags: Iterable[str]) -> list[str]:
    """The footnote lines under a leaderboard: its machine(s) and what each mark means.

    Args:
        machine_rows: machine label -> the methods whose runs ran on it.
        flags: the ``cost_flag`` values of the rows.
    """
    seen = {f for value in flags for f in str(value).split(";") if f}
    lines = []
    if len(machine_rows) == 1:
        lines.append(f"Machine: {next(iter(machine_rows))}.")
    elif machine_rows:
        where = "; ".join(f"{m} ({', '.join(rows)})" for m, rows in machine_rows.items())
        lines.append(f"Machines: {where}.")
    if "loaded" in seen:
        lines.append(
            f"{MARKS['loaded']} loaded machine: a run's training got under {LOADED_BELOW:.0%} of the CPU its "
            "threads could use (CPU time below half of wall time times threads); its times are inflated by other work."
        )
    if "machines" in seen:
        lines.append(f"{MARKS['machines']} runs from different machines: the times are not comparable across them.")
    return lines
