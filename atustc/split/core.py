"""Splits: train / val / test tables and scenario pools, built from flags or drawn afresh.

A :class:`Split` is a value: :func:`make_split` builds it from an annotation table,
:func:`write_split` saves it as a folder and :func:`load_split` reads it back. Every split is
validated when made and when loaded (see :func:`validate_split`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from atustc.errors import AtustcError
from atustc.split.flags import VALID_FLAGS, assign_flags, flag_to_split, select_clip_pools
from atustc.split.scenarios import scenario_query_stats

if TYPE_CHECKING:
    import pandas as pd

Strategy = Literal["official", "resplit"]
STRATEGIES: tuple[str, ...] = ("official", "resplit")

#: list name -> flags; the per-scenario pools use the official loader's names
POOLS: dict[str, tuple[int, ...]] = {
    "train": (0,),
    "val": (1,),
    "test": tuple(range(2, 11)),
    "q_dt_st": (2,),
    "q_dt_lt": (3,),
    "q_nt_st": (4,),
    "q_nt_lt": (5,),
    "g_dt_st": (6,),
    "g_dt_lt": (7,),
    "g_nt_st": (8,),
    "g_nt_lt": (9,),
    "q_ad_st": (2, 4),
    "q_ad_lt": (3, 5),
    "g_ad_st": (6, 8),
    "g_ad_lt": (7, 9),
}
_FILES = {
    "table": "table.parquet",
    "train": "train.parquet",
    "val": "val.parquet",
    "test": "test.parquet",
    "val_protocol": "val-protocol.parquet",
}


@dataclass
class Split:
    """A validated split.

    Attributes:
        table: every row, with ``flag`` and ``split`` set (0 train, 1 val, 2-5 query,
            6-9 gallery, 10 test).
        train, val, test: the rows of flag 0, flag 1 and flags 2-10.
        val_protocol: the val rows re-flagged 2-10 by the per-clip rule, so that the six
            scenarios can score validation for model selection.
        info: strategy, seed, source table hash, dataset root and a summary.
    """

    table: pd.DataFrame
    train: pd.DataFrame = field(repr=False)
    val: pd.DataFrame = field(repr=False)
    test: pd.DataFrame = field(repr=False)
    val_protocol: pd.DataFrame = field(repr=False)
    info: dict[str, Any]

    def pool(self, name: str) -> pd.DataFrame:
        """The rows of a named pool of :data:`POOLS` (e.g. ``"q_ad_lt"``)."""
        if name not in POOLS:
            raise AtustcError(f"unknown pool {name!r}; pools: {', '.join(POOLS)}")
        return _rows(self.table, POOLS[name])


def _rows(table: pd.DataFrame, flags: tuple[int, ...]) -> pd.DataFrame:
    out = table[table["flag"].isin(flags)]
    return out.reset_index(drop=True)


def _with_flags(table: pd.DataFrame, flags: np.ndarray) -> pd.DataFrame:
    out = table.copy()
    out["flag"] = np.asarray(flags, dtype=np.int64)
    out["split"] = flag_to_split(out["flag"].to_numpy()).astype(str)
    return out


def _clip_flags(rows: pd.DataFrame, seed: int) -> np.ndarray:
    return select_clip_pools(
        *(rows[c].to_numpy() for c in ("pid", "camera", "clothes")),
        rows["modality"].to_numpy().astype(str) == "ir",
        rows["date"].to_numpy(), rows["frame"].to_numpy(), seed=seed, relpath=rows["relpath"].to_numpy(),
    )


def make_split(
    table: pd.DataFrame,
    strategy: Strategy = "official",
    seed: int = 0,
    *,
    root: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
) -> Split:
    """Build and validate a split of an annotation table.

    Args:
        table: a validated annotation table.
        strategy: ``"official"`` reads the AT-USTC flags; ``"resplit"`` draws a fresh 1:1
            identity split with ``val_fraction`` validation identities and new per-clip flags.
        seed: the seed of the resplit draw and of the validation protocol's selection.
        root: the dataset root the table's ``relpath`` values are relative to (recorded).
        val_fraction: validation share of the train identities (resplit only).

    Returns:
        The split.

    Raises:
        AtustcError: an unknown strategy, a flag outside 0-10 under ``official``, or a split
            that fails :func:`validate_split`.
    """
    from atustc.table import table_hash, validate_table

    if strategy not in STRATEGIES:
        raise AtustcError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    table = validate_table(table)
    if len(table) == 0:
        raise AtustcError("the table is empty: nothing to split")
    if strategy == "official":
        bad = ~table["flag"].isin(VALID_FLAGS).to_numpy()
        if bad.any():
            i = int(bad.argmax())
            raise AtustcError(
                f"row {i} ({table['relpath'].iloc[i]}): flag {table['flag'].iloc[i]} is not an AT-USTC flag 0-10; "
                "use --strategy resplit"
            )
        flags = table["flag"].to_numpy()
    else:
        flags = assign_flags(
            *(table[c].to_numpy() for c in ("pid", "camera", "clothes")),
            table["modality"].to_numpy().astype(str) == "ir",
            table["date"].to_numpy(), table["frame"].to_numpy(),
            seed=seed, val_fraction=val_fraction, relpath=table["relpath"].to_numpy(),
        )
    full = _with_flags(table, flags)
    val = _rows(full, (1,))
    val_protocol = _with_flags(val, _clip_flags(val, seed)) if len(val) else val.copy()
    split = Split(
        table=full,
        train=_rows(full, (0,)),
        val=val,
        test=_rows(full, POOLS["test"]),
        val_protocol=val_protocol,
        info={
            "strategy": strategy,
            "seed": int(seed),
            "source_table_hash": table_hash(table),
            "root": None if root is None else str(Path(root).resolve()),
        },
    )
    split.info["summary"] = validate_split(split)
    return split


def validate_split(split: Split) -> dict[str, Any]:
    """Check a split and return its summary counts.

    Checks: train (flags 0-1) and test (flags 2-10) identities are disjoint; no image (same
    pid, clothes, camera, date and frame) sits in two pools; every scenario has at least one
    query with a valid positive.

    Returns:
        ``{"images": {...}, "identities": {...}, "scenarios": {...}, "val_scenarios": {...}}``.

    Raises:
        AtustcError: the first failed check, naming the identity, image or scenario.
    """
    t = split.table
    flags = t["flag"].to_numpy()
    train_ids = np.unique(t["pid"].to_numpy()[flags <= 1])
    test_ids = np.unique(t["pid"].to_numpy()[flags >= 2])
    both = np.intersect1d(train_ids, test_ids)
    if len(both):
        rows = t[(t["pid"] == both[0])]
        ex_tr = rows[rows["flag"] <= 1]["relpath"].iloc[0]
        ex_te = rows[rows["flag"] >= 2]["relpath"].iloc[0]
        raise AtustcError(
            f"{len(both)} identities are in both train and test, e.g. pid {both[0]} ({ex_tr} vs {ex_te})"
        )
    keys = ["pid", "clothes", "camera", "date", "frame"]
    known = t[(t["frame"] >= 0) & (t["flag"].between(2, 9))]
    dup = known.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        d = known[dup].sort_values(keys + ["relpath"])
        first = d.iloc[0]
        other = d[(d[keys] == first[keys]).all(axis=1)]
        raise AtustcError(
            f"image in two pools: {other['relpath'].iloc[0]} (flag {other['flag'].iloc[0]}) and "
            f"{other['relpath'].iloc[1]} (flag {other['flag'].iloc[1]}) are the same pid, clothes, camera, "
            "date and frame"
        )
    if len(split.test) == 0:
        raise AtustcError("the split has no test images (flags 2-10)")
    stats = scenario_query_stats(t)
    for name, s in stats.items():
        if s["valid"] == 0:
            raise AtustcError(
                f"scenario {name} has no query with a valid positive "
                f"({s['queries']} queries, {s['gallery']} gallery images)"
            )
    return {
        "images": {k: int(len(v)) for k, v in (("all", t), ("train", split.train), ("val", split.val),
                                                ("test", split.test))},
        "identities": {"train": int(split.train["pid"].nunique()), "val": int(split.val["pid"].nunique()),
                       "test": int(len(test_ids))},
        "scenarios": stats,
        "val_scenarios": scenario_query_stats(split.val_protocol) if len(split.val_protocol) else {},
    }


def write_split(split: Split, out_dir: str | os.PathLike[str]) -> Path:
    """Write a split folder: tables, ``lists/<pool>.txt`` (relpaths) and ``split.json``.

    Every file is written atomically. Returns the folder.
    """
    from atustc.io import write_json_atomic, write_text_atomic
    from atustc.table import save_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for attr, name in _FILES.items():
        save_table(getattr(split, attr), out / name)
    for pool in POOLS:
        rel = split.pool(pool)["relpath"].tolist()
        write_text_atomic(out / "lists" / f"{pool}.txt", "".join(r + "\n" for r in rel))
    write_json_atomic(out / "split.json", split.info)
    return out


def load_split(split_dir: str | os.PathLike[str]) -> Split:
    """Read a split folder written by :func:`write_split` and validate it again.

    Raises:
        AtustcError: a missing file, a broken table, or a failed validation.
    """
    from atustc.io import read_json
    from atustc.table import load_table

    d = Path(split_dir)
    if not (d / "split.json").is_file():
        raise AtustcError(f"{d}: not a split folder (no split.json); create one with `atustc split TABLE -o {d}`")
    tables = {attr: load_table(d / name) for attr, name in _FILES.items()}
    split = Split(**tables, info=read_json(d / "split.json"))
    split.info["summary"] = validate_split(split)
    return split


def load_split_for(
    table_path: str | os.PathLike[str], split_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> tuple[pd.DataFrame, Split, str, Path]:
    """Load a table and its split, check they belong together, and find the image root.

    The root is ``root`` if given, else the split's recorded root, else the table manifest's.

    Returns:
        ``(table, split, table_hash, root)``.

    Raises:
        AtustcError: unreadable table or split, a split made from another table, no image root.
    """
    from atustc.table import dataset_root, load_table, table_hash

    table = load_table(table_path)
    split = load_split(split_dir)
    src_hash = split.info.get("source_table_hash")
    thash = table_hash(table)
    if src_hash is not None and src_hash != thash:
        raise AtustcError(f"split {split_dir} was made from another table (hash {src_hash}, {table_path} has {thash})")
    if root is not None:
        root_path = Path(root)
    elif split.info.get("root"):
        root_path = Path(split.info["root"])
    else:
        root_path = dataset_root(table_path)
    return table, split, thash, root_path
