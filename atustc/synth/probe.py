"""A hand-crafted colour embedding: how hard the synthetic data is for features no model learned.

:func:`band_features` describes a crop by the mean and spread of each channel on eight horizontal
bands of its central strip, which is mostly clothing colour. Scored on the six scenarios, it
finds the same person in the same clothes and modality (DT-ST, NT-ST) but should be near chance
across a change of clothes (LT) or modality (AD): the check that the identity cues of the
synthetic people are not colours that survive those changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: horizontal bands of :func:`band_features`
BANDS = 8


def band_features(pixels: np.ndarray) -> np.ndarray:
    """Mean and spread of each channel on :data:`BANDS` bands of the central strip, centred and L2-normalised.

    Args:
        pixels: ``[H, W, 3]`` uint8.

    Returns:
        float64 ``[BANDS * 6]``.
    """
    h, w, _ = pixels.shape
    strip = pixels[:, w // 4 : 3 * w // 4].astype(np.float64) / 255
    bands = [strip[i * h // BANDS : (i + 1) * h // BANDS].reshape(-1, 3) for i in range(BANDS)]
    f = np.concatenate([np.concatenate([b.mean(0), b.std(0)]) for b in bands])
    f -= f.mean()
    return f / max(float(np.linalg.norm(f)), 1e-12)


def band_features_of(root: str | Path, relpaths: list[str] | np.ndarray) -> np.ndarray:
    """:func:`band_features` of image files under ``root``: float32 ``[N, BANDS * 6]``."""
    from PIL import Image

    root = Path(root)
    return np.stack([band_features(np.asarray(Image.open(root / r).convert("RGB"))) for r in relpaths]).astype(
        np.float32
    )
