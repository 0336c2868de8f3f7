"""Checkpoints: atomic save, and a load that names the file when it is missing, corrupt or foreign.

A checkpoint is a ``torch.save`` dict with ``format == "atustc-checkpoint"``, a ``kind`` (``last``:
full training state; ``best``: model weights and the validation score that selected them) and the
training position. Files are loaded with ``weights_only=True``: only tensors and plain Python
containers, so a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atustc.errors import AtustcError
from atustc.io import atomic_path

FORMAT = "atustc-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], kind: str, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format, version and ``kind``) to ``path`` atomically."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint on the CPU.

    Args:
        path: the ``.pt`` file.
        kind: if given, the checkpoint must be of this kind (``last`` or ``best``).

    Raises:
        AtustcError: missing file, unreadable (truncated, corrupt, not a torch file) or not an atustc
            checkpoint of the expected kind; the message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise AtustcError(f"checkpoint {p} not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise AtustcError(f"checkpoint {p} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise AtustcError(f"checkpoint {p} is not an atustc checkpoint")
    if state.get("version", 0) > VERSION:
        raise AtustcError(f"checkpoint {p} has format version {state['version']}; this atustc reads <= {VERSION}")
    if kind is not None and state.get("kind") != kind:
        raise AtustcError(f"checkpoint {p} is a {state.get('kind')!r} checkpoint, expected {kind!r}")
    return state


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) global RNG states, as checkpoint-safe values."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], npy[1].numpy().astype(np.uint32), *npy[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load a checkpoint's model weights (strict).

    Raises:
        AtustcError: the weights do not fit the model (names the checkpoint).
    """
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise AtustcError(f"checkpoint {path} does not fit the model ({first})") from None
