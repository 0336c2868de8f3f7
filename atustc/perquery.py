"""The per-query frame of an evaluation: one row per query and run, with its top-k list (``atustc eval --per-query``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from atustc.rankmetrics import QueryMetrics

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
_LABEL_NAMES = np.array(["neg", "pos", "junk"])


def per_query_frame(name: str, run: int, q_rows: np.ndarray, qm: QueryMetrics, table: pd.DataFrame) -> pd.DataFrame:
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
