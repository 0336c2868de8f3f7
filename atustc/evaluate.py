"""Score features on a protocol: protocol x annotation table x features -> :class:`ProtocolResult`.

For each scenario the query and gallery pools are selected from the table, their features are
looked up by ``relpath`` under the scenario's head, and each run of the scenario (one, or one
per sampled trial and direction) is ranked by :func:`atustc.rankrun.rank_run` under the
scenario's junk rules, through the exact ranking core (:mod:`atustc.ranking`). Ties are broken by
gallery order, i.e. the order of the gallery rows in the table. The result rows, their averages
and the printed table are in :mod:`atustc.results`.

Two optional paths: ``top_k`` also returns one row per query and run (:data:`PER_QUERY_COLUMNS`,
:mod:`atustc.perquery`), and ``scores`` (a :data:`ScoreHook`, e.g.
:func:`atustc.rerank.rerank_hook`) replaces the score matrix of every ranked block, which then goes
through the same exact ranking and junk rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from atustc.errors import AtustcError
from atustc.perquery import PER_QUERY_COLUMNS, per_query_frame
from atustc.protocol import LABEL_COLUMNS, MODALITY_CODE, Pool, Protocol, Scenario
from atustc.rankmetrics import summarize
from atustc.rankrun import ScoreHook
from atustc.results import (
    METRIC_KEYS,
    REPORTED_RANKS,
    MetricRow,
    ProtocolResult,
    aggregate_rows,
    average_results,
    average_rows,
    print_result,
)
from atustc.richprogress import progress_bar
from atustc.trials import Run, check_galleries, plan_runs

if TYPE_CHECKING:
    import pandas as pd

    from atustc.features import Features
    from atustc.rankmetrics import Summary

__all__ = [
    "METRIC_KEYS",
    "PER_QUERY_COLUMNS",
    "REPORTED_RANKS",
    "MetricRow",
    "ProtocolResult",
    "ScoreHook",
    "average_results",
    "evaluate",
    "needed_rows",
    "print_result",
    "scenario_rows",
    "trial_record",
]


def evaluate(
    protocol: Protocol,
    table: pd.DataFrame,
    features: Features,
    *,
    progress: bool = False,
    chunk_size: int | None = None,
    top_k: int | None = None,
    scores: ScoreHook | None = None,
    in_place: bool = False,
    galleries: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> ProtocolResult:
    """Score ``features`` on every scenario of ``protocol`` over the rows of ``table``.

    Feature rows are used as views where a pool's rows are consecutive in ``features`` (as in a
    file embedded in table order), else gathered once per ranked block.

    Args:
        protocol: a loaded protocol (:func:`atustc.protocol.load_protocol`).
        table: a validated annotation table (an index table or a split's ``table.parquet``).
        features: features keyed by ``relpath``; extra rows are ignored.
        progress: show a rich progress bar on stderr.
        chunk_size: queries per ranking chunk (default: bounded by gallery size).
        top_k: also build the per-query frame (:attr:`ProtocolResult.per_query`) with top-k lists.
        scores: replaces the score matrix of each ranked block (default: the protocol's metric
            on the features).
        in_place: ``features.feat`` is the caller's to give up: a ``cosine`` protocol L2-normalises
            the heads it uses in place, once, instead of normalising a copy of every gallery (the
            same numbers, no feature copy where pools are consecutive rows; ``features`` is changed).
        galleries: scenario -> the gallery table rows of each of its sampled runs, in run
            order, used instead of drawing them (recorded trials, or an official draw file:
            :mod:`atustc.galleries`).

    Returns:
        The per-scenario metrics and the protocol's aggregates.

    Raises:
        AtustcError: an empty pool (naming the scenario), images the protocol needs without
            features (naming one and the count), an unknown head, duplicate feature relpaths.
    """
    import torch

    plans = [scenario_rows(protocol, s, table) for s in protocol.scenarios]
    fpos = _feature_rows(features, table, _union(plans))
    heads = {}
    for s in protocol.scenarios:
        try:
            heads[s.name] = features.head_index(s.head)
        except AtustcError as exc:
            raise AtustcError(f"{protocol.source}: scenario {s.name}: {exc.message}") from None
    labels = {
        c: torch.from_numpy(np.array(table[c].map(MODALITY_CODE) if c == "modality" else table[c], dtype=np.int64))
        for c in LABEL_COLUMNS
    }
    given = check_galleries(protocol, galleries or {})
    runs = [plan_runs(s, q, g, table, given.get(s.name)) for s, (q, g) in zip(protocol.scenarios, plans, strict=True)]
    normalized = in_place and scores is None and protocol.metric == "cosine"
    if normalized:
        feat = torch.from_numpy(features.feat)
        for h in sorted(set(heads.values())):
            torch.nn.functional.normalize(feat[:, h], dim=1, out=feat[:, h])
    total = sum(len(r.query) for rs in runs for r in rs)

    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise AtustcError(f"top_k must be a positive integer, got {top_k!r}")
    frames = []
    from atustc.poolscores import PoolScores
    from atustc.rankrun import rank_run

    pool_scores = PoolScores(features.feat, fpos, protocol.metric, normalized=normalized)
    with progress_bar(f"evaluating {protocol.name}", total, enabled=progress, transient=True) as advance:
        rows = {}
        trials: dict[str, list[dict[str, Any]]] = {}
        for scenario, scenario_runs in zip(protocol.scenarios, runs, strict=True):
            head = heads[scenario.name]
            summaries = []
            for n, run in enumerate(scenario_runs):
                q, g = run.query, run.gallery
                shared = None
                if run.pool is not None and scores is None and np.isin(g, run.pool).all():
                    shared = pool_scores.scorer(head, q, run.pool)
                qm = rank_run(
                    scenario,
                    q,
                    g,
                    features.feat[:, head],
                    fpos,
                    labels,
                    protocol.metric,
                    chunk_size,
                    advance,
                    top_k,
                    scores,
                    normalized,
                    shared,
                )
                summaries.append(summarize(qm))
                if top_k is not None:
                    frames.append(per_query_frame(scenario.name, n, q, qm, table))
                if run.trial is not None:
                    trials.setdefault(scenario.name, []).append(trial_record(n, run, summaries[-1], table))
            rows[scenario.name] = average_rows(scenario.name, summaries)
    summary = {a.name: aggregate_rows(a.name, [rows[n] for n in a.scenarios], a.weight) for a in protocol.aggregates}
    per_query = None
    if top_k is not None:
        import pandas as pd

        per_query = pd.concat(frames, ignore_index=True)
    return ProtocolResult(protocol.name, rows, summary, per_query, trials or None)


def trial_record(n: int, run: Run, summary: Summary, table: pd.DataFrame) -> dict[str, Any]:
    """The record of one sampled run: its number, trial, direction, seed, metrics and gallery relpaths."""
    row = average_rows("run", [summary]).to_dict()
    return {
        "run": n,
        "trial": run.trial,
        "direction": run.direction,
        "seed": None if run.seed is None else list(run.seed),
        "metrics": row,
        "gallery": table["relpath"].to_numpy()[run.gallery].astype(str).tolist(),
    }


def needed_rows(protocol: Protocol, table: pd.DataFrame) -> np.ndarray:
    """Sorted indices of the table rows some scenario of ``protocol`` uses (query or gallery).

    Raises:
        AtustcError: a scenario's pool matches no row.
    """
    return _union([scenario_rows(protocol, s, table) for s in protocol.scenarios])


def _union(plans: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.unique(np.concatenate([np.concatenate(p) for p in plans]))


def scenario_rows(protocol: Protocol, scenario: Scenario, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    out = []
    masks = scenario.select(table)
    for role, pool, mask in zip(("query", "gallery"), (scenario.query, scenario.gallery), masks, strict=True):
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            raise AtustcError(
                f"{protocol.source}: scenario {scenario.name}: {role} pool ({_describe(scenario, pool)}) "
                "matched no row of the table"
            )
        out.append(rows)
    return out[0], out[1]


def _describe(scenario: Scenario, pool: Pool) -> str:
    extra = f" and identities = {scenario.identities}" if scenario.identities else ""
    return pool.describe() + extra


def _feature_rows(features: Features, table: pd.DataFrame, needed: np.ndarray) -> np.ndarray:
    """Position in ``features`` of every table row (-1 = none); errors if a needed row has none."""
    import pandas as pd

    index = pd.Index(features.relpath)
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise AtustcError(f"{features.source}: relpath {dup!r} appears more than once")
    pos = index.get_indexer(table["relpath"].to_numpy())
    missing = needed[pos[needed] < 0]
    if missing.size:
        first = table["relpath"].iloc[missing[0]]
        raise AtustcError(
            f"{features.source}: {missing.size} of the {needed.size} images the protocol needs have no feature "
            f"(first: {first})"
        )
    return pos
