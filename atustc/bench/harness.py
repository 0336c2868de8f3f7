"""The benchmark harness: train, embed and score several methods on the same data, protocol and budget.

For each method and seed :func:`run_bench` trains with the engine (``RUNS/<method>-<preset>-s<seed>``),
embeds the test rows with the run's last checkpoint (every method is reported at its last epoch, as
the papers of the compared methods and their official codes report), scores them on every
protocol the split is scored on (``split.json``; AT-USTC: ``atustc`` and ``atustc-mixed``) and
writes ``RUN/eval/<protocol>@last.json`` with its provenance. With ``nproc > 1`` each training runs
in ``nproc`` processes under torchrun. The harness knows no method by name: anything registered
through :func:`atustc.methods.register_method` can be benchmarked.

Run states and what a new bench does with them:

- ``finished`` with every eval file: reused (unless ``force``);
- ``finished`` without them: only embedded and scored again;
- ``running`` (the process was killed), or ``failed`` by an interrupt (Ctrl-C) with a
  checkpoint: resumed from ``checkpoints/last.pt``;
- ``failed`` otherwise: trained again from scratch, reported as ``retried``; ``force``: trained
  again from scratch.

Options that apply to every run (``--set``) are checked against every method's recipe once,
before anything is created (:func:`check_overrides`).

A method that raises is recorded as ``failed`` in its ``status.json`` (with the reason) and the
bench goes on with the others. ``RUNS/bench.json`` records the command, methods, seeds, preset,
data (table, split, root, table hash) and the outcome of every run.

With ``cross_domain`` targets (:mod:`atustc.bench.crossdomain`) each finished run is also scored
zero-shot on every target dataset (``RUN/eval/xd-<dataset>@last.json``), except the dataset it
was trained on; a run missing one of them is scored again (never retrained). A cross-domain
failure is reported as the run's failure without marking the trained run failed.

Without a table the harness builds the embedded synthetic dataset (``synth`` at the default
size, ``index``, official ``split``) once in a cache folder (``$ATUSTC_CACHE`` or
``~/.cache/atustc``), keyed by the synthetic config, and reuses it.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from atustc.bench.crossdomain import Target, pending, score_target
from atustc.bench.data import BenchData, cache_dir, ensure_synthetic, synthetic_key, user_data
from atustc.engine.request import TrainRequest, request_argv
from atustc.errors import AtustcError
from atustc.runfolder import RunFolder, run_name
from atustc.split.protocols import SplitProtocols

__all__ = [
    "BenchData",
    "RunOutcome",
    "cache_dir",
    "check_overrides",
    "ensure_synthetic",
    "run_bench",
    "run_name",
    "score_run",
    "synthetic_key",
    "user_data",
]

if TYPE_CHECKING:
    from rich.console import Console


#: Length of the top lists kept in each run's per-query results (``RUN/eval/<protocol>@last.per_query.parquet``).
PER_QUERY_TOP_K = 10
#: The checkpoint the harness scores (the last epoch, for every method alike).
CHECKPOINT: Literal["last"] = "last"
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


def run_bench(
    methods: Sequence[str],
    *,
    data: BenchData,
    preset: str = "tiny",
    seeds: Sequence[int] = (0,),
    out: str | os.PathLike[str] = "runs",
    force: bool = False,
    pretrained: dict[str, Path] | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    amp: Literal["off", "bf16", "fp16"] = "off",
    progress: bool = True,
    console: Console | None = None,
    command: str | None = None,
    nproc: int = 1,
    plugins: Sequence[str] = (),
    cross_domain: Sequence[Target] = (),
) -> list[RunOutcome]:
    """Train, embed and score every method × seed; write run folders and ``RUNS/bench.json``.

    Args:
        methods: registered method names (checked before anything runs).
        data: the table, split and image root (:func:`ensure_synthetic` or :func:`user_data`).
        preset: ``tiny`` or ``paper``.
        seeds: one run per seed.
        out: the runs folder.
        force: retrain finished runs too.
        pretrained: optional local pretrained file per method name.
        overrides: recipe/engine overrides applied to every method (the engine's ``--set``).
        device, amp: passed to the engine.
        progress: show the engine's progress bars.
        console: where status lines go (default: a stderr console).
        command: the command line recorded in ``bench.json`` (default: ``sys.argv``).
        nproc: processes per training (torchrun on this machine; 1 = in this process).
        plugins: modules imported first (they register extra methods); passed on to the trainings.
        cross_domain: datasets every run is also scored on zero-shot (the training dataset is skipped).

    Returns:
        One outcome per run, in order (methods outer, seeds inner).

    Raises:
        AtustcError: an unknown method or preset, no method or seed, duplicate names, a run
            folder name taken by something else, or a run in ``out`` trained on other data
            (pass ``force`` or another ``out``).
    """
    from rich.console import Console

    from atustc.engine.config import import_plugins
    from atustc.methods import get_method
    from atustc.methods.contract import check_preset

    console = console or Console(stderr=True)
    import_plugins(plugins)
    if nproc < 1:
        raise AtustcError(f"--nproc must be >= 1, got {nproc}")
    methods, seeds = list(methods), [int(s) for s in seeds]
    if not methods:
        raise AtustcError("--methods: give at least one method")
    if not seeds:
        raise AtustcError("--seeds: give at least one seed")
    for label, values in (("--methods", methods), ("--seeds", seeds)):
        dup = sorted({str(v) for v in values if values.count(v) > 1})
        if dup:
            raise AtustcError(f"{label}: duplicate value(s) {', '.join(dup)}")
    check_preset(preset)
    specs = {name: get_method(name) for name in methods}
    check_overrides(list(specs.values()), preset, overrides)
    for name in pretrained or {}:
        if name not in specs:
            raise AtustcError(f"--pretrained {name}=...: {name!r} is not benchmarked (--methods {', '.join(methods)})")
    runs_dir = Path(out)
    plan = [(m, s, runs_dir / run_name(m, preset, s)) for m in methods for s in seeds]
    info = split_protocols(data)
    protocols = info.scored
    targets = [t for t in cross_domain if t.name != (data.dataset or info.dataset)]
    for _, _, run in plan:
        if RunFolder(run).exists() and not (run / "status.json").is_file():
            raise AtustcError(f"{run} exists and is not a run folder (no status.json); move it or choose another --out")
        if not force:
            _check_same_data(run, data)
    record: dict[str, Any] = {
        "command": command if command is not None else " ".join(["atustc", *sys.argv[1:]]),
        "started": _now(),
        "finished": None,
        "methods": methods,
        "families": {m: specs[m].family for m in methods},
        "seeds": seeds,
        "preset": preset,
        "checkpoint": CHECKPOINT,
        "protocols": list(protocols),
        "nproc": nproc,
        "plugins": list(plugins),
        "overrides": {k: str(v) for k, v in (overrides or {}).items()},
        "data": {
            "table": data.table.resolve().as_posix(),
            "split": data.split_dir.resolve().as_posix(),
            "root": data.root.resolve().as_posix(),
            "table_hash": data.table_hash,
            "synthetic": data.synthetic,
        },
        "cross_domain": [t.record() for t in targets],
        "runs": [],
    }
    with RunFolder(runs_dir).lock("bench"):
        _write_bench(runs_dir, record)
        outcomes: list[RunOutcome] = []
        for i, (method, seed, run) in enumerate(plan, start=1):
            console.rule(f"[{i}/{len(plan)}] {method} · {preset} · seed {seed}")
            request = TrainRequest.make(
                method, data.table, data.split_dir, preset, run, seed=seed, root=data.root,
                pretrained=(pretrained or {}).get(method), overrides=overrides, device=device, amp=amp,
                progress=progress, plugins=plugins,
            )  # fmt: skip
            outcome = _one_run(request, data, protocols, force, nproc, targets)
            outcomes.append(outcome)
            style = "green" if outcome.state == "finished" else "red"
            detail = f": {outcome.error}" if outcome.error else ""
            line = f"{run.name}: {outcome.state} ({outcome.action}, {outcome.seconds:.0f} s){detail}"
            console.print(f"[{style}]{line}[/{style}]", highlight=False)
            record["runs"].append(_outcome_dict(outcome))
            _write_bench(runs_dir, record)
        record["finished"] = _now()
        _write_bench(runs_dir, record)
    return outcomes


def check_overrides(specs: Sequence[Any], preset: str, overrides: dict[str, Any] | None) -> None:
    """Check ``--set`` options against every method's recipe once, before any run starts.

    Raises:
        AtustcError: an unknown key or a value some method's recipe rejects (one line, naming the method).
    """
    from atustc.engine.config import EngineConfig, apply_overrides

    for spec in specs:
        try:
            apply_overrides(spec.recipe(preset), EngineConfig(), overrides, spec.options)
        except AtustcError as exc:
            raise AtustcError(f"{exc.message} (for every method; first refused by {spec.name})") from None


@dataclass(frozen=True)
class SplitInfo:
    """What the bench reads from its split's ``split.json``: the dataset and the protocols it scores."""

    dataset: str
    scored: tuple[str, ...]


def split_protocols(data: BenchData) -> SplitInfo:
    """The dataset and the protocols the bench's split is scored on (``split.json``; AT-USTC's for older splits)."""
    from atustc.io import read_json

    path = data.split_dir / "split.json"
    info = read_json(path)
    return SplitInfo(str(info.get("dataset", "atustc")), SplitProtocols.from_info(info, str(path)).scored)


def _one_run(
    request: TrainRequest, data: BenchData, protocols: Sequence[str], force: bool, nproc: int, targets: Sequence[Target]
) -> RunOutcome:
    """Bring one run to ``finished`` with every eval file, or record why it failed."""
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


def score_run(
    run: Path,
    data: BenchData,
    protocols: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, dict]:
    """Embed the test rows with the run's last checkpoint; write ``RUN/eval/<protocol>@last.json`` for each protocol.

    ``protocols`` default to the split's scored ones. Each JSON carries its provenance (checkpoint
    and its sha256, the features' hash, the protocol file's hash). A method with set-dependent
    scoring (:attr:`~atustc.methods.MethodSpec.scoring`) is scored with it, recorded as ``scoring``.
    """
    import numpy as np

    from atustc.engine import embed_run, run_scoring
    from atustc.evaluate import evaluate, needed_rows
    from atustc.io import atomic_path, write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.provenance import checkpoint_record, provenance
    from atustc.split import load_split

    folder = RunFolder(run)
    test = load_split(data.split_dir).test
    loaded = [load_protocol(name) for name in (protocols or split_protocols(data).scored)]
    rows = np.unique(np.concatenate([needed_rows(p, test) for p in loaded]))
    ckpt = checkpoint_record(folder, CHECKPOINT)
    features = embed_run(run, test.iloc[rows], data.root, checkpoint=CHECKPOINT, progress=progress, device=device)
    scoring = run_scoring(run)  # set-dependent scoring of the method (SAAI's affinity inference), if any
    results = {}
    for protocol in loaded:
        hook = scoring.hook() if scoring is not None else None
        result = evaluate(protocol, test, features, top_k=PER_QUERY_TOP_K, scores=hook)
        results[protocol.name] = {**result.to_dict(), "provenance": provenance(protocol, features, ckpt)}
        if scoring is not None:
            results[protocol.name]["scoring"] = scoring.describe()
        # the per-query results first: an eval file is never newer than what `leaderboard --compare` resamples
        with atomic_path(folder.per_query_file(protocol.name, CHECKPOINT)) as tmp:
            result.per_query.to_parquet(tmp, index=False)
        write_json_atomic(folder.eval_file(protocol.name, CHECKPOINT), results[protocol.name])
    return results


def _resumable(run: Path, status: dict) -> bool:
    """A run killed or interrupted mid-training that has a checkpoint to continue from."""
    if not (run / "checkpoints" / "last.pt").is_file():
        return False
    if status.get("state") == "running":
        return True
    return status.get("state") == "failed" and str(status.get("error") or "").startswith(_INTERRUPTS)


def _check_same_data(run: Path, data: BenchData) -> None:
    manifest = run / "manifest.json"
    if not manifest.is_file():
        return
    from atustc.io import read_json

    have = read_json(manifest).get("table_hash")
    if have is not None and have != data.table_hash:
        raise AtustcError(
            f"{run}: trained on another table (hash {have}, this bench's data has {data.table_hash}); "
            "pass --force to retrain or choose another --out"
        )


def _mark_failed(run: Path, method: str, preset: str, seed: int, error: str) -> None:
    """Record a failure in ``status.json`` (creating the run folder if the engine did not)."""
    from atustc.io import write_json_atomic

    status = RunFolder(run).read_status()
    status.update(state="failed", error=error)
    status.setdefault("method", method)
    status.setdefault("preset", preset)
    status.setdefault("seed", seed)
    write_json_atomic(run / "status.json", status)


def _outcome_dict(o: RunOutcome) -> dict[str, Any]:
    return {
        "run": o.run_dir.name,
        "method": o.method,
        "seed": o.seed,
        "state": o.state,
        "action": o.action,
        "error": o.error,
        "seconds": round(o.seconds, 3),
    }


def _write_bench(runs_dir: Path, record: dict) -> None:
    from atustc.io import write_json_atomic

    write_json_atomic(runs_dir / "bench.json", record)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
