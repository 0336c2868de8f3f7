"""AT-USTC split flags and the one rule that assigns them.

Flags (official README): 0 train, 1 validation, 2/3 RGB ST/LT query, 4/5 IR ST/LT query, 6/7 RGB
ST/LT gallery, 8/9 IR ST/LT gallery, 10 test image selected for no pool. The dataset authors
pre-selected the query and gallery images and published no script; :func:`select_clip_pools`
is this project's documented rule, shared by ``atustc synth``, ``atustc split --strategy
resplit`` and the validation protocol of every split:

1. A *clip* is all images of one (pid, camera, clothes).
2. Inside a clip the images are put in a random order drawn from ``seed`` (rows are first put
   in the canonical order pid, camera, clothes, date, frame, relpath, so the draw does not
   depend on the order of the input rows).
3. The k-th image of that order (k = 0, 1, ...) goes to pool ``("ST query", "ST gallery",
   "LT query", "LT gallery")[k % 4]`` while k < 12, else to flag 10. A clip with 12 or more
   images thus gives 3 ST query + 3 ST gallery + 3 LT query + 3 LT gallery images; a shorter
   clip gives what it has, spread over the four pools in that order.
4. The flag is the pool's RGB flag for an RGB image and its IR flag for an IR image.

Identities are split 1:1 by :func:`split_identities` (test gets ``n // 2`` of ``n``), and
``val_fraction`` (20%) of the train identities, whole identities, become validation (flag 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRAIN, VAL, REST = 0, 1, 10
#: pool name -> (RGB flag, IR flag)
POOL_FLAGS: dict[str, tuple[int, int]] = {
    "st_query": (2, 4),
    "lt_query": (3, 5),
    "st_gallery": (6, 8),
    "lt_gallery": (7, 9),
}
#: the order in which the images of a clip are dealt to the pools
DEAL_ORDER: tuple[str, ...] = ("st_query", "st_gallery", "lt_query", "lt_gallery")
PER_POOL = 3
VALID_FLAGS: frozenset[int] = frozenset(range(11))


def flag_to_split(flags: np.ndarray) -> np.ndarray:
    """Map flags to the table's ``split`` values (0 train, 1 val, 2-5 query, 6-9 gallery, 10 test, else unused)."""
    flags = np.asarray(flags)
    names = np.array(["train", "val"] + ["query"] * 4 + ["gallery"] * 4 + ["test", "unused"], dtype=object)
    idx = np.where((flags >= 0) & (flags <= 10), flags, 11)
    return names[idx]


def split_identities(pids: Sequence[int] | np.ndarray, seed: int, val_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Draw a 1:1 identity split with whole validation identities.

    Args:
        pids: the person ids (duplicates are ignored).
        seed: the random seed.
        val_fraction: the fraction of train identities that become validation.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` sorted int64 arrays of pids. With ``n``
        identities, test gets ``n // 2``, val ``round(val_fraction * (n - n // 2))``.
    """
    uniq = np.unique(np.asarray(pids, dtype=np.int64))
    order = np.random.default_rng([int(seed), 0x5EED]).permutation(len(uniq))
    shuffled = uniq[order]
    n_test = len(uniq) // 2
    n_val = int(round(val_fraction * (len(uniq) - n_test)))
    return {
        "test": np.sort(shuffled[:n_test]),
        "val": np.sort(shuffled[n_test : n_test + n_val]),
        "train": np.sort(shuffled[n_test + n_val :]),
    }


def select_clip_pools(
    pid: np.ndarray,
    camera: np.ndarray,
    clothes: np.ndarray,
    ir: np.ndarray,
    date: np.ndarray,
    frame: np.ndarray,
    *,
    seed: int,
    relpath: np.ndarray | None = None,
) -> np.ndarray:
    """Assign test flags 2-10 by the per-clip rule of this module's docstring.

    Args:
        pid, camera, clothes, date, frame: one entry per image (int arrays of equal length).
        ir: True where the image is infrared (picks the IR flag of the pool).
        seed: the random seed of the within-clip order.
        relpath: optional unique names, the last tie-breaker of the canonical order.

    Returns:
        An int64 array of flags in 2..10, aligned with the inputs.
    """
    cols = [np.asarray(c, dtype=np.int64) for c in (pid, camera, clothes, date, frame)]
    n = len(cols[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = [cols[4], cols[3], cols[2], cols[1], cols[0]]  # lexsort: last key is primary
    if relpath is not None:
        keys.insert(0, np.unique(np.asarray(relpath, dtype=object).astype(str), return_inverse=True)[1])
    canon = np.lexsort(keys)
    draw = np.empty(n)
    draw[canon] = np.random.default_rng([int(seed), 0xC11B]).random(n)
    # order by clip, then by the random draw; rank within clip = position - clip start
    order = np.lexsort((draw, cols[2], cols[1], cols[0]))
    p, c, k = cols[0][order], cols[1][order], cols[2][order]
    is_ir = np.asarray(ir, dtype=bool)[order]
    new_clip = np.ones(n, dtype=bool)
    new_clip[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1]) | (k[1:] != k[:-1])
    starts = np.flatnonzero(new_clip)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    flags_sorted = np.full(n, REST, dtype=np.int64)
    dealt = rank < PER_POOL * len(DEAL_ORDER)
    for i, pool in enumerate(DEAL_ORDER):
        rgb_flag, ir_flag = POOL_FLAGS[pool]
        sel = dealt & (rank % len(DEAL_ORDER) == i)
        flags_sorted[sel] = np.where(is_ir[sel], ir_flag, rgb_flag)
    flags = np.empty(n, dtype=np.int64)
    flags[order] = flags_sorted
    return flags


def assign_flags(
    pid: np.ndarray,
    camera: np.ndarray,
    clothes: np.ndarray,
    ir: np.ndarray,
    date: np.ndarray,
    frame: np.ndarray,
    *,
    seed: int,
    val_fraction: float = 0.2,
    relpath: np.ndarray | None = None,
) -> np.ndarray:
    """Flags for a whole dataset: a fresh identity split plus the per-clip test selection.

    Args: as :func:`select_clip_pools`, plus ``val_fraction`` (see :func:`split_identities`).

    Returns:
        An int64 array of flags 0-10 aligned with the inputs.
    """
    pid = np.asarray(pid, dtype=np.int64)
    ids = split_identities(pid, seed, val_fraction)
    flags = np.full(len(pid), TRAIN, dtype=np.int64)
    flags[np.isin(pid, ids["val"])] = VAL
    test = np.isin(pid, ids["test"])
    rp = None if relpath is None else np.asarray(relpath, dtype=object)[test]
    flags[test] = select_clip_pools(
        *(np.asarray(a)[test] for a in (pid, camera, clothes, ir, date, frame)), seed=seed, relpath=rp
    )
    return flags
