"""Engine settings, ``--set key=value`` overrides and recipe (de)serialisation.

``--set`` keys are :class:`~atustc.methods.contract.Recipe` fields (``epochs=2``,
``input_size=64,32``, ``clip_grad_norm=none``), ``extra.<key>`` entries of ``recipe.extra``
(values parsed as JSON, else kept as text), the method's own options
(:class:`~atustc.methods.contract.MethodOption`, e.g. Uni-AT's ``hdw_norm=official``: checked, kept
as text in ``recipe.extra``) or :class:`EngineConfig` fields (``num_workers=0``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atustc.errors import AtustcError
from atustc.methods.contract import MethodOption, Recipe


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs (not what it learns): loading, logging, checkpointing, validation.

    Attributes:
        num_workers: DataLoader worker processes (0 = load in the main process).
        log_every: iterations per line of ``metrics.jsonl`` (losses averaged over the window).
        checkpoint_every: iterations between ``checkpoints/last.pt`` writes; 0 = at the end of each
            epoch. A checkpoint is always written at the end of training.
        eval_batch_size: images per batch when embedding (validation and ``embed``).
        val_metric: the ``Any-Time`` metric of the validation protocol that selects ``best.pt``.
    """

    num_workers: int = min(4, os.cpu_count() or 1)
    log_every: int = 20
    checkpoint_every: int = 0
    eval_batch_size: int = 128
    val_metric: str = "mAP"

    def __post_init__(self) -> None:
        for name, low in (("num_workers", 0), ("log_every", 1), ("checkpoint_every", 0), ("eval_batch_size", 1)):
            if getattr(self, name) < low:
                raise AtustcError(f"engine setting {name} must be >= {low}, got {getattr(self, name)}")
        if self.val_metric not in ("R1", "R5", "R10", "R20", "mAP", "mINP"):
            raise AtustcError(
                f"engine setting val_metric must be R1, R5, R10, R20, mAP or mINP, got {self.val_metric!r}"
            )


def parse_set_options(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["epochs=2", ...]`` -> ``{"epochs": "2"}``.

    Raises:
        AtustcError: an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AtustcError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def apply_overrides(
    recipe: Recipe,
    engine: EngineConfig,
    overrides: dict[str, Any] | None,
    options: Sequence[MethodOption] = (),
) -> tuple[Recipe, EngineConfig]:
    """Apply overrides (text from ``--set`` or typed values from Python) to the recipe and engine settings.

    ``options`` are the method's :class:`MethodOption` s: their keys are checked and stored as text
    in ``recipe.extra``.

    Raises:
        AtustcError: unknown key (with the list of keys), a value of the wrong type, or a result
            the recipe's own validation rejects.
    """
    rec_fields = {f.name: f for f in dataclasses.fields(Recipe) if f.name != "extra"}
    eng_fields = {f.name: f for f in dataclasses.fields(EngineConfig)}
    rec_changes: dict[str, Any] = {}
    eng_changes: dict[str, Any] = {}
    extra = dict(recipe.extra)
    method_options = {o.name: o for o in options}
    for key, value in (overrides or {}).items():
        if key in method_options:
            method_options[key].value(value)
            extra[key] = str(value).strip()
        elif key.startswith("extra."):
            extra[key[6:]] = _parse_json(value) if isinstance(value, str) else value
        elif key in rec_fields:
            rec_changes[key] = _coerce(key, value, rec_fields[key], getattr(recipe, key))
        elif key in eng_fields:
            eng_changes[key] = _coerce(key, value, eng_fields[key], getattr(engine, key))
        else:
            known = ", ".join([*rec_fields, *method_options, *eng_fields, "extra.<key>"])
            raise AtustcError(f"--set {key}: unknown key; known keys: {known}")
    if extra != recipe.extra:
        rec_changes["extra"] = extra
    try:
        return dataclasses.replace(recipe, **rec_changes), dataclasses.replace(engine, **eng_changes)
    except AtustcError as exc:  # the recipe's or the engine's own check: name the options that led there
        given = " ".join(f"{k}={v}" for k, v in (overrides or {}).items())
        raise AtustcError(f"--set {given}: {exc.message}") from None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _coerce(key: str, value: Any, field: dataclasses.Field, current: Any) -> Any:
    """Convert ``value`` to the type of ``field`` (annotation text under postponed evaluation)."""
    ann = str(field.type)
    literal = re.search(r"Literal\[(.*?)\]", ann)
    if not isinstance(value, str):
        out = value
    elif "None" in ann and value.lower() in ("none", "null", ""):
        return None
    elif ann.startswith("tuple"):
        kind = re.match(r"tuple\[(\w+)", ann)
        conv = {"int": int, "float": float}.get(kind.group(1) if kind else "str", str)
        items = [v.strip() for v in value.split(",") if v.strip()]
        try:
            out = tuple(conv(v) for v in items)
        except ValueError:
            raise AtustcError(f"--set {key}={value}: expected a comma-separated list of {conv.__name__}") from None
    elif isinstance(current, bool) or ann == "bool":
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise AtustcError(f"--set {key}={value}: expected true or false")
        out = value.lower() in ("true", "1", "yes")
    elif literal or isinstance(current, str):
        out = value
    else:
        conv = float if ("float" in ann or isinstance(current, float)) else int
        try:
            out = conv(value)
        except ValueError:
            kind = "a number" if conv is float else "an integer"
            raise AtustcError(f"--set {key}={value}: expected {kind}") from None
    if literal:
        allowed = [a.strip().strip("'\"") for a in literal.group(1).split(",")]
        if out not in allowed:
            raise AtustcError(f"--set {key}={value}: expected one of {', '.join(allowed)}")
    return out


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """A JSON-ready dict of a recipe (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(recipe)))


def recipe_from_dict(d: dict[str, Any], source: str = "recipe") -> Recipe:
    """Inverse of :func:`recipe_to_dict`; ``source`` (e.g. a run's ``config.json``) names it in errors."""
    fields = {f.name for f in dataclasses.fields(Recipe)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in fields}
    try:
        return Recipe(**kwargs)
    except (AtustcError, TypeError) as exc:
        raise AtustcError(f"{source}: {getattr(exc, 'message', exc)}") from None


def import_plugins(modules: Sequence[str]) -> None:
    """Import modules that register extra methods (``--plugin``).

    Raises:
        AtustcError: a module cannot be imported.
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise AtustcError(f"--plugin {name}: cannot import ({exc})") from None
