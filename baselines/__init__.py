"""Competing methods, one module each, registered through :func:`atustc.methods.register_method`."""

from baselines import transreid  # noqa: F401
