"""The training engine: train any registered method into a run folder, and embed with a trained run.

``run_training(TrainRequest(...))`` (or ``train_run`` with the request's fields) and ``embed_run``
are imported on first use, so ``import atustc.engine`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atustc.engine.embed import embed_run, run_scoring
    from atustc.engine.request import TrainRequest
    from atustc.engine.train import run_training, train_run

__all__ = ["TrainRequest", "embed_run", "run_scoring", "run_training", "train_run"]

_HOMES = {
    "TrainRequest": "atustc.engine.request",
    "embed_run": "atustc.engine.embed",
    "run_scoring": "atustc.engine.embed",
    "run_training": "atustc.engine.train",
    "train_run": "atustc.engine.train",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'atustc.engine' has no attribute {name!r}")
