"""Score features on a protocol: protocol x annotation table x features -> :class:`ProtocolResult`.

For each scenario the query and gallery pools are selected from the table, their features are
looked up by ``relpath`` under the scenario's head, and the ranking core
(:mod:`atustc.ranking`) scores them under the scenario's junk rules. Work the rules make useless
is skipped: a scope-``all`` modality rule splits the ranking into modality blocks (a DT scenario
ranks only RGB queries against the RGB gallery; AD ranks RGB queries against the IR gallery and
IR queries against the RGB gallery), which gives exactly the numbers of the full matrix. Queries
that meet no gallery block are invalid (dropped and counted), as in the full matrix.

Ties are broken by gallery order, i.e. the order of the gallery rows in the table.

Two optional paths: ``top_k`` also returns one row per query and run (:data:`PER_QUERY_COLUMNS`),
and ``scores`` (a :data:`ScoreHook`, e.g. :func:`atustc.rerank.rerank_hook`) replaces the score
matrix of every ranked block, which then goes through the same exact ranking and junk rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from atustc.errors import AtustcError
from atustc.protocol import LABEL_COLUMNS, MODALITY_CODE, Pool, Protocol, Scenario
from atustc.richprogress import progress_bar
from atustc.trials import Run, check_galleries, plan_runs

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from rich.console import Console

    from atustc.features import Features
    from atustc.querycounts import QueryCounts
    from atustc.ranking import QueryMetrics, Summary

#: CMC ranks reported in results.
REPORTED_RANKS: tuple[int, ...] = (1, 5, 10, 20)
#: Metric keys of one result row, in order.
METRIC_KEYS: tuple[str, ...] = ("R1", "R5", "R10", "R20", "mAP", "mINP", "valid_queries")
#: Columns of the per-query frame: ``run`` numbers the trials/directions of a scenario (0 when
#: it has one); ``first_rank`` is the 1-based rank of the first positive after junk removal (0 =
#: invalid query); ``top_relpath``/``top_label``/``top_rank`` list the top-k kept gallery entries
#: with the junk among them, in rank order; labels are ``pos``/``neg``/``junk``; ``top_rank`` is
#: the rank among kept entries (0 for junk, which is not counted).
PER_QUERY_COLUMNS: tuple[str, ...] = (
    "scenario",
    "run",
    "query",
    "pid",
    "valid",
    "n_pos",
    "first_rank",
    "ap",
    "inp",
    "top_relpath",
    "top_label",
    "top_rank",
)
#: ``hook(query_feat [Q, D], gallery_feat [G, D], metric) -> score_chunk``: replaces the score
#: matrix of one ranked block; ``score_chunk(rows)`` gives the ``[len(rows), G]`` scores (higher =
#: better), see :func:`atustc.ranking.rank_chunks`.
ScoreHook = Callable[["torch.Tensor", "torch.Tensor", str], Callable[[slice], "torch.Tensor"]]
_LABEL_NAMES = np.array(["neg", "pos", "junk"])


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one scenario or one aggregate.

    Attributes:
        name: scenario or aggregate name.
        cmc: float64 ``[20]``, CMC at ranks 1..20 (fractions).
        mAP: mean average precision (fraction).
        mINP: mean inverse negative penalty (fraction).
        valid_queries: queries with a valid positive (summed for aggregates; averaged and
            rounded over trials and directions).
        queries: queries in the pool(s), valid or not.
    """

    name: str
    cmc: np.ndarray
    mAP: float
    mINP: float
    valid_queries: int
    queries: int

    def to_dict(self) -> dict[str, float | int]:
        """``{"R1", "R5", "R10", "R20", "mAP", "mINP": fractions, "valid_queries": int}``."""
        out: dict[str, float | int] = {f"R{k}": float(self.cmc[k - 1]) for k in REPORTED_RANKS}
        out.update(mAP=float(self.mAP), mINP=float(self.mINP), valid_queries=int(self.valid_queries))
        return out


@dataclass(frozen=True)
class ProtocolResult:
    """Metrics of every scenario of a protocol, and its aggregates (``summary``)."""

    protocol: str
    scenarios: dict[str, MetricRow]
    summary: dict[str, MetricRow]
    per_query: pd.DataFrame | None = None  # with ``top_k`` only: :data:`PER_QUERY_COLUMNS`
    #: Scenarios with gallery sampling -> one record per run (:func:`trial_record`), in run order.
    trials: dict[str, list[dict[str, Any]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"protocol", "scenarios": {name: metrics}, "summary": {name: metrics}}``.

        A protocol with gallery sampling adds ``"trials"``: ``{scenario: [{"run", "trial",
        "direction", "seed", "metrics", "gallery": [relpaths]}]}``, every drawn gallery, so that
        the result can be re-scored elsewhere (``atustc eval --galleries``). Without sampling the
        key is absent (the record is unchanged).
        """
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "scenarios": {k: r.to_dict() for k, r in self.scenarios.items()},
            "summary": {k: r.to_dict() for k, r in self.summary.items()},
        }
        if self.trials:
            out["trials"] = self.trials
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario then per aggregate: protocol, kind, name, R1..mINP, valid_queries, queries."""
        import pandas as pd

        rows = []
        for kind, group in (("scenario", self.scenarios), ("summary", self.summary)):
            for name, row in group.items():
                rows.append(
                    {"protocol": self.protocol, "kind": kind, "name": name, **row.to_dict(), "queries": row.queries}
                )
        columns = ["protocol", "kind", "name", *METRIC_KEYS, "queries"]
        return pd.DataFrame(rows, columns=columns)


def print_result(
    result: ProtocolResult, console: Console | None = None, counts: dict[str, QueryCounts] | None = None
) -> None:
    """Print a result as a rich table: percentages with 2 decimals, then the valid-query count.

    With ``counts`` (:func:`atustc.querycounts.query_counts`) the valid column reads ``valid /
    admitted`` (queries the scenario's modality rule admits) and a footnote says what each row
    dropped from its pool and why; without, ``valid / queries in the pool``.
    """
    from rich.console import Console
    from rich.table import Table

    from atustc.querycounts import dropped_notes

    console = console or Console()
    table = Table(title=f"protocol {result.protocol}", title_justify="left")
    table.add_column("scenario")
    for key in METRIC_KEYS[:-1]:
        table.add_column(key, justify="right")
    table.add_column("valid", justify="right")

    def add(row: MetricRow, style: str | None = None) -> None:
        d = row.to_dict()
        cells = [f"{100 * d[k]:.2f}" for k in METRIC_KEYS[:-1]]
        of = counts[row.name].admitted if counts is not None and row.name in counts else row.queries
        table.add_row(row.name, *cells, f"{row.valid_queries}/{of}", style=style)

    for row in result.scenarios.values():
        add(row)
    if result.summary:
        table.add_section()
        for row in result.summary.values():
            add(row, style="bold")
    console.print(table)
    if counts is not None:
        console.print("valid: queries with a positive / queries the scenario's modality rule admits", style="dim")
        for line in dropped_notes(result, counts):
            console.print(line, style="dim", highlight=False, soft_wrap=True)


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

    pool_scores = PoolScores(features.feat, fpos, protocol.metric)
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
                qm = _rank_run(
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
                summaries.append(_summarize(qm))
                if top_k is not None:
                    frames.append(_per_query_frame(scenario.name, n, q, qm, table))
                if run.trial is not None:
                    trials.setdefault(scenario.name, []).append(trial_record(n, run, summaries[-1], table))
            rows[scenario.name] = _average(scenario.name, summaries)
    summary = {a.name: _aggregate(a.name, [rows[n] for n in a.scenarios], a.weight) for a in protocol.aggregates}
    per_query = None
    if top_k is not None:
        import pandas as pd

        per_query = pd.concat(frames, ignore_index=True)
    return ProtocolResult(protocol.name, rows, summary, per_query, trials or None)


def average_results(results: list[ProtocolResult], protocol: Protocol) -> ProtocolResult:
    """The mean of several results of one protocol (e.g. RegDB's released trials, one table each).

    Each scenario row is the unweighted mean of its rows (as trials are averaged); the
    protocol's aggregates are computed again from the means. Per-query frames and recorded
    trials stay with the single results.
    """
    rows = {name: _average(name, [r.scenarios[name] for r in results]) for name in results[0].scenarios}
    summary = {a.name: _aggregate(a.name, [rows[n] for n in a.scenarios], a.weight) for a in protocol.aggregates}
    return ProtocolResult(protocol.name, rows, summary)


def trial_record(n: int, run: Run, summary: Summary, table: pd.DataFrame) -> dict[str, Any]:
    """The record of one sampled run: its number, trial, direction, seed, metrics and gallery relpaths."""
    row = _average("run", [summary]).to_dict()
    return {
        "run": n,
        "trial": run.trial,
        "direction": run.direction,
        "seed": None if run.seed is None else list(run.seed),
        "metrics": row,
        "gallery": table["relpath"].to_numpy()[run.gallery].astype(str).tolist(),
    }


def _summarize(qm: QueryMetrics) -> Summary:
    from atustc.ranking import summarize

    return summarize(qm)


def _per_query_frame(name: str, run: int, q_rows: np.ndarray, qm: QueryMetrics, table: pd.DataFrame) -> pd.DataFrame:
    """One row per query of one run (:data:`PER_QUERY_COLUMNS`); top lists hold table row indices."""
    import pandas as pd

    relpath = table["relpath"].to_numpy()
    index, label = qm.top_index, qm.top_label
    shown = label >= 0
    kept_rank = np.cumsum(shown & (label != 2), axis=1) * (label != 2)
    return pd.DataFrame(
        {
            "scenario": name,
            "run": run,
            "query": relpath[q_rows],
            "pid": table["pid"].to_numpy()[q_rows],
            "valid": qm.valid,
            "n_pos": qm.n_pos,
            "first_rank": qm.first_rank,
            "ap": qm.ap,
            "inp": qm.inp,
            "top_relpath": [relpath[i[m]].tolist() for i, m in zip(index, shown, strict=True)],
            "top_label": [_LABEL_NAMES[lab[m]].tolist() for lab, m in zip(label, shown, strict=True)],
            "top_rank": [r[m].tolist() for r, m in zip(kept_rank, shown, strict=True)],
        },
        columns=list(PER_QUERY_COLUMNS),
    )


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


def _rank_run(
    scenario: Scenario,
    q_rows: np.ndarray,
    g_rows: np.ndarray,
    feat: np.ndarray,
    fpos: np.ndarray,
    labels: dict[str, torch.Tensor],
    metric: str,
    chunk_size: int | None,
    advance: Callable[[int], None],
    top_k: int | None = None,
    scores: ScoreHook | None = None,
    normalized: bool = False,
    shared: Callable[[np.ndarray, np.ndarray], Callable[[slice], torch.Tensor]] | None = None,
) -> QueryMetrics:
    """Rank one (query rows, gallery rows) run of a scenario, block by modality where the rules allow.

    With ``top_k``, the top lists hold table row indices (-1 = padding). ``normalized``: the
    features are already L2-normalised (cosine). ``shared`` gives the scores of (query rows,
    gallery rows) from a matrix computed once for a sampled scenario
    (:class:`atustc.poolscores.PoolScores`).
    """
    import torch

    from atustc.querycounts import modality_blocks
    from atustc.ranking import QueryMetrics, rank_chunks, rank_features

    split = any(r.splits_by_modality for r in scenario.junk)
    modality = labels["modality"].numpy()
    blocks = modality_blocks(scenario, modality[q_rows], modality[g_rows])
    out: QueryMetrics = QueryMetrics.empty(q_rows.size, top_k)
    for qsel, gsel in blocks:
        qi, gi = q_rows[qsel], g_rows[gsel]
        ql = {k: v[qi] for k, v in labels.items()}
        gl = {k: v[gi] for k, v in labels.items()}
        junk_same, junk_other = scenario.compile_junk(ql, gl, skip_modality_blocks=split)
        common = dict(
            junk_same=junk_same,
            junk_other=junk_other,
            gallery_index=torch.from_numpy(gsel.astype(np.int64)),
            chunk_size=chunk_size,
            on_chunk=advance,
            top_k=top_k,
        )
        if shared is not None:
            qm = rank_chunks(shared(qi, gi), ql["pid"], gl["pid"], **common)  # type: ignore[arg-type]
        else:
            (qf, _), (gf, g_copied) = _feature_block(feat, fpos[qi]), _feature_block(feat, fpos[gi])
            if scores is None:
                # overwrite: only a gathered gallery is this call's own copy
                qm = rank_features(
                    qf, gf, ql["pid"], gl["pid"], metric=metric, overwrite=g_copied, normalized=normalized, **common
                )  # type: ignore[arg-type]
            else:
                qm = rank_chunks(scores(qf, gf, metric), ql["pid"], gl["pid"], **common)  # type: ignore[arg-type]
        if top_k is not None:
            qm.top_index[:] = np.where(qm.top_index >= 0, gi[np.maximum(qm.top_index, 0)], -1)
        qm.scatter(out, qsel)
    skipped = q_rows.size - sum(q.size for q, _ in blocks)
    if skipped:
        advance(skipped)
    return out


def _feature_block(feat: np.ndarray, pos: np.ndarray) -> tuple[torch.Tensor, bool]:
    """The feature rows ``pos`` as a tensor, and whether it is a copy (a view when they are consecutive)."""
    import torch

    if pos.size and int(pos[-1]) - int(pos[0]) == pos.size - 1 and bool((np.diff(pos) == 1).all()):
        return torch.from_numpy(feat[int(pos[0]) : int(pos[-1]) + 1]), False
    return torch.from_numpy(feat[pos]), True


def _average(name: str, summaries: list[Summary] | list[MetricRow]) -> MetricRow:
    """Average trials/directions (one summary passes through unchanged)."""
    return MetricRow(
        name,
        np.mean([s.cmc for s in summaries], axis=0),
        float(np.mean([s.mAP for s in summaries])),
        float(np.mean([s.mINP for s in summaries])),
        int(round(float(np.mean([s.valid_queries for s in summaries])))),
        int(round(float(np.mean([s.queries for s in summaries])))),
    )


def _aggregate(name: str, rows: list[MetricRow], weight: str) -> MetricRow:
    valid = np.array([r.valid_queries for r in rows], dtype=np.float64)
    if weight == "valid":
        w = valid / valid.sum() if valid.sum() > 0 else np.zeros(len(rows))
    else:
        w = np.full(len(rows), 1.0 / len(rows))
    return MetricRow(
        name,
        np.sum([wi * r.cmc for wi, r in zip(w, rows, strict=True)], axis=0),
        float(sum(wi * r.mAP for wi, r in zip(w, rows, strict=True))),
        float(sum(wi * r.mINP for wi, r in zip(w, rows, strict=True))),
        int(valid.sum()),
        sum(r.queries for r in rows),
    )
