"""Splits: train / val / test tables and query / gallery pools, for any registered dataset.

A :class:`Split` is a value: :func:`make_split` builds it from an annotation table;
:mod:`atustc.split.store` saves it as a folder and reads it back. Every split is validated when
made and when loaded (see :func:`validate_split`).

How a dataset is split follows its :class:`~atustc.datasets.DatasetSpec` (looked up by the
table's ``dataset`` column):

- ``validation = "flags"`` (AT-USTC): the official split reads the release's flags (0 train,
  1 val, 2-9 query/gallery pools, 10 test); ``resplit`` draws new flags
  (:mod:`atustc.split.flags`); the validation protocol re-flags the val rows 2-10 by the
  per-clip rule.
- ``validation = "fraction"``: the official split keeps the release's ``split`` column and takes
  a seeded share of the train identities as validation; their rows get query/gallery roles for
  the validation protocol (:mod:`atustc.split.assign`); ``resplit`` only where the spec allows it.
- ``validation = "release"``: as ``fraction``, but the validation identities are the release's own
  (the indexer's ``val`` rows) and none are drawn from the train identities.

``split.json`` records the dataset and its protocols (:class:`~atustc.split.protocols.SplitProtocols`);
the validation protocol is the default one, scored on ``val-protocol.parquet``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from atustc.errors import AtustcError
from atustc.split.flags import VALID_FLAGS, assign_flags, flag_to_split, select_clip_pools
from atustc.split.protocols import SplitProtocols

if TYPE_CHECKING:
    import pandas as pd

    from atustc.datasets import DatasetSpec

Strategy = Literal["official", "resplit"]
STRATEGIES: tuple[str, ...] = ("official", "resplit")
TrainSet = Literal["train", "train+val"]
#: What a run trains on where the release has its own validation set (``validation = "release"``,
#: MSMT17's ``list_val.txt``): ``train`` keeps it for validation (torchreid's default);
#: ``train+val`` trains on both, the release's published train set (torchreid's ``combineall``),
#: and leaves no validation rows (best.pt is then the last weights).
TRAIN_SETS: tuple[str, ...] = ("train", "train+val")

#: AT-USTC list name -> flags; the per-scenario pools use the official loader's names
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
#: list name -> ``split`` values, for datasets without AT-USTC flags
SPLIT_LISTS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("val",),
    "test": ("query", "gallery", "test"),
    "query": ("query",),
    "gallery": ("gallery",),
}
TRAIN_SPLITS: tuple[str, ...] = ("train", "val")
TEST_SPLITS: tuple[str, ...] = SPLIT_LISTS["test"]


@dataclass
class Split:
    """A validated split.

    Attributes:
        table: every row, with ``split`` set (and for AT-USTC ``flag``: 0 train, 1 val, 2-5
            query, 6-9 gallery, 10 test).
        train, val, test: the rows of split ``train``, ``val`` and ``query``/``gallery``/``test``.
        val_protocol: the val rows with query/gallery roles (AT-USTC: re-flagged 2-10 by the
            per-clip rule), so that the validation protocol can score them for model selection.
        info: dataset, protocols, strategy, seed, source table hash, dataset root and a summary.
    """

    table: pd.DataFrame
    train: pd.DataFrame = field(repr=False)
    val: pd.DataFrame = field(repr=False)
    test: pd.DataFrame = field(repr=False)
    val_protocol: pd.DataFrame = field(repr=False)
    info: dict[str, Any]

    @property
    def uses_flags(self) -> bool:
        """Whether the split is defined by AT-USTC flags (a split.json without the record is one)."""
        return self.info.get("validation", "flags") == "flags"

    @property
    def protocols(self) -> SplitProtocols:
        """The protocols recorded in ``split.json``."""
        return SplitProtocols.from_info(self.info)

    def lists(self) -> dict[str, np.ndarray]:
        """List name -> boolean mask over :attr:`table` (:data:`POOLS` for AT-USTC, else :data:`SPLIT_LISTS`)."""
        if self.uses_flags:
            flag = self.table["flag"].to_numpy()
            return {name: np.isin(flag, flags) for name, flags in POOLS.items()}
        split = self.table["split"].to_numpy()
        return {name: np.isin(split, values) for name, values in SPLIT_LISTS.items()}

    def pool(self, name: str) -> pd.DataFrame:
        """The rows of a named list (e.g. ``"q_ad_lt"`` for AT-USTC, ``"query"`` elsewhere)."""
        masks = self.lists()
        if name not in masks:
            raise AtustcError(f"unknown pool {name!r}; pools: {', '.join(masks)}")
        return self.table[masks[name]].reset_index(drop=True)


def _rows(table: pd.DataFrame, splits: tuple[str, ...]) -> pd.DataFrame:
    return table[table["split"].isin(splits)].reset_index(drop=True)


def _with_flags(table: pd.DataFrame, flags: np.ndarray) -> pd.DataFrame:
    out = table.copy()
    out["flag"] = np.asarray(flags, dtype=np.int64)
    out["split"] = flag_to_split(out["flag"].to_numpy()).astype(str)
    return out


def _clip_flags(rows: pd.DataFrame, seed: int) -> np.ndarray:
    return select_clip_pools(
        *(rows[c].to_numpy() for c in ("pid", "camera", "clothes")),
        rows["modality"].to_numpy().astype(str) == "ir",
        rows["date"].to_numpy(),
        rows["frame"].to_numpy(),
        seed=seed,
        relpath=rows["relpath"].to_numpy(),
    )


def dataset_of(table: pd.DataFrame, source: str = "table") -> DatasetSpec:
    """The registered dataset a table belongs to (its one ``dataset`` value).

    Raises:
        AtustcError: several datasets in one table, or an unregistered name.
    """
    from atustc.datasets import get_dataset

    names = sorted(table["dataset"].astype(str).unique())
    if len(names) != 1:
        raise AtustcError(
            f"{source}: holds rows of {len(names)} datasets ({', '.join(names)}); split one dataset at a time"
        )
    try:
        return get_dataset(names[0])
    except AtustcError as exc:
        raise AtustcError(
            f"{source}: {exc.message}; pass --dataset NAME to split it by another dataset's rules"
        ) from None


def make_split(
    table: pd.DataFrame,
    strategy: Strategy = "official",
    seed: int = 0,
    *,
    root: str | os.PathLike[str] | None = None,
    val_fraction: float | None = None,
    dataset: str | None = None,
    source: str = "table",
    train_set: TrainSet = "train",
) -> Split:
    """Build and validate a split of an annotation table.

    Args:
        table: a validated annotation table of one registered dataset.
        strategy: ``"official"`` keeps the release's split (AT-USTC: its flags);
            ``"resplit"`` draws a fresh 1:1 identity split (datasets whose spec allows it).
        seed: the seed of every draw (resplit, validation identities, validation protocol).
        root: the dataset root the table's ``relpath`` values are relative to (recorded).
        val_fraction: validation share of the train identities (default: the dataset's;
            AT-USTC's official split takes validation from its flags).
        dataset: the registered dataset whose rules and protocols apply (default: the one
            named by the table's ``dataset`` column).
        source: what the messages call the table (its file name, from the CLI).
        train_set: ``train`` or ``train+val`` (see :data:`TRAIN_SETS`; only a dataset with a
            release validation set has a choice); recorded in ``info["train_set"]``.

    Returns:
        The split.

    Raises:
        AtustcError: an unknown strategy, a resplit of a dataset that has none, a flag outside
            0-10 in an official AT-USTC split, or a split that fails :func:`validate_split`.
    """
    from atustc.table import table_hash, validate_table

    if strategy not in STRATEGIES:
        raise AtustcError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    table = validate_table(table)
    if len(table) == 0:
        raise AtustcError(f"{source}: the table is empty: nothing to split")
    source_hash = table_hash(table)
    if dataset is None:
        spec = dataset_of(table, source)
    else:
        from atustc.datasets import get_dataset

        spec = get_dataset(dataset)
    if strategy == "resplit" and not spec.resplit:
        raise AtustcError(
            f"--strategy resplit: dataset {spec.name} keeps its official split only "
            "(its protocol relies on the release's query/gallery choice)"
        )
    if train_set not in TRAIN_SETS:
        raise AtustcError(f"--train-set must be one of {', '.join(TRAIN_SETS)}, got {train_set!r}")
    if train_set == "train+val":
        if spec.validation != "release":
            raise AtustcError(
                f"--train-set train+val: dataset {spec.name} has no release validation set to add "
                "(its validation identities are drawn from train)"
            )
        table = table.assign(split=table["split"].replace("val", "train"))
    frac = spec.val_fraction if val_fraction is None else float(val_fraction)
    if spec.validation == "flags":
        full, val_protocol = _flag_split(table, strategy, seed, frac, source)
    else:
        from atustc.split.assign import fraction_splits

        if spec.validation == "release" and train_set == "train" and not (table["split"] == "val").any():
            raise AtustcError(
                f"{source}: dataset {spec.name} takes its validation identities from the release's val "
                "rows, and the table has none"
            )
        draw = 0.0 if spec.validation == "release" else frac
        split_col, val_roles = fraction_splits(table, resplit=strategy == "resplit", seed=seed, val_fraction=draw)
        full = table.copy()
        full["split"] = split_col.astype(str)
        val_protocol = _rows(full, ("val",))
        val_protocol["split"] = val_roles.astype(str)
    protocols = SplitProtocols(default=spec.protocol, scored=spec.protocols, validation=spec.protocol)
    split = Split(
        table=full,
        train=_rows(full, ("train",)),
        val=_rows(full, ("val",)),
        test=_rows(full, TEST_SPLITS),
        val_protocol=val_protocol,
        info={
            "dataset": spec.name,
            "protocols": protocols.to_dict(),
            "validation": spec.validation,
            "val_fraction": frac,
            "strategy": strategy,
            "train_set": train_set,
            "seed": int(seed),
            "source_table_hash": source_hash,
            "root": None if root is None else str(Path(root).resolve()),
        },
    )
    split.info["summary"] = validate_split(split, source)
    return split


def _flag_split(
    table: pd.DataFrame, strategy: str, seed: int, val_fraction: float, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AT-USTC: the table re-flagged (official: as released) and its validation protocol rows."""
    if strategy == "official":
        bad = ~table["flag"].isin(VALID_FLAGS).to_numpy()
        if bad.any():
            i = int(bad.argmax())
            raise AtustcError(
                f"{source}: row {i} ({table['relpath'].iloc[i]}): flag {table['flag'].iloc[i]} is not an AT-USTC flag 0-10; "
                "use --strategy resplit"
            )
        flags = table["flag"].to_numpy()
    else:
        flags = assign_flags(
            *(table[c].to_numpy() for c in ("pid", "camera", "clothes")),
            table["modality"].to_numpy().astype(str) == "ir",
            table["date"].to_numpy(),
            table["frame"].to_numpy(),
            seed=seed,
            val_fraction=val_fraction,
            relpath=table["relpath"].to_numpy(),
        )
    full = _with_flags(table, flags)
    val = _rows(full, ("val",))
    return full, (_with_flags(val, _clip_flags(val, seed)) if len(val) else val.copy())


def validate_split(split: Split, source: str = "split") -> dict[str, Any]:
    """Check a split and return its summary counts.

    Checks: train (``train``/``val``) and test (``query``/``gallery``/``test``) identities are
    disjoint; for AT-USTC, no image (same pid, clothes, camera, date and frame) sits in two
    pools; every scenario of every protocol the split is scored on has at least one query with
    a valid positive, counted by the protocol engine (:mod:`atustc.coverage`). Messages start
    with ``source``, the table or split folder the split came from.

    Returns:
        ``{"images", "identities", "scenarios" (default protocol), "protocols" ({protocol:
        {scenario: counts}} for every scored one), "val_scenarios" (validation protocol on the
        validation rows)}``; counts are ``{"queries", "valid", "gallery"}``.

    Raises:
        AtustcError: the first failed check, naming the identity, image, protocol or scenario.
    """
    from atustc.coverage import protocol_counts
    from atustc.protocol import load_protocol

    t = split.table
    side = t["split"].to_numpy()
    pid = t["pid"].to_numpy()
    train_ids = np.unique(pid[np.isin(side, TRAIN_SPLITS)])
    test_ids = np.unique(pid[np.isin(side, TEST_SPLITS)])
    both = np.intersect1d(train_ids, test_ids)
    if len(both):
        rows = t[(t["pid"] == both[0])]
        ex_tr = rows[rows["split"].isin(TRAIN_SPLITS)]["relpath"].iloc[0]
        ex_te = rows[rows["split"].isin(TEST_SPLITS)]["relpath"].iloc[0]
        raise AtustcError(
            f"{source}: {len(both)} identities are in both train and test, e.g. pid {both[0]} ({ex_tr} vs {ex_te})"
        )
    if split.uses_flags:
        _check_no_image_in_two_pools(t, source)
    if len(split.test) == 0:
        what = "flags 2-10" if split.uses_flags else "split query, gallery or test"
        raise AtustcError(f"{source}: the split has no test images (no rows with {what})")
    protocols = split.protocols
    counts = {}
    for name in protocols.scored:
        counts[name] = {k: c.to_dict() for k, c in protocol_counts(load_protocol(name), t).items()}
        for scenario, c in counts[name].items():
            if c["valid"] == 0:
                raise AtustcError(
                    f"{source}: protocol {name}: scenario {scenario} has no query with a valid positive "
                    f"({c['queries']} queries, {c['gallery']} gallery images)"
                )
    vp = split.val_protocol
    val_counts = protocol_counts(load_protocol(protocols.validation), vp) if len(vp) else {}
    return {
        "images": {
            k: int(len(v)) for k, v in (("all", t), ("train", split.train), ("val", split.val), ("test", split.test))
        },
        "identities": {
            "train": int(split.train["pid"].nunique()),
            "val": int(split.val["pid"].nunique()),
            "test": int(len(test_ids)),
        },
        "scenarios": counts[protocols.default],
        "protocols": counts,
        "val_scenarios": {k: c.to_dict() for k, c in val_counts.items()},
    }


def _check_no_image_in_two_pools(t: pd.DataFrame, source: str) -> None:
    """AT-USTC: no image (pid, clothes, camera, date, frame) in two of the query/gallery pools (flags 2-9)."""
    keys = ["pid", "clothes", "camera", "date", "frame"]
    known = t[(t["frame"] >= 0) & (t["flag"].between(2, 9))]
    dup = known.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        d = known[dup].sort_values(keys + ["relpath"])
        first = d.iloc[0]
        other = d[(d[keys] == first[keys]).all(axis=1)]
        raise AtustcError(
            f"{source}: image in two pools: {other['relpath'].iloc[0]} (flag {other['flag'].iloc[0]}) and "
            f"{other['relpath'].iloc[1]} (flag {other['flag'].iloc[1]}) are the same pid, clothes, camera, "
            "date and frame"
        )
