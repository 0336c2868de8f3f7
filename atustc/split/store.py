"""The split folder on disk: :func:`write_split` saves a :class:`~atustc.split.core.Split`,
:func:`load_split` reads it back (validated again), :func:`load_split_for` pairs it with its table.

A split folder holds ``table.parquet``, ``train/val/test.parquet``, ``val-protocol.parquet``,
``lists/<pool>.txt`` (relpaths) and ``split.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from atustc.errors import AtustcError
from atustc.split.core import Split, validate_split

if TYPE_CHECKING:
    import pandas as pd

_FILES = {
    "table": "table.parquet",
    "train": "train.parquet",
    "val": "val.parquet",
    "test": "test.parquet",
    "val_protocol": "val-protocol.parquet",
}


def write_split(split: Split, out_dir: str | os.PathLike[str]) -> Path:
    """Write a split folder: tables, ``lists/<pool>.txt`` (relpaths) and ``split.json``.

    Every file is written atomically. Returns the folder.
    """
    from atustc.io import write_json_atomic, write_text_atomic
    from atustc.table import save_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for attr, name in _FILES.items():
        save_table(getattr(split, attr), out / name)
    relpath = split.table["relpath"].to_numpy()
    for name, mask in split.lists().items():
        write_text_atomic(out / "lists" / f"{name}.txt", "".join(r + "\n" for r in relpath[mask]))
    write_json_atomic(out / "split.json", split.info)
    return out


def load_split(split_dir: str | os.PathLike[str]) -> Split:
    """Read a split folder written by :func:`write_split` and validate it again.

    Raises:
        AtustcError: a missing file, a broken table, or a failed validation.
    """
    from atustc.io import read_json
    from atustc.table import load_table

    d = Path(split_dir)
    if not (d / "split.json").is_file():
        raise AtustcError(f"{d}: not a split folder (no split.json); create one with `atustc split TABLE -o {d}`")
    tables = {attr: load_table(d / name) for attr, name in _FILES.items()}
    split = Split(**tables, info=read_json(d / "split.json"))
    split.info["summary"] = validate_split(split, str(d))
    return split


def load_split_for(
    table_path: str | os.PathLike[str], split_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> tuple[pd.DataFrame, Split, str, Path]:
    """Load a table and its split, check they belong together, and find the image root.

    The table is the one the split was made from, or the split folder's own ``table.parquet``
    (the same rows with the split's ``split`` column; its source's hash is then returned). The root
    follows :func:`atustc.table.image_root`: ``root`` if given, else the split's recorded root, else
    the table manifest's.

    Returns:
        ``(table, split, table_hash, root)``.

    Raises:
        AtustcError: unreadable table or split, a split made from another table, no image root.
    """
    from atustc.table import image_root, load_table, table_hash

    table = load_table(table_path)
    split = load_split(split_dir)
    src_hash = split.info.get("source_table_hash")
    thash = table_hash(table)
    if src_hash is not None and src_hash != thash and table_hash(split.table) == thash:
        thash = src_hash  # the split folder's own table.parquet
    if src_hash is not None and src_hash != thash:
        raise AtustcError(f"split {split_dir} was made from another table (hash {src_hash}, {table_path} has {thash})")
    return table, split, thash, image_root(root, table_path=table_path, split_info=split.info)
