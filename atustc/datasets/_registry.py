"""The indexer registry: one indexer per dataset format, looked up by name.

An indexer walks a dataset tree once and returns the rows it could parse plus the files it
rejected with reasons (see :class:`Scan`); :func:`atustc.datasets.index_dataset` turns that into
a validated table and a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atustc.errors import AtustcError, unknown_name


@dataclass
class Scan:
    """What an indexer found: column arrays for the table and the rejected files.

    Attributes:
        columns: table columns except ``split`` (``dataset``, ``relpath``, ``pid``, ...).
        rejected: ``{"path": relpath, "code": short code, "reason": sentence}`` per rejected file.
        files_seen: every file the walk met (accepted + rejected).
    """

    columns: dict[str, Any]
    rejected: list[dict[str, str]]
    files_seen: int


@dataclass(frozen=True)
class Indexer:
    """A registered dataset indexer."""

    name: str
    version: str
    description: str
    scan: Callable[[Path], Scan]


_INDEXERS: dict[str, Indexer] = {}


ScanFn = Callable[[Path], Scan]


def register_indexer(name: str, version: str, description: str) -> Callable[[ScanFn], ScanFn]:
    """Decorator: register ``scan(root) -> Scan`` as the indexer of format ``name``.

    Raises:
        AtustcError: the name is already registered.
    """

    def wrap(fn: ScanFn) -> ScanFn:
        if name in _INDEXERS:
            raise AtustcError(f"indexer {name!r} is already registered")
        _INDEXERS[name] = Indexer(name, version, description, fn)
        return fn

    return wrap


def get_indexer(name: str) -> Indexer:
    """The indexer of a format; an unknown name raises with close matches."""
    _load_builtin()
    if name not in _INDEXERS:
        raise unknown_name("dataset format", name, _INDEXERS, "formats")
    return _INDEXERS[name]


def list_indexers() -> list[str]:
    """The registered format names, sorted."""
    _load_builtin()
    return sorted(_INDEXERS)


def _load_builtin() -> None:
    import atustc.datasets.atustc_format  # noqa: F401  (registers "atustc")
