"""Plain per-query reference implementations for the ranking tests (deliberately slow and simple).

They follow the official AT-ReID evaluation (reference §3-§4): a full stable argsort of the
distances of one query, junk removal on the sorted list, then CMC / AP / INP from the kept
matches. Used as test oracles only.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from atustc.features import Features
from atustc.table import validate_table

HEADS = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")


def reference_query(scores: np.ndarray, match: np.ndarray, junk: np.ndarray) -> tuple[int, int, float, float]:
    """(n_pos, first_rank, AP, INP) of one query; (0, 0, 0, 0) when it has no kept match."""
    order = np.argsort(-scores.astype(np.float32), kind="stable")
    keep = ~junk[order]
    m = match[order][keep]
    if not m.any():
        return 0, 0, 0.0, 0.0
    hits = np.cumsum(m)
    ranks = np.arange(1, len(m) + 1)
    ap = float(((hits / ranks) * m).sum() / m.sum())
    last = int(np.flatnonzero(m)[-1]) + 1
    return int(m.sum()), int(np.argmax(m)) + 1, ap, float(m.sum() / last)


def reference_metrics(per_query: list[tuple[int, int, float, float]]) -> dict[str, float]:
    """Average per-query tuples the official way: CMC padded to 20, mean AP / INP over valid queries."""
    valid = [p for p in per_query if p[0] > 0]
    out = {"valid_queries": len(valid)}
    if not valid:
        return out | {"R1": 0.0, "R5": 0.0, "R10": 0.0, "R20": 0.0, "mAP": 0.0, "mINP": 0.0}
    cmc = np.zeros(20)
    for _, first, _, _ in valid:
        if first <= 20:
            cmc[first - 1 :] += 1
    cmc /= len(valid)
    out.update({f"R{k}": cmc[k - 1] for k in (1, 5, 10, 20)})
    out["mAP"] = float(np.mean([p[2] for p in valid]))
    out["mINP"] = float(np.mean([p[3] for p in valid]))
    return out


def rule_fails(rule: dict, q: pd.Series, g: pd.DataFrame) -> np.ndarray:
    """Pairs (one query, every gallery row) failing a junk rule, written from the rule's definition."""
    kind, value = rule["rule"], rule.get("value")
    if kind == "camera_pair":
        bad = np.zeros(len(g), dtype=bool)
        for qc, gc in rule["pairs"]:
            bad |= (q["camera"] == qc) & (g["camera"].to_numpy() == gc)
        return bad
    if kind == "modality" and value in ("same_rgb", "same_ir"):
        want = value[5:]
        return ~((q["modality"] == want) & (g["modality"].to_numpy() == want))
    column = kind
    equal = g[column].to_numpy() == q[column]
    if kind == "modality":
        return equal if value == "cross" else ~equal
    return ~equal if value == "same" else equal


def reference_scenario(
    qt: pd.DataFrame, gt: pd.DataFrame, qf: np.ndarray, gf: np.ndarray, rules: list[dict]
) -> list[tuple[int, int, float, float]]:
    """Per-query results over the FULL query x gallery matrix (cosine), with the always-on rule."""
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    scores = qn.astype(np.float64) @ gn.astype(np.float64).T
    out = []
    for i in range(len(qt)):
        q = qt.iloc[i]
        same = gt["pid"].to_numpy() == q["pid"]
        junk = same & (gt["camera"].to_numpy() == q["camera"])
        for rule in rules:
            bad = rule_fails(rule, q, gt)
            junk |= bad if rule["scope"] == "all" else (same & bad)
        out.append(reference_query(scores[i], same, junk))
    return out


def make_table(
    seed: int, n_pid: int = 8, n_clothes: int = 2, frames: int = 2, flags=(2, 3, 4, 5, 6, 7, 8, 9, 10)
) -> pd.DataFrame:
    """A small AT-USTC-shaped test table (16 cameras, 1-8 RGB, 9-16 IR) with random flags.

    Built once per argument set (:func:`built_table`); each call gets its own copy.
    """
    return built_table(seed, n_pid, n_clothes, frames, tuple(flags)).copy()


@functools.lru_cache(maxsize=64)
def built_table(seed: int, n_pid: int, n_clothes: int, frames: int, flags: tuple[int, ...]) -> pd.DataFrame:
    """The validated table of :func:`make_table` (shared: never modify it, copy it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(1, n_pid + 1):
        for clothes in range(1, n_clothes + 1):
            for cam in range(1, 17):
                for f in range(frames):
                    flag = int(rng.choice(flags))
                    rows.append(
                        {
                            "dataset": "atustc",
                            "relpath": f"p{pid:03d}-d01-c{clothes:02d}/cam{cam:02d}-f{flag}-{f:04d}.jpg",
                            "pid": pid,
                            "clothes": clothes,
                            "camera": cam,
                            "modality": "rgb" if cam <= 8 else "ir",
                            "date": int(rng.integers(1, 3)),
                            "frame": f,
                            "flag": flag,
                            "split": "test",
                        }
                    )
    return validate_table(pd.DataFrame(rows))


def exact_features(seed: int, table: pd.DataFrame, heads=HEADS, dim: int = 16, nonzero: int = 4) -> Features:
    """Features whose cosine scores are exact in any summation order (many exact ties).

    Every vector has ``nonzero`` entries of +-1, so after L2 normalisation its entries are
    +-1/sqrt(nonzero) = +-0.5 and every dot product is a multiple of 0.25. The draw depends on
    the seed and the shape only; it is made once per shape (:func:`signs`) and copied.
    """
    feat = signs(seed, len(table), len(heads), dim, nonzero).copy()
    return Features(table["relpath"].to_numpy(), tuple(heads), feat)


@functools.lru_cache(maxsize=64)
def signs(seed: int, n: int, n_heads: int, dim: int, nonzero: int) -> np.ndarray:
    """The read-only ``[n, n_heads, dim]`` array of :func:`exact_features` (``nonzero`` entries of +-1 per vector)."""
    rng = np.random.default_rng(seed)
    feat = np.zeros((n, n_heads, dim), dtype=np.float32)
    for i in range(n):
        for h in range(n_heads):
            idx = rng.choice(dim, nonzero, replace=False)
            feat[i, h, idx] = rng.choice([-1.0, 1.0], nonzero)
    feat.flags.writeable = False
    return feat


@pytest.fixture(params=["auto", "dense", "sparse"])
def path(request, monkeypatch):
    """Run a test with the automatic choice, and with the dense / sparse candidate path forced."""
    import atustc.rankblock

    fraction = {"auto": atustc.rankblock._DENSE_FRACTION, "dense": -1.0, "sparse": 2.0}[request.param]
    monkeypatch.setattr(atustc.rankblock, "_DENSE_FRACTION", fraction)
    return request.param
