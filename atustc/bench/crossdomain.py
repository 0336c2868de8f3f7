"""Cross-domain (zero-shot) scoring: a trained run scored on other datasets' default protocols.

``atustc bench --cross-domain market1501=ROOT,prcc=TABLE,...`` scores every run of the bench, with
its last checkpoint, on each named dataset's default protocol (its official split's test rows) and
writes ``RUN/eval/xd-<dataset>@last.json`` (:meth:`atustc.runfolder.RunFolder.xd_eval_file`).

The head follows the dataset's task (:attr:`atustc.datasets.DatasetSpec.task`), as kw66/AT-ReID
``others/test_all.py`` scores a model trained on AT-USTC: DT-ST (head 0) for person ReID sets,
DT-LT (head 1) for clothes-changing sets, AD-ST (head 4) for visible-infrared sets; every
scenario of the target protocol is scored with that one head. An AT-USTC target keeps each
scenario's own head. A single-head method uses its one head everywhere.

Each eval file is the protocol result plus its provenance (checkpoint, features, protocol and the
target table's hash) and a ``cross_domain`` record: dataset, task, head, the *headline* block
the leaderboard reports (``{"kind": "scenarios" | "summary", "name"}``: the dataset's
:attr:`~atustc.datasets.DatasetSpec.headline`, else its protocol's first aggregate, else its
first scenario) and where the data came from.

A list entry is ``NAME=SOURCE`` (a dataset root, a ``.parquet`` table or a split folder; see
:func:`atustc.bench.data.dataset_data`), a bare ``NAME`` (its synthetic stand-in: the miniature,
for AT-USTC the embedded synthetic dataset), or ``synth``: the miniature of every registered
dataset that has one (:data:`atustc.synth.layouts.LAYOUTS`), a smoke test without any data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atustc.bench.data import BenchData, dataset_data
from atustc.errors import AtustcError, unknown_name
from atustc.runfolder import RunFolder

if TYPE_CHECKING:
    from atustc.features import Features
    from atustc.protocol import Protocol

#: The head a multi-head model is scored with zero-shot, per dataset task (None: each scenario's own).
TASK_HEADS: dict[str, str | None] = {"tr": "DT-ST", "cc": "DT-LT", "vi": "AD-ST", "at": None}
TASK_NAMES: dict[str, str] = {"tr": "person ReID", "cc": "clothes-changing", "vi": "visible-infrared", "at": "AT-ReID"}
#: The list entry that stands for every registered miniature.
SYNTH_ALL = "synth"


@dataclass(frozen=True)
class DomainSource:
    """One parsed list entry: a registered dataset and its source (None: the synthetic stand-in)."""

    name: str
    source: str | None


@dataclass(frozen=True)
class Target:
    """A dataset prepared for zero-shot scoring."""

    name: str
    task: str
    protocol: str
    headline: dict[str, str]
    data: BenchData
    source: str | None

    def record(self) -> dict[str, Any]:
        """What ``bench.json`` and the eval files record about the target."""
        return {
            "dataset": self.name,
            "task": self.task,
            "protocol": self.protocol,
            "headline": self.headline,
            "source": self.source,
            "table": self.data.table.resolve().as_posix(),
            "split": self.data.split_dir.resolve().as_posix(),
            "root": self.data.root.resolve().as_posix(),
            "table_hash": self.data.table_hash,
            "synthetic": self.data.synthetic,
        }


def miniature_datasets() -> list[str]:
    """Every registered dataset that has a miniature (``atustc synth --layout NAME``), sorted."""
    from atustc.datasets import list_datasets
    from atustc.synth.layouts import LAYOUTS

    return [name for name in list_datasets() if name in LAYOUTS]


def parse_domains(text: str, option: str) -> list[DomainSource]:
    """Parse ``NAME[=SOURCE],...`` (``synth``: every miniature); checked before anything runs.

    Raises:
        AtustcError: a malformed list, an unknown dataset, a source that does not exist or a
            dataset named twice (one line naming ``option``).
    """
    from atustc.datasets import list_datasets

    items = [s.strip() for s in text.split(",")]
    if not text.strip() or not all(items):
        raise AtustcError(f"{option}: malformed list {text!r}; expected NAME[=ROOT_OR_TABLE],... or {SYNTH_ALL}")
    out: list[DomainSource] = []
    for item in items:
        name, sep, source = (part.strip() for part in item.partition("="))
        if not name or (sep and not source):
            raise AtustcError(f"{option}: malformed entry {item!r}; expected NAME=ROOT_OR_TABLE or NAME")
        if name == SYNTH_ALL and not sep:
            out += [DomainSource(n, None) for n in miniature_datasets()]
            continue
        if name not in list_datasets():
            raise AtustcError(f"{option}: {unknown_name('dataset', name, list_datasets(), 'registered').message}")
        if sep and not Path(source).exists():
            raise AtustcError(f"{option} {item}: {source} not found (expected a dataset root, a table or a split)")
        out.append(DomainSource(name, source or None))
    names = [d.name for d in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AtustcError(f"{option}: dataset(s) named twice: {', '.join(dup)}")
    return out


def prepare_targets(
    domains: Sequence[DomainSource],
    folder: str | os.PathLike[str],
    *,
    option: str = "--cross-domain",
    cache: str | os.PathLike[str] | None = None,
    synth_size: str = "default",
    progress: bool = True,
) -> list[Target]:
    """Index, split and check every target (see :func:`atustc.bench.data.dataset_data`), before any training.

    Raises:
        AtustcError: a target that cannot be prepared, naming ``option`` and the entry.
    """
    from atustc.datasets import get_dataset
    from atustc.protocol import load_protocol

    targets = []
    for d in domains:
        spec = get_dataset(d.name)
        data = dataset_data(
            d.name, d.source, folder, option=option, cache=cache, synth_size=synth_size, progress=progress
        )
        try:
            headline = headline_of(spec.name, spec.headline, load_protocol(spec.protocol))
        except AtustcError as exc:
            raise AtustcError(f"{option} {d.name}: {exc.message}") from None
        targets.append(Target(d.name, spec.task, spec.protocol, headline, data, d.source))
    return targets


def headline_of(dataset: str, headline: str | None, protocol: Protocol) -> dict[str, str]:
    """The result block reported as the dataset's one number (see the module docstring).

    Raises:
        AtustcError: ``headline`` names no scenario of the protocol.
    """
    names = [s.name for s in protocol.scenarios]
    if headline is not None:
        if headline not in names:
            raise AtustcError(
                f"dataset {dataset}: headline {headline!r} is not a scenario of {protocol.name} ({', '.join(names)})"
            )
        return {"kind": "scenarios", "name": headline}
    if protocol.aggregates:
        return {"kind": "summary", "name": protocol.aggregates[0].name}
    return {"kind": "scenarios", "name": names[0]}


def zero_shot_head(task: str, heads: Sequence[str]) -> str | None:
    """The head a model with ``heads`` is scored with on a dataset of ``task`` (None: each scenario's own).

    >>> zero_shot_head("cc", ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"))
    'DT-LT'
    >>> zero_shot_head("vi", ("global",))
    'global'

    Raises:
        AtustcError: a multi-head model without the task's head.
    """
    if len(heads) == 1:
        return heads[0]
    wanted = TASK_HEADS[task]
    if wanted is not None and wanted not in heads:
        raise AtustcError(
            f"the model's heads are {', '.join(heads)}; a {TASK_NAMES[task]} dataset is scored with {wanted}"
        )
    return wanted


def one_head(features: Features, head: str) -> Features:
    """The features of one head, as a single-head set (which serves every scenario's head name)."""
    from atustc.features import Features

    i = features.heads.index(head)
    return Features(relpath=features.relpath, heads=(head,), feat=features.feat[:, i : i + 1], source=features.source)


def pending(run: str | os.PathLike[str], targets: Sequence[Target], checkpoint: str = "last") -> list[Target]:
    """The targets a run has no current eval file for (missing, or scored on another table)."""
    from atustc.io import read_json

    folder = RunFolder(run)
    out = []
    for t in targets:
        path = folder.xd_eval_file(t.name, checkpoint)
        have = read_json(path).get("provenance", {}).get("table_hash") if path.is_file() else None
        if have != t.data.table_hash:
            out.append(t)
    return out


def score_target(
    run: str | os.PathLike[str],
    target: Target,
    *,
    checkpoint: str = "last",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Embed the target's test rows with the run's checkpoint and write ``eval/xd-<dataset>@<checkpoint>.json``.

    Returns:
        The written record.

    Raises:
        AtustcError: the model lacks the task's head, a missing image or checkpoint.
    """
    from atustc.engine import embed_run
    from atustc.evaluate import evaluate, needed_rows
    from atustc.io import write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.provenance import checkpoint_record, provenance
    from atustc.split import load_split

    folder = RunFolder(run)
    test = load_split(target.data.split_dir).test
    protocol = load_protocol(target.protocol)
    ckpt = checkpoint_record(folder, checkpoint)
    rows = needed_rows(protocol, test)
    features = embed_run(
        run, test.iloc[rows], target.data.root, checkpoint=checkpoint, progress=progress, device=device
    )  # type: ignore[arg-type]
    head = zero_shot_head(target.task, features.heads)
    if head is not None:
        features = one_head(features, head)
    result = evaluate(protocol, test, features)
    record = {
        **result.to_dict(),
        "provenance": {**provenance(protocol, features, ckpt), "table_hash": target.data.table_hash},
        "cross_domain": {**target.record(), "head": head},
    }
    write_json_atomic(folder.xd_eval_file(target.name, checkpoint), record)
    return record
