"""The validated protocol as data: pools, junk rules, scenarios, aggregates, and how they apply.

:class:`Pool` selects table rows, :class:`JunkRule` decides which (query, gallery) pairs are
junk, and :meth:`Scenario.compile_junk` turns a scenario's rules into the two junk functions of
the ranking core (:mod:`atustc.ranking`). The TOML schema that produces these objects is
documented in :mod:`atustc.protocol` and checked by :mod:`atustc.protocol_schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from atustc.table import MODALITIES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

Scope = Literal["all", "same_pid"]

#: Modality codes used in label tensors.
MODALITY_CODE: dict[str, int] = {m: i for i, m in enumerate(MODALITIES)}
#: Table columns a junk rule reads.
LABEL_COLUMNS: tuple[str, ...] = ("pid", "camera", "clothes", "date", "modality")

Labels = dict[str, "torch.Tensor"]
#: Same as :data:`atustc.ranking.PairJunk` (not imported here, to keep torch out of start-up).
PairJunk = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Pool:
    """A set of table rows: column filters, all of which must hold."""

    name: str
    filters: tuple[tuple[str, tuple[int | str, ...]], ...]

    def select(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the table rows in the pool."""
        import numpy as np

        mask = np.ones(len(table), dtype=bool)
        for column, values in self.filters:
            mask &= table[column].isin(values).to_numpy()
        return mask

    def describe(self) -> str:
        """The filters as text, e.g. ``flag in [2, 4]``."""
        parts = [f"{c} = {v[0]!r}" if len(v) == 1 else f"{c} in {list(v)!r}" for c, v in self.filters]
        return " and ".join(parts) or "all rows"


@dataclass(frozen=True)
class JunkRule:
    """A condition kept pairs must satisfy; pairs failing it are junk within ``scope``."""

    rule: str
    value: str | None
    scope: Scope
    pairs: tuple[tuple[int, int], ...] = ()

    @property
    def column(self) -> str:
        """The label column the rule reads."""
        return "camera" if self.rule == "camera_pair" else self.rule

    def fails(self, q: Labels, g: Labels) -> torch.Tensor:
        """Bool: the (query, gallery) pairs that fail the rule.

        Args:
            q: query label tensors, gathered per pair (shapes broadcast with ``g``'s); numpy
                arrays work the same way (:mod:`atustc.coverage` counts with them).
            g: gallery label tensors, gathered per pair.
        """
        col = self.column
        if self.rule == "camera_pair":  # pairs is never empty (validated)
            out = None
            for qc, gc in self.pairs:
                hit = (q[col] == qc) & (g[col] == gc)
                out = hit if out is None else out | hit
            return out
        if self.rule == "modality" and self.value in ("same_rgb", "same_ir"):
            code = MODALITY_CODE[self.value.removeprefix("same_")]
            return ~((q[col] == code) & (g[col] == code))
        equal = q[col] == g[col]
        return ~equal if self.value == "same" else equal

    def allowed_gallery_modalities(self, query_modality: int) -> tuple[int, ...]:
        """For a scope-``all`` modality rule: the gallery modalities a query modality may meet."""
        codes = tuple(MODALITY_CODE.values())
        if self.value in ("same_rgb", "same_ir"):
            code = MODALITY_CODE[self.value.removeprefix("same_")]
            return (code,) if query_modality == code else ()
        if self.value == "cross":
            return tuple(c for c in codes if c != query_modality)
        return (query_modality,)

    @property
    def splits_by_modality(self) -> bool:
        """Whether this rule only restricts which modality blocks are compared at all."""
        return self.rule == "modality" and self.scope == "all"


#: The always-on rule: same identity and same camera is junk.
SAME_CAMERA_JUNK = JunkRule("camera", "different", "same_pid")


@dataclass(frozen=True)
class Sampling:
    """Gallery sampling: ``trials`` draws of ``shots`` images per (pid, camera) (1 for ``single_shot``)."""

    mode: str
    trials: int
    seed: int
    shots: int = 1


@dataclass(frozen=True)
class Scenario:
    """One query set ranked against one gallery set under junk rules, scored with one head."""

    name: str
    query: Pool
    gallery: Pool
    head: str
    junk: tuple[JunkRule, ...]
    directions: str = "forward"
    sampling: Sampling | None = None
    same_camera_junk: bool = True
    identities: str | None = None

    def rules(self) -> tuple[JunkRule, ...]:
        """The scenario's junk rules plus the always-on same-camera rule (unless ``same_camera_junk = false``)."""
        return (SAME_CAMERA_JUNK, *self.junk) if self.same_camera_junk else self.junk

    def select(self, table: pd.DataFrame, cache: dict[Pool, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks of the query and gallery rows: the pools, then the ``identities`` filter.

        ``identities = "clothes_change"`` keeps, in both, only the identities seen in more than
        one outfit among the pools' rows (query and gallery together). ``cache`` holds pool
        masks already computed on this table (filled as a side effect).
        """
        cache = {} if cache is None else cache
        for pool in (self.query, self.gallery):
            if pool not in cache:
                cache[pool] = pool.select(table)
        q, g = cache[self.query], cache[self.gallery]
        if self.identities == "clothes_change":
            rows = table[q | g]
            outfits = rows.groupby("pid")["clothes"].nunique()
            keep = table["pid"].isin(outfits.index[outfits > 1]).to_numpy()
            q, g = q & keep, g & keep
        return q, g

    def allowed_gallery_modalities(self, query_modality: int) -> tuple[int, ...]:
        """Gallery modalities left for a query modality by the scope-``all`` modality rules."""
        allowed = set(MODALITY_CODE.values())
        for rule in self.junk:
            if rule.splits_by_modality:
                allowed &= set(rule.allowed_gallery_modalities(query_modality))
        return tuple(sorted(allowed))

    def compile_junk(
        self, q: Labels, g: Labels, *, skip_modality_blocks: bool = False
    ) -> tuple[PairJunk | None, PairJunk | None]:
        """Compile the rules into the two :data:`atustc.ranking.PairJunk` functions of the ranking core.

        Args:
            q: query label tensors (keys of :data:`LABEL_COLUMNS`), indexed by query index.
            g: gallery label tensors, indexed by gallery index.
            skip_modality_blocks: leave out the scope-``all`` modality rules (the caller has
                already restricted the gallery to the allowed modality block).

        Returns:
            ``(junk_same, junk_other)``: junk among same-identity pairs (every rule applies) and
            among other pairs (only scope-``all`` rules apply; None when there are none).
        """
        rules = [r for r in self.rules() if not (skip_modality_blocks and r.splits_by_modality)]
        return _pair_junk(rules, q, g), _pair_junk([r for r in rules if r.scope == "all"], q, g)


def _pair_junk(rules: list[JunkRule], q: Labels, g: Labels) -> PairJunk | None:
    if not rules:
        return None
    columns = {r.column for r in rules}

    def junk(qi: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        qa = {c: q[c][qi] for c in columns}
        ga = {c: g[c][gi] for c in columns}
        out = rules[0].fails(qa, ga)
        for rule in rules[1:]:
            out = out | rule.fails(qa, ga)
        return out

    return junk


@dataclass(frozen=True)
class Aggregate:
    """A summary row over scenarios: unweighted mean or weighted by valid queries."""

    name: str
    scenarios: tuple[str, ...]
    weight: str


@dataclass(frozen=True)
class Protocol:
    """A validated protocol."""

    name: str
    source: str
    description: str
    metric: str
    scenarios: tuple[Scenario, ...]
    aggregates: tuple[Aggregate, ...]

    @property
    def heads(self) -> tuple[str, ...]:
        """Heads used by the scenarios, in first-use order."""
        return tuple(dict.fromkeys(s.head for s in self.scenarios))
