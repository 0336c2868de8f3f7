"""Split statistics and the split audit (the record tests use as an oracle).

:func:`summary_frame` gives the paper-style table (identities, outfits per identity, RGB and IR
cameras per identity, images) for train, val, test and every pool. :func:`describe_split`
audits what two sets share (identities, outfits, images, dates, modalities) and what the
scenarios can score. An image is identified by (pid, clothes, camera, date, frame), so the same
picture published under two names counts as shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from atustc.split.core import SPLIT_LISTS, Split
from atustc.split.keys import row_keys

if TYPE_CHECKING:
    import pandas as pd

#: set name -> flags, for the audit of an AT-USTC split (other datasets: :data:`SPLIT_LISTS`)
AUDIT_SETS: dict[str, tuple[int, ...]] = {
    "train": (0,),
    "val": (1,),
    "test": tuple(range(2, 11)),
    "query": (2, 3, 4, 5),
    "gallery": (6, 7, 8, 9),
    "st_query": (2, 4),
    "st_gallery": (6, 8),
    "lt_query": (3, 5),
    "lt_gallery": (7, 9),
}
AUDIT_PAIRS: tuple[tuple[str, str], ...] = (
    ("train", "val"),
    ("train", "test"),
    ("val", "test"),
    ("query", "gallery"),
    ("st_query", "st_gallery"),
    ("lt_query", "lt_gallery"),
)


def _uniq(x: np.ndarray) -> np.ndarray:
    """Sorted unique values (by sorting: faster than ``np.unique`` on large int arrays here)."""
    s = np.sort(x)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def _unique_count(*cols: np.ndarray) -> int:
    return int(len(_uniq(row_keys(*cols))))


def _arrays(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {c: rows[c].to_numpy(dtype=np.int64) for c in ("pid", "clothes", "camera", "flag")}
    out["ir"] = (rows["modality"] == "ir").to_numpy(dtype=bool)
    return out


def _stats(a: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float | int]:
    pid, clothes, cam, ir = a["pid"][mask], a["clothes"][mask], a["camera"][mask], a["ir"][mask]
    n_ids = int(len(_uniq(pid)))
    per_id = max(n_ids, 1)
    return {
        "identities": n_ids,
        "outfits_per_id": _unique_count(pid, clothes) / per_id,
        "rgb_cams_per_id": _unique_count(pid[~ir], cam[~ir]) / per_id,
        "ir_cams_per_id": _unique_count(pid[ir], cam[ir]) / per_id,
        "images": int(mask.sum()),
        "rgb_images": int((~ir).sum()),
        "ir_images": int(ir.sum()),
    }


def set_stats(rows: pd.DataFrame) -> dict[str, float | int]:
    """Identities, mean outfits / RGB cameras / IR cameras per identity, and image counts."""
    return _stats(_arrays(rows), np.ones(len(rows), dtype=bool))


def summary_frame(split: Split) -> pd.DataFrame:
    """The paper-style statistics of every list of a split (:meth:`Split.lists`), one row each."""
    import pandas as pd

    a = _arrays(split.table)
    return pd.DataFrame([{"set": name, **_stats(a, mask)} for name, mask in split.lists().items()])


def _audit_masks(split: Split) -> dict[str, np.ndarray]:
    if split.uses_flags:
        flag = split.table["flag"].to_numpy()
        return {name: np.isin(flag, flags) for name, flags in AUDIT_SETS.items()}
    values = split.table["split"].to_numpy()
    return {name: np.isin(values, splits) for name, splits in SPLIT_LISTS.items()}


def _shared(a: np.ndarray, b: np.ndarray) -> int:
    """How many distinct values ``a`` and ``b`` have in common."""
    ua, ub = _uniq(a), _uniq(b)
    if len(ua) == 0 or len(ub) == 0:
        return 0
    i = np.clip(np.searchsorted(ub, ua), 0, len(ub) - 1)
    return int((ub[i] == ua).sum())


def _modalities(ir: np.ndarray) -> list[str]:
    return [m for m, present in (("ir", ir.any()), ("rgb", (~ir).any())) if present]


def _pair(keys: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """What the row sets ``a`` and ``b`` (bool masks) share."""
    ids_a, ids_b = _uniq(keys["pid"][a]), _uniq(keys["pid"][b])
    n_shared = _shared(ids_a, ids_b)
    if n_shared == 0:
        relation = "disjoint"
    elif n_shared == len(ids_a) == len(ids_b):
        relation = "same"
    else:
        relation = "overlapping"
    known = keys["frame"] >= 0  # an image is identified by pid, clothes, camera, date and frame
    dates = keys["date"] >= 0
    return {
        "identity_relation": relation,
        "shared_identities": n_shared,
        "shared_outfits": _shared(keys["outfit"][a], keys["outfit"][b]),
        "shared_images": _shared(keys["image"][a & known], keys["image"][b & known]),
        "shared_dates": _shared(keys["date"][a & dates], keys["date"][b & dates]),
        "modalities": [_modalities(keys["ir"][a]), _modalities(keys["ir"][b])],
    }


def describe_split(split: Split) -> dict[str, Any]:
    """Audit a split.

    Returns:
        ``{"strategy", "seed", "sets": {name: set_stats}, "pairs": {"a|b": {identity_relation,
        shared_identities, shared_outfits, shared_images, shared_dates, modalities}},
        "kind": "disjoint-set" | "closed-set" | "open-set", "scenarios": {...},
        "val_scenarios": {...}}``. ``kind`` is the relation of train and test identities; the
        scenario counts are those of the split's summary (protocol engine).
    """
    t = split.table
    cols = {c: t[c].to_numpy(dtype=np.int64) for c in ("pid", "clothes", "camera", "date", "frame", "flag")}
    keys = {
        "pid": cols["pid"],
        "date": cols["date"],
        "frame": cols["frame"],
        "outfit": row_keys(cols["pid"], cols["clothes"]),
        "image": row_keys(*(cols[c] for c in ("pid", "clothes", "camera", "date", "frame"))),
        "ir": (t["modality"] == "ir").to_numpy(dtype=bool),
    }
    masks = _audit_masks(split)
    arrays = _arrays(t)
    pairs = {f"{a}|{b}": _pair(keys, masks[a], masks[b]) for a, b in AUDIT_PAIRS if a in masks and b in masks}
    rel = pairs["train|test"]["identity_relation"]
    kind = {"disjoint": "disjoint-set", "same": "closed-set"}.get(rel, "open-set")
    summary = split.info["summary"]
    return {
        "dataset": split.info.get("dataset", "atustc"),
        "strategy": split.info.get("strategy"),
        "seed": split.info.get("seed"),
        "sets": {name: _stats(arrays, mask) for name, mask in masks.items()},
        "pairs": pairs,
        "kind": kind,
        "scenarios": summary["scenarios"],
        "val_scenarios": summary["val_scenarios"],
        "test_flags": {int(f): int(n) for f, n in zip(*np.unique(split.test["flag"], return_counts=True))},
    }
