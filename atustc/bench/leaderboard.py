"""The leaderboard: rebuilt from run folders (never edited by hand; building it never writes a run).

Layout of the paper's Table 4: task family, method, Any-Time R1/mAP, then R1/mAP for DT-ST,
DT-LT, NT-ST, NT-LT, AD-ST and AD-LT, plus Any-Time mINP, the mixed protocol's Anytime R1/mAP,
parameters, training time, images/s, preset, data hash and seeds. Runs of the same method,
preset and data (table hash) form one row; with several seeds or several splits each cell is
the mean ± sample standard deviation (``ddof=1``) over the finished runs.

Where the numbers come from, per run folder ``RUN/``:

- ``status.json``: ``state`` (``finished``/``failed``/``running``), ``error``, ``method``,
  ``preset``, ``seed``, ``params``, ``train_time_s``, ``images_per_s``, ``step_time_s``, ``step_cpu_s``;
- ``config.json``: ``family`` if present (else the method registry is asked);
- ``manifest.json``: ``table_hash`` (the data), ``split_hash``, ``machine`` and ``device``;
- ``status.json``'s ``train_cpu_s`` beside ``train_time_s``: whether the machine was loaded
  (:mod:`atustc.bench.costs`);
- ``protocols`` in ``config.json`` or ``manifest.json`` (the split's record, see
  :mod:`atustc.split.protocols`; AT-USTC's ``atustc`` + ``atustc-mixed`` when absent);
- ``eval/xd-<dataset>@<checkpoint>.json``: the cross-domain block (:mod:`atustc.bench.xd_columns`);
- ``eval/<protocol>@<checkpoint>.json`` for each of them: ``ProtocolResult.to_dict()`` plus its
  provenance (:mod:`atustc.provenance`), checked on reading: an eval that does not provably score
  the run's current checkpoint on the current protocol file is refused in one line.

Each checkpoint rule a run was scored with (``last``: the bench; ``best``: ``atustc eval --run``)
is a record of its own, and the rule is part of the row key, so a row never mixes checkpoints and
its ``Checkpoint`` column says which rule it uses. A run counts in the means only when it is
``finished`` and has the eval file of its default protocol for that rule; failed and unfinished
runs are listed apart (:attr:`Leaderboard.others`) with their reason. The metric columns are built from the protocols' scenarios and aggregates
(:mod:`atustc.bench.layout`); runs scored on different protocols share one table whose columns
are the union, first seen first.

CSV columns (one row per method × preset × data hash; stable, in this order; metric values are
fractions in [0, 1] at full precision, as in the run's JSON):

- ``family``, ``method``, ``preset``, ``data_hash``: the row key;
- ``seeds``: the seeds of the finished runs, ``;``-separated, ascending;
- ``n_runs``: finished runs averaged; ``n_splits``: distinct split hashes among them;
- ``n_failed``: failed or unfinished runs of the same key (not averaged);
- ``status``: ``finished`` or ``failed`` (no finished run); ``error``: the first failure reason;
- ``machine``: the machines of the finished runs (``; ``-joined, empty for runs that record none);
- ``cost_flag``: ``loaded`` and/or ``machines`` (``;``-joined, :mod:`atustc.bench.costs`) when the
  wall-clock cost figures came from a loaded machine or from several machines;
- for each metric: ``<metric>_mean`` and ``<metric>_std`` (``std`` is empty with one run). For
  AT-USTC (:data:`METRICS`): ``<S>_R1``, ``<S>_mAP``, ``<S>_mINP`` for ``S`` in ``Any-Time``,
  ``DT-ST``, ``DT-LT``, ``NT-ST``, ``NT-LT``, ``AD-ST``, ``AD-LT`` (protocol ``atustc``);
  ``Mixed-Anytime_R1``, ``Mixed-Anytime_mAP``, ``Mixed-Anytime_mINP`` (protocol
  ``atustc-mixed``, group Anytime); then, for every run, ``params`` (count), ``train_time_s``
  (seconds), ``images_per_s`` (training throughput), ``step_time_s`` (mean seconds per optimisation
  step without the data wait) and ``step_cpu_s`` (the same steps' mean process CPU seconds; the Table 2
  layout's Time ratio, :mod:`atustc.bench.table2`).

With cross-domain evals (``atustc bench --cross-domain``) the info columns end with
``xd_avg_over`` (the datasets ``XD-Avg`` averages, ``;``-separated) and the metrics before the
costs gain, per cross-domain dataset in column order (:mod:`atustc.bench.xd_columns`),
``XD-<dataset>_R1``, ``XD-<dataset>_mAP``, ``XD-<dataset>_mINP``, then ``XD-Avg_R1`` and
``XD-Avg_mAP``. Without them the columns are exactly those above.

The human-facing tables (markdown, LaTeX, rich) are drawn by :mod:`atustc.bench.board_render`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from atustc.bench.costs import cpu_utilisation, machine_label, row_flags
from atustc.bench.layout import Column, Layout, build_layout, merge_layouts
from atustc.bench.xd_columns import (
    average_over,
    read_xd_metrics,
    with_average,
    xd_datasets,
    xd_display,
    xd_metric_keys,
    xd_note,
)
from atustc.errors import AtustcError
from atustc.io import read_json
from atustc.scenarios import SCENARIOS
from atustc.split.protocols import LEGACY_PROTOCOLS, SplitProtocols

if TYPE_CHECKING:
    import pandas as pd

    from atustc.runfolder import RunFolder

__all__ = ["CSV_COLUMNS", "METRICS", "SCENARIOS"]  # SCENARIOS: re-exported for callers of this module
#: Task families in the paper's row order.
FAMILIES: tuple[str, ...] = ("Tr-ReID", "CC-ReID", "CM-ReID", "AT-ReID")
#: The protocols of a run that records none (an AT-USTC run).
DEFAULT_PROTOCOLS: tuple[str, ...] = tuple(LEGACY_PROTOCOLS["scored"])
COST_METRICS: tuple[str, ...] = ("params", "train_time_s", "images_per_s", "step_time_s", "step_cpu_s")
#: The rule of records without a scored checkpoint (failed or unscored runs): the bench's.
CHECKPOINT_RULE = "last"
KEY_COLUMNS: tuple[str, ...] = ("family", "method", "preset", "data_hash", "checkpoint")
INFO_COLUMNS: tuple[str, ...] = ("seeds", "n_runs", "n_splits", "n_failed", "status", "error", "machine", "cost_flag")


def metric_keys(layouts: Sequence[Layout], xd: Sequence[str] = ()) -> tuple[str, ...]:
    """Every metric column of a leaderboard over these layouts: rank metrics, the cross-domain block, costs."""
    return (*merge_layouts(layouts)[0], *xd_metric_keys(xd), *COST_METRICS)


def csv_columns(metrics: Sequence[str], xd: bool = False) -> tuple[str, ...]:
    """All CSV columns, in order, for these metric keys (``xd``: with the cross-domain block's info column)."""
    info = (*INFO_COLUMNS, "xd_avg_over") if xd else INFO_COLUMNS
    return (*KEY_COLUMNS, *info, *(f"{m}_{agg}" for m in metrics for agg in ("mean", "std")))


#: Every metric column of an AT-USTC leaderboard, in order (each gives ``_mean`` and ``_std``).
METRICS: tuple[str, ...] = metric_keys([build_layout(DEFAULT_PROTOCOLS)])
#: All CSV columns of an AT-USTC leaderboard, in order.
CSV_COLUMNS: tuple[str, ...] = csv_columns(METRICS)


@dataclass(frozen=True)
class RunRecord:
    """What the leaderboard reads from one run folder."""

    path: Path
    method: str
    family: str
    preset: str
    seed: int | None
    state: str  # finished | failed | running | not-evaluated
    error: str | None
    data_hash: str
    split_hash: str
    metrics: dict[str, float] = field(default_factory=dict)
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    checkpoint: str = CHECKPOINT_RULE
    dataset: str = "?"  # the training dataset (config.json, else the split's split.json)
    machine: str | None = None  # :func:`atustc.bench.costs.machine_label`
    cpu_util: float | None = None  # :func:`atustc.bench.costs.cpu_utilisation`

    @property
    def counted(self) -> bool:
        """Whether the run enters the means (finished and scored)."""
        return self.state == "finished"


@dataclass(frozen=True)
class Leaderboard:
    """The aggregated table and the runs that did not enter it.

    Attributes:
        frame: one row per method × preset × data hash with :data:`CSV_COLUMNS`.
        others: failed or unfinished runs (listed, never averaged).
        display: the rank-metric columns of the human-facing tables.
        notes: footnotes of the human-facing tables (e.g. what a partial cross-domain average is over).
    """

    frame: pd.DataFrame
    others: tuple[RunRecord, ...]
    display: tuple[Column, ...] = ()
    notes: tuple[str, ...] = ()


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """The first record of :func:`read_run_records` (the ``last`` rule when the run was scored with it)."""
    return read_run_records(run_dir)[0]


def read_run_records(run_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read one run folder: one record per checkpoint rule it was scored with (``last`` first).

    Raises:
        AtustcError: no ``status.json``, a malformed JSON file in the run, or an eval whose
            provenance does not match the run (another checkpoint, a changed protocol file).
    """
    from atustc.runfolder import RunFolder

    run = Path(run_dir)
    folder = RunFolder(run)
    status = read_json(run / "status.json")
    config = _read_optional(run / "config.json")
    manifest = _read_optional(run / "manifest.json")
    method = str(status.get("method") or config.get("method") or run.name)
    protocols = _run_protocols(config, manifest, run)
    base = dict(
        path=run,
        method=method,
        family=str(config.get("family") or status.get("family") or _registry_family(method)),
        preset=str(status.get("preset") or config.get("preset") or "?"),
        seed=int(s) if isinstance(s := status.get("seed", config.get("seed")), (int, float)) else None,
        data_hash=str(manifest.get("table_hash") or config.get("table_hash") or "?"),
        split_hash=str(manifest.get("split_hash") or config.get("split_hash") or "?"),
        protocols=protocols,
        dataset=_run_dataset(config),
        machine=machine_label(manifest),
        cpu_util=cpu_utilisation(status, manifest),
    )
    state = str(status.get("state") or "running")
    error = str(status.get("error")) if status.get("error") else None
    costs = {}
    for key in COST_METRICS:
        value = status.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            costs[key] = float(value)
    records = []
    if state == "finished":
        for ckpt in ("last", "best"):
            metrics = _run_metrics(folder, protocols, ckpt)
            if metrics is not None:
                metrics.update(read_xd_metrics(folder, ckpt))
                records.append(
                    RunRecord(**base, state=state, error=None, metrics={**metrics, **costs}, checkpoint=ckpt)
                )
        if not records:
            legacy = run / "eval" / f"{protocols[0]}.json"
            state = "not-evaluated"
            error = (f"eval/{legacy.name} names no checkpoint (written before provenance); score the run again"
                     if legacy.is_file() else f"no eval/{protocols[0]}@{CHECKPOINT_RULE}.json")  # fmt: skip
    if not records:
        records.append(RunRecord(**base, state=state, error=error, metrics=costs))
    return records


def collect_runs(runs_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Read every run folder (a folder with ``status.json``) under ``runs_dir``, at any depth, sorted by path.

    Nesting lets one leaderboard average runs of several splits, e.g. ``runs/r0/uniat-tiny-s0``
    and ``runs/r1/uniat-tiny-s0`` (``atustc bench --split splits/r0 --out runs/r0`` …). Symbolic
    links are followed (each real folder read once), so runs of several benches can be gathered by
    linking them into one folder.

    Raises:
        AtustcError: ``runs_dir`` is missing or holds no run folder.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise AtustcError(f"{root}: runs folder not found")
    runs = sorted(_status_folders(root))
    if not runs:
        raise AtustcError(f"{root}: no run folders (folders with status.json)")
    return [rec for p in runs for rec in read_run_records(p)]


def _status_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold ``status.json``, through symbolic links, each real folder once."""
    seen: set[str] = set()
    found = []
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:  # a second link to a folder already read, or a link cycle
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()  # name order: of two links to one run, the same one is read every time
        if "status.json" in files:
            found.append(Path(here))
    return found


def row_key(rec: RunRecord) -> tuple[str, str, str, str, str]:
    """The leaderboard row a run belongs to (:data:`KEY_COLUMNS`); also used by ``--compare``."""
    return (rec.family, rec.method, rec.preset, rec.data_hash, rec.checkpoint)


def build_leaderboard(records: Iterable[RunRecord]) -> Leaderboard:
    """Group runs by (family, method, preset, data hash, checkpoint) and aggregate mean ± std per metric."""
    import numpy as np
    import pandas as pd

    records = list(records)
    layouts = [build_layout(p) for p in dict.fromkeys(r.protocols for r in records)] or [
        build_layout(DEFAULT_PROTOCOLS)
    ]
    xd = xd_datasets(r.metrics for r in records)
    over = average_over(xd)
    metric_cols = metric_keys(layouts, xd)
    board_machines = len({r.machine for r in records if r.counted and r.machine is not None})
    groups: dict[tuple[str, str, str, str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(row_key(rec), []).append(rec)
    rows = []
    for key in sorted(groups, key=_row_order):
        runs = groups[key]
        done = sorted((r for r in runs if r.counted), key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
        bad = [r for r in runs if not r.counted]
        row: dict[str, object] = dict(zip(KEY_COLUMNS, key))
        row.update(
            seeds=";".join(str(r.seed) for r in done if r.seed is not None),
            n_runs=len(done),
            n_splits=len({r.split_hash for r in done}),
            n_failed=len(bad),
            status="finished" if done else "failed",
            error=next((f"{r.path.name}: {r.error or r.state}" for r in bad), ""),
            machine="; ".join(sorted({r.machine for r in done if r.machine is not None})),
            cost_flag=row_flags([r.machine for r in done], [r.cpu_util for r in done], board_machines),
        )
        if xd:
            row["xd_avg_over"] = ";".join(over)
        run_metrics = [with_average(r.metrics, over) for r in done]
        for metric in metric_cols:
            values = np.array([m[metric] for m in run_metrics if metric in m], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(csv_columns(metric_cols, xd=bool(xd))))
    others = tuple(r for key in sorted(groups, key=_row_order) for r in groups[key] if not r.counted)
    display = (*merge_layouts(layouts)[1], *xd_display(xd))
    notes = tuple(n for n in (xd_note(xd),) if n)
    return Leaderboard(frame=frame, others=others, display=display, notes=notes)


def load_leaderboard(runs_dir: str | os.PathLike[str]) -> Leaderboard:
    """:func:`collect_runs` then :func:`build_leaderboard`."""
    return build_leaderboard(collect_runs(runs_dir))


# ---------------------------------------------------------------- reading helpers


def _read_optional(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def _run_protocols(config: dict, manifest: dict, run: Path) -> tuple[str, ...]:
    """The protocols a run was scored on: the ``protocols`` record of its config or manifest."""
    for source, info in (("config.json", config), ("manifest.json", manifest)):
        if "protocols" in info:
            return SplitProtocols.from_info(info, str(run / source)).scored
    return DEFAULT_PROTOCOLS


def _run_dataset(config: dict) -> str:
    """The dataset a run was trained on: ``config.json``'s record, else its split's ``split.json``."""
    if config.get("dataset"):
        return str(config["dataset"])
    split = Path(str(config.get("split", ""))) / "split.json"
    if config.get("split") and split.is_file():
        return str(read_json(split).get("dataset", "?"))
    return "?"


def _run_metrics(folder: RunFolder, protocols: tuple[str, ...], checkpoint: str) -> dict[str, float] | None:
    """The rank metrics of a run scored with ``checkpoint`` (``eval/<protocol>@<checkpoint>.json``).

    None when the default protocol's eval file is missing; every file read is checked for its provenance.
    """
    from atustc.provenance import check_eval

    main = folder.eval_file(protocols[0], checkpoint)
    if not main.is_file():
        return None
    layout = build_layout(protocols)
    results = {}
    for name in protocols:
        path = folder.eval_file(name, checkpoint)
        if path.is_file():
            result = read_json(path)
            check_eval(result, path, folder, checkpoint)
            results[name] = (result, path)
    layout.check(*results[protocols[0]])
    return layout.extract(results)


def _registry_family(method: str) -> str:
    """The family of a registered method (imports the registry: torch), or ``?`` if unknown."""
    from atustc.methods import get_method

    try:
        return get_method(method).family
    except AtustcError:
        return "?"
    except ImportError:
        return "?"


def _row_order(key: Sequence[str]) -> tuple:
    family = key[0]
    return (FAMILIES.index(family) if family in FAMILIES else len(FAMILIES), family, *key[1:])
