"""One int64 key per row from several integer columns (for fast grouping with numpy)."""

from __future__ import annotations

import numpy as np


def row_keys(*cols: np.ndarray) -> np.ndarray:
    """An int64 per row that is equal iff all columns are equal.

    Columns are packed arithmetically (each offset by its minimum, so -1 sentinels are fine,
    with a radix of its range); when that could overflow, rows are numbered by
    ``np.unique(..., axis=0)`` instead.

    >>> row_keys(np.array([1, 1, 2]), np.array([5, 6, 5])).tolist()
    [0, 1, 2]
    """
    arrays = [np.asarray(c, dtype=np.int64) for c in cols]
    n = len(arrays[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lows = [int(c.min()) for c in arrays]
    radices = [int(c.max()) - lo + 1 for c, lo in zip(arrays, lows)]
    if np.prod([float(r) for r in radices]) >= 2.0**61:  # keep room for one more bit
        return np.unique(np.stack(arrays, axis=1), axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)
    key = np.zeros(n, dtype=np.int64)
    for c, lo, r in zip(arrays, lows, radices):
        key = key * r + (c - lo)
    return key
