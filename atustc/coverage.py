"""Valid-query counts of a protocol on a table, without features: the scenario rules, from the protocol.

A query of a scenario is *valid* when its gallery holds at least one positive: an image of the
same identity that no junk rule of the scenario removes (the always-on same-camera rule
included). That depends on labels only, so split validation (``atustc split``) and the
statistics (``atustc stats``) count valid queries here, from the same :class:`~atustc.protocol.Scenario`
the evaluation ranks with (:mod:`atustc.evaluate`), and no scenario rule is written twice.

Counts are on the full gallery: a scenario's ``sampling`` (single-shot trials) is not applied,
so ``valid`` is what the pools allow before sampling. A scenario ranked in both directions
gives the mean of the two directions, rounded, as the evaluation reports it.

*Reachable* queries and gallery images are those whose modality the scenario's scope-``all``
modality rules let meet the other side at all: a DT scenario counts RGB queries and RGB gallery
images, an AD scenario all of them. Rows are collapsed to their distinct label combinations
(with weights) before pairs are formed, so whole tables are counted in a few group-bys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atustc.protocol import LABEL_COLUMNS, MODALITY_CODE, Protocol, Scenario

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ScenarioCount:
    """Reachable queries, valid queries (>= 1 positive) and reachable gallery images of a scenario."""

    queries: int
    valid: int
    gallery: int

    def to_dict(self) -> dict[str, int]:
        """``{"queries", "valid", "gallery"}``."""
        return {"queries": self.queries, "valid": self.valid, "gallery": self.gallery}


def table_labels(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The int64 label arrays the junk rules read (:data:`~atustc.protocol.LABEL_COLUMNS`; modality coded)."""
    out = {c: table[c].to_numpy(dtype=np.int64) for c in LABEL_COLUMNS if c != "modality"}
    out["modality"] = np.zeros(len(table), dtype=np.int64)
    for name, code in MODALITY_CODE.items():
        out["modality"][(table["modality"] == name).to_numpy(dtype=bool)] = code
    return out


def count_scenario(
    scenario: Scenario,
    labels: Mapping[str, np.ndarray],
    query: np.ndarray,
    gallery: np.ndarray,
    weight: np.ndarray | None = None,
) -> ScenarioCount:
    """Count one scenario's queries and valid queries for given query and gallery rows.

    Args:
        scenario: the scenario whose junk rules apply (its pools are not used: ``query`` and
            ``gallery`` say which rows play each role).
        labels: :func:`table_labels` arrays, one entry per row.
        query: boolean mask or index array of the query rows.
        gallery: boolean mask or index array of the gallery rows.
        weight: images per row (default 1 each), for tables collapsed to label combinations.

    Returns:
        The counts (weighted).
    """
    n = len(labels["pid"])
    w = np.ones(n, dtype=np.int64) if weight is None else np.asarray(weight, dtype=np.int64)
    q = _rows(query, n)
    g = _rows(gallery, n)
    mod = labels["modality"]
    codes = tuple(MODALITY_CODE.values())
    reach = {c: scenario.allowed_gallery_modalities(c) for c in codes}
    q = q[np.isin(mod[q], [c for c in codes if reach[c]])]
    g = g[np.isin(mod[g], sorted({m for allowed in reach.values() for m in allowed}))]
    queries, n_gallery = int(w[q].sum()), int(w[g].sum())
    if len(q) == 0 or len(g) == 0:
        return ScenarioCount(queries, 0, n_gallery)
    rules = scenario.rules()
    cols = sorted({"pid", *(r.column for r in rules)})
    uq, wq = _collapse(labels, cols, q, w)
    ug, wg = _collapse(labels, cols, g, w)
    qi, gi = _same_pid_pairs(uq["pid"], ug["pid"])
    qa = {c: uq[c][qi] for c in cols}
    ga = {c: ug[c][gi] for c in cols}
    junk = np.zeros(len(qi), dtype=bool)
    for rule in rules:
        junk |= np.asarray(rule.fails(qa, ga), dtype=bool)
    positives = np.bincount(qi[~junk], weights=wg[gi[~junk]], minlength=len(wq))
    return ScenarioCount(queries, int(wq[positives > 0].sum()), n_gallery)


def protocol_counts(
    protocol: Protocol, table: pd.DataFrame, weight: np.ndarray | None = None
) -> dict[str, ScenarioCount]:
    """Per scenario of ``protocol``, its counts on ``table`` with the scenario's own pools.

    A scenario ranked in both directions reports the rounded mean of the two directions.
    ``weight``: images per row, as in :func:`count_scenario`.
    """
    labels = table_labels(table)
    pools: dict = {}
    out = {}
    for s in protocol.scenarios:
        q, g = s.select(table, pools)
        runs = [count_scenario(s, labels, q, g, weight)]
        if s.directions == "both":
            runs.append(count_scenario(s, labels, g, q, weight))
        out[s.name] = ScenarioCount(
            *(int(round(float(np.mean([getattr(r, f) for r in runs])))) for f in ("queries", "valid", "gallery"))
        )
    return out


def _rows(sel: np.ndarray, n: int) -> np.ndarray:
    sel = np.asarray(sel)
    return np.flatnonzero(sel) if sel.dtype == bool and len(sel) == n else sel.astype(np.int64)


def _collapse(
    labels: Mapping[str, np.ndarray], cols: list[str], rows: np.ndarray, w: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Distinct label combinations of ``rows`` (their label arrays) and the summed weight of each."""
    from atustc.split.keys import row_keys  # not at import time: atustc.split imports this module

    key = row_keys(*(labels[c][rows] for c in cols))
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    weights = np.bincount(inv.reshape(-1), weights=w[rows], minlength=len(uniq)).astype(np.int64)
    return {c: labels[c][rows][first] for c in cols}, weights


def _same_pid_pairs(q_pid: np.ndarray, g_pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query, gallery) index pair with equal pid, without a dense comparison."""
    order = np.argsort(g_pid, kind="stable")
    sorted_pid = g_pid[order]
    start = np.searchsorted(sorted_pid, q_pid, side="left")
    counts = np.searchsorted(sorted_pid, q_pid, side="right") - start
    qi = np.repeat(np.arange(len(q_pid)), counts)
    within = np.arange(len(qi)) - np.repeat(np.cumsum(counts) - counts, counts)
    return qi, order[start[qi] + within]
