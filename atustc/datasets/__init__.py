"""Dataset indexers: a dataset tree on disk -> an annotation table and its manifest.

``index_dataset(root, fmt)`` runs the indexer of the registered dataset ``fmt`` (one pass over
the tree), optionally decodes every image, checks the counts against the release's published
statistics and returns an :class:`IndexResult`; ``write_index`` saves the table and
``<stem>.manifest.json`` beside it, atomically. See ``docs/adding-a-dataset.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atustc.datasets._registry import DatasetSpec, Scan, get_dataset, list_datasets, register_dataset
from atustc.errors import AtustcError
from atustc.synthmark import MARKER_NAME, read_marker

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DatasetSpec",
    "IndexResult",
    "Scan",
    "get_dataset",
    "index_dataset",
    "list_datasets",
    "published_check",
    "register_dataset",
    "write_index",
]


@dataclass
class IndexResult:
    """A validated table and its manifest (``root`` absolute, ``rejected`` files, ``counts``, ``table_hash``)."""

    table: pd.DataFrame
    manifest: dict[str, Any]


def index_dataset(
    root: str | os.PathLike[str],
    fmt: str = "atustc",
    verify_images: bool = False,
    *,
    workers: int | None = None,
    progress: bool = False,
    trial: int | None = None,
) -> IndexResult:
    """Index a dataset tree.

    Args:
        root: the dataset root.
        fmt: a registered dataset (see :func:`list_datasets`).
        verify_images: decode every image (in parallel) and reject corrupt or truncated ones.
        workers: decoding threads for ``verify_images``.
        progress: show a progress bar while verifying.
        trial: the released split to read, for a dataset that releases several (its scan takes
            a ``trial`` keyword, e.g. RegDB's trials 1-10; default: the scan's default). The
            manifest records it.

    Returns:
        The table (rows as the indexer gives them, ``split`` included) and the manifest, whose
        ``published_check`` lists every count that differs from :attr:`DatasetSpec.published`;
        a tree drawn by ``atustc synth`` adds ``synthetic`` (what drew it, from its marker).

    Raises:
        AtustcError: an unknown format, a missing / non-folder / empty root, ``trial`` for a
            dataset with one split, or no image accepted at all.
    """
    import pandas as pd

    from atustc import __version__
    from atustc.table import table_hash, validate_table

    spec = get_dataset(fmt)
    r = Path(root)
    if not r.exists():
        raise AtustcError(f"{r}: dataset root not found")
    if not r.is_dir():
        raise AtustcError(f"{r}: dataset root is not a folder")
    import inspect

    takes_trial = inspect.signature(spec.scan).parameters.get("trial")
    if trial is not None and takes_trial is None:
        raise AtustcError(f"--trial: dataset {fmt} releases one split (only e.g. regdb takes --trial)")
    if takes_trial is not None:
        trial = takes_trial.default if trial is None else trial
        scan: Scan = spec.scan(r, trial=trial)
    else:
        scan = spec.scan(r)
    if scan.files_seen == 0:
        raise AtustcError(f"{r}: dataset root is empty (no files found)")
    synthetic = read_marker(r)
    if synthetic is not None:  # the marker of atustc synth is not a release file: never "rejected"
        scan.rejected[:] = [rej for rej in scan.rejected if rej["path"] != MARKER_NAME]
    cols = dict(scan.columns)
    if verify_images and len(cols["relpath"]):
        from atustc.datasets.verify import verify_images as _verify

        bad = _verify(r, list(cols["relpath"]), workers=workers, progress=progress)
        if bad:
            import numpy as np

            keep = np.ones(len(cols["relpath"]), dtype=bool)
            keep[list(bad)] = False
            for i, reason in bad.items():
                scan.rejected.append({"path": str(cols["relpath"][i]), "code": "corrupt", "reason": reason})
            scan.rejected.sort(key=lambda x: x["path"])
            cols = {k: (v[keep] if np.ndim(v) else v) for k, v in cols.items()}
    n = len(cols["relpath"])
    if n == 0:
        first = scan.rejected[0] if scan.rejected else None
        hint = f"; first rejected: {first['path']}: {first['reason']}" if first else ""
        raise AtustcError(f"{r}: no valid {fmt} images found ({len(scan.rejected)} files rejected{hint})")
    if "split" not in cols:
        raise AtustcError(f"dataset {fmt!r}: its indexer gave no 'split' column (see docs/adding-a-dataset.md)")
    table = validate_table(pd.DataFrame(cols), r)
    by_code: dict[str, int] = {}
    for rej in scan.rejected:
        by_code[rej["code"]] = by_code.get(rej["code"], 0) + 1
    ir = int((table["modality"] == "ir").sum())
    manifest = {
        "root": str(r.resolve()),
        "format": fmt,
        "indexer": {"name": spec.name, "version": spec.version},
        "atustc_version": __version__,
        "verified_images": bool(verify_images),
        **({"trial": int(trial)} if takes_trial is not None else {}),
        "counts": {
            "files": scan.files_seen,
            "images": n,
            "rgb": n - ir,
            "ir": ir,
            "identities": int(table["pid"].nunique()),
            "by_split": {k: int(v) for k, v in table["split"].value_counts().sort_index().items()},
            "rejected": len(scan.rejected),
            "rejected_by_reason": dict(sorted(by_code.items())),
        },
        "table_hash": table_hash(table),
        "published_check": published_check(table, spec.published),
        **({"synthetic": synthetic} if synthetic is not None else {}),
        "rejected": scan.rejected,
    }
    return IndexResult(table=table, manifest=manifest)


def published_check(table: pd.DataFrame, published: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Every count of ``published`` that the table does not reproduce.

    Args:
        table: the indexed table.
        published: ``{split: {"identities": n, "images": n}}``; ``"a+b"`` is the union of splits.

    Returns:
        ``[{"split", "count", "published", "indexed", "difference"}]`` (``difference`` = indexed -
        published), in the order of ``published``; empty when everything matches.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"pid": [1, 1, 2], "split": ["train", "train", "query"]})
    >>> published_check(t, {"train": {"identities": 1, "images": 3}})
    [{'split': 'train', 'count': 'images', 'published': 3, 'indexed': 2, 'difference': -1}]
    """
    out = []
    for key, counts in published.items():
        rows = table[table["split"].isin(key.split("+"))]
        indexed = {"identities": int(rows["pid"].nunique()), "images": len(rows)}
        for count, value in counts.items():
            if indexed[count] != int(value):
                out.append(
                    {
                        "split": key,
                        "count": count,
                        "published": int(value),
                        "indexed": indexed[count],
                        "difference": indexed[count] - int(value),
                    }
                )
    return out


def write_index(result: IndexResult, out_parquet: str | os.PathLike[str]) -> Path:
    """Save the table and ``<stem>.manifest.json`` beside it, each atomically. Returns the table path.

    The table is written as :func:`atustc.table.save_table` writes it but without validating it
    a second time (:func:`index_dataset` did, and :func:`atustc.table.load_table` does on every
    read), which keeps ``atustc index`` on 400k files under 2 s.

    Raises:
        AtustcError: the output name does not end in ``.parquet``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from atustc.io import atomic_path, write_json_atomic
    from atustc.table import manifest_path

    out = Path(out_parquet)
    if out.suffix != ".parquet":
        raise AtustcError(f"{out}: the table file must end in .parquet")
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pandas(result.table, preserve_index=False), tmp)
    write_json_atomic(manifest_path(out), result.manifest)
    return out
