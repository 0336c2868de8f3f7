"""Which protocols a split is scored on: read from ``split.json``, never named downstream.

``split.json`` carries a ``protocols`` record written by ``atustc split`` from the dataset's
declaration::

    "protocols": {"default": "atustc", "scored": ["atustc", "atustc-mixed"], "validation": "atustc"}

- ``default``: the main protocol (``atustc eval --run`` without ``--protocol``, the leaderboard's
  main columns);
- ``scored``: every protocol the harness scores a run on (``default`` first);
- ``validation``: the protocol model selection runs on ``val-protocol.parquet`` (validation
  identities only, never the test set).

A protocol is a name in ``protocols/`` or ``NAME:VARIANT``. Split folders written before this
record existed are AT-USTC splits and get the AT-USTC protocols. This module is torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atustc.errors import AtustcError

#: What a split without a ``protocols`` record (an AT-USTC split from before the record) is scored on.
LEGACY_PROTOCOLS: dict[str, Any] = {"default": "atustc", "scored": ["atustc", "atustc-mixed"], "validation": "atustc"}


@dataclass(frozen=True)
class SplitProtocols:
    """The protocols of one split folder (see the module docstring)."""

    default: str
    scored: tuple[str, ...]
    validation: str

    def __post_init__(self) -> None:
        if not self.scored or self.scored[0] != self.default:
            raise AtustcError(
                f"split protocols: 'scored' must start with the default {self.default!r}, got {list(self.scored)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, "scored": list(self.scored), "validation": self.validation}

    @classmethod
    def from_info(cls, info: Mapping[str, Any], source: str = "split.json") -> SplitProtocols:
        """From a ``split.json`` record; a record without ``protocols`` gets :data:`LEGACY_PROTOCOLS`.

        Raises:
            AtustcError: a malformed record, naming ``source``.
        """
        rec = info.get("protocols", LEGACY_PROTOCOLS)
        try:
            default = str(rec["default"])
            scored = tuple(str(p) for p in rec.get("scored", [default]))
            validation = str(rec.get("validation", default))
        except (TypeError, KeyError) as exc:
            raise AtustcError(f"{source}: protocols: expected {{default, scored, validation}}, got {rec!r}") from exc
        try:
            return cls(default=default, scored=scored, validation=validation)
        except AtustcError as exc:
            raise AtustcError(f"{source}: {exc}") from None
