"""Loss terms and the validation metrics of training.

The network returns mask logits ``(B, 1, S, S)`` and, for ``neural``, presence logits ``(B,)``.
:class:`MatchingLoss` combines soft Dice, pixel BCE and presence BCE with the weights of
:class:`tmatch.train.config.LossSection`; :func:`batch_metrics` returns sums that add up over
batches and processes (so the epoch metrics are exact under DDP).

Shape letters: B batch, S the network's input side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, mode: str = "batch",
              present: torch.Tensor | None = None, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - (2|P∩T| + eps) / (|P| + |T| + eps)`` on sigmoid probabilities.

    Args:
        logits: ``(B, 1, S, S)`` mask logits.
        target: ``(B, 1, S, S)`` float in ``{0, 1}``.
        mode: ``batch`` — one Dice over the whole batch (the original's smp ``DiceLoss``);
            ``positives`` — the mean of per-pair Dice over pairs with ``present`` true (zero
            when there are none).
        present: ``(B,)`` bool/float, needed for ``positives``.
        eps: smoothing added to numerator and denominator.

    Returns:
        Scalar tensor.

    >>> t = torch.zeros(1, 1, 4, 4); t[..., :2, :2] = 1
    >>> round(float(dice_loss((t * 2 - 1) * 20, t)), 4)
    0.0
    """
    p = torch.sigmoid(logits.float())
    t = target.float()
    if mode == "batch":
        inter = (p * t).sum()
        return 1 - (2 * inter + eps) / (p.sum() + t.sum() + eps)
    if mode != "positives":
        raise ValueError(f"dice mode must be 'batch' or 'positives', got {mode!r}")
    if present is None:
        raise ValueError("dice mode 'positives' needs the present flags")
    keep = present.bool()
    if not keep.any():
        return p.sum() * 0.0
    p, t = p[keep].flatten(1), t[keep].flatten(1)
    d = 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return d.mean()


@dataclass
class LossParts:
    """The loss of one batch and its terms (terms detached, for logging).

    Attributes:
        total: scalar tensor to back-propagate.
        dice, bce, presence: the unweighted terms as floats-in-tensors (0 when switched off).
    """

    total: torch.Tensor
    dice: torch.Tensor
    bce: torch.Tensor
    presence: torch.Tensor


class MatchingLoss(torch.nn.Module):
    """Weighted sum of Dice, pixel BCE and presence BCE.

    Args:
        dice, bce, presence: weights (0 switches a term off; the presence term is skipped for
            models without a presence output).
        dice_mode: see :func:`dice_loss`.
        bce_pos_weight: weight of positive pixels in the BCE term.

    >>> loss = MatchingLoss(dice=1, bce=1)
    >>> t = torch.zeros(2, 1, 8, 8); t[0, :, 2:5, 2:5] = 1
    >>> out = {"mask": torch.zeros(2, 1, 8, 8, requires_grad=True), "presence": None}
    >>> parts = loss(out, t, torch.tensor([1.0, 0.0]))
    >>> parts.total.requires_grad, round(float(parts.bce), 4)
    (True, 0.6931)
    """

    def __init__(self, dice: float = 1.0, bce: float = 0.0, presence: float = 0.0,
                 dice_mode: str = "batch", bce_pos_weight: float = 1.0) -> None:
        super().__init__()
        self.w_dice, self.w_bce, self.w_presence = float(dice), float(bce), float(presence)
        self.dice_mode = dice_mode
        self.bce_pos_weight = float(bce_pos_weight)

    @classmethod
    def from_config(cls, section) -> MatchingLoss:
        """Build from a :class:`tmatch.train.config.LossSection`."""
        return cls(section.dice, section.bce, section.presence, section.dice_mode,
                   section.bce_pos_weight)

    def forward(self, out: dict, target: torch.Tensor, present: torch.Tensor) -> LossParts:
        """Loss of one batch.

        Args:
            out: the model's output ``{"mask": (B, 1, S, S) logits, "presence": (B,) | None}``.
            target: ``(B, 1, S, S)`` float ``{0, 1}``.
            present: ``(B,)`` float ``{0, 1}``.
        """
        logits = out["mask"].float()
        zero = logits.sum() * 0.0
        total = zero
        d = b = pr = zero.detach()
        if self.w_dice > 0:
            d = dice_loss(logits, target, self.dice_mode, present)
            total = total + self.w_dice * d
        if self.w_bce > 0:
            pw = torch.tensor(self.bce_pos_weight, device=logits.device)
            b = F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pw)
            total = total + self.w_bce * b
        pres = out.get("presence")
        if pres is not None:
            # Always in the graph (weight 0 keeps every parameter used, as DDP needs).
            pr = F.binary_cross_entropy_with_logits(pres.float().reshape(-1), present.float())
            total = total + self.w_presence * pr
        return LossParts(total=total, dice=d.detach(), bce=b.detach(), presence=pr.detach())


# Order of the sums returned by batch_metrics.
METRIC_FIELDS = ("n", "loss", "iou", "success", "inter", "union", "presence_ok", "presence_n")


@torch.no_grad()
def batch_metrics(out: dict, target: torch.Tensor, present: torch.Tensor,
                  loss: torch.Tensor | None = None, threshold: float = 0.5) -> torch.Tensor:
    """Additive sums of the validation metrics of one batch.

    A pixel is predicted when its probability exceeds ``threshold``; when the model has a
    presence output, pairs it calls absent (probability <= 0.5) predict an empty mask. A pair's
    IoU is 1 when both the truth and the prediction are empty.

    Args:
        out: model output (see :class:`MatchingLoss`).
        target: ``(B, 1, S, S)`` float ``{0, 1}``.
        present: ``(B,)`` float ``{0, 1}``.
        loss: the batch's mean loss (scalar), counted once per pair.
        threshold: mask probability threshold (the original's IoU@0.5).

    Returns:
        ``(8,)`` float64 tensor of sums in the order of :data:`METRIC_FIELDS`: number of pairs,
        loss × pairs, sum of per-pair IoU, pairs with IoU >= 0.5, pooled intersection and union
        (the original's batch IoU), correct presence calls and pairs with a presence output.
    """
    prob = torch.sigmoid(out["mask"].float())
    pred = prob > threshold
    pres = out.get("presence")
    b = pred.shape[0]
    if pres is not None:
        called = torch.sigmoid(pres.float().reshape(-1)) > 0.5
        pred = pred & called.view(-1, 1, 1, 1)
        presence_ok = (called == present.bool()).sum().double()
        presence_n = torch.tensor(float(b), dtype=torch.float64, device=prob.device)
    else:
        presence_ok = presence_n = torch.zeros((), dtype=torch.float64, device=prob.device)
    truth = target > 0.5
    inter = (pred & truth).flatten(1).sum(1).double()
    union = (pred | truth).flatten(1).sum(1).double()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    lsum = (loss.detach().double() * b) if loss is not None else torch.zeros((), dtype=torch.float64,
                                                                              device=prob.device)
    return torch.stack([
        torch.tensor(float(b), dtype=torch.float64, device=prob.device),
        lsum.to(prob.device),
        iou.sum(),
        (iou >= 0.5).sum().double(),
        inter.sum(),
        union.sum(),
        presence_ok,
        presence_n,
    ])


def summarize(sums: torch.Tensor) -> dict[str, float]:
    """Turn summed :func:`batch_metrics` into means: ``loss``, ``iou`` (mean per-pair IoU),
    ``success`` (share of pairs with IoU >= 0.5), ``iou_pooled`` (the original's pooled IoU)
    and ``presence_acc`` (only when the model has a presence output)."""
    s = dict(zip(METRIC_FIELDS, (float(v) for v in sums.detach().cpu())))
    n = max(s["n"], 1.0)
    res = {"loss": s["loss"] / n, "iou": s["iou"] / n, "success": s["success"] / n,
           "iou_pooled": (s["inter"] + 1e-7) / (s["union"] + 1e-7)}
    if s["presence_n"] > 0:
        res["presence_acc"] = s["presence_ok"] / s["presence_n"]
    return res
