"""The benchmark harness: train, embed and score several methods on the same data, protocol and budget.

For each method and seed :func:`run_bench` trains with the engine (``RUNS/<method>-<preset>-s<seed>``),
embeds the test rows with the run's last checkpoint (every method is reported at its last epoch, as
the papers of the compared methods and their official codes report), scores them on every
protocol the split is scored on (``split.json``; AT-USTC: ``atustc`` and ``atustc-mixed``) and
writes ``RUN/eval/<protocol>@last.json`` with its provenance. With ``nproc > 1`` each training runs
in ``nproc`` processes under torchrun. The harness knows no method by name: anything registered
through :func:`atustc.methods.register_method` can be benchmarked.

A run already in ``RUNS`` is reused, scored again, resumed or retrained according to its state
(:mod:`atustc.bench.execute`); the bench writes the plan and the outcomes, the eval files are
written by :mod:`atustc.bench.score`.

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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from atustc.bench.crossdomain import Target
from atustc.bench.data import BenchData, cache_dir, ensure_synthetic, synthetic_key, user_data
from atustc.bench.execute import RunOutcome, bring_run
from atustc.bench.score import CHECKPOINT, PER_QUERY_TOP_K, SplitInfo, score_run, split_protocols
from atustc.engine.request import TrainRequest
from atustc.errors import AtustcError
from atustc.runfolder import RunFolder, run_name

__all__ = [
    "CHECKPOINT",
    "PER_QUERY_TOP_K",
    "BenchData",
    "RunOutcome",
    "SplitInfo",
    "cache_dir",
    "check_overrides",
    "ensure_synthetic",
    "run_bench",
    "run_name",
    "score_run",
    "split_protocols",
    "synthetic_key",
    "user_data",
]

if TYPE_CHECKING:
    from rich.console import Console


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
            outcome = bring_run(request, data, protocols, force, nproc, targets)
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
