"""The method registry: ``@register_method`` adds a :class:`MethodSpec`; lookups suggest close names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Callable

from atustc.errors import unknown_name
from atustc.methods.contract import MethodSpec

_METHODS: dict[str, MethodSpec] = {}


def register_method(spec_factory: Callable[[], MethodSpec]) -> Callable[[], MethodSpec]:
    """Decorator: register the :class:`MethodSpec` returned by ``spec_factory``.

    Raises:
        ValueError: a method of the same name is already registered.
    """
    spec = spec_factory()
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec_factory


def is_registered(name: str) -> bool:
    """Whether a method of this name is registered (built-ins are not loaded by this check)."""
    return name in _METHODS


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (for tests and plugins that register temporary methods)."""
    _METHODS.pop(name, None)


@contextlib.contextmanager
def temporary_method(spec_factory: Callable[[], MethodSpec]) -> Iterator[MethodSpec]:
    """Register a method for the duration of a ``with`` block, then remove it."""
    spec = spec_factory()
    register_method(lambda: spec)
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
