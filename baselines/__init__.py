"""Competing methods, one module each, registered through :func:`atustc.methods.register_method`."""

from baselines import agw, aim, bot, cal, pcb, saai, transreid  # noqa: F401
