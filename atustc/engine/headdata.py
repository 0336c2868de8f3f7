"""Which scenario heads the train table cannot teach (``heads_without_data``).

A six-head method (Uni-AT and its ablations; Li et al., "Anytime Person Re-Identification", §4)
names its heads after the AT-ReID scenarios, and its scenario-aware ID loss trains each head on
the samples of its time moment: DT heads on RGB images, NT heads on IR images, AD heads on both
(to bridge them); LT heads learn to match a person across outfits. On a single-modality or
single-outfit dataset (Market-1501: RGB only, no clothes labels) some heads therefore get no
samples, or none of the pairs their scenario is about. The engine reports them, on screen, in
``train.log`` and as ``heads_without_data`` in ``status.json``, instead of training them on
nothing in silence. Heads not named after a scenario (``global``, ...) are not judged.
"""

from __future__ import annotations

import numpy as np

from atustc.scenarios import SCENARIOS


def heads_without_data(
    heads: tuple[str, ...] | list[str], pid: np.ndarray, modality: np.ndarray, clothes: np.ndarray
) -> dict[str, str]:
    """``{head: reason}`` for each scenario head whose training signal the train rows lack.

    Args:
        heads: the model's head names.
        pid: person id of every train row.
        modality: 0 (RGB) / 1 (IR) of every train row.
        clothes: raw outfit id of every train row (-1 unknown).

    Returns:
        The heads, in model order, that get no samples (DT without RGB, NT without IR) or none of
        their scenario's pairs (AD without an identity seen in both modalities, LT without an
        identity seen in two outfits), with the reason.
    """
    pid, modality, clothes = (np.asarray(a, dtype=np.int64) for a in (pid, modality, clothes))
    rgb, ir = bool((modality == 0).any()), bool((modality == 1).any())
    both = bool(np.intersect1d(pid[modality == 0], pid[modality == 1]).size)
    known = clothes != -1
    pairs = np.unique(np.stack([pid[known], clothes[known]]), axis=1) if known.any() else np.zeros((2, 0), np.int64)
    changes = bool(pairs.shape[1] and np.unique(pairs[0], return_counts=True)[1].max() > 1)
    out: dict[str, str] = {}
    for head in heads:
        if head not in SCENARIOS:
            continue
        moment, interval = head.split("-")
        reasons = []
        if moment == "DT" and not rgb:
            reasons.append("no RGB train images (DT heads learn from RGB images)")
        if moment == "NT" and not ir:
            reasons.append("no IR train images (NT heads learn from IR images)")
        if moment == "AD" and not both:
            reasons.append("no identity with both RGB and IR train images (no cross-modality pairs)")
        if interval == "LT" and not changes:
            reasons.append("no identity with train images in two outfits (no clothes changes)")
        if reasons:
            out[head] = "; ".join(reasons)
    return out
