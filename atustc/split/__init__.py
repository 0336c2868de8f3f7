"""Splits of an annotation table: official AT-USTC flags or fresh seeded resplits.

See :mod:`atustc.split.flags` for the flag rules (shared with ``atustc synth``),
:mod:`atustc.split.core` for :class:`Split` and its files, :mod:`atustc.split.audit` for the
statistics and the ``--describe`` audit.
"""

from atustc.split.audit import describe_split, summary_frame
from atustc.split.core import POOLS, STRATEGIES, Split, load_split, load_split_for, make_split, validate_split, write_split
from atustc.split.flags import assign_flags, select_clip_pools, split_identities

__all__ = [
    "POOLS",
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
