"""Losses: Uni-AT's scenario-aware ID loss (eq. 1-2) and HDW (eq. 6-9), and the baselines' shared losses.

Shared by the baselines: label-smoothed CE, the batch-hard triplet (hinge and soft margin), AGW's
weighted-regularisation triplet, the centre loss, CAL's clothes-based adversarial loss, AIM's
symmetric KL, and SAAI's centre-separation loss, part-diversity loss and soft-target CE.

Heads follow :data:`atustc.methods.contract.SCENARIOS` (DT-ST, DT-LT, NT-ST, NT-LT, AD-ST, AD-LT).

Scenario-aware ID loss (SAID): DT heads see RGB samples only, NT heads IR only, AD heads all; LT
heads classify persons; ST heads classify outfits, and the other outfits of the sample's own person
are removed from the negatives (logit set to -inf, i.e. excluded from eq. 2's denominator; the
official code writes -10 instead, ``said_fill=-10``). Without SAID (the baseline) every head
is a plain person-ID cross-entropy on every sample.

HDW (paper, default): ``L = sum_s w_s * L_s`` with ``L_s`` the mean loss of head ``s`` over its
samples and ``w_s = (1 - p_tm)^(g/2) * (1 - p_ti)^(g/2)``, where ``p_tm`` (``p_ti``) is the mean of
``exp(-l)`` over all samples of the heads sharing ``s``'s time moment (interval). The paper
states no stop-gradient (the weights are a focal-loss-style function of the confidences), so by
default gradients flow through them; ``detach=True`` stops them. ``mode="official"`` is the
official code: each weight is divided by its group maximum (``w_tm / max(w_DT, w_NT, w_AD)`` times
``w_ti / max(w_ST, w_LT)``), not detached, and the loss is ``sum_s sum_i w_s l_si / B`` (a head's
sum over its samples divided by the full batch size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from atustc.methods.contract import SCENARIOS
from atustc.models.config import HDWMode

#: Per head: the time-moment group (0 DT, 1 NT, 2 AD) and time-interval group (0 ST, 1 LT).
TM_GROUP: tuple[int, ...] = tuple(("DT", "NT", "AD").index(s.split("-")[0]) for s in SCENARIOS)
TI_GROUP: tuple[int, ...] = tuple(("ST", "LT").index(s.split("-")[1]) for s in SCENARIOS)


@dataclass
class HeadLosses:
    """Per-sample ID losses of the six heads.

    Attributes:
        loss: ``[H, B]`` cross-entropy per head and sample (0 where masked).
        mask: ``[H, B]`` bool, the samples each head is trained on.
    """

    loss: torch.Tensor
    mask: torch.Tensor

    def head_means(self) -> torch.Tensor:
        """Mean loss of each head over its samples ``[H]`` (0 for a head with no sample)."""
        return self.loss.sum(1) / self.mask.sum(1).clamp(min=1)


def scenario_id_losses(
    logits: Sequence[torch.Tensor],
    pid: torch.Tensor,
    outfit: torch.Tensor,
    modality: torch.Tensor,
    outfit_to_pid: torch.Tensor,
    *,
    said: bool = True,
    said_fill: float = float("-inf"),
) -> HeadLosses:
    """Per-sample ID losses of the six scenario heads (eq. 1-2 with ``said``, plain person ID without).

    Args:
        logits: six ``[B, C_s]`` tensors in SCENARIOS order; with ``said`` the ST heads have one
            class per outfit, the LT heads one per person.
        pid, outfit, modality: ``[B]`` person labels, outfit labels, 0 = RGB / 1 = IR.
        outfit_to_pid: ``[num_outfits]`` person label of each outfit.
        said: the scenario-aware loss; False is the baseline (every head: person ID, all samples).
        said_fill: the logit of the same-person outfits in the ST heads: ``-inf`` removes them from
            the negatives (the paper); the official code sets them to -10.

    Returns:
        :class:`HeadLosses` with ``[6, B]`` losses and masks.
    """
    losses, masks = [], []
    every = torch.ones_like(pid, dtype=torch.bool)
    for name, logit in zip(SCENARIOS, logits):
        tm, ti = name.split("-")
        logit = logit.float()
        if not said:
            losses.append(F.cross_entropy(logit, pid, reduction="none"))
            masks.append(every)
            continue
        if ti == "ST":
            own = outfit_to_pid.unsqueeze(0) == pid.unsqueeze(1)  # [B, C]: outfits of the same person
            own &= torch.arange(logit.shape[1], device=logit.device).unsqueeze(0) != outfit.unsqueeze(1)
            loss = F.cross_entropy(logit.masked_fill(own, said_fill), outfit, reduction="none")
        else:
            loss = F.cross_entropy(logit, pid, reduction="none")
        mask = {"DT": modality == 0, "NT": modality == 1, "AD": every}[tm]
        losses.append(torch.where(mask, loss, torch.zeros_like(loss)))
        masks.append(mask)
    return HeadLosses(torch.stack(losses), torch.stack(masks))


def hdw_weights(head: HeadLosses, *, gamma: float = 1.0, mode: HDWMode = "paper", detach: bool = False) -> torch.Tensor:
    """HDW weights ``[6]`` (eq. 7-9; ``mode="official"`` normalises by the group maxima).

    A group with no sample in the batch has confidence 0 (weight factor 1); its heads have no
    loss anyway.
    """
    conf = torch.exp(-head.loss) * head.mask  # [H, B], 0 where masked
    tm = torch.tensor(TM_GROUP, device=conf.device)
    ti = torch.tensor(TI_GROUP, device=conf.device)

    def group_weights(groups: torch.Tensor, n: int) -> torch.Tensor:
        total = torch.zeros(n, device=conf.device).index_add(0, groups, conf.sum(1))
        count = torch.zeros(n, device=conf.device).index_add(0, groups, head.mask.sum(1).float())
        w = (1 - total / count.clamp(min=1)).clamp(min=1e-8) ** (gamma / 2)  # no inf gradient at p = 1
        return w / w.max().clamp(min=1e-12) if mode == "official" else w

    w = group_weights(tm, 3)[tm] * group_weights(ti, 2)[ti]
    return w.detach() if detach else w


def combine_id_losses(
    head: HeadLosses,
    *,
    hdw: HDWMode | None = None,
    gamma: float = 1.0,
    detach: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Total ID loss and the HDW weights used (None without HDW).

    Without HDW: the sum of the six head means (the official code). Paper HDW: ``sum_s w_s L_s``.
    Official HDW: ``sum_s w_s sum_i l_si / B``.
    """
    if hdw is None:
        return head.head_means().sum(), None
    w = hdw_weights(head, gamma=gamma, mode=hdw, detach=detach)
    if hdw == "official":
        return (w * head.loss.sum(1)).sum() / head.loss.shape[1], w
    return (w * head.head_means()).sum(), w


def ls_cross_entropy(logits: torch.Tensor, target: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Label-smoothed cross-entropy (Szegedy et al. 2016; BoT's ``CrossEntropyLabelSmooth``).

    The target is ``(1 - epsilon) * onehot + epsilon / K`` over the ``K`` classes; batch mean.
    """
    return F.cross_entropy(logits.float(), target, label_smoothing=epsilon)


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(positive [B, B] without the diagonal, negative [B, B], valid anchors [B])``."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    return pos, neg, pos.any(1) & neg.any(1)


def pairwise_distances(feat: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[B, B]``, at least 1e-12; the diagonal is that constant (no gradient, no NaN)."""
    dist = torch.cdist(feat.float(), feat.float()).clamp(min=1e-12)
    eye = torch.eye(len(feat), dtype=torch.bool, device=feat.device)
    return dist.masked_fill(eye, 1e-12)


def _hardest(feat: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hardest-positive and hardest-negative Euclidean distances per anchor, and the valid anchors."""
    dist = pairwise_distances(feat)
    pos, neg, valid = _pair_masks(labels)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(1)
    return hardest_pos, hardest_neg, valid


def batch_hard_triplet(
    feat: torch.Tensor, labels: torch.Tensor, margin: float = 0.3, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Batch-hard triplet loss on Euclidean distances (Hermans et al. 2017; BoT's ``TripletLoss``).

    ``mean relu(max d(a, p) - min d(a, n) + margin)`` on the raw (un-normalised) features.

    Args:
        feat: ``[B, D]`` features.
        labels: ``[B]`` identity labels.
        margin: hinge margin.
        mask: optional ``[B]`` bool, the samples taking part (others are ignored).

    Returns:
        The mean over anchors that have both a positive and a negative (0 when none has).
    """
    if mask is not None:
        feat, labels = feat[mask], labels[mask]
    hardest_pos, hardest_neg, valid = _hardest(feat, labels)
    if not valid.any():
        return feat.sum() * 0.0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def soft_margin_triplet(feat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Batch-hard triplet with a soft margin: ``mean softplus(max d(a, p) - min d(a, n))``.

    TransReID's ``NO_MARGIN: True`` (``SoftMarginLoss``). Anchors without a positive or a negative
    in the batch are skipped; a batch with no valid anchor gives 0.
    """
    hardest_pos, hardest_neg, valid = _hardest(feat, labels)
    if not valid.any():
        return feat.sum() * 0.0
    return F.softplus(hardest_pos - hardest_neg)[valid].mean()


def weighted_regularized_triplet(feat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AGW's weighted-regularisation triplet (Ye et al., TPAMI 2021; mangye16/ReID-Survey).

    On Euclidean distances ``d``: positive weights ``softmax(d)`` over the anchor's positives (the
    anchor itself included, at distance ~0), negative weights ``softmax(-d)`` over its
    negatives; ``L = mean softplus(sum w+ d - sum w- d)`` (soft margin, no margin parameter).
    Anchors without a negative are skipped (0 when none has one).
    """
    dist = pairwise_distances(feat)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    valid = (~same).any(1)
    if not valid.any():
        return feat.sum() * 0.0

    def weighted(d: torch.Tensor, m: torch.Tensor, sign: float) -> torch.Tensor:
        logits = (sign * d).masked_fill(~m, float("-inf"))
        w = torch.softmax(logits, dim=1).nan_to_num(0.0)
        return (w * d).sum(1)

    gap = weighted(dist, same, 1.0) - weighted(dist, ~same, -1.0)
    return F.softplus(gap)[valid].mean()


def center_loss(feat: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Centre loss (Wen et al., ECCV 2016; BoT's ``CenterLoss``): ``mean_i |f_i - c_{y_i}|^2``."""
    return (feat.float() - centers[labels].float()).pow(2).sum(1).clamp(1e-12, 1e12).mean()


def clothes_adversarial_loss(
    clothes_logits: torch.Tensor,
    outfit: torch.Tensor,
    pid: torch.Tensor,
    outfit_to_pid: torch.Tensor,
    epsilon: float = 0.1,
) -> torch.Tensor:
    """CAL's clothes-based adversarial loss (Gu et al., CVPR 2022; guxinqian/Simple-CCReID).

    For sample ``i`` with scaled clothes logits ``z`` (already multiplied by the scale),
    ``S+`` = the clothes classes of its own identity and ``S-`` the others':
    ``log p_c = z_c - log(exp(z_c) + sum_{c' in S-} exp(z_c'))`` and the target is
    ``q = (1 - eps) onehot(own outfit) + eps / |S+| 1[c in S+]``; ``L = mean_i -sum_{c in S+} q_c log p_c``.

    Args:
        clothes_logits: ``[B, C]`` scaled cosine logits of the clothes classifier.
        outfit: ``[B]`` outfit (clothes) labels.
        pid: ``[B]`` person labels.
        outfit_to_pid: ``[C]`` person label of each outfit.
        epsilon: the smoothing over the identity's own outfits.
    """
    z = clothes_logits.float()
    positive = outfit_to_pid.unsqueeze(0) == pid.unsqueeze(1)  # [B, C]
    neg_lse = z.masked_fill(positive, float("-inf")).logsumexp(1, keepdim=True)  # -inf when no negative
    log_prob = z - torch.logaddexp(z, neg_lse)
    own = F.one_hot(outfit, z.shape[1]).to(z.dtype)
    target = (1 - epsilon) * own + epsilon * positive.to(z.dtype) / positive.sum(1, keepdim=True).clamp(min=1)
    return -(target * log_prob.masked_fill(~positive, 0.0)).sum(1).mean()


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """``KL(P||Q) + KL(Q||P)`` of two softmax distributions, **summed** over the batch (AIM's transfer term).

    ``Q`` is detached (AIM, Yang et al., CVPR 2023, BoomShakaY/AIM-CCReID: the bias branch learns
    from the main branch, not the reverse).
    """
    log_p = F.log_softmax(logits_p.float(), dim=1)
    log_q = F.log_softmax(logits_q.detach().float(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum() + (log_q.exp() * (log_q - log_p)).sum()


def center_separation_loss(
    feat: torch.Tensor, labels: torch.Tensor, margin_center: float = 0.01, margin_sep: float = 0.7
) -> torch.Tensor:
    """SAAI's CSLoss (Fang et al., ICCV 2023; xiaoye-hhh/SAAI ``layers/loss/cs_loss.py``), on in-batch centres.

    With ``c_i`` the mean feature of sample ``i``'s identity in the batch and ``d`` Euclidean:

    - centre term: ``mean_i max(d(x_i, c_i) - margin_center, 0)``;
    - separation term: one anchor per identity (its first sample in the batch), the mean over
      the samples ``j`` of other identities of ``max(margin_sep - d(c_i, c_j), 0)``, averaged over
      the anchors (0 with a single identity). The official code takes every K-th sample as the
      anchor, the same thing for batches that list each identity's K images together.

    Returns:
        The sum of the two terms.
    """
    x = feat.float()
    same = labels.unsqueeze(0) == labels.unsqueeze(1)  # [B, B]
    centers = (same.float() @ x) / same.sum(1, keepdim=True)  # [B, C]
    to_center = (x - centers).pow(2).sum(1).clamp(min=1e-12).sqrt()
    center_term = (to_center - margin_center).clamp(min=0).mean()
    anchors = (~same.tril(-1).any(1)).nonzero(as_tuple=True)[0]  # no earlier sample of the same identity
    neg = ~same[anchors]  # [A, B]
    if not neg.any():
        return center_term + 0.0 * centers.sum()
    dist = torch.cdist(centers[anchors], centers).clamp(min=1e-12)  # [A, B]
    hinge = (margin_sep - dist).clamp(min=0) * neg
    per_anchor = hinge.sum(1) / neg.sum(1).clamp(min=1)
    return center_term + per_anchor[neg.any(1)].mean()


def part_diversity_loss(attention: torch.Tensor) -> torch.Tensor:
    """SAAI's part-diversity loss (``dp = l2``): ``-mean_{b, i<j} |a_bi - a_bj|_2 / sqrt(N)``.

    Args:
        attention: ``[B, P, N]`` part attention maps over the ``N`` map positions (P >= 2).
    """
    a = attention.float()
    p, n = a.shape[1], a.shape[2]
    i, j = torch.triu_indices(p, p, offset=1, device=a.device)
    return -((a[:, i] - a[:, j]).pow(2).sum(-1) / n).clamp(min=1e-12).sqrt().mean()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_i -sum_c q_ic log softmax(z_i)_c`` against soft targets ``q`` (rows of probabilities, detached)."""
    return -(target.detach().float() * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
