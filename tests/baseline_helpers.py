"""Shared pieces of the baseline tests: a four-person label space, a hand-built batch and a seeded tiny build."""

from __future__ import annotations

import torch

from atustc.methods import Batch, LabelSpace, get_method

LABELS = LabelSpace(num_pids=4, num_outfits=8, outfit_to_pid=(0, 0, 1, 1, 2, 2, 3, 3), num_cameras=4)


def make_batch(n: int, size: tuple[int, int], seed: int = 0) -> Batch:
    """``n`` random images of ``size`` cycling through the 8 outfits, both modalities and 4 cameras."""
    g = torch.Generator().manual_seed(seed)
    outfit = torch.arange(n) % 8
    return Batch(
        images=torch.randn(n, 3, *size, generator=g),
        pid=torch.tensor(LABELS.outfit_to_pid)[outfit],
        outfit=outfit,
        modality=torch.arange(n) % 2,
        camera=torch.arange(n) % 4,
    )


def build_seeded(name: str, preset: str = "tiny") -> torch.nn.Module:
    """The registered method ``name`` built on :data:`LABELS` after ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    return get_method(name).build(LABELS, preset, None)
