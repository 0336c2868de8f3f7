"""The six AT-USTC scenarios as the official test builds them, and valid-positive counting.

Each scenario takes its queries and gallery from the ST pool (query flags 2/4, gallery 6/8) or
the LT pool (3/5 and 7/9). For a query, a gallery image is junk when it has the same pid and
camera; the time rule keeps only RGB pairs (DT), IR pairs (NT) or cross-modality pairs (AD);
the term rule makes positives share the query's clothes (ST) or differ from them (LT).
This module only decides which queries have a valid positive (to validate splits); scoring is
:mod:`atustc.evaluate`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from atustc.methods.contract import SCENARIOS
from atustc.split.keys import row_keys

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ScenarioRule:
    """One scenario: pool flags, time rule and term rule."""

    name: str
    time: Literal["dt", "nt", "ad"]
    term: Literal["st", "lt"]

    @property
    def query_flags(self) -> tuple[int, ...]:
        """Flags of the scenario's query pool (before the time rule)."""
        return (2, 4) if self.term == "st" else (3, 5)

    @property
    def gallery_flags(self) -> tuple[int, ...]:
        """Flags of the scenario's gallery pool (before the time rule)."""
        return (6, 8) if self.term == "st" else (7, 9)


RULES: dict[str, ScenarioRule] = {
    name: ScenarioRule(name, name[:2].lower(), name[3:].lower())  # type: ignore[arg-type]
    for name in SCENARIOS
}


def _columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays the rules need: ``flag``, ``ir`` (bool) and packed keys of pid, clothes, camera.

    Keys are packed over the whole table so that query and gallery keys agree; the modality is
    the last bit of ``pc_m`` and ``p_m``, so a query key with another modality is ``base * 2 + t``.
    """
    p, c, k = (table[col].to_numpy(dtype=np.int64) for col in ("pid", "clothes", "camera"))
    ir = (table["modality"] == "ir").to_numpy(dtype=bool)
    keys = {name: row_keys(*cols) for name, cols in
            {"pc": (p, c), "p": (p,), "pc_k": (p, c, k), "p_k": (p, k)}.items()}
    m = ir.astype(np.int64)
    return {"flag": table["flag"].to_numpy(dtype=np.int64), "ir": ir, "pc": keys["pc"], "p": keys["p"],
            "pc_m": keys["pc"] * 2 + m, "p_m": keys["p"] * 2 + m, "pc_k": keys["pc_k"], "p_k": keys["p_k"]}


def _count(gallery_keys: np.ndarray, query_keys: np.ndarray) -> np.ndarray:
    """How many gallery keys equal each query key."""
    uniq, cnt = np.unique(gallery_keys, return_counts=True)
    if len(uniq) == 0:
        return np.zeros(len(query_keys), dtype=np.int64)
    i = np.clip(np.searchsorted(uniq, query_keys), 0, len(uniq) - 1)
    return np.where(uniq[i] == query_keys, cnt[i], 0)


def _positive_counts(cols: dict[str, np.ndarray], scenario: str) -> tuple[np.ndarray, np.ndarray]:
    rule = RULES[scenario]
    flag, ir = cols["flag"], cols["ir"]
    q_ir_ok = {"dt": ~ir, "nt": ir, "ad": np.ones_like(ir)}[rule.time]
    q = np.flatnonzero(np.isin(flag, rule.query_flags) & q_ir_ok)
    g = np.flatnonzero(np.isin(flag, rule.gallery_flags))
    target = ir[q] if rule.time != "ad" else ~ir[q]  # the gallery modality that can match
    same_mod = target == ir[q]  # a same-camera gallery image can only exist then
    tq = target.astype(np.int64)
    pc_t, p_t = cols["pc"][q] * 2 + tq, cols["p"][q] * 2 + tq
    n_pct = _count(cols["pc_m"][g], pc_t)
    same_cam = np.where(same_mod, _count(cols["pc_k"][g], cols["pc_k"][q]), 0)
    if rule.term == "st":
        return q, n_pct - same_cam
    n_pt = _count(cols["p_m"][g], p_t)
    n_pk = np.where(same_mod, _count(cols["p_k"][g], cols["p_k"][q]), 0)
    return q, n_pt - n_pct - (n_pk - same_cam)


def positive_counts(table: pd.DataFrame, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Number of valid positives of every query of a scenario.

    Args:
        table: an annotation table whose ``flag`` column holds AT-USTC flags.
        scenario: one of :data:`~atustc.methods.contract.SCENARIOS`.

    Returns:
        ``(query_rows, counts)``: positional row indices of the scenario's queries (after the
        time rule) and, for each, how many gallery images are valid positives.
    """
    return _positive_counts(_columns(table), scenario)


def scenario_query_stats(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per scenario: ``{"queries": n, "valid": n with >= 1 valid positive, "gallery": n}``."""
    cols = _columns(table)
    out = {}
    for name, rule in RULES.items():
        rows, counts = _positive_counts(cols, name)
        gal_ir_ok = {"dt": ~cols["ir"], "nt": cols["ir"], "ad": np.ones_like(cols["ir"])}[rule.time]
        n_gal = int((np.isin(cols["flag"], rule.gallery_flags) & gal_ir_ok).sum())
        out[name] = {"queries": len(rows), "valid": int((counts > 0).sum()), "gallery": n_gal}
    return out
