"""One optimisation step, the autocast context, and the loss window of the log.

:func:`train_step` runs forward + loss under autocast, backward, optional clipping and the update;
:class:`LossWindow` sums the loss entries of a logging window (kept in checkpoints so that a
resumed run logs exactly what an uninterrupted one does).
"""

from __future__ import annotations

import random
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from atustc.engine.distributed import DistInfo
from atustc.engine.optim import Optimisers
from atustc.errors import AtustcError

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_context(device: torch.device, amp: str) -> AbstractContextManager[Any]:
    """The autocast context of ``amp`` (``off``: a no-op context), for training and embedding alike."""
    dtype = _AMP_DTYPES.get(amp)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


class TrainStep(torch.nn.Module):
    """Forward plus loss in one module, so DDP and torch.compile see every parameter the loss uses."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model.loss(self.model(batch), batch)


def wrap_step(
    model: torch.nn.Module, info: DistInfo, device: torch.device, *, compile: bool = False, unused: bool = False
) -> torch.nn.Module:
    """The model's :class:`TrainStep`, compiled and/or wrapped in DDP (with ``find_unused_parameters=unused``)."""
    step: torch.nn.Module = TrainStep(model)
    if compile:
        step = torch.compile(step)
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        step = torch.nn.parallel.DistributedDataParallel(step, device_ids=ids, find_unused_parameters=unused)
    return step


def train_step(
    step: torch.nn.Module,
    optim: Optimisers,
    scaler: torch.amp.GradScaler,
    batch: Any,
    clip_grad_norm: float | None,
    autocast: Any,
    it: int,
) -> dict[str, torch.Tensor]:
    """One optimisation step: forward + loss under ``autocast``, backward, clipping, update.

    Args:
        step: the (possibly DDP-wrapped or compiled) module returning the loss dict.
        optim: the optimisers (the main one's parameters are clipped).
        it: the 0-based iteration, for the error message.

    Raises:
        AtustcError: the loss is not finite.
    """
    with autocast:
        losses = step(batch)
    loss = losses["total"]
    if not torch.isfinite(loss.detach()):
        raise AtustcError(f"loss is {float(loss)} at iteration {it + 1}; lower the lr or train without --amp")
    optim.zero_grad()
    scaler.scale(loss).backward()
    if clip_grad_norm:
        scaler.unscale_(optim.main)
        torch.nn.utils.clip_grad_norm_(optim.main_params, clip_grad_norm)
    optim.step(scaler)
    scaler.update()
    return losses


class LossWindow:
    """Loss sums over the current logging window, kept on the device (kept in checkpoints so logs resume exactly).

    :meth:`add` queues float64 additions on the device without a host sync; :meth:`means` (at log
    time) averages, all-reduces across processes and brings the values to the host once.
    """

    def __init__(self, device: torch.device | str = "cpu", state: dict[str, Any] | None = None) -> None:
        self.device = torch.device(device)
        self.sums: dict[str, torch.Tensor] = {
            k: torch.tensor(float(v), dtype=torch.float64, device=self.device)
            for k, v in (state or {}).get("sums", {}).items()
        }
        self.count = int((state or {}).get("count", 0))

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            value = v.detach().to(torch.float64)
            self.sums[k] = self.sums[k] + value if k in self.sums else value
        self.count += 1

    def means(self, info: DistInfo) -> dict[str, float]:
        keys = sorted(self.sums)
        if not keys:
            return {}
        vals = torch.stack([self.sums[k] for k in keys]) / max(self.count, 1)
        if info.enabled:
            torch.distributed.all_reduce(vals)
            vals /= info.world
        return {f"loss/{k}": v for k, v in zip(keys, vals.tolist())}

    def state(self) -> dict[str, Any]:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}
