"""Competing methods, one module each, registered through :func:`atustc.methods.register_method`."""
