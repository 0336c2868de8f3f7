"""TransReID (He et al., ICCV 2021) as a baseline: ViT + SIE + JPM + BNNecks, ID + soft-margin triplet.

Follows the official code (damo-cv/TransReID, ``TransReID*`` with ``JPM: True``; He et al.,
"TransReID: Transformer-based Object Re-Identification", ICCV 2021):

- Backbone: :class:`atustc.models.vit.ViT` with one CLS token and overlapping patches
  (16×16 kernel, stride 12 at ``paper``).
- SIE: a learnable camera embedding ``S[cam]`` (trunc-normal, std 0.02) times λ = 3, added to
  every token, CLS included, with the position embedding. Camera labels are needed at test time
  too; an unknown camera (label -1) gets no side information.
- JPM: the backbone runs all blocks but the last; the last block and the final LayerNorm are
  copied twice, into a global branch (all tokens) and a local branch shared by the 4 groups.
  The patch tokens are shifted (the official ``SHIFT_NUM=5`` drops the CLS token and moves the
  first 4 patches to the end: ``shift=4`` here), shuffled (``SHUFFLE_GROUP=2``: the sequence,
  padded by repeating its second-to-last token when odd, is viewed as (2, N/2), transposed and
  flattened) and cut into 4 groups of ``N // 4`` tokens; each group, prefixed with the original
  CLS token, goes through the local branch.
- Five BNNecks (:mod:`atustc.models.bnneck`: BatchNorm1d with a frozen zero bias) and five bias-free
  classifiers (N(0, 0.001)).
- Loss: ``ID = 0.5·CE(global) + 0.5·mean_k CE(local_k)`` (label smoothing from the config, off
  as in the official recipe), ``Tri = 0.5·T(global) + 0.5·mean_k T(local_k)`` with the
  batch-hard soft-margin triplet (:func:`atustc.models.losses.soft_margin_triplet`) on the pre-BN
  features; ``total = ID + Tri``.
- Embedding: one head, ``"global"``: ``[g, l1/4, l2/4, l3/4, l4/4]`` of the pre-BN features
  (``NECK_FEAT: before``), L2-normalised; the same vector serves all six scenarios.

Recipes: ``paper`` is the official one (ViT-B/16 stride 12 at 256×128, SGD 0.008, momentum 0.9
without Nesterov, weight decay 1e-4 on every parameter, bias lr ×2, P×K 16×4, 120 epochs, 5
warm-up epochs from 0.01·lr, cosine to 0.002·lr per epoch, mean/std 0.5, flip, pad 10, random
erasing 0.5), with 200 iterations per epoch as Uni-AT uses on AT-USTC. ``tiny`` is a CPU-sized
version with the same code path (SIE, JPM, five BNNecks) on Uni-AT's tiny backbone, a hybrid: the
ImageNet EfficientNet-Lite0 stages to stride 16 as the patch stem (so the patches no longer
overlap), then four ViT-Ti-wide blocks at 96x48, trained on the shared tiny budget with Uni-AT's
optimiser (AdamW 1e-3, the pretrained stem at a fifth of it, 16 epochs x 25 iterations, P x K 8 x 4),
so the two are compared at equal cost.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, MethodSpec, Recipe, register_method
from atustc.methods.budget import STEM_LR_MULT, STEM_PATTERN, TINY, TINY_STEM_STRIDE, tiny_recipe, tiny_stem_options
from atustc.models.bnneck import id_classifier, neck_bn
from atustc.models.losses import ls_cross_entropy, soft_margin_triplet
from atustc.models.vit import ViT, ViTConfig, vit_config


@dataclass(frozen=True)
class TransReIDConfig:
    """TransReID's knobs beyond the backbone shape.

    Attributes:
        vit: backbone shape (one CLS token).
        sie_coe: λ, the weight of the camera embedding.
        jpm: use the jigsaw patch module (False: global branch only, 1 BNNeck).
        shift: patches moved from the front to the end before the shuffle.
        shuffle_groups: patch-shuffle groups.
        num_local: local groups (and local features).
        rearrange: shift and shuffle before grouping (False: consecutive groups).
        label_smoothing: ε of the ID cross-entropy.
    """

    vit: ViTConfig
    sie_coe: float = 3.0
    jpm: bool = True
    shift: int = 4
    shuffle_groups: int = 2
    num_local: int = 4
    rearrange: bool = True
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.vit.num_cls != 1:
            raise AtustcError(f"TransReID: the backbone needs exactly one CLS token, got {self.vit.num_cls}")
        if self.num_local < 1 or self.vit.num_patches < self.num_local:
            raise AtustcError(f"TransReID: num_local must be in [1, {self.vit.num_patches}], got {self.num_local}")
        if not 0 <= self.shift < self.vit.num_patches or self.shuffle_groups < 1:
            raise AtustcError(
                f"TransReID: need 0 <= shift < patches and shuffle_groups >= 1, got {self.shift}, {self.shuffle_groups}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise AtustcError(f"TransReID: label_smoothing must be in [0, 1), got {self.label_smoothing}")


def jigsaw(patches: torch.Tensor, shift: int, groups: int) -> torch.Tensor:
    """JPM's shift + patch shuffle of the patch tokens ``[B, N, D]`` (CLS token excluded).

    The first ``shift`` patches move to the end; the sequence (padded with a copy of its
    second-to-last token until its length divides ``groups``, as the official code does once)
    is viewed as ``(groups, N / groups)``, transposed and flattened, interleaving the groups.

    Returns:
        ``[B, N', D]`` with ``N' = N`` rounded up to a multiple of ``groups``.
    """
    x = torch.cat([patches[:, shift:], patches[:, :shift]], dim=1)
    while x.shape[1] % groups:
        x = torch.cat([x, x[:, -2:-1]], dim=1)
    b, n, d = x.shape
    return x.view(b, groups, n // groups, d).transpose(1, 2).reshape(b, n, d)


class _Branch(nn.Module):
    """A JPM branch: a copy of the backbone's last block and final LayerNorm."""

    def __init__(self, block: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.block = copy.deepcopy(block)
        self.norm = copy.deepcopy(norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.block(x))


class TransReID(nn.Module):
    """TransReID with SIE and JPM over an :class:`~atustc.models.vit.ViT` backbone.

    Args:
        config: the model configuration.
        labels: training label spaces (persons for the classifiers, cameras for SIE).
        backbone: an already built (possibly pretrained) backbone of ``config.vit``; its last
            block and final norm are moved into the two JPM branches.
    """

    head_names: tuple[str, ...] = ("global",)

    def __init__(self, config: TransReIDConfig, labels: LabelSpace, backbone: ViT | None = None) -> None:
        super().__init__()
        self.config = config
        backbone = backbone if backbone is not None else ViT(config.vit)
        dim = config.vit.embed_dim
        self.b1 = _Branch(backbone.blocks[-1], backbone.norm)  # global branch
        self.b2 = _Branch(backbone.blocks[-1], backbone.norm) if config.jpm else None  # local, shared by the groups
        backbone.blocks = backbone.blocks[:-1]
        backbone.norm = nn.Identity()
        self.backbone = backbone
        self.sie = nn.Parameter(torch.zeros(labels.num_cameras, 1, dim))
        trunc_normal_(self.sie, std=0.02)
        n_feats = 1 + (config.num_local if config.jpm else 0)
        self.necks = nn.ModuleList(neck_bn(dim) for _ in range(n_feats))
        self.classifiers = nn.ModuleList(id_classifier(dim, labels.num_pids) for _ in range(n_feats))

    @property
    def embed_dim(self) -> int:
        """Width D of the embedding: the global and the local features concatenated."""
        return self.config.vit.embed_dim * len(self.necks)

    def side_embedding(self, camera: torch.Tensor) -> torch.Tensor:
        """λ·S[camera] as ``[B, 1, D]``; zero for unknown cameras (label < 0)."""
        known = camera >= 0
        emb = self.sie[camera.clamp(min=0, max=self.sie.shape[0] - 1)]
        return emb * (known.to(emb.dtype)[:, None, None] * self.config.sie_coe)

    def features(self, batch: Batch) -> list[torch.Tensor]:
        """Pre-BN features: ``[global, local_1, ..., local_k]``, each ``[B, D]``."""
        x = self.backbone.forward_tokens(batch.images, self.side_embedding(batch.camera))
        feats = [self.b1(x)[:, 0]]
        if self.b2 is None:
            return feats
        cls, patches = x[:, :1], x[:, 1:]
        length = patches.shape[1] // self.config.num_local
        if self.config.rearrange:
            patches = jigsaw(patches, self.config.shift, self.config.shuffle_groups)
        for k in range(self.config.num_local):
            group = patches[:, k * length : (k + 1) * length]
            feats.append(self.b2(torch.cat([cls, group], dim=1))[:, 0])
        return feats

    def forward(self, batch: Batch) -> dict[str, list[torch.Tensor]]:
        feats = self.features(batch)
        logits = [fc(neck(f)) for f, neck, fc in zip(feats, self.necks, self.classifiers)]
        return {"feats": feats, "logits": logits}

    def loss(self, outputs: dict[str, list[torch.Tensor]], batch: Batch) -> dict[str, torch.Tensor]:
        feats, logits = outputs["feats"], outputs["logits"]
        eps = self.config.label_smoothing
        ce = [ls_cross_entropy(z, batch.pid, eps) for z in logits]
        tri = [soft_margin_triplet(f, batch.pid) for f in feats]
        if len(feats) > 1:
            id_loss = 0.5 * ce[0] + 0.5 * torch.stack(ce[1:]).mean()
            tri_loss = 0.5 * tri[0] + 0.5 * torch.stack(tri[1:]).mean()
        else:
            id_loss, tri_loss = ce[0], tri[0]
        return {"total": id_loss + tri_loss, "id": id_loss.detach(), "triplet": tri_loss.detach()}

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """``[B, 1, D·(1 + k)]``: global and locals/k, pre-BN, L2-normalised."""
        feats = self.features(batch)
        k = len(feats) - 1
        vec = torch.cat([feats[0], *(f / k for f in feats[1:])], dim=1)
        return F.normalize(vec, dim=1).unsqueeze(1)


def transreid_config(preset: str) -> TransReIDConfig:
    """The model configuration of a preset (``tiny`` or ``paper``).

    Raises:
        AtustcError: unknown preset.
    """
    if preset == "paper":
        return TransReIDConfig(vit=vit_config("base", img_size=(256, 128), stride=12, drop_path=0.1))
    if preset == "tiny":
        return TransReIDConfig(vit=vit_config(
            "tiny", img_size=TINY.input_size, patch_size=TINY_STEM_STRIDE, stride=TINY_STEM_STRIDE, depth=4,
            drop_path=0.1, stem="lite0", **tiny_stem_options(),
        ))  # fmt: skip
    raise AtustcError(f"transreid: unknown preset {preset!r}; choose tiny or paper")


def transreid_recipe(preset: str) -> Recipe:
    """The training recipe of a preset (``paper``: the official damo-cv/TransReID recipe, stride variant).

    Raises:
        AtustcError: unknown preset.
    """
    if preset not in ("tiny", "paper"):
        raise AtustcError(f"transreid: unknown preset {preset!r}; choose tiny or paper")
    paper = Recipe(
        optimizer="sgd", lr=0.008, weight_decay=1e-4, momentum=0.9, nesterov=False,
        no_decay_patterns=(), lr_mult=2.0, lr_mult_patterns=("bias",),
        epochs=120, iters_per_epoch=200, warmup_epochs=5, warmup_start_factor=0.01,
        schedule="cosine", min_lr_factor=0.002, step_per="epoch",
        sampler="pk", num_identities=16, num_instances=4,
        input_size=(256, 128), flip_p=0.5, pad=10, random_erasing_p=0.5,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), flip_test=False,
    )  # fmt: skip
    if preset == "paper":
        return paper
    # The shared tiny budget with Uni-AT's optimiser (AdamW: SGD barely moves a random-init ViT in 300 steps).
    return tiny_recipe(replace(
        paper,
        optimizer="adamw", lr=1e-3, weight_decay=0.05, no_decay_patterns=("pos_embed", "cls_token", "norm", "bias"),
        lr_mult=STEM_LR_MULT, lr_mult_patterns=(STEM_PATTERN,), warmup_start_factor=0.1, min_lr_factor=0.01,
    ))  # fmt: skip


def build_transreid(labels: LabelSpace, preset: str, pretrained: Path | None = None) -> TransReID:
    """Build TransReID at a preset, optionally from a local pretrained ViT checkpoint."""
    config = transreid_config(preset)
    backbone = ViT(config.vit)
    if pretrained is not None:
        from atustc.models.pretrained import load_vit_pretrained

        report = load_vit_pretrained(backbone, pretrained)
        model = TransReID(config, labels, backbone)
        model.load_report = report
        return model
    return TransReID(config, labels, backbone)


register_method(
    MethodSpec(
        name="transreid",
        family="Tr-ReID",
        summary="TransReID*: ViT, overlapping patches, SIE (camera, λ=3), JPM; one concatenated embedding",
        build=build_transreid,
        recipe=transreid_recipe,
    )
)
