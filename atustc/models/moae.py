"""Mixture-of-Attribute-Experts (paper §4.2, eq. 3-5) and the MoE alternatives of Table 2.

Each module runs the six scenario CLS tokens ``[B, 6, D]`` of a block through experts; the patch
tokens never come here (they keep the block's shared FFN). All four are built from two shared
pieces:

- **the expert MLP** (:func:`run_experts`): expert ``e`` is ``second[j](GELU(first[i](x)))``, a
  *first* layer ``D -> hidden`` and a *second* layer ``hidden -> D`` drawn from two stacked layer
  lists, so experts can share layers (MoAE's attribute layers); only the selected experts run;
- **the gate** (:func:`top_k_gate`, eq. 4): per scenario a bias-free linear gate, softmax over
  the scenario's candidate experts, top-k.

What differs is only the experts and each scenario's candidates (:func:`expert_layout`) and, for
VLMo, the routing:

- :class:`MoAE` with 12 experts (the official code): five attribute layers per position, time-moment
  DT/NT/AD and time-interval ST/LT; each scenario has the two orders of its two attributes
  (DT-ST: DT->ST and ST->DT), 10 linear layers per block in all. With 6 experts: first layers
  DT/NT/AD, second layers ST/LT, one expert per scenario (fixed routing, no gate).
- :class:`MMoE` (Ma et al., KDD 2018): ``n`` full experts shared by every scenario, a softmax gate
  per scenario over all of them (dense: ``top_k=None``).
- :class:`PLE` (Tang et al., RecSys 2020): one scenario-specific expert per scenario plus ``n - 6``
  shared experts, each scenario gated over its own and the shared ones.
- :class:`VLMo` (Bao et al., NeurIPS 2022): modality experts RGB, IR and cross-modality, routed by
  the input: the DT and NT tokens of an RGB image use the RGB expert, of an IR image the IR
  expert; the AD (cross-modality) tokens use the cross expert. No gate.

``gate="paper"`` (default) weights an expert output by its softmax probability as eq. 4 writes it
(top-k without renormalising), so the gate receives gradient and learns. ``gate="official"``
renormalises the kept probabilities to sum to 1, as the official code does (kw66/AT-ReID
``Mlp_moe``); with k = 1 the weight is exactly 1, the gate gets no gradient and routing stays an
argmax of its initial projection.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from atustc.methods.contract import SCENARIOS
from atustc.models.config import ExpertLayout, GateMode, MoEConfig, MoEKind, expert_layout

__all__ = [
    "MIXTURES",
    "PLE",
    "VLMo",
    "ExpertLayout",
    "GateMode",
    "MMoE",
    "MoAE",
    "MoEConfig",
    "MoEKind",
    "ScenarioMixture",
    "cls_ffn_factory",
    "expert_layout",
    "run_experts",
    "top_k_gate",
]


def top_k_gate(
    x: torch.Tensor, gate: torch.Tensor, top_k: int, mode: GateMode = "paper"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gate of eq. 4: per scenario ``softmax(W_g^s x)`` over its candidates, the top ``k`` kept.

    Args:
        x: tokens ``[B, S, D]``.
        gate: one bias-free gate per scenario ``[S, n, D]``.
        top_k: candidates kept per token.
        mode: ``paper`` keeps the softmax probabilities; ``official`` renormalises them to sum to 1.

    Returns:
        ``(weight [B, S, k], choice [B, S, k])``: the kept weights (float32) and candidate indices.
    """
    probs = torch.einsum("bsd,snd->bsn", x, gate.to(x.dtype)).float().softmax(-1)
    weight, choice = probs.topk(top_k, dim=-1)
    if mode == "official":
        weight = weight / weight.sum(-1, keepdim=True)
    return weight, choice


def run_experts(
    x: torch.Tensor,
    first: torch.Tensor,
    second: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """The expert MLP: row ``i`` of ``x`` through first layer ``first[i]``, GELU, second layer ``second[i]``.

    Rows are sorted by first layer, pushed through each used first layer once, re-sorted by second
    layer, pushed through each used second layer once, and put back in place: each row costs one
    FFN whatever the number of experts.

    Args:
        x: rows ``[N, D]``.
        first, second: ``[N]`` layer indices.
        weights: ``(first_weight [A1, hidden, D], first_bias [A1, hidden], second_weight [A2, D, hidden],
            second_bias [A2, D])``.
    """
    w1, b1, w2, b2 = weights
    a1, a2 = w1.shape[0], w2.shape[0]
    order1 = torch.argsort(first)
    order2 = torch.argsort(second.index_select(0, order1))  # in first-sorted order
    counts = torch.cat([torch.bincount(first, minlength=a1), torch.bincount(second, minlength=a2)]).tolist()
    h = _apply(w1, b1, x.index_select(0, order1), counts[:a1])
    h = _apply(w2, b2, F.gelu(h).index_select(0, order2), counts[a1:])
    return torch.index_copy(torch.empty_like(h), 0, order1.index_select(0, order2), h)


def _apply(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Consecutive row blocks of ``x`` (sizes ``counts``) through the stacked linears, skipping empty ones."""
    ws, bs = weight.unbind(0), bias.unbind(0)
    chunks = x.split(counts)
    return torch.cat([F.linear(c, ws[i], bs[i]) for i, (c, n) in enumerate(zip(chunks, counts)) if n])


class ScenarioMixture(nn.Module):
    """Routes the six scenario CLS tokens ``[B, 6, D]`` through their experts (top-k, sparse).

    The first layers are stored stacked (``first_weight [A1, hidden, D]``, ``first_bias``), the
    second ones likewise (``second_weight [A2, D, hidden]``, ``second_bias``): four tensors per
    block whatever the number of experts, which keeps per-tensor optimiser work flat. ``gate``
    ``[6, n, D]`` exists when a scenario has several candidates and the routing is learned.

    Attributes:
        last_choice: the selected candidate indices ``[B, 6, k]`` of the last forward (detached).
    """

    kind: MoEKind = "moae"
    #: whether the routing is learned (a gate over the candidates) rather than fixed by the input
    learned_gate: bool = True

    def __init__(self, dim: int, hidden: int, config: MoEConfig) -> None:
        super().__init__()
        if config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs a {self.kind} config, got {config.kind}")
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
        learned = self.learned_gate and n_cand > 1
        self.gate = nn.Parameter(torch.randn(len(SCENARIOS), n_cand, dim) * 0.02) if learned else None
        self.last_choice: torch.Tensor | None = None

    @torch.no_grad()
    def init_from_ffn(self, fc1: nn.Linear, fc2: nn.Linear) -> None:
        """Copy a block's FFN into every first (``fc1``) and second (``fc2``) layer."""
        self.first_weight.copy_(fc1.weight.expand_as(self.first_weight))
        self.first_bias.copy_(fc1.bias.expand_as(self.first_bias))
        self.second_weight.copy_(fc2.weight.expand_as(self.second_weight))
        self.second_bias.copy_(fc2.bias.expand_as(self.second_bias))

    def route(self, x: torch.Tensor, modality: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(weight [B, S, k] or None, choice [B, S, k])``: the gate's choice, or the only candidate."""
        if self.gate is None:
            return None, x.new_zeros(x.shape[0], x.shape[1], 1, dtype=torch.long)
        return top_k_gate(x, self.gate, self.top_k, self.config.gate)

    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        """Mix the CLS tokens ``x [B, 6, D]``; ``modality [B]`` (0 RGB, 1 IR) is read only by :class:`VLMo`."""
        b, s, d = x.shape
        if s != len(SCENARIOS):
            raise ValueError(f"{type(self).__name__} expects {len(SCENARIOS)} CLS tokens, got {s}")
        weight, choice = self.route(x, modality)
        self.last_choice = choice.detach()
        k = choice.shape[-1]
        atoms = self.cand_atoms.unsqueeze(0).expand(b, -1, -1, -1)  # [B, S, n, 2]
        atoms = atoms.gather(2, choice.unsqueeze(-1).expand(-1, -1, -1, 2)).reshape(-1, 2)  # [B*S*k, 2]
        tokens = x.unsqueeze(2).expand(b, s, k, d).reshape(-1, d)
        params = (self.first_weight, self.first_bias, self.second_weight, self.second_bias)
        y = run_experts(tokens, atoms[:, 0], atoms[:, 1], params).view(b, s, k, d)
        if weight is None:
            return y.sum(2)
        return (y * weight.unsqueeze(-1).to(y.dtype)).sum(2)


class MoAE(ScenarioMixture):
    """Mixture of attribute experts (the paper's MoAE, 6 or 12 experts)."""

    kind = "moae"


class MMoE(ScenarioMixture):
    """Multi-gate mixture of experts: ``n`` experts shared by all scenarios, one gate per scenario."""

    kind = "mmoe"


class PLE(ScenarioMixture):
    """Progressive layered extraction (one level): scenario-specific plus shared experts, gated per scenario."""

    kind = "ple"


class VLMo(ScenarioMixture):
    """Modality experts: RGB and IR experts for the DT/NT tokens by the image's modality, cross for AD."""

    kind = "vlmo"
    learned_gate = False

    def route(self, x: torch.Tensor, modality: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        if modality is None:
            raise ValueError("VLMo routes by the input's modality: pass modality [B] (0 RGB, 1 IR)")
        cross = torch.tensor([s.startswith("AD") for s in SCENARIOS], device=x.device)  # [S]
        choice = torch.where(cross.unsqueeze(0), 2, modality.to(x.device).long().unsqueeze(1).clamp(0, 1))
        return None, choice.unsqueeze(-1)  # [B, S, 1]


#: The module of each mixture kind.
MIXTURES: dict[str, type[ScenarioMixture]] = {m.kind: m for m in (MoAE, MMoE, PLE, VLMo)}


def cls_ffn_factory(config: MoEConfig) -> Callable[[int, nn.Module], ScenarioMixture]:
    """A :data:`atustc.models.vit.ClsFFNFactory` building the mixture of ``config`` per block,
    initialised from the block's FFN (the paper: attribute layers start from the pretrained FFN;
    :mod:`atustc.models.pretrained` copies the checkpoint's ``fc1``/``fc2`` into them again)."""
    module = MIXTURES[config.kind]

    def build(_: int, mlp: nn.Module) -> ScenarioMixture:
        moe = module(mlp.fc1.in_features, mlp.fc1.out_features, config)
        moe.init_from_ffn(mlp.fc1, mlp.fc2)
        return moe

    return build
