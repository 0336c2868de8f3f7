"""Evaluation protocols as data: the TOML schema and the loader (by name, ``NAME:VARIANT`` or path).

The validated objects and their junk rules live in :mod:`atustc.protocol_model`, the schema
checks in :mod:`atustc.protocol_schema`; both are importable from here. A protocol is a TOML
file (named ones live in the ``protocols`` package). Every key::

    [protocol]
    name = "atustc"                  # optional; defaults to the file stem
    description = "..."              # optional
    metric = "cosine"                # cosine (default) | euclidean

    [pools.st-query]                 # named pools: filters on table columns, AND-ed
    flag = [2, 4]                    # a value or a list of allowed values
    modality = "rgb"

    [scenarios.DT-ST]                # scored in file order
    query = "st-query"               # a pool name or an inline filter table {split = "query"}
    gallery = "st-gallery"
    head = "DT-ST"                   # the feature head scored (a 1-head feature serves all)
    junk = [                         # what a kept pair must satisfy; failing pairs are junk
      { rule = "modality", value = "same_rgb", scope = "all" },
      { rule = "clothes", value = "same", scope = "same_pid" },
    ]
    directions = "forward"           # forward (default) | both (also gallery -> query; averaged)
    sampling = { mode = "single_shot", trials = 10, seed = 0 }   # optional gallery sampling
    # or { mode = "multi_shot", shots = 10, trials = 10, seed = 0 }
    same_camera_junk = true          # false: no always-on same-pid same-camera rule
    identities = "clothes_change"    # optional: only identities seen in > 1 outfit in the pools

    [aggregates.Any-Time]
    scenarios = ["DT-ST", "..."]
    weight = "mean"                  # mean (unweighted) | valid (weighted by valid queries)

Junk rules (``rule`` / ``value``): ``camera`` same|different, ``modality``
same_rgb|same_ir|cross|same, ``clothes`` same|change, ``date`` same|different, and
``camera_pair`` with ``pairs = [[query_camera, gallery_camera], ...]`` (the listed camera pairs
fail, e.g. SYSU-MM01's ``[[3, 2]]``). Scope ``all`` removes every failing pair, positives and
negatives; scope ``same_pid`` removes only failing same-identity pairs. One rule is always on and
needs no entry: a gallery entry of the query's identity seen by the query's camera is junk
(``same_camera_junk = false`` turns it off for a scenario). ``identities = "clothes_change"``
restricts query and gallery to the identities seen in more than one outfit among the
scenario's rows (LTCC's cloth-change set, as kw66/AT-ReID others/test_all.py scores it).

Named variants: ``[variants.NAME]`` tables in the same file, loaded as ``FILE:NAME`` and merged
over the base section by section (see :mod:`atustc.protocol_variants` and ``protocols/README.md``).

Gallery sampling ``single_shot`` keeps one random gallery image per (pid, camera) in each of
``trials`` trials, ``multi_shot`` keeps ``shots`` of them (all of a smaller group); trial ``t``
draws with ``numpy.random.default_rng([seed, t])`` over the gallery rows sorted by ``relpath``,
so a draw depends on neither the table's row order nor the machine (see
:func:`atustc.trials.draw_gallery`); metrics are averaged over trials and directions, and
every drawn gallery is recorded in the result (:attr:`atustc.evaluate.ProtocolResult.trials`).
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

import tomllib

from atustc.errors import AtustcError
from atustc.protocol_model import (
    LABEL_COLUMNS,
    MODALITY_CODE,
    SAME_CAMERA_JUNK,
    Aggregate,
    JunkRule,
    Labels,
    PairJunk,
    Pool,
    Protocol,
    Sampling,
    Scenario,
    Scope,
)
from atustc.protocol_schema import (
    DIRECTIONS,
    IDENTITY_FILTERS,
    METRICS,
    RULES,
    SAMPLING_MODES,
    SCOPES,
    WEIGHTS,
    parse_protocol,
)

__all__ = [
    "DIRECTIONS",
    "IDENTITY_FILTERS",
    "LABEL_COLUMNS",
    "METRICS",
    "MODALITY_CODE",
    "RULES",
    "SAME_CAMERA_JUNK",
    "SAMPLING_MODES",
    "SCOPES",
    "WEIGHTS",
    "Aggregate",
    "JunkRule",
    "Labels",
    "PairJunk",
    "Pool",
    "Protocol",
    "Sampling",
    "Scenario",
    "Scope",
    "available_protocols",
    "load_protocol",
    "parse_protocol",
    "protocol_variants",
]


def available_protocols() -> list[str]:
    """Names of the protocols shipped in the ``protocols`` package."""
    return sorted(
        p.name.removesuffix(".toml") for p in resources.files("protocols").iterdir() if p.name.endswith(".toml")
    )


def load_protocol(name_or_path: str | os.PathLike[str]) -> Protocol:
    """Load and validate a protocol by name (a file in ``protocols/``), ``NAME:VARIANT``, or a path.

    ``NAME:VARIANT`` (also ``path/to/file.toml:VARIANT``) reads the ``[variants.VARIANT]`` table
    of the file and merges it over the base (see :func:`atustc.protocol_variants.apply_variant`); the protocol is then
    named ``NAME:VARIANT`` unless the variant sets ``protocol.name``.

    Raises:
        AtustcError: unknown name or variant, unreadable file, bad TOML or a schema violation
            (one line naming the file and the key).
    """
    text = str(name_or_path)
    base_text, variant = text, None
    if ":" in text and not os.path.exists(text):
        base_text, variant = text.rsplit(":", 1)
    source, raw, stem = _read_source(base_text)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AtustcError(f"{source}: not valid TOML ({exc})") from None
    if not isinstance(data.get("variants", {}), dict):
        raise AtustcError(f"{source}: variants: expected a table of variant tables")
    variants = data.pop("variants", {})
    if variant is None:
        return parse_protocol(data, source, default_name=stem)
    from atustc.protocol_variants import apply_variant

    merged = apply_variant(data, variants, variant, source)
    if "name" not in variants.get(variant, {}).get("protocol", {}):
        # the base's name would make a variant's eval files overwrite the base's
        base_name = data.get("protocol", {}).get("name", stem)
        merged.setdefault("protocol", {})["name"] = f"{base_name}:{variant}"
    return parse_protocol(merged, f"{source} [variants.{variant}]", default_name=f"{stem}:{variant}")


def protocol_variants(name_or_path: str | os.PathLike[str]) -> list[str]:
    """The variant names a protocol file defines, in file order."""
    source, raw, _ = _read_source(str(name_or_path))
    try:
        variants = tomllib.loads(raw.decode("utf-8")).get("variants", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AtustcError(f"{source}: not valid TOML ({exc})") from None
    return list(variants) if isinstance(variants, dict) else []


def _read_source(text: str) -> tuple[str, bytes, str]:
    """``(source name for messages, file bytes, file stem)`` of a protocol name or path."""
    path = Path(text)
    if path.suffix == ".toml" or os.sep in text or "/" in text:
        if not path.is_file():
            raise AtustcError(f"{path}: protocol file not found")
        return str(path), path.read_bytes(), path.stem
    names = available_protocols()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names)}"
        raise AtustcError(f"unknown protocol {text!r} ({hint}; or give a path to a .toml file)")
    return f"protocols/{text}.toml", resources.files("protocols").joinpath(f"{text}.toml").read_bytes(), text
