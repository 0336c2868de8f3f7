"""The training budget every method shares at the CPU-sized ``tiny`` preset.

A fair tiny comparison trains every method for the same iterations, on the same batch shape and
input size; only the optimiser and the model differ. Methods build their tiny recipe with
:func:`tiny_recipe`, so a change of the budget reaches every method at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from atustc.methods.contract import Recipe


@dataclass(frozen=True)
class Budget:
    """Iterations, batch shape, input size, augmentation strength and input normalisation of one preset.

    ``mean``/``std`` are those of the tiny backbones' ImageNet EfficientNet-Lite0 stem (a TF port:
    0.5, 0.5).
    """

    epochs: int = 16
    iters_per_epoch: int = 25
    warmup_epochs: int = 1
    step_per: str = "iter"
    num_identities: int = 8
    num_instances: int = 4
    input_size: tuple[int, int] = (96, 48)
    pad: int = 4
    random_erasing_p: float = 0.3
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


#: The budget of the ``tiny`` preset (every registered method).
TINY = Budget()


#: A randomly initialised EfficientNet-Lite0 stem of the tiny backbones (``$ATUSTC_TINY_STEM_INIT=random``)
#: trains at this fraction of the learning rate (the transformer blocks and heads at the full rate); the
#: ImageNet stem stays frozen (:func:`tiny_stem_options`).
STEM_LR_MULT = 0.2
STEM_PATTERN = r"patch_embed\.stem\."
#: Output stride of the tiny hybrids' Lite0 stem (and their patch size): 96x48 gives 6x3 tokens.
TINY_STEM_STRIDE = 16


#: At ``tiny`` the paper's first learning-rate decay comes no earlier than this fraction of the run.
FULL_RATE_FRACTION = 0.5


def tiny_epoch(epoch: float, paper: Recipe, epochs: int = TINY.epochs) -> int:
    """A paper epoch index (learning-rate milestone, loss or EMA switch) on the clock of a run of ``epochs``.

    A step schedule's decays refine a model that has trained for many epochs at the full rate; a
    400-iteration run is far from that point, and scaling the paper's epochs in proportion gave
    BoT's decays at 40 and 70 of 120 epochs only 100 full-rate iterations after warm-up. So the
    paper's clock is warped piecewise linearly: its epochs before the first milestone ``m0``
    stretch to ``knee = max(m0 * epochs / paper.epochs, FULL_RATE_FRACTION * epochs)`` and the rest
    of its schedule (milestones and switches in order) follows in ``[knee, epochs]``. Without
    milestones, for a run as long as the paper's, or when ``m0`` already falls after the half,
    this is the proportional map. The result is rounded half up into ``[1, epochs]``.
    """
    total, first = paper.epochs, min(paper.milestones, default=0)
    if not 0 < first < total or epochs >= total:
        t = epoch * epochs / total
    else:
        knee = max(first * epochs / total, FULL_RATE_FRACTION * epochs)
        t = epoch * knee / first if epoch <= first else knee + (epoch - first) * (epochs - knee) / (total - first)
    return max(1, min(epochs, math.floor(t + 0.5)))


def tiny_recipe(recipe: Recipe) -> Recipe:
    """``recipe`` with the shared :data:`TINY` budget (the optimiser and the rest are the method's)."""
    return replace(recipe, **{k: getattr(TINY, k) for k in Budget.__dataclass_fields__})


#: Environment variable that switches the tiny backbones' EfficientNet-Lite0 stem to random init.
STEM_INIT_ENV = "ATUSTC_TINY_STEM_INIT"


def tiny_stem_init() -> str:
    """``imagenet`` (default) or ``random``: the init of the tiny backbones' Lite0 stem.

    Read from ``$ATUSTC_TINY_STEM_INIT`` each time a tiny model config is built, e.g.
    ``ATUSTC_TINY_STEM_INIT=random atustc bench --out runs-random`` (a method's builder sees no
    recipe, so this is not a ``--set`` key). Embedding a trained run loads its checkpoint over
    whatever init the stem had, so the variable matters only for training.

    Raises:
        AtustcError: any other value.
    """
    from atustc.errors import AtustcError

    value = os.environ.get(STEM_INIT_ENV, "imagenet").strip().lower() or "imagenet"
    if value not in ("imagenet", "random"):
        raise AtustcError(f"${STEM_INIT_ENV} must be imagenet or random, got {value!r}")
    return value


def tiny_stem_options() -> dict[str, str | int]:
    """``stem_init`` and ``stem_frozen`` of the tiny hybrid backbones (:class:`atustc.models.config.ViTConfig`).

    The ImageNet EfficientNet-Lite0 stem is frozen whole (weights and BatchNorm statistics): on the
    validation identities of the embedded default it matched fine-tuning it at 0.2x the learning
    rate (Any-Time mAP 31.0 vs 30.5) at 58 % of the CPU time per step, which pays for the budget of
    both tiny methods. A random stem (:func:`tiny_stem_init`) is trained.
    """
    from atustc.models.config import LITE0_STAGES

    init = tiny_stem_init()
    return {"stem_init": init, "stem_frozen": 1 + LITE0_STAGES[TINY_STEM_STRIDE] if init == "imagenet" else 0}
