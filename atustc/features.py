"""Saved features: ``.npz`` with ``relpath`` (str[N]), ``heads`` (str[H]) and ``feat`` (float32[N, H, D])."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atustc.errors import AtustcError


@dataclass(frozen=True)
class Features:
    """Embeddings of N images under H named heads; ``source`` (the file) names them in errors."""

    relpath: np.ndarray  # [N] str
    heads: tuple[str, ...]
    feat: np.ndarray  # [N, H, D] float32
    source: str = field(default="features", compare=False)

    def __post_init__(self) -> None:
        if self.feat.ndim != 3:
            raise AtustcError(f"{self.source}: feat must be [N, H, D], got shape {self.feat.shape}")
        n, h, _ = self.feat.shape
        if len(self.relpath) != n:
            raise AtustcError(f"{self.source}: {len(self.relpath)} relpaths for {n} feature rows")
        if len(self.heads) != h:
            raise AtustcError(f"{self.source}: {len(self.heads)} head names for {h} heads")

    def head_index(self, name: str) -> int:
        """Column of head ``name``; a single-head feature serves every head name."""
        if len(self.heads) == 1:
            return 0
        if name not in self.heads:
            raise AtustcError(f"{self.source}: unknown head {name!r} (have {', '.join(self.heads)})")
        return self.heads.index(name)


def save_features(features: Features, path: str | os.PathLike[str]) -> None:
    """Write features atomically as ``.npz``."""
    from atustc.io import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            relpath=np.asarray(features.relpath, dtype=str),
            heads=np.asarray(features.heads, dtype=str),
            feat=np.ascontiguousarray(features.feat, dtype=np.float32),
        )


def load_features(path: str | os.PathLike[str]) -> Features:
    """Read and validate a features file.

    Raises:
        AtustcError: missing file, missing arrays, bad shapes, or NaN/infinite values.
    """
    p = Path(path)
    if not p.is_file():
        raise AtustcError(f"{p}: features file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in ("relpath", "heads", "feat") if k not in z.files]
            if missing:
                raise AtustcError(f"{p}: missing array(s) {', '.join(missing)}")
            relpath, heads, feat = z["relpath"].astype(str), z["heads"].astype(str), z["feat"]
    except AtustcError:
        raise
    except Exception as exc:
        raise AtustcError(f"{p}: not a readable .npz features file ({type(exc).__name__})") from None
    if feat.dtype != np.float32:
        feat = feat.astype(np.float32)
    if feat.ndim == 2:
        feat = feat[:, None, :]
    step = max(1, (1 << 22) // max(1, feat[0].size)) if len(feat) else 1
    for a in range(0, len(feat), step):  # in row blocks: no mask of the whole array
        bad = ~np.isfinite(feat[a : a + step]).reshape(len(feat[a : a + step]), -1).all(axis=1)
        if bad.any():
            row = a + int(np.flatnonzero(bad)[0])
            raise AtustcError(f"{p}: row {row} ({relpath[row]}): feature has NaN or infinite values")
    return Features(relpath=relpath, heads=tuple(heads.tolist()), feat=feat, source=str(p))
