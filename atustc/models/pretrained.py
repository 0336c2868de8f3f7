"""Load a local timm-format ViT checkpoint into :class:`atustc.models.vit.ViT` (never the network).

Accepted files: ``.pth``/``.pt``/``.bin`` (a torch state dict, possibly under ``model`` or
``state_dict``, ``module.`` prefixes stripped) and ``.safetensors``. The loader:

- skips the classifier (``head.*``, ``pre_logits.*``);
- interpolates the patch position embeddings from the checkpoint grid (square, e.g. 14x14) to the
  model grid (e.g. 16x8), bicubic;
- copies the pretrained CLS token and its position embedding into every CLS slot;
- copies each block's ``mlp.fc1``/``mlp.fc2`` into every MoAE first/second layer of that block;
- returns a :class:`LoadReport` naming the loaded, missing, unexpected and resized keys.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed

from atustc.errors import AtustcError
from atustc.models.vit import ViT

log = logging.getLogger(__name__)

_SKIP = re.compile(r"^(head|head_dist|pre_logits)\.")
_ATOM = re.compile(r"^blocks\.(\d+)\.cls_ffn\.(first|second)_(weight|bias)$")


@dataclass(frozen=True)
class LoadReport:
    """What a pretrained load did.

    Attributes:
        path: the checkpoint file.
        loaded: model keys filled from the checkpoint.
        missing: model keys the checkpoint could not fill (they keep their initialisation).
        unexpected: checkpoint keys with no place in the model.
        skipped: checkpoint keys dropped on purpose (the classifier head).
        resized: human-readable notes on reshaped tensors (position embedding, CLS copies).
    """

    path: Path
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    skipped: tuple[str, ...]
    resized: tuple[str, ...]

    def summary(self) -> str:
        """A few lines for logs and the build summary."""
        lines = [f"pretrained {self.path.name}: {len(self.loaded)} tensors loaded"]
        lines += [f"  {note}" for note in self.resized]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("skipped", self.skipped)):
            if keys:
                shown = ", ".join(keys[:8]) + (f" … (+{len(keys) - 8})" if len(keys) > 8 else "")
                lines.append(f"  {label} ({len(keys)}): {shown}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local checkpoint file (see the module docstring for formats).

    Raises:
        AtustcError: missing file, unknown suffix or unreadable content.
    """
    path = Path(path)
    if not path.is_file():
        raise AtustcError(f"pretrained checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif path.suffix in (".pth", ".pt", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise AtustcError(
                f"pretrained checkpoint {path}: unknown format {path.suffix!r} (use .pth, .bin or .safetensors)"
            )
    except AtustcError:
        raise
    except Exception as exc:  # corrupt or foreign file
        raise AtustcError(f"pretrained checkpoint {path} cannot be read: {exc}") from exc
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AtustcError(f"pretrained checkpoint {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_vit_pretrained(vit: ViT, path: str | Path) -> LoadReport:
    """Load a timm ViT checkpoint into ``vit`` (see the module docstring).

    Raises:
        AtustcError: unreadable file, or a tensor whose shape cannot fit the model (e.g. a
            ViT-S checkpoint into a ViT-B, or a different patch size).
    """
    path = Path(path)
    source = read_state_dict(path)
    target = vit.state_dict()
    conv_stem = vit.config.stem != "patch"  # a conv or Lite0 stem has no ViT counterpart: it keeps its own init
    skipped = tuple(sorted(k for k in source if _SKIP.match(k) or (conv_stem and k.startswith("patch_embed."))))
    new: dict[str, torch.Tensor] = {}
    resized: list[str] = []
    used: set[str] = set(skipped)

    width = source["cls_token"].shape[-1] if "cls_token" in source else vit.embed_dim
    if width != vit.embed_dim:
        raise AtustcError(
            f"pretrained checkpoint {path}: cls_token has width {width}, the model needs {vit.embed_dim} "
            "(wrong ViT size?)"
        )
    if "cls_token" in source:
        new["cls_token"] = source["cls_token"][:, :1].expand_as(target["cls_token"]).clone()
        used.add("cls_token")
        if vit.num_cls > 1:
            resized.append(f"cls_token: pretrained token copied into {vit.num_cls} CLS slots")
    if "pos_embed" in source:
        new["pos_embed"] = _resample_pos_embed(source["pos_embed"], vit, "dist_token" in source, resized)
        used.add("pos_embed")
    for key, value in target.items():
        if key in new:
            continue
        match = _ATOM.match(key)
        src_key = f"blocks.{match[1]}.mlp.{'fc1' if match[2] == 'first' else 'fc2'}.{match[3]}" if match else key
        if src_key in source and src_key not in skipped:
            new[key] = source[src_key]
            if match and new[key].shape == value.shape[1:]:  # one FFN layer -> every stacked MoE layer
                new[key] = new[key].expand_as(value).clone()
            used.add(src_key)
    for key, value in new.items():
        if value.shape != target[key].shape:
            raise AtustcError(
                f"pretrained checkpoint {path}: {key} has shape {tuple(value.shape)}, "
                f"the model needs {tuple(target[key].shape)} (wrong ViT size or patch size?)"
            )
    if any(_ATOM.match(k) for k in new):
        resized.append("MoAE: each block's fc1/fc2 copied into all of its attribute layers")
    vit.load_state_dict(new, strict=False)
    report = LoadReport(
        path=path,
        loaded=tuple(sorted(new)),
        missing=tuple(sorted(k for k in target if k not in new)),
        unexpected=tuple(sorted(k for k in source if k not in used)),
        skipped=skipped,
        resized=tuple(resized),
    )
    log.info(report.summary())
    return report


def _resample_pos_embed(pos: torch.Tensor, vit: ViT, has_dist: bool, notes: list[str]) -> torch.Tensor:
    """Checkpoint ``[1, P + g*g, D]`` -> model ``[1, num_cls + gh*gw, D]`` (bicubic, CLS copied)."""
    prefix = 2 if has_dist else 1
    n_patch = pos.shape[1] - prefix
    grid = list(vit.config.grid)
    patches = pos[:, prefix:]
    if n_patch != grid[0] * grid[1]:
        side = math.isqrt(n_patch)
        if side * side != n_patch:
            raise AtustcError(
                f"pretrained pos_embed has {n_patch} patch positions: neither the model grid "
                f"{grid[0]}x{grid[1]} nor a square grid to interpolate from"
            )
        patches = resample_abs_pos_embed(patches, grid, old_size=[side, side], num_prefix_tokens=0)
        notes.append(f"pos_embed: {side}x{side} grid interpolated to {grid[0]}x{grid[1]} (bicubic)")
    cls = pos[:, :1].expand(-1, vit.num_cls, -1)
    return torch.cat([cls, patches], dim=1)
