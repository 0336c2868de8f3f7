"""Split rules for datasets without AT-USTC flags: validation identities and query/gallery selection.

A release such as Market-1501 gives train, query and gallery rows but no validation split. The
rules used by ``atustc split`` for such a dataset (``DatasetSpec.validation = "fraction"``):

1. **Validation identities**: a seeded share ``val_fraction`` of the train identities (whole
   identities, at least one when there are two or more) becomes ``val``
   (:func:`validation_identities`).
2. **Query / gallery of re-assigned rows** (the validation rows, and the test rows of a
   resplit): a *clip* is all images of one (pid, camera, clothes); in each clip one image, drawn
   with the seed, is a ``query`` and the others are ``gallery`` (:func:`query_gallery`). Each
   identity thus gets one query per camera and outfit, as Market-1501's query set has about one
   per camera, and the protocol scores the result with its own pools and junk rules.
3. **Resplit** (only where ``DatasetSpec.resplit``): a fresh 1:1 identity split
   (:func:`atustc.split.flags.split_identities`), then rules 1-2.

Draws are made in the canonical row order (pid, camera, clothes, date, frame, relpath), so they
do not depend on the order of the input rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def validation_identities(pids: np.ndarray, seed: int, val_fraction: float) -> np.ndarray:
    """The sorted pids drawn as validation: ``round(val_fraction * n)`` of the ``n`` distinct ones (>= 1 if n >= 2)."""
    uniq = np.unique(np.asarray(pids, dtype=np.int64))
    n_val = int(round(val_fraction * len(uniq)))
    if len(uniq) >= 2:
        n_val = min(max(n_val, 1), len(uniq) - 1)
    order = np.random.default_rng([int(seed), 0x7A1]).permutation(len(uniq))
    return np.sort(uniq[order[:n_val]])


def query_gallery(rows: pd.DataFrame, seed: int) -> np.ndarray:
    """``"query"`` for one seeded image per (pid, camera, clothes) clip, ``"gallery"`` for the rest.

    Returns:
        An object array of split names aligned with ``rows``.
    """
    n = len(rows)
    out = np.full(n, "gallery", dtype=object)
    if n == 0:
        return out
    pid, cam, clothes, date, frame = (
        rows[c].to_numpy(dtype=np.int64) for c in ("pid", "camera", "clothes", "date", "frame")
    )
    names = np.unique(rows["relpath"].to_numpy().astype(str), return_inverse=True)[1]
    canon = np.lexsort((names, frame, date, clothes, cam, pid))
    draw = np.empty(n)
    draw[canon] = np.random.default_rng([int(seed), 0x9E7]).random(n)
    order = np.lexsort((draw, clothes, cam, pid))
    p, c, k = pid[order], cam[order], clothes[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1]) | (k[1:] != k[:-1])
    out[order[first]] = "query"
    return out


def fraction_splits(
    table: pd.DataFrame, *, resplit: bool, seed: int, val_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``split`` of every row and the query/gallery split of the validation rows.

    Args:
        table: a validated table whose ``split`` holds the release's train / query / gallery.
        resplit: draw a fresh 1:1 identity split instead of keeping the release's.
        seed: the seed of every draw.
        val_fraction: the validation share of the train identities (0: draw none).

    Returns:
        ``(split, val_split)``: ``split`` for every row (``train``, ``val``, ``query``,
        ``gallery``, or what the release said), and for the rows whose ``split`` is ``val``,
        in table order, their ``query``/``gallery`` role in the validation protocol.
    """
    from atustc.split.flags import split_identities

    split = table["split"].to_numpy().astype(object).copy()
    pid = table["pid"].to_numpy(dtype=np.int64)
    if resplit:
        ids = split_identities(pid, seed, val_fraction=0.0)
        test = np.isin(pid, ids["test"])
        split[:] = "train"
        split[test] = query_gallery(table[test], seed)
    train = split == "train"
    if val_fraction > 0:  # 0: the release's own val rows only (DatasetSpec.validation == "release")
        split[train & np.isin(pid, validation_identities(pid[train], seed, val_fraction))] = "val"
    val = split == "val"
    return split, query_gallery(table[val], seed)
