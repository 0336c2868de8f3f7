"""The data of the four Fig. 2 panels: computed tables merged with the published datasets.

A computed table whose ``dataset`` names a published dataset (see
:func:`~atustc.stats.published.match_published`) replaces that dataset's published figures and
is marked ``source = "computed"``; other computed tables are appended after the published ones.
Panels (b)-(d) use each table's ``all`` group; the coverage frame keeps every group of the
computed tables (the plot draws ``all``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atustc.scenarios import SCENARIOS
from atustc.stats.published import match_published

if TYPE_CHECKING:
    import pandas as pd

    from atustc.stats.compute import TableStats


@dataclass(frozen=True)
class Panels:
    """One tidy frame per panel; every frame has ``dataset``, ``family`` and ``source`` columns.

    Attributes:
        coverage: (a) one row per dataset, group and scenario: ``covered``, ``valid_queries``.
        cameras: (b) RGB/IR cameras per identity (mean) and in the dataset.
        captures: (c) captures per identity: mean, median, min, max over identities.
        scale: (d) images and identities.
        distribution: (c) per-identity captures of the computed datasets (``dataset``, ``pid``,
            ``captures``), the points behind the means.
    """

    coverage: pd.DataFrame
    cameras: pd.DataFrame
    captures: pd.DataFrame
    scale: pd.DataFrame
    distribution: pd.DataFrame


def _names(stats: list[TableStats], published: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(display name, family) of each computed table; the first match takes the published name."""
    taken: set[str] = set()
    out = []
    for s in stats:
        raw = re.sub(r" \([^()]*\)$", "", s.label)  # "atustc (train)": a table told apart by its file stem
        canonical = match_published(raw, published) if published is not None else None
        if canonical is not None and canonical not in taken:
            family = str(published.loc[published["dataset"] == canonical, "family"].iloc[0])
            out.append((canonical, family))
            taken.add(canonical)
        else:
            out.append((s.label, ""))
    return out


def build_panels(stats: list[TableStats], published: pd.DataFrame | None) -> Panels:
    """Merge computed statistics with the published datasets into the four panel frames.

    Args:
        stats: per-table statistics (:func:`~atustc.stats.compute.table_stats`), labels unique.
        published: :func:`~atustc.stats.published.load_published`, or None for computed only.

    Returns:
        The panel frames, datasets in the paper's order with computed ones in place.
    """
    import numpy as np
    import pandas as pd

    names = _names(stats, published)
    replaced = {name for name, family in names if family}
    rows: dict[str, list[dict]] = {"coverage": [], "cameras": [], "captures": [], "scale": []}
    order: list[str] = []
    if published is not None:
        for p in published.itertuples(index=False):
            order.append(p.dataset)
            if p.dataset in replaced:
                continue
            base = {"dataset": p.dataset, "family": p.family, "source": "published"}
            covered = set(p.scenarios.split())
            for sc in SCENARIOS:
                rows["coverage"].append(base | {"group": "all", "scenario": sc, "covered": sc in covered})
            rows["cameras"].append(
                base
                | {
                    "rgb_cameras_per_id": p.rgb_cameras_per_id,
                    "ir_cameras_per_id": p.ir_cameras_per_id,
                    "rgb_cameras": p.rgb_cameras,
                    "ir_cameras": p.ir_cameras,
                }
            )
            rows["captures"].append(base | {"captures_per_id": p.captures_per_id})
            rows["scale"].append(base | {"images": p.images, "identities": p.identities})
    dist = []
    for s, (name, family) in zip(stats, names):
        if name not in order:
            order.append(name)
        base = {"dataset": name, "family": family, "source": "computed"}
        for c in s.coverage.itertuples(index=False):
            cov = {"group": c.group, "scenario": c.scenario, "covered": bool(c.covered)}
            rows["coverage"].append(base | cov | {"valid_queries": c.valid_queries})
        a = s.summary[s.summary["group"] == "all"].iloc[0]
        ids = s.identities[s.identities["group"] == "all"]
        rows["cameras"].append(
            base
            | {
                "rgb_cameras_per_id": a["rgb_cameras_per_id"],
                "ir_cameras_per_id": a["ir_cameras_per_id"],
                "rgb_cameras": a["rgb_cameras"],
                "ir_cameras": a["ir_cameras"],
            }
        )
        cap = ids["captures"].to_numpy()
        rows["captures"].append(
            base
            | {
                "captures_per_id": float(cap.mean()),
                "median": float(np.median(cap)),
                "min": int(cap.min()),
                "max": int(cap.max()),
                "identities": len(cap),
            }
        )
        rows["scale"].append(base | {"images": a["images"], "identities": a["identities"]})
        dist.append(pd.DataFrame({"dataset": name, "pid": ids["pid"].to_numpy(), "captures": cap}))
    rank = {name: i for i, name in enumerate(order)}
    frames = {}
    for key, recs in rows.items():
        df = pd.DataFrame(recs)
        if len(df):
            df = df.sort_values("dataset", key=lambda col: col.map(rank), kind="stable", ignore_index=True)
        frames[key] = df
    frames["coverage"] = _typed(frames["coverage"], {"covered": "bool", "valid_queries": "Int64"})
    frames["captures"] = _typed(frames["captures"], {"min": "Int64", "max": "Int64", "identities": "Int64"})
    distribution = (
        pd.concat(dist, ignore_index=True)
        if dist
        else pd.DataFrame({"dataset": pd.Series([], dtype="str"), "pid": [], "captures": []})
    )
    return Panels(distribution=distribution, **frames)


def _typed(df: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Add missing columns and set nullable dtypes (published rows leave computed-only figures empty)."""
    for col, dtype in dtypes.items():
        if col not in df.columns:
            df[col] = None
        df[col] = df[col].astype(dtype)
    return df
