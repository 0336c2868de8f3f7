"""Published figures of the datasets the AT-ReID paper's Fig. 2 compares against.

The figures live in ``published_datasets.csv`` beside this module: one row per dataset, a source
column per figure (paper and section) and a ``notes`` column. A figure that is not published as
a number, or that could not be checked, is empty and the notes say why; nothing is estimated.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: Numeric figures (empty = not published).
FIGURES: tuple[str, ...] = (
    "images",
    "identities",
    "rgb_cameras",
    "ir_cameras",
    "rgb_cameras_per_id",
    "ir_cameras_per_id",
    "captures_per_id",
)
#: Every column of the CSV, in order.
COLUMNS: tuple[str, ...] = (
    "dataset",
    "aliases",
    "family",
    *FIGURES,
    "scenarios",
    "images_source",
    "identities_source",
    "cameras_source",
    "cameras_per_id_source",
    "captures_per_id_source",
    "scenarios_source",
    "notes",
)
FAMILIES: tuple[str, ...] = ("Tr-ReID", "CM-ReID", "CC-ReID", "AT-ReID")


def load_published() -> pd.DataFrame:
    """The published comparison datasets, numeric figures as float (NaN = not published).

    Returns:
        One row per dataset with :data:`COLUMNS`, in the paper's order (Tr-ReID, CM-ReID,
        CC-ReID, AT-USTC).
    """
    import pandas as pd

    with resources.files("atustc.stats").joinpath("published_datasets.csv").open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    for col in FIGURES:
        df[col] = pd.to_numeric(df[col].replace("", None), errors="raise").astype("float64")
    return df[list(COLUMNS)]


def normalise_name(name: str) -> str:
    """A dataset name reduced to lower-case letters and digits (``SYSU-MM01`` -> ``sysumm01``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match_published(name: str, published: pd.DataFrame) -> str | None:
    """The published dataset a table's ``dataset`` value names, or None.

    Matches the canonical name or any alias, ignoring case and punctuation.

    Example:
        >>> match_published("market-1501", load_published())
        'Market1501'
        >>> match_published("my-data", load_published()) is None
        True
    """
    key = normalise_name(name)
    for canonical, aliases in zip(published["dataset"], published["aliases"]):
        names = [canonical, *(a for a in aliases.split(";") if a)]
        if key in {normalise_name(n) for n in names}:
            return str(canonical)
    return None
