"""``atustc bench --list``: every registered method with its heads, size and recipes."""

from __future__ import annotations

from typing import Any


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method: name, family, heads, parameters at ``tiny``, recipe summary.

    Each model is built at ``tiny`` on a small dummy label space (8 persons, 16 outfits, 16
    cameras), so the parameter count includes classifiers of that size.
    """
    from atustc.methods import LabelSpace, list_methods

    labels = LabelSpace(num_pids=8, num_outfits=16, outfit_to_pid=tuple(i // 2 for i in range(16)), num_cameras=16)
    rows = []
    for spec in list_methods():
        try:
            model = spec.create(labels, "tiny")
            heads, params = ", ".join(model.head_names), sum(p.numel() for p in model.parameters())
        except Exception as exc:  # a broken method is listed, not fatal
            heads, params = f"build failed: {type(exc).__name__}: {exc}", None
        rows.append({
            "name": spec.name, "family": spec.family, "heads": heads, "params_tiny": params,
            "recipe_tiny": recipe_summary(spec.recipe("tiny")), "recipe_paper": recipe_summary(spec.recipe("paper")),
            "summary": spec.summary,
        })  # fmt: skip
    return rows


def recipe_summary(recipe: Any) -> str:
    """One line: optimiser, lr, schedule, iterations, batch and input size."""
    h, w = recipe.input_size
    return (
        f"{recipe.optimizer} {recipe.lr:g}, {recipe.schedule}, {recipe.epochs}x{recipe.iters_per_epoch} it, "
        f"{recipe.sampler} {recipe.num_identities}x{recipe.num_instances}, {h}x{w}"
    )
