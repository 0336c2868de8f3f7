"""``--plugin engine_plugin`` for subprocess tests: registers the engine test method (once)."""

from atustc.methods import is_registered, register_method
from engine_helpers import METHOD, tiny_spec

if not is_registered(METHOD):
    register_method(tiny_spec)
