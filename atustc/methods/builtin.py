"""Explicit imports of every built-in method module; each registers itself on import."""

# Uni-AT and its ablation variants (atustc/models/uniat.py registers them).
import atustc.models.uniat  # noqa: F401
import baselines  # noqa: F401  (baselines/__init__.py imports each baseline module)
