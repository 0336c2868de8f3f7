"""The numbers behind the paper's Fig. 2, computed from one annotation table.

Everything here is pure and vectorised (numpy/pandas group-bys, no per-identity Python loop).
The table is first collapsed to its distinct ``(cell, pid, clothes, camera, modality, date)``
combinations with an image count, where a *cell* is the finest partition of the rows into
groups (split x AT-USTC query/gallery pool). Every group (``all``, ``train``, ``val``, ``test``,
``query``, ``gallery`` and, for AT-USTC flags, the eight ST/LT x RGB/IR query/gallery pools) is a
union of cells, so all groups are scored in one pass over a table a few hundred times smaller
than the image list.

Definitions (documented in :func:`table_stats`):

- *outfit*: a ``(pid, clothes)`` pair; ``clothes = -1`` (unknown) counts as one outfit.
- *capture*: a distinct ``(date, camera)`` pair of one identity; ``date = -1`` (unknown) counts
  as one date, so a table without dates gives captures = cameras (a lower bound).
- *scenario coverage*: a query image is valid for a scenario when the gallery holds at least
  one positive for it: same pid, another camera, the scenario's modality pair (DT: RGB->RGB,
  NT: IR->IR, AD: RGB<->IR) and the term rule (ST: same clothes, LT: different clothes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atustc.errors import AtustcError
from atustc.methods.contract import SCENARIOS
from atustc.table import SPLITS

if TYPE_CHECKING:
    import pandas as pd

#: Group names in report order; AT-USTC pools follow ``official-at-reid.md`` §2 flags 2-9.
SPLIT_GROUPS: tuple[str, ...] = ("all", "train", "val", "test", "query", "gallery")
POOL_FLAGS: dict[int, str] = {
    2: "query-ST-rgb",
    3: "query-LT-rgb",
    4: "query-ST-ir",
    5: "query-LT-ir",
    6: "gallery-ST-rgb",
    7: "gallery-LT-rgb",
    8: "gallery-ST-ir",
    9: "gallery-LT-ir",
}
#: The official AT-USTC test pools: term -> (query flags, gallery flags).
OFFICIAL_POOLS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "ST": ((2, 4), (6, 8)),
    "LT": ((3, 5), (7, 9)),
}
#: Per-identity figures (columns of :attr:`TableStats.identities`).
IDENTITY_FIGURES: tuple[str, ...] = (
    "images",
    "outfits",
    "rgb_cameras",
    "ir_cameras",
    "cameras",
    "captures",
    "dates",
)
_FLAG_SPLIT = np.array([SPLITS.index(s) for s in ["train", "val"] + ["query"] * 4 + ["gallery"] * 4 + ["test"]])
_DENSE_KEYS = 1 << 22  # count positives with a dense bincount up to this key-space size
_MOD_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {  # (query modality, gallery modality); 0 rgb, 1 ir
    "DT": ((0, 0),),
    "NT": ((1, 1),),
    "AD": ((0, 1), (1, 0)),
}


@dataclass(frozen=True)
class TableStats:
    """Statistics of one table.

    Attributes:
        label: the dataset name (the table's ``dataset`` column).
        summary: one row per group: totals, per-identity means, covered scenarios.
        identities: one row per (group, pid): the distributions behind the means.
        coverage: one row per (group, scenario): ``covered``, ``valid_queries``, ``queries``.
    """

    label: str
    summary: pd.DataFrame
    identities: pd.DataFrame
    coverage: pd.DataFrame


def effective_split(table: pd.DataFrame) -> np.ndarray:
    """The split of every row: the ``split`` column, or the AT-USTC flag where split is ``unused``.

    Flags map as in ``atustc split``: 0 train, 1 val, 2-5 query, 6-9 gallery, 10 test.
    """
    return np.asarray(SPLITS, dtype=object)[_split_index(table)]


def _split_index(table: pd.DataFrame) -> np.ndarray:
    """Index into :data:`atustc.table.SPLITS` of every row's effective split."""
    import pandas as pd

    codes, uniques = pd.factorize(table["split"])
    unknown = [str(u) for u in uniques if u not in SPLITS]
    if unknown:
        raise AtustcError(f"column 'split' must be one of {', '.join(SPLITS)}, got {unknown[0]!r}")
    sidx = np.array([SPLITS.index(u) for u in uniques], dtype=np.int64)[codes]
    flag = table["flag"].to_numpy()
    from_flag = (sidx == SPLITS.index("unused")) & (flag >= 0) & (flag <= 10)
    sidx[from_flag] = _FLAG_SPLIT[flag[from_flag]]
    return sidx


def _cells(table: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Cell code of every row and the (split, pool flag or -1) of each cell."""
    flag = table["flag"].to_numpy()
    pool = np.where((flag >= 2) & (flag <= 9), flag, -1)
    key = _split_index(table) * 16 + (pool + 1)
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.astype(np.int64), [(SPLITS[k // 16], int(k % 16) - 1) for k in uniq]


def _group_cells(cells: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """Group name -> boolean mask over cells, for the groups that are non-empty, in report order."""
    splits = np.array([s for s, _ in cells], dtype=object)
    pools = np.array([p for _, p in cells])
    masks = {
        "all": np.ones(len(cells), dtype=bool),
        "train": splits == "train",
        "val": splits == "val",
        "test": np.isin(splits, ["query", "gallery", "test"]),
        "query": splits == "query",
        "gallery": splits == "gallery",
    }
    masks.update({name: pools == flag for flag, name in POOL_FLAGS.items()})
    return {name: m for name, m in masks.items() if m.any()}


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of ``values`` and k."""
    import pandas as pd

    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), len(uniques)


def _collapse(table: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Distinct (cell, pid, clothes, camera, modality, date) combinations with image counts, and the cells."""
    import pandas as pd

    cell, cells = _cells(table)
    cols = {
        "cell": cell,
        "pid": table["pid"].to_numpy(),
        "clothes": table["clothes"].to_numpy(),
        "camera": table["camera"].to_numpy(),
        "ir": (table["modality"] == "ir").to_numpy(dtype=bool).astype(np.int64),
        "date": table["date"].to_numpy(),
    }
    key, size = np.zeros(len(table), dtype=np.int64), 1
    codes = {}
    for name, values in cols.items():
        codes[name], k = _factorize(values)
        if size * k >= 1 << 62:  # keep the mixed-radix key inside int64
            key, size = _factorize(key)
        key, size = key * k + codes[name], size * k
    combo, n_combos = _factorize(key)
    first = np.empty(n_combos, dtype=np.int64)
    first[combo] = np.arange(len(key))  # any row of a combination represents it
    combos = pd.DataFrame({name: values[first] for name, values in cols.items()})
    for name in ("pid", "clothes", "camera", "date"):
        combos[f"{name}_code"] = codes[name][first]
    combos["n"] = np.bincount(combo, minlength=n_combos)
    return combos, cells


def _expand(combos: pd.DataFrame, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (group, combination): a combination belongs to every group of its cell."""
    import pandas as pd

    cell = combos["cell"].to_numpy()
    parts = [combos[mask[cell]].assign(group=gi) for gi, mask in enumerate(groups.values())]
    return pd.concat(parts, ignore_index=True)


def _identity_frame(expanded: pd.DataFrame, group_names: list[str]) -> pd.DataFrame:
    """Per (group, pid) figures from the expanded combinations."""
    import pandas as pd

    ncam = int(expanded["camera_code"].max()) + 1
    e = expanded.assign(
        rgb_cam=expanded["camera_code"].where(expanded["ir"] == 0),
        ir_cam=expanded["camera_code"].where(expanded["ir"] == 1),
        capture=expanded["date_code"] * ncam + expanded["camera_code"],
    )
    g = e.groupby(["group", "pid"], sort=True)
    ids = pd.DataFrame(
        {
            "images": g["n"].sum(),
            "outfits": g["clothes"].nunique(),
            "rgb_cameras": g["rgb_cam"].nunique(),
            "ir_cameras": g["ir_cam"].nunique(),
            "cameras": g["camera"].nunique(),
            "captures": g["capture"].nunique(),
            "dates": g["date"].nunique(),
        }
    ).reset_index()
    ids.insert(0, "group", pd.Categorical.from_codes(ids.pop("group"), categories=group_names))
    return ids.astype({f: "int64" for f in IDENTITY_FIGURES})


def _lookup(query_keys: np.ndarray, gallery_keys: np.ndarray, gallery_counts: np.ndarray) -> np.ndarray:
    """Total gallery count at each query key (0 where the key is absent)."""
    if len(gallery_keys) == 0:
        return np.zeros(len(query_keys), dtype=np.int64)
    uniq, inv = np.unique(gallery_keys, return_inverse=True)
    sums = np.bincount(inv, weights=gallery_counts).astype(np.int64)
    pos = np.minimum(np.searchsorted(uniq, query_keys), len(uniq) - 1)
    return np.where(uniq[pos] == query_keys, sums[pos], 0)


class _Pairs:
    """Positive-pair counting over the table's combinations, for any query and gallery subset.

    Keys are mixed-radix integers of the table-wide codes, so a lookup is a sorted search.
    """

    def __init__(self, combos: pd.DataFrame) -> None:
        nc = int(combos["clothes_code"].max()) + 1
        nk = int(combos["camera_code"].max()) + 1
        npid = int(combos["pid_code"].max()) + 1
        pid, clo, cam = (combos[c].to_numpy() for c in ("pid_code", "clothes_code", "camera_code"))
        outfit, n_outfits = _factorize(pid * nc + clo)
        self.keys = {  # name -> (keys, key-space size)
            "pid": (pid, npid),
            "outfit": (outfit, n_outfits),
            "pid_cam": (pid * nk + cam, npid * nk),
            "outfit_cam": (outfit * nk + cam, n_outfits * nk),
        }
        self.ir = combos["ir"].to_numpy()
        self.n = combos["n"].to_numpy()

    def positives(
        self, q_mask: np.ndarray, g_mask: np.ndarray, q_mod: int, g_mod: int, term: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Image counts of the ``q_mod`` queries and their numbers of ``g_mod`` gallery positives."""
        q = q_mask & (self.ir == q_mod)
        g = g_mask & (self.ir == g_mod)

        def count(name: str) -> np.ndarray:
            keys, size = self.keys[name]
            if size <= _DENSE_KEYS:
                return np.bincount(keys[g], weights=self.n[g], minlength=size).astype(np.int64)[keys[q]]
            return _lookup(keys[q], keys[g], self.n[g])

        pos = count("outfit") - count("outfit_cam")  # same clothes, another camera
        if term == "LT":  # same pid, another camera, other clothes
            pos = count("pid") - count("pid_cam") - pos
        return self.n[q], pos

    def coverage(self, scenario: str, q_mask: np.ndarray, g_mask: np.ndarray) -> tuple[int, int]:
        """(valid query images, candidate query images) of one scenario."""
        span, term = scenario.split("-")
        valid = queries = 0
        for q_mod, g_mod in _MOD_PAIRS[span]:
            n, pos = self.positives(q_mask, g_mask, q_mod, g_mod, term)
            queries += int(n.sum())
            valid += int(n[pos > 0].sum())
        return valid, queries


def _drop_dates(combos: pd.DataFrame) -> pd.DataFrame:
    """Combinations summed over dates (coverage does not depend on the date)."""
    import pandas as pd

    cols = ("cell", "pid_code", "clothes_code", "camera_code", "ir")
    key = np.zeros(len(combos), dtype=np.int64)
    for c in cols:
        v = combos[c].to_numpy()
        key = key * (int(v.max()) + 1) + v
    code, k = _factorize(key)
    first = np.empty(k, dtype=np.int64)
    first[code] = np.arange(len(code))
    out = pd.DataFrame({c: combos[c].to_numpy()[first] for c in cols})
    out["n"] = np.bincount(code, weights=combos["n"].to_numpy(), minlength=k).astype(np.int64)
    return out


def _coverage(combos: pd.DataFrame, groups: dict[str, np.ndarray], cells_pool: np.ndarray) -> pd.DataFrame:
    """Coverage rows for every group and scenario.

    Within a group every image is a query against the rest of the group, except ``test`` when the
    table carries AT-USTC flags 2-9: there the official pools are used (ST: flags 2/4 -> 6/8,
    LT: 3/5 -> 7/9), so ``valid_queries`` matches the evaluation's valid-query count; and a table
    with ``query``/``gallery`` splits scores its ``test`` group query -> gallery.
    """
    import pandas as pd

    combos = _drop_dates(combos)
    cell = combos["cell"].to_numpy()
    pool = cells_pool[cell]
    pairs = _Pairs(combos)
    rows = []
    for name, mask in groups.items():
        in_group = mask[cell]
        for scenario in SCENARIOS:
            if name == "test" and (pool >= 2).any():
                qf, gf = OFFICIAL_POOLS[scenario.split("-")[1]]
                q_mask, g_mask = np.isin(pool, qf), np.isin(pool, gf)
            elif name == "test" and "query" in groups and "gallery" in groups:
                q_mask, g_mask = groups["query"][cell], groups["gallery"][cell]
            else:
                q_mask = g_mask = in_group
            valid, queries = pairs.coverage(scenario, q_mask, g_mask)
            rows.append((name, scenario, valid > 0, valid, queries))
    return pd.DataFrame(rows, columns=["group", "scenario", "covered", "valid_queries", "queries"])


def table_stats(table: pd.DataFrame, label: str | None = None) -> TableStats:
    """Fig. 2 statistics of one annotation table, per group.

    Groups: ``all``; the splits ``train``, ``val``, ``test`` (query + gallery + test rows),
    ``query``, ``gallery``; and for AT-USTC flags the pools ``query-ST-rgb`` (flag 2) …
    ``gallery-LT-ir`` (flag 9). Only non-empty groups appear. A row's split is its ``split``
    column, or its flag when the split is ``unused`` (see :func:`effective_split`).

    Args:
        table: a validated annotation table (see :mod:`atustc.table`).
        label: the dataset name; defaults to the table's ``dataset`` value(s) joined by ``+``.

    Returns:
        The per-group summary, per-identity distributions and scenario coverage.

    Raises:
        AtustcError: the table has no rows or an unknown ``split`` value.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"dataset": "toy", "relpath": ["a", "b"], "pid": 1, "clothes": 1,
        ...                   "camera": [1, 2], "modality": "rgb", "date": 1, "frame": 0, "flag": -1,
        ...                   "split": "train"})
        >>> s = table_stats(t)
        >>> s.summary.loc[0, "identities"].item(), s.summary.loc[0, "cameras_per_id"].item()
        (1, 2.0)
        >>> s.coverage.query("group == 'all' and covered")["scenario"].tolist()
        ['DT-ST']
    """
    import pandas as pd

    if label is None:
        label = "+".join(sorted(table["dataset"].astype(str).unique())) or "empty"
    if len(table) == 0:
        raise AtustcError(f"{label}: the table has no rows")
    combos, cells = _collapse(table)
    groups = _group_cells(cells)
    names = list(groups)
    cells_pool = np.array([p for _, p in cells])
    expanded = _expand(combos, groups)
    ids = _identity_frame(expanded, names)
    coverage = _coverage(combos, groups, cells_pool)

    g = expanded.groupby("group", sort=True)
    outfit = expanded["pid_code"] * (int(expanded["clothes_code"].max()) + 1) + expanded["clothes_code"]
    totals = pd.DataFrame(
        {
            "images": g["n"].sum(),
            "rgb_images": expanded["n"].where(expanded["ir"] == 0, 0).groupby(expanded["group"]).sum(),
            "ir_images": expanded["n"].where(expanded["ir"] == 1, 0).groupby(expanded["group"]).sum(),
            "identities": g["pid"].nunique(),
            "outfits": outfit.groupby(expanded["group"]).nunique(),
            "cameras": g["camera"].nunique(),
            "rgb_cameras": expanded["camera"].where(expanded["ir"] == 0).groupby(expanded["group"]).nunique(),
            "ir_cameras": expanded["camera"].where(expanded["ir"] == 1).groupby(expanded["group"]).nunique(),
            "dates": g["date"].nunique(),
        }
    )
    means = ids.groupby("group", observed=False)[list(IDENTITY_FIGURES)].mean()
    means.columns = [f"{c}_per_id" for c in means.columns]
    summary = pd.concat([totals.reset_index(drop=True), means.reset_index(drop=True)], axis=1)
    summary = summary[[c for c in summary.columns if c != "images_per_id"] + ["images_per_id"]]
    covered = coverage[coverage["covered"]].groupby("group", sort=False)["scenario"].agg(" ".join)
    summary.insert(0, "group", names)
    summary.insert(0, "dataset", label)
    summary["scenarios"] = summary["group"].map(covered).fillna("")
    summary = summary.astype({c: "int64" for c in totals.columns})
    ids.insert(0, "dataset", label)
    coverage.insert(0, "dataset", label)
    return TableStats(label=label, summary=summary, identities=ids, coverage=coverage)
