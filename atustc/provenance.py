"""Provenance of an eval JSON: which checkpoint, features and protocol file produced the numbers.

Every eval JSON carries a ``provenance`` record::

    "provenance": {"checkpoint": "last" | "best" | null, "checkpoint_sha256": ..., "checkpoint_iter": ...,
                   "features_sha256": ..., "protocol": "atustc", "protocol_sha256": ...}

``checkpoint`` is null for features scored from a file (``atustc eval --features``). The
leaderboard refuses (:func:`check_eval`) an eval whose recorded checkpoint is not the one of its
file name, whose checkpoint hash differs from the run's current checkpoint, or whose protocol file
has changed since. This module is torch-free.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atustc.errors import AtustcError

if TYPE_CHECKING:
    from atustc.features import Features
    from atustc.protocol import Protocol
    from atustc.runfolder import RunFolder

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def features_hash(features: Features) -> str:
    """Hex sha256 of the relpaths, head names and float32 feature bytes."""
    import numpy as np

    h = hashlib.sha256()
    h.update("\n".join(map(str, features.relpath)).encode())
    h.update(b"\0" + "\n".join(features.heads).encode() + b"\0")
    h.update(memoryview(np.ascontiguousarray(features.feat, dtype=np.float32)).cast("B"))  # no copy of the bytes
    return h.hexdigest()


def protocol_hash(protocol: Protocol) -> str:
    """Hex sha256 of the protocol's TOML file (a shipped ``protocols/NAME.toml`` or a path).

    A variant (source ``FILE [variants.V]``) hashes the file's bytes followed by the variant's name.
    """
    source, _, variant = protocol.source.partition(" [variants.")
    if source.startswith("protocols/") and not Path(source).is_file():
        raw = resources.files("protocols").joinpath(source.removeprefix("protocols/")).read_bytes()
    else:
        raw = Path(source).read_bytes()
    if variant:
        raw += b"\0variant " + variant.removesuffix("]").encode()
    return hashlib.sha256(raw).hexdigest()


def checkpoint_record(run: RunFolder, kind: str) -> dict[str, Any]:
    """``{"checkpoint", "checkpoint_sha256"}`` of ``RUN/checkpoints/<kind>.pt`` (it must exist)."""
    return {"checkpoint": kind, "checkpoint_sha256": sha256_file(run.checkpoint_file(kind))}


def provenance(protocol: Protocol, features: Features, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``provenance`` record of an eval JSON (``checkpoint`` from :func:`checkpoint_record`)."""
    rec: dict[str, Any] = {"checkpoint": None, "checkpoint_sha256": None}
    rec.update(checkpoint or {})
    rec.update(features_sha256=features_hash(features), protocol=protocol.name, protocol_sha256=protocol_hash(protocol))
    return rec


def check_eval(result: dict[str, Any], path: Path, run: RunFolder, checkpoint: str) -> None:
    """Refuse an eval JSON that does not provably score ``run``'s ``checkpoint`` on the current protocol file.

    Raises:
        AtustcError: no provenance, another checkpoint kind, a checkpoint hash that differs from
            the run's recorded one (``status.json``), or a protocol file that changed.
    """
    from atustc.protocol import load_protocol

    prov = result.get("provenance")
    if not isinstance(prov, dict):
        raise AtustcError(f"{path}: no provenance record; score the run again (atustc eval --run or atustc bench)")
    if prov.get("checkpoint") != checkpoint:
        raise AtustcError(
            f"{path}: provenance says checkpoint {prov.get('checkpoint')!r}, the file name says {checkpoint!r}"
        )
    have = (run.read_status().get("checkpoints") or {}).get(checkpoint, {}).get("sha256")
    if have is not None and prov.get("checkpoint_sha256") != have:
        raise AtustcError(
            f"{path}: scored checkpoint sha256 {str(prov.get('checkpoint_sha256'))[:12]}…, but the run's "
            f"checkpoints/{checkpoint}.pt is {have[:12]}…; score it again (atustc eval --run or atustc bench)"
        )
    name = str(prov.get("protocol") or result.get("protocol"))
    try:
        current = protocol_hash(load_protocol(name))
    except AtustcError:
        return  # a protocol given by a path that is gone: nothing to compare with
    if prov.get("protocol_sha256") != current:
        raise AtustcError(
            f"{path}: protocol {name} changed since this eval (sha256 {str(prov.get('protocol_sha256'))[:12]}…, "
            f"now {current[:12]}…); score the run again"
        )
