"""Bring one (method, seed) run of a bench to ``finished`` with every eval file, or record why not.

Run states and what a new bench does with them (:func:`bring_run`):

- ``finished`` with every eval file: reused (unless ``force``);
- ``finished`` without them: only embedded and scored again;
- ``running`` (the process was killed), or ``failed`` by an interrupt (Ctrl-C) with a
  checkpoint: resumed from ``checkpoints/last.pt``;
- ``failed`` otherwise: trained again from scratch, reported as ``retried``; ``force``: trained
  again from scratch.

A method that raises is recorded as ``failed`` in its ``status.json`` (with the reason). A
cross-domain target that fails is reported as the run's failure without marking the trained
run failed; a later bench only scores the missing targets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from atustc.bench.crossdomain import Target, pending, score_target
from atustc.bench.data import BenchData
from atustc.bench.score import CHECKPOINT, score_run
from atustc.engine.request import TrainRequest, request_argv
from atustc.errors import AtustcError
from atustc.runfolder import RunFolder

_INTERRUPTS = ("KeyboardInterrupt", "SystemExit")


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one (method, seed) run in this bench."""

    method: str
    seed: int
    run_dir: Path
    state: Literal["finished", "failed"]
    action: Literal["reused", "trained", "resumed", "scored", "retried"]
    error: str | None
    seconds: float


def bring_run(
    request: TrainRequest, data: BenchData, protocols: Sequence[str], force: bool, nproc: int, targets: Sequence[Target]
) -> RunOutcome:
    """Bring one run to ``finished`` with every eval file, or record why it failed.

    Args:
        request: the run's training request (``request.out`` is the run folder).
        data: the bench's data, scored by :func:`atustc.bench.score.score_run`.
        protocols: the protocols every run gets an eval file for.
        force: train again from scratch whatever the run's state.
        nproc: processes for the training (torchrun when > 1).
        targets: cross-domain datasets the finished run is also scored on.

    Returns:
        The outcome; a failure is returned (and recorded in ``status.json``), never raised.
    """
    from atustc.engine.train import run_training

    t0 = time.perf_counter()
    run = RunFolder(request.out)
    status = run.read_status()
    state = status.get("state")
    main = [run.eval_file(p, CHECKPOINT) for p in protocols]
    scored = all(f.is_file() for f in main) and not pending(run.path, targets, CHECKPOINT)
    if state == "finished" and not force:
        action = "reused" if scored else "scored"
    elif not force and _resumable(run.path, status):
        action = "resumed"
    elif state == "failed" and not force:
        action = "retried"
    else:
        action = "trained"
    method, seed = request.method, request.seed
    try:
        if action in ("trained", "resumed", "retried"):
            for p in protocols:
                run.eval_file(p, CHECKPOINT).unlink(missing_ok=True)
                run.per_query_file(p, CHECKPOINT).unlink(missing_ok=True)
            for name in run.xd_datasets(CHECKPOINT):  # they scored the checkpoint being replaced
                run.xd_eval_file(name, CHECKPOINT).unlink()
            request = replace(request, resume=action == "resumed", force=action != "resumed" and run.path.exists())
            if nproc > 1:
                from atustc.engine.distributed import launch

                launch(nproc, request_argv(request))
            else:
                run_training(request)
        if action != "reused" and not all(f.is_file() for f in main):
            score_run(run.path, data, protocols, device=request.device, progress=request.progress)
    except Exception as exc:  # a failing method must not stop the others
        error = _reason(exc)
        _mark_failed(run.path, method, request.preset, seed, error)
        return RunOutcome(method, seed, run.path, "failed", action, error, time.perf_counter() - t0)
    try:  # the trained run stays finished: a later bench only scores the missing targets
        for target in pending(run.path, targets, CHECKPOINT):
            score_target(run.path, target, checkpoint=CHECKPOINT, device=request.device, progress=request.progress)
    except Exception as exc:
        error = f"cross-domain {target.name}: {_reason(exc)}"
        return RunOutcome(method, seed, run.path, "failed", action, error, time.perf_counter() - t0)
    return RunOutcome(method, seed, run.path, "finished", action, None, time.perf_counter() - t0)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, AtustcError) else f"{type(exc).__name__}: {exc}"


def _resumable(run: Path, status: dict) -> bool:
    """A run killed or interrupted mid-training that has a checkpoint to continue from."""
    if not (run / "checkpoints" / "last.pt").is_file():
        return False
    if status.get("state") == "running":
        return True
    return status.get("state") == "failed" and str(status.get("error") or "").startswith(_INTERRUPTS)


def _mark_failed(run: Path, method: str, preset: str, seed: int, error: str) -> None:
    """Record a failure in ``status.json`` (creating the run folder if the engine did not)."""
    from atustc.io import write_json_atomic

    status = RunFolder(run).read_status()
    status.update(state="failed", error=error)
    status.setdefault("method", method)
    status.setdefault("preset", preset)
    status.setdefault("seed", seed)
    write_json_atomic(run / "status.json", status)
