"""The bench's data: the embedded synthetic dataset (built once, cached) or a user's table and split.

Without a table the harness builds the embedded synthetic dataset (``synth`` at the default
size, ``index``, official ``split``) once in a cache folder (``$ATUSTC_CACHE`` or
``~/.cache/atustc``), keyed by the synthetic config, and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
    from atustc.datasets import index_dataset, write_index
    from atustc.io import read_json, write_json_atomic
    from atustc.split import make_split, write_split
    from atustc.synth import SynthConfig, synthesize
    from atustc.table import load_table, table_hash

    config = config if config is not None else SynthConfig.named("default")
    folder = Path(cache) if cache is not None else cache_dir()
    folder = folder / synthetic_key(config)
    marker = folder / "data.json"
    images, table_path, split_dir = folder / "images", folder / "table.parquet", folder / "split"
    if marker.is_file():
        info = read_json(marker)
        return BenchData(table_path, split_dir, images.resolve(), str(info["table_hash"]), synthetic=True)
    folder.mkdir(parents=True, exist_ok=True)
    if not images.is_dir():
        _publish_dir(lambda tmp: synthesize(tmp, config, progress=progress), images)
    if not table_path.is_file():
        write_index(index_dataset(images, "atustc"), table_path)
    table = load_table(table_path)
    if not (split_dir / "split.json").is_file():
        split = make_split(table, "official", seed=0, root=images.resolve())
        _publish_dir(lambda tmp: write_split(split, tmp), split_dir)
    thash = table_hash(table)
    write_json_atomic(marker, {"synth_config": asdict(config), "table_hash": thash, "images": len(table)})
    return BenchData(table_path, split_dir, images.resolve(), thash, synthetic=True)


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
