"""``--plugin engine_plugin`` for subprocess tests: registers the engine test method (once)."""

from atustc.methods._registry import _METHODS, register_method
from engine_helpers import METHOD, tiny_spec

if METHOD not in _METHODS:
    register_method(tiny_spec)
