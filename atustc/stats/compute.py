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
  one positive for it under the scenario's rules, as written in ``protocols/atustc.toml`` and
  counted by :mod:`atustc.coverage` (same pid, another camera, the scenario's modality pair and
  clothes rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atustc.errors import AtustcError
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


@dataclass(frozen=True)
class TableStats:
    """Statistics of one table.

    Attributes:
        label: the dataset name (the table's ``dataset`` column).
        summary: one row per group: totals, per-identity means, covered scenarios.
        identities: one row per (group, pid): the distributions behind the means.
        coverage: one row per (protocol, group, scenario): ``covered``, ``valid_queries``,
            ``queries`` (protocol ``atustc``: the six scenarios in every group).
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
        "flag": table["flag"].to_numpy(),
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


def _combo_table(combos: pd.DataFrame, cells: list[tuple[str, int]], dataset: str) -> pd.DataFrame:
    """The combinations as a table that protocol pools can select from (one row per combination)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "dataset": dataset,
            "pid": combos["pid"].to_numpy(),
            "clothes": combos["clothes"].to_numpy(),
            "camera": combos["camera"].to_numpy(),
            "modality": np.where(combos["ir"].to_numpy() == 1, "ir", "rgb"),
            "date": combos["date"].to_numpy(),
            "flag": combos["flag"].to_numpy(),
            "split": np.array([s for s, _ in cells], dtype=object)[combos["cell"].to_numpy()],
        }
    )


def _coverage(
    combos: pd.DataFrame, groups: dict[str, np.ndarray], cells: list[tuple[str, int]], dataset: str
) -> pd.DataFrame:
    """Coverage rows for every group and scenario, counted by :mod:`atustc.coverage`.

    The six scenarios are those of ``protocols/atustc.toml`` (their junk rules). Within a group
    every image is a query against the rest of the group, except ``test``: when the table carries
    AT-USTC flags 2-9 the protocol's own pools are used (ST: flags 2/4 -> 6/8, LT: 3/5 -> 7/9), so
    ``valid_queries`` matches the evaluation's valid-query count; else a table with
    ``query``/``gallery`` splits scores its ``test`` group query -> gallery. A registered dataset
    whose default protocol is another one also gets that protocol's scenarios on its own pools
    (rows of group ``test``, column ``protocol``).
    """
    import pandas as pd

    from atustc.coverage import count_scenario, protocol_counts, table_labels
    from atustc.protocol import load_protocol

    six = load_protocol("atustc")
    full = _combo_table(combos, cells, dataset)
    read = sorted({"pid", "camera", "modality", "flag", *(r.column for s in six.scenarios for r in s.rules())})
    coarse = combos.assign(**{c: full[c].to_numpy() for c in ("modality", "split")})
    coarse = coarse.groupby(["cell", *read], sort=False, as_index=False)["n"].sum()  # what the rules read
    frame = _combo_table(coarse.assign(ir=(coarse["modality"] == "ir").astype(np.int64), date=-1), cells, dataset)
    labels = table_labels(frame)
    weight = coarse["n"].to_numpy()
    cell = coarse["cell"].to_numpy()
    flagged = bool(((frame["flag"] >= 2) & (frame["flag"] <= 9)).any())
    rows = []
    for name, mask in groups.items():
        in_group = mask[cell]
        for scenario in six.scenarios:
            if name == "test" and flagged:
                q, g = scenario.query.select(frame), scenario.gallery.select(frame)
            elif name == "test" and "query" in groups and "gallery" in groups:
                q, g = groups["query"][cell], groups["gallery"][cell]
            else:
                q = g = in_group
            c = count_scenario(scenario, labels, q, g, weight)
            rows.append((six.name, name, scenario.name, c.valid > 0, c.valid, c.queries))
    default = _default_protocol(dataset)
    if default is not None and default != six.name and "test" in groups:
        proto = load_protocol(default)
        for sname, c in protocol_counts(proto, full, combos["n"].to_numpy()).items():
            rows.append((proto.name, "test", sname, c.valid > 0, c.valid, c.queries))
    return pd.DataFrame(rows, columns=["protocol", "group", "scenario", "covered", "valid_queries", "queries"])


def _default_protocol(dataset: str) -> str | None:
    """The default protocol of a registered dataset (``None`` for an unregistered name)."""
    from atustc.datasets import get_dataset

    try:
        return get_dataset(dataset).protocol
    except AtustcError:
        return None


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
    try:
        combos, cells = _collapse(table)
    except AtustcError as exc:  # a bad column value: name the table
        raise AtustcError(f"{label}: {exc.message}") from None
    groups = _group_cells(cells)
    names = list(groups)
    expanded = _expand(combos, groups)
    ids = _identity_frame(expanded, names)
    datasets = table["dataset"].unique()
    coverage = _coverage(combos, groups, cells, str(datasets[0]) if len(datasets) == 1 else "")

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
    six = coverage[coverage["covered"] & (coverage["protocol"] == "atustc")]
    covered = six.groupby("group", sort=False)["scenario"].agg(" ".join)
    summary.insert(0, "group", names)
    summary.insert(0, "dataset", label)
    summary["scenarios"] = summary["group"].map(covered).fillna("")
    summary = summary.astype({c: "int64" for c in totals.columns})
    ids.insert(0, "dataset", label)
    coverage.insert(0, "dataset", label)
    return TableStats(label=label, summary=summary, identities=ids, coverage=coverage)
