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

from atustc.errors import AtustcError
from atustc.methods.contract import OptimGroup, Recipe


def param_groups(model: torch.nn.Module, recipe: Recipe, exclude: frozenset[int] = frozenset()) -> list[dict]:
    """Trainable parameters split by (weight decay, lr multiplier); empty groups are dropped.

    Each group carries ``lr_scale`` (1 or ``recipe.lr_mult``) and its parameter ``names``.
    Parameters whose ``id`` is in ``exclude`` (a method's own :class:`OptimGroup` s) are left out.
    """
    no_decay = [re.compile(p) for p in recipe.no_decay_patterns]
    boosted = [re.compile(p) for p in recipe.lr_mult_patterns]
    groups: dict[tuple[bool, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in exclude:
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


#: Device types whose fused optimiser kernels torch provides for SGD, Adam and AdamW.
_FUSED_DEVICES = frozenset({"cpu", "cuda"})


def fused_kwargs(params: Sequence[torch.Tensor]) -> dict[str, bool]:
    """``{"fused": True}`` when every parameter is a floating tensor on a device with fused kernels, else ``{}``.

    A fused step updates all tensors of a group in one kernel: on the CPU it is 5-13x faster than the
    default per-tensor loop, which matters for the parameter-heavy mixtures of Table 2 (MoAE-12 has
    4.3x MS-ReID's parameters). The result equals the loop's to float rounding (tests/test_engine_units.py).
    """
    ok = bool(params) and all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in params)
    return {"fused": True} if ok and len({p.device for p in params}) == 1 else {}


def build_optimizer(
    model: torch.nn.Module, recipe: Recipe, exclude: frozenset[int] = frozenset()
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over :func:`param_groups`, at the recipe's base lr (fused when possible)."""
    groups = param_groups(model, recipe, exclude)
    for g in groups:
        g["lr"] = recipe.lr * g["lr_scale"]
    fused = fused_kwargs([p for g in groups for p in g["params"]])
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov, **fused)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, **fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, **fused)
    raise AtustcError(f"recipe: unknown optimizer {recipe.optimizer!r}; expected sgd, adam or adamw")


def lr_factor(recipe: Recipe, it: int) -> float:
    """Learning-rate multiplier (of the base lr) in force at iteration ``it`` (0-based).

    With ``step_per == "epoch"`` (the official recipes) the schedule is evaluated at the 1-based
    number of the epoch ``it`` falls in, ``e = it // iters_per_epoch + 1``, as the official codes
    step their schedulers at the start of each epoch with the epoch number (kw66/AT-ReID and
    TransReID: timm-style warm-up + cosine; BoT: ``WarmupMultiStepLR``): the 10th epoch of a
    10-epoch warm-up trains at 1.0, and the last epoch at ``min_lr_factor``. With ``"iter"`` it is
    the fractional epoch ``it / iters_per_epoch``.

    Warm-up is linear, ``warmup_start_factor + (1 - warmup_start_factor) * e / warmup_epochs`` for
    ``e < warmup_epochs``; then ``cosine`` is ``min + (1 - min) * (1 + cos(pi * t)) / 2`` with
    ``t = (e - warmup_epochs) / (epochs - warmup_epochs)``, ``multistep`` multiplies by ``gamma``
    at each milestone ``m <= e``, ``constant`` stays at 1.
    """
    e = it // recipe.iters_per_epoch + 1 if recipe.step_per == "epoch" else it / recipe.iters_per_epoch
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
        if "schedulers" not in state:  # a checkpoint from before LambdaLR: only the iteration
            for s in self.schedulers:
                s.last_epoch = int(state["it"]) - 1
                s.step()
            return
        for s, saved in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(saved)


def method_groups(model: torch.nn.Module) -> list[OptimGroup]:
    """The model's own :class:`OptimGroup` s (``model.optim_groups()``; none without the method).

    Raises:
        AtustcError: not OptimGroups, duplicate names, parameters shared between groups, or
            parameters that are not the model's (they would be missing from checkpoints).
    """
    hook = getattr(model, "optim_groups", None)
    groups = list(hook()) if callable(hook) else []
    owned = {id(p) for p in model.parameters()}
    seen: set[int] = set()
    names: set[str] = set()
    for g in groups:
        if not isinstance(g, OptimGroup):
            raise AtustcError(f"optim_groups() must return OptimGroup objects, got {type(g).__name__}")
        if g.name in names:
            raise AtustcError(f"optim group {g.name!r}: duplicate name")
        names.add(g.name)
        ids = {id(p) for p in g.params}
        if ids - owned:
            raise AtustcError(f"optim group {g.name!r}: holds parameters that are not the model's")
        if ids & seen:
            raise AtustcError(f"optim group {g.name!r}: shares parameters with another group")
        seen |= ids
    return groups


def _group_optimizer(g: OptimGroup) -> torch.optim.Optimizer:
    params = [{"params": list(g.params), "lr": g.lr, "weight_decay": g.weight_decay}]
    if g.optimizer == "sgd":
        return torch.optim.SGD(params, lr=g.lr, momentum=g.momentum)
    return (torch.optim.Adam if g.optimizer == "adam" else torch.optim.AdamW)(params, lr=g.lr)


class Optimisers:
    """The recipe's main optimiser plus one per method :class:`OptimGroup`, and their schedule.

    The main optimiser trains every trainable parameter outside the groups. Scheduled groups
    follow the main lr factor; the others keep their lr. Gradients are clipped (when the recipe
    clips) over the main optimiser's parameters, and a group's gradients are multiplied by its
    ``grad_scale`` just before its step.
    """

    def __init__(self, model: torch.nn.Module, recipe: Recipe) -> None:
        self.groups = method_groups(model)
        taken = frozenset(id(p) for g in self.groups for p in g.params)
        self.main = build_optimizer(model, recipe, taken)
        self.extra = [_group_optimizer(g) for g in self.groups]
        self.main_params = [p for p in model.parameters() if id(p) not in taken]
        scheduled = [o for g, o in zip(self.groups, self.extra) if g.scheduled]
        self.schedule = Schedule([self.main, *scheduled], recipe)

    def zero_grad(self) -> None:
        for opt in (self.main, *self.extra):
            opt.zero_grad(set_to_none=True)

    def step(self, scaler: torch.amp.GradScaler) -> None:
        """Step every optimiser through the gradient scaler (groups after their ``grad_scale``)."""
        scaler.step(self.main)
        for g, opt in zip(self.groups, self.extra):
            if g.grad_scale != 1.0:
                for p in g.params:
                    if p.grad is not None:
                        p.grad.mul_(g.grad_scale)
            scaler.step(opt)

    def state_dict(self) -> dict:
        return {
            "optimizer": self.main.state_dict(),
            "optim_groups": {g.name: o.state_dict() for g, o in zip(self.groups, self.extra)},
            "scheduler": self.schedule.state_dict(),
        }

    def load_state_dict(self, state: dict, source: object) -> None:
        """Restore :meth:`state_dict` (``source`` names the checkpoint in errors).

        Raises:
            AtustcError: the checkpoint's optimiser groups differ from the model's.
        """
        saved = state.get("optim_groups", {})
        have = [g.name for g in self.groups]
        if sorted(saved) != sorted(have):
            raise AtustcError(
                f"checkpoint {source}: optimiser groups {sorted(saved)} differ from the model's {sorted(have)}"
            )
        self.main.load_state_dict(state["optimizer"])
        for g, opt in zip(self.groups, self.extra):
            opt.load_state_dict(saved[g.name])
        self.schedule.load_state_dict(state["scheduler"])
