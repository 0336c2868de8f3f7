"""A ViT backbone for ReID on timm's layers: several CLS tokens, non-square input, overlapping patches.

The blocks are timm's attention and MLP with one change: a block can route its CLS tokens through
a separate feed-forward module (Uni-AT's MoAE) while the patch tokens keep the shared FFN. The
parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``blocks.i.attn.qkv``, ``blocks.i.mlp.fc1`` …, ``norm``) so a timm checkpoint
loads by name (see :mod:`atustc.models.pretrained`).

Hooks for other methods (TransReID builds on this module): :meth:`ViT.embed_tokens` takes an
``extra_embed`` added to every token after the position embedding (camera side information),
``ViT.blocks`` is a plain ``ModuleList`` (JPM re-runs the last block) and ``ViT.norm`` is the
final LayerNorm.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.vision_transformer import Attention
from torch import nn

from atustc.errors import AtustcError
from atustc.models.config import VIT_SIZES, ViTConfig, vit_config

__all__ = ["VIT_SIZES", "Block", "ClsFFNFactory", "PatchEmbed", "ViT", "ViTConfig", "vit_config"]


class PatchEmbed(nn.Module):
    """Convolutional patch embedding with a stride that may be smaller than the patch.

    ``config.stem == "conv"`` puts two 3x3 stride-2 convolutions (BatchNorm, ReLU) before the
    projection, whose kernel and stride shrink by 4 so that the token grid is unchanged.
    ``config.stem == "lite0"`` runs EfficientNet-Lite0's first stages (ImageNet weights unless
    ``config.stem_init == "random"``) down to ``config.stride`` and projects each cell to a token
    with a 1x1 convolution; its first ``config.stem_frozen`` parts (stem convolution, then stages)
    keep their weights and run their BatchNorm in eval mode, also in ``train()``.
    """

    def __init__(self, config: ViTConfig, in_chans: int = 3) -> None:
        super().__init__()
        self.img_size = config.img_size
        dim = config.embed_dim
        if config.stem == "conv":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, dim // 4, 3, 2, 1, bias=False), nn.BatchNorm2d(dim // 4), nn.ReLU(inplace=True),
                nn.Conv2d(dim // 4, dim // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(dim // 2), nn.ReLU(inplace=True),
            )  # fmt: skip
            self.proj = nn.Conv2d(dim // 2, dim, config.patch_size // 4, config.stride // 4)
        elif config.stem == "lite0":
            from atustc.models.lite0 import lite0_trunk

            self.stem, channels = lite0_trunk(config.stride, "imagenet" if config.stem_init == "imagenet" else None)
            self.proj = nn.Conv2d(channels, dim, 1)
            k = config.stem_frozen
            self.frozen = [self.stem[0], self.stem[1], *self.stem[2][: k - 1]] if k else []  # not submodules
            for module in self.frozen:
                module.requires_grad_(False)
        else:
            self.stem = nn.Identity()
            self.proj = nn.Conv2d(in_chans, dim, config.patch_size, config.stride)

    def train(self, mode: bool = True) -> PatchEmbed:
        """Set the mode; the frozen stem parts stay in eval mode (their BatchNorm statistics are kept)."""
        super().train(mode)
        for module in getattr(self, "frozen", ()):
            module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != self.img_size:
            raise AtustcError(f"ViT expects images of {self.img_size} (H, W), got {tuple(images.shape[-2:])}")
        return self.proj(self.stem(images)).flatten(2).transpose(1, 2)


#: Builds the CLS-token FFN of block ``i`` given the block's shared MLP (or returns None).
ClsFFNFactory = Callable[[int, Mlp], "nn.Module | None"]


class Block(nn.Module):
    """Pre-norm transformer block; CLS tokens may take their own FFN (``cls_ffn``).

    ``cls_ffn(tokens, modality)`` maps the normalised CLS tokens ``[B, C, D]`` to ``[B, C, D]``
    (``modality [B]`` or None is the input's, for mixtures routed by it); when it is None every
    token goes through the shared ``mlp``.
    """

    def __init__(self, config: ViTConfig, drop_path: float, cls_ffn: nn.Module | None = None) -> None:
        super().__init__()
        dim = config.embed_dim
        self.num_cls = config.num_cls
        self.norm1 = nn.LayerNorm(dim, eps=config.ln_eps)
        self.attn = Attention(dim, num_heads=config.num_heads, qkv_bias=config.qkv_bias)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=config.ln_eps)
        self.mlp = Mlp(dim, config.mlp_hidden, act_layer=nn.GELU)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.cls_ffn = cls_ffn

    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        h = self.norm2(x)
        if self.cls_ffn is None:
            return x + self.drop_path2(self.mlp(h))
        c = self.num_cls
        return x + self.drop_path2(torch.cat([self.cls_ffn(h[:, :c], modality), self.mlp(h[:, c:])], dim=1))


class ViT(nn.Module):
    """Vision Transformer with ``num_cls`` CLS tokens, each with its own position embedding.

    Args:
        config: the shape.
        cls_ffn_factory: optional ``f(block_index, block_mlp) -> module | None`` giving the
            CLS-token FFN of each block (Uni-AT's MoAE); None keeps the shared FFN everywhere.
    """

    def __init__(self, config: ViTConfig, cls_ffn_factory: ClsFFNFactory | None = None) -> None:
        super().__init__()
        self.config = config
        self.num_cls = config.num_cls
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, config.num_cls, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_cls + config.num_patches, dim))
        rates = [config.drop_path * i / max(config.depth - 1, 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(Block(config, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=config.ln_eps)
        self.apply(_init_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if cls_ffn_factory is not None:
            for i, block in enumerate(self.blocks):
                block.cls_ffn = cls_ffn_factory(i, block.mlp)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def embed_tokens(self, images: torch.Tensor, extra_embed: torch.Tensor | None = None) -> torch.Tensor:
        """CLS + patch tokens with position embeddings: ``[B, num_cls + N, D]``.

        Args:
            images: ``[B, 3, H, W]`` at ``config.img_size``.
            extra_embed: optional tensor broadcastable to the tokens (e.g. a camera embedding
                ``[B, 1, D]``), added after the position embedding.
        """
        patches = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1) + self.pos_embed
        return x if extra_embed is None else x + extra_embed

    def forward_tokens(
        self,
        images: torch.Tensor,
        extra_embed: torch.Tensor | None = None,
        depth: int | None = None,
        modality: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens after the first ``depth`` blocks (all by default), before the final norm.

        ``modality [B]`` (0 RGB, 1 IR) reaches the blocks' CLS-token FFNs (VLMo routes by it).
        """
        x = self.embed_tokens(images, extra_embed)
        for block in self.blocks[: len(self.blocks) if depth is None else depth]:
            x = block(x, modality)
        return x

    def forward(
        self, images: torch.Tensor, extra_embed: torch.Tensor | None = None, modality: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All tokens after the final LayerNorm: ``[B, num_cls + N, D]``."""
        return self.norm(self.forward_tokens(images, extra_embed, modality=modality))


def _init_weights(module: nn.Module) -> None:
    """timm's ViT init: truncated-normal linears, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
