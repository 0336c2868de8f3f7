"""Image transforms of the official recipe, as plain tensor operations driven by an explicit generator.

Train: bilinear resize to the input size, zero-pad and random crop back, horizontal flip, ImageNet
normalisation, then random erasing in timm's ``pixel`` mode (one box, area 2-40 % of the image,
aspect ratio in [0.3, 1/0.3], filled with standard-normal noise in normalised space). Test: resize
and normalise only. Every random draw comes from the ``torch.Generator`` passed in, so a sample's
augmentation depends only on its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from atustc.methods.contract import Recipe

ERASE_AREA = (0.02, 0.4)
ERASE_LOG_RATIO = (math.log(0.3), math.log(1 / 0.3))
ERASE_ATTEMPTS = 10


def _to_tensor(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """Resize (bilinear) to ``size`` = (H, W) and return a float [3, H, W] tensor in [0, 1]."""
    h, w = size
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


@dataclass(frozen=True)
class TestTransform:
    """Resize and normalise."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, img: Image.Image) -> torch.Tensor:
        x = _to_tensor(img, self.size)
        return normalize(x, self.mean, self.std)


@dataclass(frozen=True)
class TrainTransform:
    """Resize, pad + random crop, flip, normalise, random erasing (see the module docstring)."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip_p: float = 0.5
    pad: int = 10
    erasing_p: float = 0.5

    def __call__(self, img: Image.Image, gen: torch.Generator) -> torch.Tensor:
        h, w = self.size
        x = _to_tensor(img, self.size)
        if self.pad > 0:
            x = torch.nn.functional.pad(x, (self.pad, self.pad, self.pad, self.pad))
            top = int(torch.randint(0, 2 * self.pad + 1, (), generator=gen))
            left = int(torch.randint(0, 2 * self.pad + 1, (), generator=gen))
            x = x[:, top : top + h, left : left + w]
        if _uniform(gen) < self.flip_p:
            x = x.flip(-1)
        x = normalize(x, self.mean, self.std)
        if _uniform(gen) < self.erasing_p:
            x = random_erase(x, gen)
        return x.contiguous()


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` of a [3, H, W] tensor."""
    m = torch.tensor(mean, dtype=x.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(3, 1, 1)
    return (x - m) / s


def random_erase(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Replace one random box of ``x`` ([C, H, W]) by standard-normal noise (timm ``mode='pixel'``).

    Up to :data:`ERASE_ATTEMPTS` boxes are drawn; the first that fits is erased. If none fits the
    image is returned unchanged.
    """
    _, h, w = x.shape
    for _ in range(ERASE_ATTEMPTS):
        area = _uniform(gen, *ERASE_AREA) * h * w
        ratio = math.exp(_uniform(gen, *ERASE_LOG_RATIO))
        eh = int(round(math.sqrt(area * ratio)))
        ew = int(round(math.sqrt(area / ratio)))
        if 0 < eh < h and 0 < ew < w:
            top = int(torch.randint(0, h - eh + 1, (), generator=gen))
            left = int(torch.randint(0, w - ew + 1, (), generator=gen))
            x = x.clone()
            x[:, top : top + eh, left : left + ew] = torch.randn((x.shape[0], eh, ew), generator=gen, dtype=x.dtype)
            return x
    return x


def build_transforms(recipe: Recipe) -> tuple[TrainTransform, TestTransform]:
    """The train and test transforms of a recipe."""
    size = (int(recipe.input_size[0]), int(recipe.input_size[1]))
    train = TrainTransform(
        size=size,
        mean=recipe.mean,
        std=recipe.std,
        flip_p=recipe.flip_p,
        pad=recipe.pad,
        erasing_p=recipe.random_erasing_p,
    )
    return train, TestTransform(size=size, mean=recipe.mean, std=recipe.std)
