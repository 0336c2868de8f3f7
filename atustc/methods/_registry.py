"""The method registry: ``register_method(spec)`` adds a :class:`MethodSpec`; lookups suggest close names.

A method module registers its specs with plain calls at import time::

    register_method(MethodSpec(name="bot", family="Tr-ReID", summary=..., build=..., recipe=...))

:mod:`atustc.methods.builtin` imports every built-in method module explicitly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from atustc.errors import unknown_name
from atustc.methods.contract import MethodSpec

_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec | Callable[[], MethodSpec]) -> MethodSpec:
    """Register ``spec`` (a :class:`MethodSpec`, or a function returning one) and return the spec.

    Raises:
        ValueError: a method of the same name is already registered.
        TypeError: ``spec`` is not a MethodSpec (nor gives one).
    """
    if not isinstance(spec, MethodSpec) and callable(spec):
        spec = spec()
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method needs a MethodSpec, got {type(spec).__name__}")
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec


def is_registered(name: str) -> bool:
    """Whether a method of this name is registered (built-ins are not loaded by this check)."""
    return name in _METHODS


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (for tests and plugins that register temporary methods)."""
    _METHODS.pop(name, None)


@contextlib.contextmanager
def temporary_method(spec: MethodSpec | Callable[[], MethodSpec]) -> Iterator[MethodSpec]:
    """Register a method for the duration of a ``with`` block, then remove it."""
    spec = register_method(spec)
    try:
        yield spec
    finally:
        unregister_method(spec.name)


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``.

    Raises:
        AtustcError: unknown name, with close matches.
    """
    _load_builtin()
    if name not in _METHODS:
        raise unknown_name("method", name, _METHODS, "registered")
    return _METHODS[name]


def list_methods() -> list[MethodSpec]:
    """All registered methods, sorted by name."""
    _load_builtin()
    return [_METHODS[k] for k in sorted(_METHODS)]


def _load_builtin() -> None:
    """Import the modules that register the built-in methods (Uni-AT and the baselines)."""
    import atustc.methods.builtin  # noqa: F401
