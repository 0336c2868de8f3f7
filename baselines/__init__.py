"""Competing methods, one module each, registered through :func:`atustc.methods.register_method`."""

from baselines import agw, aim, bot, cal, cift, pcb, saai, transreid  # noqa: F401
