"""The MS-ReID model (paper §4.1) with Uni-AT's MoAE and HDW as switches: a :class:`ReIDModel`.

Six scenario CLS tokens (or one shared token, the "unified embedding" variant) from the ViT, a
BNNeck + classifier per scenario, the scenario-aware ID loss, optional MoAE in every block,
optional HDW and an optional triplet loss. The switches live in
:class:`atustc.models.config.UniATConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from atustc.methods.contract import SCENARIOS, Batch, LabelSpace
from atustc.models.heads import ScenarioHeads
from atustc.models.losses import batch_hard_triplet, combine_id_losses, scenario_id_losses
from atustc.models.moae import cls_ffn_factory
from atustc.models.vit import ViT

if TYPE_CHECKING:
    from atustc.models.config import UniATConfig
    from atustc.models.pretrained import LoadReport


@dataclass
class MSReIDOutput:
    """Training outputs: final-norm CLS tokens ``[B, 6, D]`` (triplet), post-BN features, six logits."""

    tokens: torch.Tensor
    feats: torch.Tensor
    logits: list[torch.Tensor]


class MSReID(nn.Module):
    """MS-ReID / Uni-AT (see :class:`atustc.models.config.UniATConfig` for the switches).

    Heads follow SCENARIOS. With SAID the ST classifiers have one class per outfit and the LT
    ones one per person; without SAID (baseline, unified) every classifier is over persons.
    """

    head_names: tuple[str, ...] = SCENARIOS

    def __init__(self, config: UniATConfig, labels: LabelSpace) -> None:
        super().__init__()
        self.config = config
        factory = cls_ffn_factory(config.moe) if config.moe is not None else None
        self.backbone = ViT(config.vit, cls_ffn_factory=factory)
        classes = [labels.num_outfits if config.said and name.endswith("ST") else labels.num_pids for name in SCENARIOS]
        self.heads = ScenarioHeads(config.vit.embed_dim, classes)
        self.register_buffer("outfit_to_pid", torch.tensor(labels.outfit_to_pid, dtype=torch.long), persistent=False)
        self.load_report: LoadReport | None = None  # set by build_uniat when a checkpoint is loaded

    @property
    def embed_dim(self) -> int:
        """Width D of each head's feature (the token width)."""
        return self.config.vit.embed_dim

    def _tokens(self, batch: Batch) -> torch.Tensor:
        tokens = self.backbone(batch.images, modality=batch.modality)[:, : self.config.vit.num_cls]
        return tokens.expand(-1, len(SCENARIOS), -1) if tokens.shape[1] == 1 else tokens

    def forward(self, batch: Batch) -> MSReIDOutput:
        tokens = self._tokens(batch)
        feats, logits = self.heads(tokens)
        return MSReIDOutput(tokens, feats, logits)

    def loss(self, outputs: MSReIDOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """``total`` plus ``id``, ``triplet`` (when on), per-head ``id/<scenario>`` and ``hdw/<scenario>``."""
        cfg = self.config
        head = scenario_id_losses(
            outputs.logits, batch.pid, batch.outfit, batch.modality, self.outfit_to_pid,
            said=cfg.said, said_fill=cfg.said_fill,
        )  # fmt: skip
        id_loss, weights = combine_id_losses(head, hdw=cfg.hdw, gamma=cfg.hdw_gamma, detach=cfg.hdw_detach)
        out = {"id": id_loss}
        means = head.head_means().detach()
        for i, name in enumerate(SCENARIOS):
            out[f"id/{name}"] = means[i]
            if weights is not None:
                out[f"hdw/{name}"] = weights[i].detach()
        total = id_loss
        if cfg.triplet:
            tri = torch.stack([
                batch_hard_triplet(outputs.tokens[:, i], batch.pid, cfg.triplet_margin, head.mask[i])
                for i in range(len(SCENARIOS))
            ]).sum()  # fmt: skip
            out["triplet"] = tri
            total = total + tri
        out["total"] = total
        return out

    def embed(self, batch: Batch) -> torch.Tensor:
        """Post-BN features ``[B, 6, D]`` (call in eval mode: BN running statistics, no drop path)."""
        return self.heads(self._tokens(batch))[0]
