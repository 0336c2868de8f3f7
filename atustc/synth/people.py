"""Random but seeded appearance parameters: identities, outfits and cameras.

Everything an image shows comes from one of three sources, each drawn from its own seed so that
it stays fixed where it should: identity cues (build, height, head, hair, skin, gait) are fixed
per person and survive a change of clothes; outfit cues (colours, textures, sleeve and leg
length, shoes, bag) are fixed per (person, outfit); camera cues (background, colour cast, noise,
blur, scale) are fixed per camera. In IR every material has its own random intensity (its
emissivity), drawn independently of its visible colour; only skin and hair, which are
the same person's in both modalities, keep a loose link between their visible colour and their IR
intensity (darker skin and lighter hair look a little darker and brighter in IR), so that a model
can learn to match a person across modalities from body cues but no colour statistic does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: hair styles: cropped, a bob to the jaw, long hair down the back, a bun on top, shaved
HAIR_STYLES = ("cropped", "bob", "long", "bun", "shaved")

#: material labels of the label map
BG, SKIN, HAIR, TOP, TOP2, BOTTOM, SHOES, BAG = range(8)
N_MATERIALS = 8

_HAIR_COLOURS = np.array(
    [[0.05, 0.04, 0.04], [0.30, 0.18, 0.10], [0.75, 0.62, 0.35], [0.55, 0.55, 0.55], [0.55, 0.22, 0.08]],
    dtype=np.float32,
)
_SKIN_LIGHT = np.array([0.96, 0.80, 0.68], dtype=np.float32)
_SKIN_DARK = np.array([0.36, 0.24, 0.16], dtype=np.float32)


@dataclass(frozen=True)
class Identity:
    """Cues of one person that survive a change of clothes (lengths in person heights)."""

    height: float
    build: float
    taper: float  # torso width lost from shoulders to waist, as a share of the shoulder width
    head: float
    leg_width: float
    hair_style: int  # index into HAIR_STYLES
    skin_rgb: np.ndarray
    hair_rgb: np.ndarray
    skin_ir: float
    hair_ir: float
    gait_speed: float
    gait_amplitude: float


@dataclass(frozen=True)
class Outfit:
    """Cues of one outfit of one person."""

    top_rgb: np.ndarray
    top2_rgb: np.ndarray
    pattern: int  # 0 plain, 1 horizontal stripes, 2 vertical stripes, 3 checks
    period: float
    sleeve: float
    bottom_rgb: np.ndarray
    bottom_length: float
    shoes_rgb: np.ndarray
    bag: bool
    bag_rgb: np.ndarray
    ir: np.ndarray  # intensity per material label TOP..BAG


@dataclass(frozen=True)
class Camera:
    """Cues of one camera: background, colour response, noise, blur and framing."""

    background: np.ndarray  # [H, W, 3] in [0, 1]; IR cameras hold grey
    gain: np.ndarray  # [3]
    noise: float
    blur: int
    scale: float
    ir: bool


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A clothing colour: a random hue mixed with grey by a random saturation."""
    base = rng.random(3).astype(np.float32)
    sat = rng.uniform(0.3, 1.0)
    grey = base.mean()
    value = rng.uniform(0.25, 1.0)
    return np.clip((grey + sat * (base - grey)) * value / max(base.max(), 1e-3) * 1.1, 0, 1).astype(np.float32)


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A background colour: a mid grey with a faint tint."""
    return (rng.uniform(0.3, 0.65) + 0.15 * (rng.random(3) - 0.5)).astype(np.float32)


@lru_cache(maxsize=4096)
def draw_identity(seed: int, pid: int) -> Identity:
    """The identity cues of person ``pid``."""
    rng = np.random.default_rng([seed, pid, 2])
    tone = rng.random()
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 0.04, 3)
    return Identity(
        height=rng.uniform(0.84, 0.97),
        build=rng.uniform(0.075, 0.14),
        taper=rng.uniform(-0.05, 0.3),
        head=rng.uniform(0.046, 0.078),
        leg_width=rng.uniform(0.026, 0.05),
        hair_style=int(rng.integers(len(HAIR_STYLES))),
        skin_rgb=(_SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone + rng.normal(0, 0.03, 3)).astype(np.float32),
        hair_rgb=hair.astype(np.float32),
        skin_ir=float(np.clip(0.9 - 0.3 * tone + rng.normal(0, 0.05), 0.4, 1.0)),
        hair_ir=float(np.clip(0.12 + 0.5 * hair.mean() + rng.normal(0, 0.06), 0.02, 0.7)),
        gait_speed=rng.uniform(0.25, 0.7),
        gait_amplitude=rng.uniform(0.015, 0.05),
    )


@lru_cache(maxsize=16384)
def draw_outfit(seed: int, pid: int, clothes: int) -> Outfit:
    """The outfit cues of outfit ``clothes`` of person ``pid``."""
    rng = np.random.default_rng([seed, pid, 3, clothes])
    return Outfit(
        top_rgb=_colour(rng),
        top2_rgb=_colour(rng),
        pattern=int(rng.choice(4, p=[0.4, 0.25, 0.15, 0.2])),
        period=rng.uniform(0.025, 0.07),
        sleeve=rng.uniform(0.15, 1.0),
        bottom_rgb=_colour(rng),
        bottom_length=float(rng.choice([0.45, 1.0], p=[0.25, 0.75])),
        shoes_rgb=_colour(rng) * 0.6,
        bag=bool(rng.random() < 0.4),
        bag_rgb=_colour(rng),
        ir=rng.uniform(0.05, 0.95, N_MATERIALS).astype(np.float32),
    )


def draw_camera(seed: int, camera: int, size: tuple[int, int]) -> Camera:
    """The cues of camera ``camera`` (1-8 RGB, 9-16 IR) at image size ``(H, W)``."""
    rng = np.random.default_rng([seed, 4, camera])
    ir = camera >= 9
    h, w = size
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    if ir:
        wall, floor = np.full(3, rng.uniform(0.05, 0.45), np.float32), np.full(3, rng.uniform(0.05, 0.5), np.float32)
    else:
        wall, floor = (_muted(rng) for _ in range(2))
    horizon = rng.uniform(0.55, 0.85)
    freq, phase, amp = rng.uniform(2, 9), rng.uniform(0, 6.3), rng.uniform(0.02, 0.12)
    texture = amp * np.sin(2 * np.pi * (freq * x + 0.3 * freq * y) + phase)
    ramp = 1 - rng.uniform(0, 0.3) * y
    bg = np.where((y < horizon)[..., None], wall, floor) * (ramp + texture)[..., None]
    gain = np.full(3, rng.uniform(0.85, 1.15), np.float32) if ir else rng.uniform(0.88, 1.12, 3).astype(np.float32)
    return Camera(
        background=np.clip(bg, 0, 1).astype(np.float32),
        gain=gain,
        noise=rng.uniform(0.03, 0.06) if ir else rng.uniform(0.01, 0.03),
        blur=int(rng.integers(0, 2)),
        scale=rng.uniform(0.9, 1.02),
        ir=ir,
    )
