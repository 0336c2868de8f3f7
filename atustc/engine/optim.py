"""Optimisers, parameter groups and the warmup + cosine/multi-step learning-rate schedule (``LambdaLR``).

Parameter groups follow the official recipe: no weight decay for parameters whose name matches
``recipe.no_decay_patterns`` (position embeddings, CLS tokens, norms, biases), and the learning
rate times ``recipe.lr_mult`` for names matching ``recipe.lr_mult_patterns`` (the last blocks, the
necks and the classifiers). Patterns are regular expressions searched anywhere in the parameter
name, so a plain substring such as ``norm`` works as well as ``^blocks\\.1[01]\\.``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

from atustc.methods.contract import Recipe


def param_groups(model: torch.nn.Module, recipe: Recipe) -> list[dict]:
    """Trainable parameters split by (weight decay, lr multiplier); empty groups are dropped.

    Each group carries ``lr_scale`` (1 or ``recipe.lr_mult``) and its parameter ``names``.
    """
    no_decay = [re.compile(p) for p in recipe.no_decay_patterns]
    boosted = [re.compile(p) for p in recipe.lr_mult_patterns]
    groups: dict[tuple[bool, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (not any(p.search(name) for p in no_decay), any(p.search(name) for p in boosted))
        group = groups.setdefault(
            key,
            {
                "params": [],
                "names": [],
                "weight_decay": recipe.weight_decay if key[0] else 0.0,
                "lr_scale": recipe.lr_mult if key[1] else 1.0,
            },
        )
        group["params"].append(param)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups, reverse=True)]


def build_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over :func:`param_groups`, at the recipe's base lr."""
    groups = param_groups(model, recipe)
    for g in groups:
        g["lr"] = recipe.lr * g["lr_scale"]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    from atustc.errors import AtustcError

    raise AtustcError(f"recipe: unknown optimizer {recipe.optimizer!r}; expected sgd, adam or adamw")


def lr_factor(recipe: Recipe, it: int) -> float:
    """Learning-rate multiplier (of the base lr) in force at iteration ``it`` (0-based).

    With ``step_per == "epoch"`` the schedule is evaluated at the integer epoch ``it //
    iters_per_epoch`` (the official recipe); with ``"iter"`` at the fractional epoch ``it /
    iters_per_epoch``. Warmup is linear from ``warmup_start_factor`` at epoch 0 to 1 at
    ``warmup_epochs``; then ``cosine`` falls from 1 to ``min_lr_factor`` at ``epochs``,
    ``multistep`` multiplies by ``gamma`` at each milestone epoch, ``constant`` stays at 1.
    """
    e = it // recipe.iters_per_epoch if recipe.step_per == "epoch" else it / recipe.iters_per_epoch
    w = recipe.warmup_epochs
    if e < w:
        return recipe.warmup_start_factor + (1.0 - recipe.warmup_start_factor) * e / w
    if recipe.schedule == "cosine":
        span = recipe.epochs - w
        t = min(1.0, (e - w) / span) if span > 0 else 1.0
        return recipe.min_lr_factor + (1.0 - recipe.min_lr_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if recipe.schedule == "multistep":
        return recipe.gamma ** sum(1 for m in recipe.milestones if e >= m)
    return 1.0


class Schedule:
    """The recipe's schedule as :class:`torch.optim.lr_scheduler.LambdaLR` over one or more optimisers.

    Every group's lr is its initial lr (``recipe.lr * lr_scale`` for the main optimiser) times
    :func:`lr_factor` of the iteration; :meth:`step` advances one iteration.
    """

    def __init__(self, optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], recipe: Recipe) -> None:
        self.recipe = recipe
        opts = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
        self.schedulers = [LambdaLR(o, partial(lr_factor, recipe)) for o in opts]

    @property
    def it(self) -> int:
        """The iteration whose lr is in force (0-based)."""
        return self.schedulers[0].last_epoch if self.schedulers else 0

    def step(self) -> None:
        for s in self.schedulers:
            s.step()

    @property
    def lr(self) -> float:
        """Current base lr (groups with ``lr_scale`` 1)."""
        return self.recipe.lr * lr_factor(self.recipe, self.it)

    def state_dict(self) -> dict:
        return {"it": self.it, "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict) -> None:
        for s, saved in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(saved)
