"""The training engine: train any registered method into a run folder, and embed with a trained run.

``train_run`` and ``embed_run`` are imported on first use, so ``import atustc.engine`` does not
import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atustc.engine.embed import embed_run
    from atustc.engine.train import train_run

__all__ = ["embed_run", "train_run"]


def __getattr__(name: str) -> Any:
    if name == "train_run":
        from atustc.engine.train import train_run

        return train_run
    if name == "embed_run":
        from atustc.engine.embed import embed_run

        return embed_run
    raise AttributeError(f"module 'atustc.engine' has no attribute {name!r}")
