"""The leaderboard's cross-domain block: one R1/mAP pair per zero-shot dataset and their average.

Built from the runs' ``eval/xd-<dataset>@<checkpoint>.json`` (:mod:`atustc.bench.crossdomain`),
each read through its provenance check and reduced to its headline block (the number the
dataset reports: PRCC and LTCC their clothes-changing scenario). Columns exist only for the
datasets some run was scored on: the paper's five first, in its order (Market, CUHK03, SYSU,
PRCC, LTCC: Table 3's right block, kw66/AT-ReID ``others/test_all.py``), then any other
dataset by name. The average (``XD-Avg``) is over the paper's five when all five are present,
else over every cross-domain dataset present, and the leaderboard says which
(``xd_avg_over``); a run enters it only when it has every averaged dataset.

Metric keys: ``XD-<dataset>_R1``, ``XD-<dataset>_mAP``, ``XD-<dataset>_mINP`` and ``XD-Avg_R1``,
``XD-Avg_mAP`` (fractions in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from atustc.bench.layout import RANK_METRICS, Column, metric_block
from atustc.errors import AtustcError
from atustc.io import read_json

if TYPE_CHECKING:
    from atustc.runfolder import RunFolder

#: The paper's cross-domain datasets and their column labels, in its order.
PAPER_XD: dict[str, str] = {
    "market1501": "Market",
    "cuhk03": "CUHK03",
    "sysu-mm01": "SYSU",
    "prcc": "PRCC",
    "ltcc": "LTCC",
}
#: Column labels of the other datasets (the name itself where absent).
LABELS: dict[str, str] = {
    **PAPER_XD,
    "msmt17": "MSMT17",
    "deepchange": "DeepChange",
    "llcm": "LLCM",
    "regdb": "RegDB",
    "atustc": "AT-USTC",
}
PREFIX = "XD-"
AVG = "XD-Avg"
AVG_METRICS: tuple[str, ...] = ("R1", "mAP")


def xd_key(dataset: str) -> str:
    """The metric group of a cross-domain dataset: ``XD-<dataset>``."""
    return f"{PREFIX}{dataset}"


def xd_label(dataset: str) -> str:
    """The column label of a dataset (the paper's spelling where it has one, else the name)."""
    return LABELS.get(dataset, dataset)


def read_xd_metrics(folder: RunFolder, checkpoint: str) -> dict[str, float]:
    """The headline R1/mAP/mINP of every cross-domain eval of a run scored with ``checkpoint``.

    Raises:
        AtustcError: an eval whose provenance does not match the run, or without its headline block.
    """
    from atustc.provenance import check_eval

    out: dict[str, float] = {}
    for dataset in folder.xd_datasets(checkpoint):
        path = folder.xd_eval_file(dataset, checkpoint)
        result = read_json(path)
        check_eval(result, path, folder, checkpoint)
        headline = (result.get("cross_domain") or {}).get("headline") or {}
        block = (result.get(str(headline.get("kind"))) or {}).get(str(headline.get("name")))
        if block is None:
            raise AtustcError(f"{path}: no headline block {headline!r}; score the run again (atustc bench)")
        where = f"{path}: {headline['name']}"
        out.update({f"{xd_key(dataset)}_{m}": v for m, v in metric_block(block, where).items()})
    return out


def xd_datasets(metric_sets: Iterable[Mapping[str, float]]) -> tuple[str, ...]:
    """The cross-domain datasets present in any of the runs' metrics, in column order."""
    found = {k[len(PREFIX) :].rsplit("_", 1)[0] for m in metric_sets for k in m if k.startswith(PREFIX)}
    found.discard(AVG[len(PREFIX) :])
    return (*(d for d in PAPER_XD if d in found), *sorted(found - set(PAPER_XD)))


def average_over(datasets: Sequence[str]) -> tuple[str, ...]:
    """The datasets ``XD-Avg`` averages: the paper's five when all are present, else all of ``datasets``."""
    return tuple(PAPER_XD) if set(PAPER_XD) <= set(datasets) else tuple(datasets)


def with_average(metrics: Mapping[str, float], over: Sequence[str], key: str = AVG) -> dict[str, float]:
    """``metrics`` plus ``<key>_R1`` and ``<key>_mAP``: the mean over ``over`` (only if the run has all of them).

    >>> with_average({"XD-a_R1": 0.5, "XD-b_R1": 0.25}, ["a", "b"])["XD-Avg_R1"]
    0.375
    """
    out = dict(metrics)
    for m in AVG_METRICS:
        values = [metrics.get(f"{xd_key(d)}_{m}") for d in over]
        if over and all(v is not None for v in values):
            out[f"{key}_{m}"] = sum(values) / len(values)  # type: ignore[arg-type]
    return out


def xd_metric_keys(datasets: Sequence[str]) -> tuple[str, ...]:
    """The metric keys of the block, in column order (empty without cross-domain evals)."""
    if not datasets:
        return ()
    keys = [f"{xd_key(d)}_{m}" for d in datasets for m in RANK_METRICS]
    return (*keys, *(f"{AVG}_{m}" for m in AVG_METRICS))


def xd_display(datasets: Sequence[str]) -> tuple[Column, ...]:
    """The block's columns in the human-facing tables: R1/mAP per dataset, then the average."""
    if not datasets:
        return ()
    cols = [Column(f"XD {xd_label(d)}", m, f"{xd_key(d)}_{m}") for d in datasets for m in AVG_METRICS]
    group = "XD Avg" if xd_note(datasets) is None else "XD Avg*"
    return (*cols, *(Column(group, m, f"{AVG}_{m}") for m in AVG_METRICS))


def xd_note(datasets: Sequence[str]) -> str | None:
    """The footnote of an average that is not over the paper's five (None when it is, or without the block)."""
    over = average_over(datasets)
    if not datasets or over == tuple(PAPER_XD):
        return None
    missing = ", ".join(xd_label(d) for d in PAPER_XD if d not in datasets)
    return f"* XD Avg: mean over {', '.join(xd_label(d) for d in over)} (the paper's average also has {missing})"
