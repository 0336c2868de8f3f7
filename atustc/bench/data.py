"""The bench's data: the embedded synthetic dataset (built once, cached) or a user's table and split.

Without a table the harness builds the embedded synthetic dataset (``synth`` at the default
size, ``index``, official ``split``) once in a cache folder (``$ATUSTC_CACHE`` or
``~/.cache/atustc``), keyed by the synthetic config, and reuses it. The miniatures of the other
datasets (``atustc synth --layout NAME``) are cached the same way (:func:`ensure_miniature`).

:func:`dataset_data` turns one ``NAME=SOURCE`` of ``--cross-domain`` or ``--train-on`` into data:
a dataset ROOT is indexed and split officially into ``<folder>/<NAME>-<table hash>/`` (indexing is
one pass over the tree, so a changed tree gets a new folder); a table (``.parquet``) is split
officially there too; a split folder (with ``split.json``) is used as given; no source means the
dataset's synthetic stand-in (its miniature; AT-USTC: the embedded synthetic dataset).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atustc.synth import SynthConfig


@dataclass(frozen=True)
class BenchData:
    """The data every run of a bench trains and is scored on."""

    table: Path
    split_dir: Path
    root: Path
    table_hash: str
    synthetic: bool
    dataset: str | None = None  # the registered dataset (None: as recorded in the split's split.json)


def cache_dir() -> Path:
    """``$ATUSTC_CACHE`` if set, else ``~/.cache/atustc``."""
    env = os.environ.get("ATUSTC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "atustc"


def synthetic_key(config: SynthConfig) -> str:
    """Cache folder name of a synthetic config: ``synth-s<seed>-<hash of every field and the renderer version>``."""
    from atustc.synth import SYNTH_VERSION

    blob = json.dumps({**asdict(config), "synth_version": SYNTH_VERSION}, sort_keys=True, default=list).encode()
    return f"synth-s{config.seed}-{hashlib.sha256(blob).hexdigest()[:10]}"


def ensure_synthetic(
    config: SynthConfig | None = None, cache: str | os.PathLike[str] | None = None, progress: bool = True
) -> BenchData:
    """The embedded synthetic dataset, built once (synth -> index -> official split) and reused.

    Layout of ``<cache>/<synthetic_key>/``: ``images/`` (the AT-USTC tree), ``table.parquet`` with
    its manifest, ``split/`` and ``data.json`` (written last: the folder is complete only with it).
    Each step is published atomically (temporary name, then rename) and skipped when its output
    exists, so an interrupted build resumes and concurrent builders never see a partial step.
    """
    from atustc.synth import SynthConfig, synthesize

    config = config if config is not None else SynthConfig.named("default")
    folder = (Path(cache) if cache is not None else cache_dir()) / synthetic_key(config)
    build = lambda tmp: synthesize(tmp, config, progress=progress)  # noqa: E731
    return _cached_build(folder, "atustc", build, "", {"synth_config": asdict(config)})


def miniature_key(name: str, seed: int = 0) -> str:
    """Cache folder name of a miniature: ``mini-<name>-s<seed>-v<renderer version>``."""
    from atustc.synth import SYNTH_VERSION

    return f"mini-{name}-s{seed}-v{SYNTH_VERSION}"


def ensure_miniature(name: str, cache: str | os.PathLike[str] | None = None, seed: int = 0) -> BenchData:
    """The miniature of dataset ``name`` (``atustc synth --layout NAME``), built once (index, official split) and reused.

    Raises:
        AtustcError: ``name`` has no miniature (with close matches).
    """
    from atustc.synth.layouts import ROOT_SUBDIR, plan_layout, write_layout

    plan_layout(name, seed)  # an unknown layout raises here, before any folder is made
    folder = (Path(cache) if cache is not None else cache_dir()) / miniature_key(name, seed)
    build = lambda tmp: write_layout(tmp, name, seed)  # noqa: E731
    return _cached_build(folder, name, build, ROOT_SUBDIR.get(name, ""), {"layout": name, "seed": seed})


def _cached_build(folder: Path, fmt: str, build: Callable[[Path], object], subdir: str, extra: dict) -> BenchData:
    """Build (tree -> index -> official split) into ``folder`` once, each step published atomically."""
    from atustc.datasets import index_dataset, write_index
    from atustc.io import read_json, write_json_atomic

    marker = folder / "data.json"
    images, table_path, split_dir = folder / "images", folder / "table.parquet", folder / "split"
    root = (images / subdir if subdir else images).resolve()
    if marker.is_file():
        return BenchData(table_path, split_dir, root, str(read_json(marker)["table_hash"]), synthetic=True, dataset=fmt)
    folder.mkdir(parents=True, exist_ok=True)
    if not images.is_dir():
        _publish_dir(build, images)
    if not table_path.is_file():
        write_index(index_dataset(root, fmt), table_path)
    thash, n = _official_split(table_path, split_dir, root)
    write_json_atomic(marker, {**extra, "table_hash": thash, "images": n})
    return BenchData(table_path, split_dir, root, thash, synthetic=True, dataset=fmt)


def _official_split(table_path: Path, split_dir: Path, root: Path, dataset: str | None = None) -> tuple[str, int]:
    """Write the official split of a table to ``split_dir`` unless it is there; returns (table hash, rows)."""
    from atustc.split import make_split, write_split
    from atustc.table import load_table, table_hash

    table = load_table(table_path)
    if not (split_dir / "split.json").is_file():
        split = make_split(table, "official", seed=0, root=root, dataset=dataset)
        _publish_dir(lambda tmp: write_split(split, tmp), split_dir)
    return table_hash(table), len(table)


def _publish_dir(build: Callable[[Path], object], target: Path) -> None:
    """Build a folder under a temporary name beside ``target`` and rename it into place."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        out = tmp / "out"
        build(out)
        try:
            os.replace(out, target)
        except OSError:
            if not target.is_dir():  # another builder won the race otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def user_data(
    table: str | os.PathLike[str], split_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None
) -> BenchData:
    """A user's table and split, checked to belong together.

    Raises:
        AtustcError: unreadable table or split, a split made from another table, no image root.
    """
    from atustc.split import load_split_for

    table_path, split_path = Path(table), Path(split_dir)
    _, _, thash, root_path = load_split_for(table_path, split_path, root)
    return BenchData(table_path, split_path, root_path, thash, synthetic=False)


def dataset_data(
    name: str,
    source: str | os.PathLike[str] | None,
    folder: str | os.PathLike[str],
    *,
    option: str,
    cache: str | os.PathLike[str] | None = None,
    synth_size: str = "default",
    progress: bool = True,
) -> BenchData:
    """The data of dataset ``name`` from a ROOT, a table, a split folder or (``source`` None) its synthetic stand-in.

    Args:
        name: a registered dataset.
        source: the dataset root, a ``.parquet`` table or a split folder; None: the miniature
            (AT-USTC: the embedded synthetic dataset at ``synth_size``).
        folder: where a root's table and a table's split are written (``<folder>/<name>-<hash>/``).
        option: the command-line option named in errors (``--cross-domain``).
        cache, synth_size, progress: for the synthetic stand-ins.

    Raises:
        AtustcError: a missing source, a table or split of another dataset, or what indexing,
            splitting or loading raises (one line naming ``option``).
    """
    from atustc.errors import AtustcError

    try:
        if source is None:
            if name == "atustc":
                from atustc.synth import SynthConfig

                return replace(ensure_synthetic(SynthConfig.named(synth_size), cache, progress), dataset=name)
            return ensure_miniature(name, cache)
        return _given_data(name, Path(source), Path(folder))
    except AtustcError as exc:
        where = f"{name}={source}" if source is not None else name
        raise AtustcError(f"{option} {where}: {exc.message}") from None


def _given_data(name: str, src: Path, folder: Path) -> BenchData:
    from atustc.errors import AtustcError
    from atustc.io import read_json

    if not src.exists():
        raise AtustcError(f"{src} not found (expected a dataset root, a .parquet table or a split folder)")
    if src.is_dir() and (src / "split.json").is_file():
        info = read_json(src / "split.json")
        if info.get("dataset") not in (None, name):
            raise AtustcError(f"split {src} is a split of {info.get('dataset')}, not {name}")
        if not info.get("source_table_hash"):
            raise AtustcError(f"split {src} records no source table; give its table (NAME=TABLE.parquet)")
        from atustc.table import image_root

        root = image_root(split_info=info, table_path=src / "table.parquet")
        return BenchData(
            src / "table.parquet", src, root, str(info["source_table_hash"]), synthetic=False, dataset=name
        )
    if src.is_file():
        from atustc.table import dataset_root, load_table, table_hash

        if src.suffix != ".parquet":
            raise AtustcError(f"{src}: expected a dataset root, a .parquet table or a split folder")
        thash = table_hash(load_table(src))
        root = dataset_root(src)
        split_dir = folder / f"{name}-{thash}" / "split"
        split_dir.parent.mkdir(parents=True, exist_ok=True)
        _official_split(src, split_dir, root, dataset=name)
        return BenchData(src, split_dir, root, thash, synthetic=False, dataset=name)
    from atustc.datasets import index_dataset, write_index

    result = index_dataset(src, name)
    thash = str(result.manifest["table_hash"])
    out = folder / f"{name}-{thash}"
    table_path = out / "table.parquet"
    out.mkdir(parents=True, exist_ok=True)
    if not table_path.is_file():
        write_index(result, table_path)
    _official_split(table_path, out / "split", src.resolve(), dataset=name)
    return BenchData(table_path, out / "split", src.resolve(), thash, synthetic=False, dataset=name)
