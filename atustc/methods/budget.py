"""The training budget every method shares at the CPU-sized ``tiny`` preset.

A fair tiny comparison trains every method for the same iterations, on the same batch shape and
input size; only the optimiser and the model differ. Methods build their tiny recipe with
:func:`tiny_recipe`, so a change of the budget reaches every method at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from atustc.methods.contract import Recipe


@dataclass(frozen=True)
class Budget:
    """Iterations, batch shape, input size and augmentation strength of one preset."""

    epochs: int = 24
    iters_per_epoch: int = 25
    warmup_epochs: int = 1
    step_per: str = "iter"
    num_identities: int = 8
    num_instances: int = 4
    input_size: tuple[int, int] = (128, 64)
    pad: int = 6
    random_erasing_p: float = 0.3


#: The budget of the ``tiny`` preset (every registered method).
TINY = Budget()


def tiny_recipe(recipe: Recipe) -> Recipe:
    """``recipe`` with the shared :data:`TINY` budget (the optimiser and the rest are the method's)."""
    return replace(recipe, **{k: getattr(TINY, k) for k in Budget.__dataclass_fields__})
