"""Explicit imports of every built-in method module; each registers itself on import."""

# Uni-AT and its ablation variants (atustc/methods/uniat.py registers them).
import atustc.methods.uniat  # noqa: F401
import baselines  # noqa: F401  (baselines/__init__.py imports each baseline module)
