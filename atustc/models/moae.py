"""Mixture-of-Attribute-Experts (paper §4.2, eq. 3-5) and the MoE alternatives of Table 2.

One module, :class:`ScenarioMoE`, runs the six scenario CLS tokens ``[B, 6, D]`` of a block
through experts; the patch tokens never come here (they keep the block's shared FFN). Every
expert is ``second(GELU(first(x)))``: a *first* layer ``D -> hidden`` and a *second* layer
``hidden -> D`` drawn from two shared lists of linear layers, so experts can share layers.
What differs between the modules of Table 2 is only the layer lists, the experts built from
them and each scenario's candidate experts (:func:`expert_layout`):

- ``moae`` with 12 experts (the official code): five attribute layers per position, time-moment
  DT/NT/AD and time-interval ST/LT; each scenario has the two orders of its two attributes
  (DT-ST: DT->ST and ST->DT), 10 linear layers per block in all.
- ``moae`` with 6 experts: first layers DT/NT/AD, second layers ST/LT, one expert per scenario.
- ``mmoe``: ``n`` full experts shared by every scenario, a gate per scenario over all of them.
- ``ple``: one scenario-specific expert per scenario plus ``n - 6`` shared experts.
- ``vlmo``: RGB, IR and cross-modality experts; DT tokens use RGB, NT IR, AD cross (fixed routing).

Gating (eq. 4): per scenario a bias-free linear gate, softmax over the candidates, top-k. Only the
selected experts are computed: the routed tokens are grouped by first layer, then by second
layer, so each token costs one FFN per selected expert whatever the number of experts.

``gate="paper"`` (default) weights an expert output by its softmax probability as eq. 4 writes it
(top-k without renormalising), so the gate receives gradient and learns. ``gate="official"``
renormalises the kept probabilities to sum to 1, as the official code does; with k = 1 the weight
is exactly 1, the gate gets no gradient and routing stays an argmax of its initial projection.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from atustc.methods.contract import SCENARIOS
from atustc.models.config import ExpertLayout, GateMode, MoEConfig, MoEKind, expert_layout

__all__ = ["ExpertLayout", "GateMode", "MoEConfig", "MoEKind", "ScenarioMoE", "cls_ffn_factory", "expert_layout"]


class ScenarioMoE(nn.Module):
    """Routes the six scenario CLS tokens ``[B, 6, D]`` through their experts (top-k, sparse).

    The first layers are stored stacked (``first_weight [A1, hidden, D]``, ``first_bias``), the
    second ones likewise (``second_weight [A2, D, hidden]``, ``second_bias``): four tensors per
    block whatever the number of experts, which keeps per-tensor optimiser work flat.

    Attributes:
        last_choice: the selected candidate indices ``[B, 6, k]`` of the last forward (detached).
    """

    def __init__(self, dim: int, hidden: int, config: MoEConfig) -> None:
        super().__init__()
        self.config = config
        layout = expert_layout(config)
        self.layout = layout
        a1, a2 = len(layout.first), len(layout.second)
        self.first_weight = nn.Parameter(torch.empty(a1, hidden, dim))
        self.first_bias = nn.Parameter(torch.zeros(a1, hidden))
        self.second_weight = nn.Parameter(torch.empty(a2, dim, hidden))
        self.second_bias = nn.Parameter(torch.zeros(a2, dim))
        nn.init.trunc_normal_(self.first_weight, std=0.02)
        nn.init.trunc_normal_(self.second_weight, std=0.02)
        experts = torch.tensor(layout.experts, dtype=torch.long)  # [E, 2]
        cands = torch.tensor(layout.candidates, dtype=torch.long)  # [6, n]
        self.register_buffer("cand_atoms", experts[cands], persistent=False)  # [6, n, 2]
        n_cand = cands.shape[1]
        self.top_k = n_cand if config.top_k is None else config.top_k
        # one bias-free gate W_g^s in R^{n x d} per scenario (eq. 4); none when routing is fixed
        self.gate = nn.Parameter(torch.randn(len(SCENARIOS), n_cand, dim) * 0.02) if n_cand > 1 else None
        self.last_choice: torch.Tensor | None = None

    @torch.no_grad()
    def init_from_ffn(self, fc1: nn.Linear, fc2: nn.Linear) -> None:
        """Copy a block's FFN into every first (``fc1``) and second (``fc2``) layer."""
        self.first_weight.copy_(fc1.weight.expand_as(self.first_weight))
        self.first_bias.copy_(fc1.bias.expand_as(self.first_bias))
        self.second_weight.copy_(fc2.weight.expand_as(self.second_weight))
        self.second_bias.copy_(fc2.bias.expand_as(self.second_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        if s != len(SCENARIOS):
            raise ValueError(f"ScenarioMoE expects {len(SCENARIOS)} CLS tokens, got {s}")
        if self.gate is None:
            choice = x.new_zeros(b, s, 1, dtype=torch.long)
            weight = None
        else:
            probs = torch.einsum("bsd,snd->bsn", x, self.gate.to(x.dtype)).float().softmax(-1)
            weight, choice = probs.topk(self.top_k, dim=-1)  # [B, S, k]
            if self.config.gate == "official":
                weight = weight / weight.sum(-1, keepdim=True)
        self.last_choice = choice.detach()
        k = choice.shape[-1]
        atoms = self.cand_atoms.unsqueeze(0).expand(b, -1, -1, -1)  # [B, S, n, 2]
        atoms = atoms.gather(2, choice.unsqueeze(-1).expand(-1, -1, -1, 2)).reshape(-1, 2)  # [B*S*k, 2]
        tokens = x.unsqueeze(2).expand(b, s, k, d).reshape(-1, d)
        y = self._experts(tokens, atoms[:, 0], atoms[:, 1]).view(b, s, k, d)
        if weight is None:
            return y.sum(2)
        return (y * weight.unsqueeze(-1).to(y.dtype)).sum(2)

    def _experts(self, x: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Row i through first layer ``first[i]``, GELU, second layer ``second[i]``.

        Rows are sorted by first layer, pushed through each used first layer once, re-sorted by
        second layer, pushed through each used second layer once, and put back in place.
        """
        a1, a2 = self.first_weight.shape[0], self.second_weight.shape[0]
        order1 = torch.argsort(first)
        order2 = torch.argsort(second.index_select(0, order1))  # in first-sorted order
        counts = torch.cat([torch.bincount(first, minlength=a1), torch.bincount(second, minlength=a2)]).tolist()
        h = _apply(self.first_weight, self.first_bias, x.index_select(0, order1), counts[:a1])
        h = _apply(self.second_weight, self.second_bias, F.gelu(h).index_select(0, order2), counts[a1:])
        return torch.index_copy(torch.empty_like(h), 0, order1.index_select(0, order2), h)


def _apply(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Consecutive row blocks of ``x`` (sizes ``counts``) through the stacked linears, skipping empty ones."""
    ws, bs = weight.unbind(0), bias.unbind(0)
    chunks = x.split(counts)
    return torch.cat([F.linear(c, ws[i], bs[i]) for i, (c, n) in enumerate(zip(chunks, counts)) if n])


def cls_ffn_factory(config: MoEConfig) -> Callable[[int, nn.Module], ScenarioMoE]:
    """A :data:`atustc.models.vit.ClsFFNFactory` building a :class:`ScenarioMoE` per block,
    initialised from the block's FFN (the paper: attribute layers start from the pretrained FFN;
    :mod:`atustc.models.pretrained` copies the checkpoint's ``fc1``/``fc2`` into them again)."""

    def build(_: int, mlp: nn.Module) -> ScenarioMoE:
        moe = ScenarioMoE(mlp.fc1.in_features, mlp.fc1.out_features, config)
        moe.init_from_ffn(mlp.fc1, mlp.fc2)
        return moe

    return build
