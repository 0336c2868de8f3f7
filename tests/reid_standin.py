"""Test helpers for the six ReID dataset indexers and their protocols: miniatures, tables, features."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from atustc.datasets import cuhk03, deepchange, get_dataset, ltcc, market1501, msmt17, prcc
from atustc.table import validate_table
from ranking_reference import exact_features

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

    feat = exact_features(seed, table, heads=("global",), dim=dim, nonzero=nonzero).feat
    return Features(table["relpath"].to_numpy().astype(str), ("global",), feat)
