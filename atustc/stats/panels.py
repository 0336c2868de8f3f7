"""The data of the Fig. 2 panels: computed tables drawn beside the published datasets.

A computed table whose ``dataset`` (or label) names a published dataset (see
:func:`~atustc.stats.published.match_published`) takes that dataset's family and is placed right
after it, marked ``source = "computed"``; the published figures stay, so a small or synthetic
table is never mistaken for the real dataset. Other computed tables are appended after the
published ones. Panels (b)-(e) use each table's ``all`` group; the coverage frame keeps every
group of the computed tables (the plot draws ``all``).
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
        outfits_dates: (e) outfits and dates per identity (mean) and in the dataset; computed
            tables only (the comparison datasets publish neither per identity).
        distribution: per-identity figures of the computed datasets (``dataset``, ``pid`` and
            :data:`~atustc.stats.compute.IDENTITY_FIGURES`), the spread behind the means of
            panels (b), (c) and (e).
    """

    coverage: pd.DataFrame
    cameras: pd.DataFrame
    captures: pd.DataFrame
    scale: pd.DataFrame
    outfits_dates: pd.DataFrame
    distribution: pd.DataFrame


def _names(stats: list[TableStats], published: pd.DataFrame | None) -> list[tuple[str, str, str | None]]:
    """(display name, family, published dataset it sits beside) of each computed table.

    The display name is the table's label, made distinct from the published names.
    """
    taken = set(published["dataset"]) if published is not None else set()
    out = []
    for s in stats:
        raw = re.sub(r"( \([^()]*\))+$", "", s.label)  # "atustc (train) (synthetic)": told apart by file stem
        canonical = match_published(raw, published) if published is not None else None
        family = str(published.loc[published["dataset"] == canonical, "family"].iloc[0]) if canonical else ""
        name = s.label if s.label not in taken else f"{s.label} (computed)"
        out.append((name, family, canonical))
    return out


def build_panels(stats: list[TableStats], published: pd.DataFrame | None) -> Panels:
    """Merge computed statistics with the published datasets into the panel frames.

    Args:
        stats: per-table statistics (:func:`~atustc.stats.compute.table_stats`), labels unique.
        published: :func:`~atustc.stats.published.load_published`, or None for computed only.

    Returns:
        The panel frames, datasets in the paper's order, each computed table right after the
        published dataset it matches (others at the end).
    """
    import numpy as np
    import pandas as pd

    from atustc.stats.compute import IDENTITY_FIGURES

    names = _names(stats, published)
    rows: dict[str, list[dict]] = {"coverage": [], "cameras": [], "captures": [], "scale": [], "outfits_dates": []}
    order: list[str] = []
    if published is not None:
        for p in published.itertuples(index=False):
            order.append(p.dataset)
            order.extend(name for name, _, beside in names if beside == p.dataset)
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
    for s, (name, family, _) in zip(stats, names):
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
        rows["outfits_dates"].append(
            base
            | {
                "outfits_per_id": a["outfits_per_id"],
                "dates_per_id": a["dates_per_id"],
                "outfits": a["outfits"],
                "dates": a["dates"],
            }
        )
        dist.append(
            pd.DataFrame(
                {"dataset": name, "pid": ids["pid"].to_numpy()} | {f: ids[f].to_numpy() for f in IDENTITY_FIGURES}
            )
        )
    rank = {name: i for i, name in enumerate(order)}
    frames = {}
    for key, recs in rows.items():
        df = pd.DataFrame(recs)
        if len(df):
            df = df.sort_values("dataset", key=lambda col: col.map(rank), kind="stable", ignore_index=True)
        frames[key] = df
    frames["coverage"] = _typed(frames["coverage"], {"covered": "bool", "valid_queries": "Int64"})
    frames["captures"] = _typed(frames["captures"], {"min": "Int64", "max": "Int64", "identities": "Int64"})
    frames["outfits_dates"] = _typed(
        frames["outfits_dates"],
        {
            "dataset": "str",
            "family": "str",
            "source": "str",
            "outfits_per_id": "float64",
            "dates_per_id": "float64",
            "outfits": "Int64",
            "dates": "Int64",
        },
    )
    distribution = (
        pd.concat(dist, ignore_index=True)
        if dist
        else pd.DataFrame({"dataset": pd.Series([], dtype="str"), "pid": []} | {f: [] for f in IDENTITY_FIGURES})
    )
    return Panels(distribution=distribution, **frames)


def _typed(df: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Add missing columns and set nullable dtypes (published rows leave computed-only figures empty)."""
    for col, dtype in dtypes.items():
        if col not in df.columns:
            df[col] = None
        df[col] = df[col].astype(dtype)
    return df
