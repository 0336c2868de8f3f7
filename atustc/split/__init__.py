"""Splits of an annotation table, for any registered dataset: the official split or a seeded resplit.

See :mod:`atustc.split.core` for :class:`Split` and its validation; :mod:`atustc.split.store`
for the split folder;
:mod:`atustc.split.flags` for the AT-USTC flag rules (shared with ``atustc synth``);
:mod:`atustc.split.assign` for the rules of datasets without flags; :mod:`atustc.split.audit`
for the statistics and the ``--describe`` audit.
"""

from atustc.split.audit import describe_split, summary_frame
from atustc.split.core import (
    POOLS,
    SPLIT_LISTS,
    STRATEGIES,
    Split,
    make_split,
    validate_split,
)
from atustc.split.flags import assign_flags, select_clip_pools, split_identities
from atustc.split.store import load_split, load_split_for, write_split

__all__ = [
    "POOLS",
    "SPLIT_LISTS",
    "STRATEGIES",
    "Split",
    "assign_flags",
    "describe_split",
    "load_split",
    "load_split_for",
    "make_split",
    "select_clip_pools",
    "split_identities",
    "summary_frame",
    "validate_split",
    "write_split",
]
