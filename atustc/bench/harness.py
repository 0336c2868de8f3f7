"""The benchmark harness: train, embed and score several methods on the same data, protocol and budget.

For each method and seed :func:`run_bench` trains with the engine (``RUNS/<method>-<preset>-s<seed>``),
embeds the test rows with the run's last checkpoint (``reference/baselines.md`` §0: every method
is reported at its last epoch), scores them on the ``atustc`` and ``atustc-mixed`` protocols and
writes ``RUN/eval/<protocol>.json``. The harness knows no method by name: anything registered
through :func:`atustc.methods.register_method` can be benchmarked.

Run states and what a new bench does with them:

- ``finished`` with both eval files: reused (unless ``force``);
- ``finished`` without them: only embedded and scored again;
- ``running`` (the process was killed), or ``failed`` by an interrupt (Ctrl-C) with a
  checkpoint: resumed from ``checkpoints/last.pt``;
- ``failed`` otherwise, or ``force``: trained again from scratch.

A method that raises is recorded as ``failed`` in its ``status.json`` (with the reason) and the
bench goes on with the others. ``RUNS/bench.json`` records the command, methods, seeds, preset,
data (table, split, root, table hash) and the outcome of every run.

Without a table the harness builds the embedded synthetic dataset (``synth`` at the default
size, ``index``, official ``split``) once in a cache folder (``$ATUSTC_CACHE`` or
``~/.cache/atustc``), keyed by the synthetic config, and reuses it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from atustc.errors import AtustcError

if TYPE_CHECKING:
    from rich.console import Console

    from atustc.synth import SynthConfig

#: The protocols every run is scored on; the first is the leaderboard's main one.
PROTOCOLS: tuple[str, ...] = ("atustc", "atustc-mixed")
#: The checkpoint the harness scores (the last epoch, for every method alike).
CHECKPOINT: Literal["last"] = "last"
_INTERRUPTS = ("KeyboardInterrupt", "SystemExit")


@dataclass(frozen=True)
class BenchData:
    """The data every run of a bench trains and is scored on."""

    table: Path
    split_dir: Path
    root: Path
    table_hash: str
    synthetic: bool


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one (method, seed) run in this bench."""

    method: str
    seed: int
    run_dir: Path
    state: Literal["finished", "failed"]
    action: Literal["reused", "trained", "resumed", "scored"]
    error: str | None
    seconds: float


def run_name(method: str, preset: str, seed: int) -> str:
    """The run folder name of one method, preset and seed."""
    return f"{method}-{preset}-s{seed}"


def cache_dir() -> Path:
    """``$ATUSTC_CACHE`` if set, else ``~/.cache/atustc``."""
    env = os.environ.get("ATUSTC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "atustc"


def synthetic_key(config: SynthConfig) -> str:
    """Cache folder name of a synthetic config: ``synth-s<seed>-<hash of every field>``."""
    from atustc.synth import SYNTH_VERSION

    blob = json.dumps({**asdict(config), "synth_version": SYNTH_VERSION}, sort_keys=True, default=list).encode()
    return f"synth-s{config.seed}-{hashlib.sha256(blob).hexdigest()[:10]}"


def ensure_synthetic(
    config: SynthConfig | None = None, cache: str | os.PathLike[str] | None = None, progress: bool = True
) -> BenchData:
    """The embedded synthetic dataset, built once (synth -> index -> official split) and reused.

    Layout of ``<cache>/<synthetic_key>/``: ``images/`` (the AT-USTC tree), ``table.parquet`` with
    its manifest, ``split/`` and ``data.json`` (written last: the folder is complete only with it).
    Each step is published atomically (temporary name, then rename) and skipped when its output
    exists, so an interrupted build resumes and concurrent builders never see a partial step.
    """
    from atustc.datasets import index_dataset, write_index
    from atustc.io import read_json, write_json_atomic
    from atustc.split import make_split, write_split
    from atustc.synth import SynthConfig, synthesize
    from atustc.table import load_table, table_hash

    config = config if config is not None else SynthConfig.named("default")
    folder = Path(cache) if cache is not None else cache_dir()
    folder = folder / synthetic_key(config)
    marker = folder / "data.json"
    images, table_path, split_dir = folder / "images", folder / "table.parquet", folder / "split"
    if marker.is_file():
        info = read_json(marker)
        return BenchData(table_path, split_dir, images.resolve(), str(info["table_hash"]), synthetic=True)
    folder.mkdir(parents=True, exist_ok=True)
    if not images.is_dir():
        _publish_dir(lambda tmp: synthesize(tmp, config, progress=progress), images)
    if not table_path.is_file():
        write_index(index_dataset(images, "atustc"), table_path)
    table = load_table(table_path)
    if not (split_dir / "split.json").is_file():
        split = make_split(table, "official", seed=0, root=images.resolve())
        _publish_dir(lambda tmp: write_split(split, tmp), split_dir)
    thash = table_hash(table)
    write_json_atomic(marker, {"synth_config": asdict(config), "table_hash": thash, "images": len(table)})
    return BenchData(table_path, split_dir, images.resolve(), thash, synthetic=True)


def _publish_dir(build: Callable[[Path], object], target: Path) -> None:
    """Build a folder under a temporary name beside ``target`` and rename it into place."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        out = tmp / "out"
        build(out)
        try:
            os.replace(out, target)
        except OSError:
            if not target.is_dir():  # another builder won the race otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def user_data(
    table: str | os.PathLike[str], split_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> BenchData:
    """A user's table and split, checked to belong together.

    Raises:
        AtustcError: unreadable table or split, a split made from another table, no image root.
    """
    from atustc.split import load_split_for

    table_path, split_path = Path(table), Path(split_dir)
    _, _, thash, root_path = load_split_for(table_path, split_path, root)
    return BenchData(table_path, split_path, root_path, thash, synthetic=False)


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

    Returns:
        One outcome per run, in order (methods outer, seeds inner).

    Raises:
        AtustcError: an unknown method or preset, no method or seed, duplicate names, a run
            folder name taken by something else, or a run in ``out`` trained on other data
            (pass ``force`` or another ``out``).
    """
    from rich.console import Console

    from atustc.methods import get_method
    from atustc.methods.contract import PRESETS

    console = console or Console(stderr=True)
    methods, seeds = list(methods), [int(s) for s in seeds]
    if not methods:
        raise AtustcError("--methods: give at least one method")
    if not seeds:
        raise AtustcError("--seeds: give at least one seed")
    for label, values in (("--methods", methods), ("--seeds", seeds)):
        dup = sorted({str(v) for v in values if values.count(v) > 1})
        if dup:
            raise AtustcError(f"{label}: duplicate value(s) {', '.join(dup)}")
    if preset not in PRESETS:
        raise AtustcError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    specs = {name: get_method(name) for name in methods}
    for name in pretrained or {}:
        if name not in specs:
            raise AtustcError(f"pretrained weights given for {name!r}, which is not benchmarked")
    runs_dir = Path(out)
    plan = [(m, s, runs_dir / run_name(m, preset, s)) for m in methods for s in seeds]
    for _, _, run in plan:
        if run.is_dir() and any(run.iterdir()) and not (run / "status.json").is_file():
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
        "protocols": list(PROTOCOLS),
        "overrides": {k: str(v) for k, v in (overrides or {}).items()},
        "data": {
            "table": data.table.resolve().as_posix(),
            "split": data.split_dir.resolve().as_posix(),
            "root": data.root.resolve().as_posix(),
            "table_hash": data.table_hash,
            "synthetic": data.synthetic,
        },
        "runs": [],
    }
    _write_bench(runs_dir, record)
    outcomes: list[RunOutcome] = []
    for i, (method, seed, run) in enumerate(plan, start=1):
        console.rule(f"[{i}/{len(plan)}] {method} · {preset} · seed {seed}")
        outcome = _one_run(
            method, seed, run, data, preset, force, (pretrained or {}).get(method), overrides, device, amp, progress
        )
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


def _one_run(
    method: str,
    seed: int,
    run: Path,
    data: BenchData,
    preset: str,
    force: bool,
    pretrained: Path | None,
    overrides: dict[str, Any] | None,
    device: str,
    amp: str,
    progress: bool,
) -> RunOutcome:
    """Bring one run to ``finished`` with both eval files, or record why it failed."""
    from atustc.engine import train_run

    t0 = time.perf_counter()
    status = _read_status(run)
    state = status.get("state")
    scored = all((run / "eval" / f"{p}.json").is_file() for p in PROTOCOLS)
    if state == "finished" and not force:
        action = "reused" if scored else "scored"
    elif not force and _resumable(run, status):
        action = "resumed"
    else:
        action = "trained"
    try:
        if action in ("trained", "resumed"):
            for p in PROTOCOLS:
                (run / "eval" / f"{p}.json").unlink(missing_ok=True)
            train_run(
                method, data.table, data.split_dir, preset, run, seed=seed, resume=action == "resumed",
                force=action == "trained" and run.exists(), root=data.root, pretrained=pretrained,
                overrides=overrides, device=device, amp=amp, progress=progress,
            )  # fmt: skip
        if action != "reused":
            score_run(run, data, device=device, progress=progress)
    except Exception as exc:  # a failing method must not stop the others
        error = exc.message if isinstance(exc, AtustcError) else f"{type(exc).__name__}: {exc}"
        _mark_failed(run, method, preset, seed, error)
        return RunOutcome(method, seed, run, "failed", action, error, time.perf_counter() - t0)
    return RunOutcome(method, seed, run, "finished", action, None, time.perf_counter() - t0)


def score_run(run: Path, data: BenchData, *, device: str = "auto", progress: bool = True) -> dict[str, dict]:
    """Embed the test rows with the run's last checkpoint and write ``RUN/eval/<protocol>.json`` for each protocol."""
    import numpy as np

    from atustc.engine import embed_run
    from atustc.evaluate import evaluate, needed_rows
    from atustc.io import write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.split import load_split

    test = load_split(data.split_dir).test
    protocols = [load_protocol(name) for name in PROTOCOLS]
    rows = np.unique(np.concatenate([needed_rows(p, test) for p in protocols]))
    features = embed_run(run, test.iloc[rows], data.root, checkpoint=CHECKPOINT, progress=progress, device=device)
    results = {}
    for protocol in protocols:
        results[protocol.name] = evaluate(protocol, test, features).to_dict()
        write_json_atomic(run / "eval" / f"{protocol.name}.json", results[protocol.name])
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


def _read_status(run: Path) -> dict:
    from atustc.io import read_json

    path = run / "status.json"
    return read_json(path) if path.is_file() else {}


def _mark_failed(run: Path, method: str, preset: str, seed: int, error: str) -> None:
    """Record a failure in ``status.json`` (creating the run folder if the engine did not)."""
    from atustc.io import write_json_atomic

    status = _read_status(run)
    status.update(state="failed", error=error)
    status.setdefault("method", method)
    status.setdefault("preset", preset)
    status.setdefault("seed", seed)
    write_json_atomic(run / "status.json", status)


def _outcome_dict(o: RunOutcome) -> dict[str, Any]:
    return {"run": o.run_dir.name, "method": o.method, "seed": o.seed, "state": o.state, "action": o.action,
            "error": o.error, "seconds": round(o.seconds, 3)}


def _write_bench(runs_dir: Path, record: dict) -> None:
    from atustc.io import write_json_atomic

    write_json_atomic(runs_dir / "bench.json", record)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method: name, family, heads, parameters at ``tiny``, recipe summary.

    Each model is built at ``tiny`` on a small dummy label space (8 persons, 16 outfits, 16
    cameras), so the parameter count includes classifiers of that size.
    """
    from atustc.methods import LabelSpace, list_methods

    labels = LabelSpace(num_pids=8, num_outfits=16, outfit_to_pid=tuple(i // 2 for i in range(16)), num_cameras=16)
    rows = []
    for spec in list_methods():
        try:
            model = spec.build(labels, "tiny", None)
            heads, params = ", ".join(model.head_names), sum(p.numel() for p in model.parameters())
        except Exception as exc:  # a broken method is listed, not fatal
            heads, params = f"build failed: {type(exc).__name__}: {exc}", None
        rows.append({
            "name": spec.name, "family": spec.family, "heads": heads, "params_tiny": params,
            "recipe_tiny": recipe_summary(spec.recipe("tiny")), "recipe_paper": recipe_summary(spec.recipe("paper")),
            "summary": spec.summary,
        })  # fmt: skip
    return rows


def recipe_summary(recipe: Any) -> str:
    """One line: optimiser, lr, schedule, iterations, batch and input size."""
    h, w = recipe.input_size
    return (
        f"{recipe.optimizer} {recipe.lr:g}, {recipe.schedule}, {recipe.epochs}x{recipe.iters_per_epoch} it, "
        f"{recipe.sampler} {recipe.num_identities}x{recipe.num_instances}, {h}x{w}"
    )
