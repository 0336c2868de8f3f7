"""The annotation table: one row per image, the single source of labels after ``atustc index``.

Columns and dtypes are fixed (see :data:`COLUMNS`). Unknown integers are ``-1``. ``relpath`` is a
POSIX path relative to the dataset root and is unique. Training labels (contiguous person and
outfit ids) are derived from the table, never stored in it.

Validation is mandatory: :func:`load_table` and :func:`save_table` both run
:func:`validate_table`, so a table that crossed a boundary is known to be well formed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

#: Column name -> dtype ("str" columns are pandas strings, the rest int64).
COLUMNS: dict[str, str] = {
    "dataset": "str",
    "relpath": "str",
    "pid": "int64",
    "clothes": "int64",
    "camera": "int64",
    "modality": "str",
    "date": "int64",
    "frame": "int64",
    "flag": "int64",
    "split": "str",
}
MODALITIES: tuple[str, ...] = ("rgb", "ir")
SPLITS: tuple[str, ...] = ("train", "val", "query", "gallery", "test", "unused")


def empty_table() -> pd.DataFrame:
    """An empty table with the fixed columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype=_pandas_dtype(d)) for c, d in COLUMNS.items()})


def _pandas_dtype(kind: str) -> str:
    return "int64" if kind == "int64" else "str"


def validate_table(df: pd.DataFrame, source: str | os.PathLike[str] = "table") -> pd.DataFrame:
    """Check a table against the contract and return it with canonical column order and dtypes.

    Args:
        df: the table.
        source: a name for error messages (usually the file path).

    Returns:
        The table with columns in :data:`COLUMNS` order and dtypes coerced.

    Raises:
        AtustcError: a missing or extra column, a null, a non-integer value in an integer
            column, an unknown modality or split, or a duplicate ``relpath``; the message names
            the first offending row.
    """
    import pandas as pd

    src = str(source)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise AtustcError(f"{src}: missing column(s) {', '.join(missing)}")
    extra = [c for c in df.columns if c not in COLUMNS]
    if extra:
        raise AtustcError(f"{src}: unknown column(s) {', '.join(map(str, extra))}; expected {', '.join(COLUMNS)}")
    out = {}
    for col, kind in COLUMNS.items():
        s = df[col]
        nulls = s.isna().to_numpy()
        if nulls.any():
            raise AtustcError(f"{src}: row {int(nulls.argmax())}: column {col!r} is empty")
        if kind == "int64":
            if not pd.api.types.is_integer_dtype(s.dtype):
                num = pd.to_numeric(s, errors="coerce")
                bad = num.isna().to_numpy() | (num.to_numpy() != num.round().to_numpy())
                if bad.any():
                    i = int(bad.argmax())
                    raise AtustcError(f"{src}: row {i}: column {col!r} must be an integer, got {s.iloc[i]!r}")
                s = num
            out[col] = s.astype("int64")
        else:
            out[col] = s.astype("str")
    table = pd.DataFrame(out)
    table.index = pd.RangeIndex(len(table))
    for col, allowed in (("modality", MODALITIES), ("split", SPLITS)):
        bad = ~table[col].isin(allowed).to_numpy()
        if bad.any():
            i = int(bad.argmax())
            raise AtustcError(
                f"{src}: row {i}: column {col!r} must be one of {', '.join(allowed)}, got {table[col].iloc[i]!r}"
            )
    dup = table["relpath"].duplicated().to_numpy()
    if dup.any():
        i = int(dup.argmax())
        raise AtustcError(f"{src}: row {i}: duplicate relpath {table['relpath'].iloc[i]!r}")
    return table


def load_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a parquet annotation table.

    Raises:
        AtustcError: the file is missing, not parquet, or breaks the contract.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise AtustcError(f"{p}: table not found")
    try:
        df = pq.read_table(p).to_pandas()
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise AtustcError(f"{p}: not a readable parquet table ({type(exc).__name__})") from None
    return validate_table(df, p)


def save_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Validate ``df`` and write it to ``path`` as parquet, atomically. Returns the validated table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from atustc.io import atomic_path

    table = validate_table(df, path)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp)
    return table


def manifest_path(table_path: str | os.PathLike[str]) -> Path:
    """The manifest JSON that sits beside a table: ``demo.parquet`` -> ``demo.manifest.json``."""
    p = Path(table_path)
    return p.with_name(p.name.removesuffix(".parquet") + ".manifest.json")


def read_manifest(table_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The index manifest beside a table (:func:`manifest_path`), or None when there is none.

    Raises:
        AtustcError: the manifest is unreadable or not a JSON object (the message names it).
    """
    from atustc.io import read_json

    mp = manifest_path(table_path)
    if not mp.is_file():
        return None
    manifest = read_json(mp)
    if not isinstance(manifest, dict):
        raise AtustcError(f"{mp}: not a JSON object; write it again with atustc index")
    return manifest


def dataset_root(table_path: str | os.PathLike[str]) -> Path:
    """The dataset root recorded in the table's manifest (where ``relpath`` is relative to).

    Raises:
        AtustcError: no manifest beside the table, or it has no ``root``.
    """
    manifest, mp = read_manifest(table_path), manifest_path(table_path)
    if manifest is None:
        raise AtustcError(f"{table_path}: no manifest {mp.name} beside the table to give the image root; pass --root")
    if not manifest.get("root"):
        raise AtustcError(f"{mp}: no 'root' recorded; pass --root")
    return Path(manifest["root"])


def image_root(
    root: str | os.PathLike[str] | None = None,
    *,
    table_path: str | os.PathLike[str] | None = None,
    split_info: Mapping[str, Any] | None = None,
    run_root: str | os.PathLike[str] | None = None,
) -> Path:
    """The folder a table's ``relpath`` values are relative to: the one rule every command uses.

    The first that applies, in this order:

    1. ``root``, the user's ``--root``;
    2. the root recorded by the split: ``split_info["root"]`` (the ``--split`` given), else the
       ``split.json`` beside ``table_path`` (a split folder's ``table.parquet`` or ``test.parquet``);
    3. the root in the manifest beside ``table_path`` (what ``atustc index`` recorded);
    4. ``run_root``, the root a run was trained on (its ``config.json``).

    Raises:
        AtustcError: none applies; the message names the table and ``--root``.
    """
    from atustc.io import read_json

    if root is not None:
        return Path(root)
    if split_info is None and table_path is not None and (Path(table_path).parent / "split.json").is_file():
        split_info = read_json(Path(table_path).parent / "split.json")
    if split_info is not None and split_info.get("root"):
        return Path(split_info["root"])
    if table_path is not None and manifest_path(table_path).is_file():
        return dataset_root(table_path)
    if run_root is not None:
        return Path(run_root)
    where = (
        f"{table_path}: no manifest {manifest_path(table_path).name} beside the table" if table_path else "the table"
    )
    raise AtustcError(f"{where} and no split or run records an image root; pass --root")


def table_hash(df: pd.DataFrame) -> str:
    """A content hash (sha256 hex, first 16 chars) of a table, independent of file format."""
    import pandas as pd

    h = hashlib.sha256()
    for col in COLUMNS:
        h.update(col.encode())
        h.update(pd.util.hash_pandas_object(df[col], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
