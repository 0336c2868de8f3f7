"""Configuration of the synthetic AT-USTC: a frozen dataclass and a few named sizes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from atustc.errors import AtustcError

#: Version of the rendering and of the named sizes: bumped whenever the same config gives other
#: images, so that caches keyed by the config (``atustc bench``'s embedded dataset) are rebuilt.
SYNTH_VERSION = 3


@dataclass(frozen=True)
class SynthConfig:
    """How big the synthetic dataset is and how it is drawn.

    Ranges are inclusive ``(low, high)`` pairs drawn per identity or per capture.

    Attributes:
        seed: the master seed; same seed and config give the same bytes.
        identities: number of people (pids 1..identities).
        dates: capture dates available (date ids 1..dates).
        dates_per_id: capture dates per person.
        outfits_per_id: distinct outfits per person (some dates repeat an outfit).
        rgb_cams_per_capture: RGB cameras (1-8) that see a person on one date.
        ir_cams_per_capture: IR cameras (9-16) that see a person on one date.
        frames_per_camera: frames kept per camera and date.
        image_size: ``(height, width)`` in pixels.
        jpeg_quality: JPEG quality 1-95.
        val_fraction: share of the train identities flagged as validation.
    """

    seed: int = 0
    identities: int = 40
    dates: int = 13
    dates_per_id: tuple[int, int] = (3, 5)
    outfits_per_id: tuple[int, int] = (2, 4)
    rgb_cams_per_capture: tuple[int, int] = (2, 3)
    ir_cams_per_capture: tuple[int, int] = (2, 3)
    frames_per_camera: tuple[int, int] = (4, 8)
    image_size: tuple[int, int] = (128, 64)
    jpeg_quality: int = 90
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.identities < 2:
            raise AtustcError(f"identities must be at least 2 (one train, one test), got {self.identities}")
        for name in (
            "dates_per_id",
            "outfits_per_id",
            "rgb_cams_per_capture",
            "ir_cams_per_capture",
            "frames_per_camera",
        ):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise AtustcError(f"{name} must be a range 1 <= low <= high, got ({lo}, {hi})")
        if self.dates_per_id[1] > self.dates:
            raise AtustcError(f"dates_per_id high ({self.dates_per_id[1]}) exceeds dates ({self.dates})")
        if self.outfits_per_id[1] > self.dates_per_id[1]:
            raise AtustcError("outfits_per_id high must not exceed dates_per_id high (one outfit per date at most)")
        if self.rgb_cams_per_capture[1] > 8 or self.ir_cams_per_capture[1] > 8:
            raise AtustcError(
                f"rgb_cams_per_capture and ir_cams_per_capture: at most 8 cameras each (AT-USTC has 8 RGB + 8 IR), "
                f"got {self.rgb_cams_per_capture} and {self.ir_cams_per_capture}"
            )
        if self.frames_per_camera[1] > 999:
            raise AtustcError(f"frames_per_camera high must be at most 999, got {self.frames_per_camera[1]}")
        h, w = self.image_size
        if not (16 <= h <= 1024 and 8 <= w <= 1024):
            raise AtustcError(f"image size must be between 16x8 and 1024x1024 (HxW), got {h}x{w}")
        if not 1 <= self.jpeg_quality <= 95:
            raise AtustcError(f"jpeg_quality must be 1-95, got {self.jpeg_quality}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise AtustcError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.identities > 999:
            raise AtustcError(f"identities must be at most 999 (pXXX naming), got {self.identities}")

    @classmethod
    def named(cls, size: str, **overrides: Any) -> SynthConfig:
        """A named size (see :data:`SIZES`) with some fields replaced; ``None`` overrides are ignored."""
        if size not in SIZES:
            raise AtustcError(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise AtustcError(f"unknown synth option(s) {', '.join(unknown)}")
        return replace(SIZES[size], **{k: v for k, v in overrides.items() if v is not None})


#: Named sizes. ``test`` (24 identities, 10 of them for training, ~800 images at 64x32: unit tests;
#: trainable at the tiny P x K = 8 x 4), ``default`` (what ``atustc bench`` uses: 200 identities,
#: 80 of them for training, with few images each, ~8,900 images at 128x64: many people rather than
#: many frames, so that a model trained on them can generalise to new people), ``large`` (270
#: identities, ~32,000 images: the replica of AT-USTC's shape, 135 test identities and about 120
#: images per identity).
SIZES: dict[str, SynthConfig] = {
    "test": SynthConfig(
        identities=24,
        dates_per_id=(2, 2),
        outfits_per_id=(2, 2),
        rgb_cams_per_capture=(2, 2),
        ir_cams_per_capture=(2, 2),
        frames_per_camera=(4, 4),
        image_size=(64, 32),
    ),
    "default": SynthConfig(
        identities=200,
        dates_per_id=(2, 3),
        outfits_per_id=(2, 3),
        rgb_cams_per_capture=(2, 2),
        ir_cams_per_capture=(2, 2),
        frames_per_camera=(3, 5),
    ),
    "large": SynthConfig(identities=270),
}
