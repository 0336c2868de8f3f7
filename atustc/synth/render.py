"""Vectorised rendering of one synthetic person crop.

The person is drawn once per (identity, outfit, gait step) as a *sprite*: a label map of
materials (:mod:`atustc.synth.people`) built from a few ellipse and box masks in person
coordinates (head top 0, feet 1). Each image places the sprite with its own scale, shift and
mirror (one gather), then the modality turns labels into pixels: RGB looks up visible colours,
IR looks up per-material intensities (no hue, not the visible luminance). Camera lighting, blur
and noise come last. No per-pixel Python loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from atustc.synth.people import (
    BAG,
    BG,
    BOTTOM,
    HAIR,
    HAIR_STYLES,
    N_MATERIALS,
    SHOES,
    SKIN,
    TOP,
    TOP2,
    Camera,
    Identity,
    Outfit,
)

#: walking phases a sprite is drawn at, and the sprite's half width in person heights
GAIT_STEPS = 4
HALF_WIDTH = 0.32


@dataclass(frozen=True)
class Shot:
    """Per-image variation: framing jitter, walking phase, mirror (viewpoint), light and blur."""

    shift: float
    scale: float
    step: int
    mirror: bool
    brightness: float
    extra_blur: int


def draw_shot(rng: np.random.Generator, identity: Identity, frame: int, brightness: float) -> Shot:
    """The per-image variation of one frame (``brightness`` is the camera-date light level)."""
    return Shot(
        shift=rng.uniform(-0.03, 0.03),
        scale=rng.uniform(0.94, 1.05),
        step=(int(identity.gait_speed * frame * GAIT_STEPS / (2 * np.pi)) + int(rng.integers(0, 2))) % GAIT_STEPS,
        mirror=bool(rng.random() < 0.5),
        brightness=brightness * rng.uniform(0.92, 1.08),
        extra_blur=int(rng.random() < 0.25),
    )


def sprite(identity: Identity, outfit: Outfit, step: int, height: int) -> np.ndarray:
    """The person's label map at gait step ``step``: ``[height, 2 * HALF_WIDTH * height]`` uint8.

    Rows cover person coordinates y in [0, 1) and columns x in [-HALF_WIDTH, HALF_WIDTH) at the
    same scale. Row conditions are ``[H, 1]`` and column conditions ``[1, W]`` arrays; only
    their combinations are full size.
    """
    h = height
    w = int(round(2 * HALF_WIDTH * h))
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    x = ((np.arange(w, dtype=np.float32) + 0.5) / h - HALF_WIDTH)[None, :]
    phase = 2 * np.pi * step / GAIT_STEPS
    lab = np.zeros((h, w), dtype=np.uint8)
    r, b = identity.head, identity.build
    ys, yw = 2 * r + 0.015, 2 * r + 0.33  # shoulders, waist
    ax = np.abs(x)
    style = HAIR_STYLES[identity.hair_style]
    if style in ("bob", "long"):  # hair behind the head and body
        lab[
            ((y > r) & (y < (2.1 * r if style == "bob" else r + 0.24))) & (ax < (1.1 if style == "bob" else 0.95) * r)
        ] = HAIR
    # torso (slight taper) and top texture
    half = b * (1 - identity.taper * (y - ys) / (yw - ys))
    torso = ((y >= ys) & (y < yw)) & (ax < half)
    lab[torso] = TOP
    if outfit.pattern:
        p = outfit.period
        band_y, band_x = (y // p) % 2, (x // p) % 2
        stripes = {1: band_y == 1, 2: band_x == 1, 3: (band_y + band_x) % 2 == 1}[outfit.pattern]
        lab[torso & stripes] = TOP2
    # arms with sleeves, swinging opposite to the legs
    swing = identity.gait_amplitude * np.sin(phase) * np.clip((y - ys) / 0.36, 0, 1)
    arm = ((y >= ys + 0.01) & (y < ys + 0.37)) & (np.abs(ax - b - 0.02 - np.sign(x) * swing) < 0.02)
    lab[arm] = SKIN
    lab[arm & (y < ys + 0.01 + outfit.sleeve * 0.36)] = TOP
    # legs with a walking stride; trousers or shorts; shoes
    t = np.clip((y - yw) / (1 - yw), 0, 1)
    dx = identity.gait_amplitude * 1.5 * np.sin(phase) * t
    lw = identity.leg_width
    legs = ((y >= yw) & (y < 1.0)) & ((np.abs(x - (lw + 0.004) - dx) < lw) | (np.abs(x + (lw + 0.004) + dx) < lw))
    lab[legs] = SKIN
    lab[legs & (t < outfit.bottom_length)] = BOTTOM
    lab[legs & (y > 0.965)] = SHOES
    lab[((y >= yw - 0.01) & (y < yw + 0.04)) & (ax < b * 0.85)] = BOTTOM
    # neck, head, hair cap
    lab[((y >= 1.6 * r) & (y < ys)) & (ax < 0.35 * r)] = SKIN
    lab[((y - r - 0.005) / r) ** 2 + (x / (0.8 * r)) ** 2 < 1] = SKIN
    if style != "shaved":
        lab[(((y - r) / (1.08 * r)) ** 2 + (x / (0.9 * r)) ** 2 < 1) & (y < (0.75 if style != "bob" else 1.1) * r)] = (
            HAIR
        )
    if style == "bun":
        lab[((y + 0.1 * r) / (0.5 * r)) ** 2 + (x / (0.5 * r)) ** 2 < 1] = HAIR
    if outfit.bag:
        lab[((y > ys + 0.12) & (y < ys + 0.27)) & ((x > b + 0.04) & (x < b + 0.11))] = BAG
    return lab


def place(person: np.ndarray, shot: Shot, size: tuple[int, int], camera_scale: float, height: float) -> np.ndarray:
    """Put a sprite into an ``[H, W]`` label map with the shot's scale, shift and mirror."""
    h, w = size
    sh, sw = person.shape
    s = height * camera_scale * shot.scale
    top = 0.985 - s
    y = (np.arange(h) / h - top) / s  # person coordinates of each image row / column
    x = (np.arange(w) / h - (w / h) / 2 - shot.shift) / s
    if shot.mirror:
        x = -x
    yi = np.floor(y * sh).astype(np.int64)
    xi = np.floor((x + HALF_WIDTH) * sh).astype(np.int64)
    inside = ((yi >= 0) & (yi < sh))[:, None] & ((xi >= 0) & (xi < sw))[None, :]
    lab = person[np.clip(yi, 0, sh - 1)[:, None], np.clip(xi, 0, sw - 1)[None, :]]
    return np.where(inside, lab, np.uint8(BG))


def _palette(identity: Identity, outfit: Outfit, ir: bool) -> np.ndarray:
    pal = np.zeros((N_MATERIALS, 3), dtype=np.float32)
    if ir:
        pal[:] = outfit.ir[:, None]
        pal[SKIN], pal[HAIR] = identity.skin_ir, identity.hair_ir
    else:
        pal[SKIN], pal[HAIR] = identity.skin_rgb, identity.hair_rgb
        pal[TOP], pal[TOP2], pal[BOTTOM] = outfit.top_rgb, outfit.top2_rgb, outfit.bottom_rgb
        pal[SHOES], pal[BAG] = outfit.shoes_rgb, outfit.bag_rgb
    return pal


_NOISE_BANK = np.random.default_rng(0x1A5E).standard_normal(1 << 20, dtype=np.float32)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standard normal values: a window of a fixed bank at a seeded offset (cheap, deterministic)."""
    start = int(rng.integers(0, len(_NOISE_BANK) - n))
    return _NOISE_BANK[start : start + n]


def render(
    identity: Identity, outfit: Outfit, person: np.ndarray, camera: Camera, shot: Shot, rng: np.random.Generator
) -> np.ndarray:
    """Render one crop as ``[H, W, 3]`` uint8 (IR crops have three equal channels).

    ``person`` is the :func:`sprite` of ``identity`` in ``outfit`` at the shot's gait step.
    """
    h, w = size = camera.background.shape[:2]
    lab = place(person, shot, size, camera.scale, identity.height)
    pal = _palette(identity, outfit, camera.ir)
    shade = 1 - 0.3 * ((np.arange(w, dtype=np.float32) - w / 2) / (w / 2)) ** 2
    person = (pal[lab] * shade[None, :, None]) if not camera.ir else (pal[lab, 0] * shade[None, :])[..., None]
    bg = camera.background if not camera.ir else camera.background[..., :1]
    img = np.where((lab != BG)[..., None], person, bg)
    img *= camera.gain[: img.shape[2]] * np.float32(255 * shot.brightness)
    for _ in range(camera.blur + shot.extra_blur):
        out = 2 * img
        out[1:] += img[:-1]
        out[:-1] += img[1:]
        out[0] += img[0]
        out[-1] += img[-1]
        out[:, 1:] += img[:, :-1]
        out[:, :-1] += img[:, 1:]
        out[:, 0] += img[:, 0]
        out[:, -1] += img[:, -1]
        img = out / np.float32(6)
    sigma = np.float32(255 * camera.noise)
    img += sigma * _noise(rng, img.size).reshape(img.shape)
    if camera.ir:
        img += np.float32(255 * 0.02) * _noise(rng, h).reshape(h, 1, 1)  # row banding
    pixels = np.clip(img, 0, 255).astype(np.uint8)
    return pixels if not camera.ir else np.repeat(pixels, 3, axis=2)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an ``[H, W, 3]`` uint8 image (deterministic for the same pixels)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
