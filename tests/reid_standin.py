"""Test helpers for the six ReID dataset indexers and their protocols: miniatures, tables, features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from atustc.datasets import cuhk03, deepchange, get_dataset, ltcc, market1501, msmt17, prcc
from atustc.table import validate_table

MODULES = {m.SPEC.name: m for m in (market1501, cuhk03, msmt17, prcc, ltcc, deepchange)}


def index_root(name: str, root: Path) -> pd.DataFrame:
    """The validated table of ``root`` indexed as dataset ``name`` (its registered scan, no manifest)."""
    scan = get_dataset(name).scan(root)
    return validate_table(pd.DataFrame(scan.columns), root)


def miniature_root(out: Path, name: str) -> Path:
    """The ROOT to index inside a written miniature (CUHK03-NP: its ``detected`` layout)."""
    return out / "detected" if name == "cuhk03" else out


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (for determinism checks)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def features_for(table: pd.DataFrame, seed: int = 0, dim: int = 16, nonzero: int = 4):
    """Single-head features with exact cosine scores (entries +-1 on ``nonzero`` dims; many exact ties)."""
    from atustc.features import Features

    rng = np.random.default_rng(seed)
    feat = np.zeros((len(table), 1, dim), dtype=np.float32)
    for i in range(len(table)):
        idx = rng.choice(dim, nonzero, replace=False)
        feat[i, 0, idx] = rng.choice([-1.0, 1.0], nonzero)
    return Features(table["relpath"].to_numpy().astype(str), ("global",), feat)
