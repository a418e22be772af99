"""Loss terms and metrics on hand-made masks."""

from __future__ import annotations

import pytest
import torch

from tmatch.train.losses import MatchingLoss, batch_metrics, dice_loss, summarize


def _target():
    t = torch.zeros(2, 1, 16, 16)
    t[0, :, 4:12, 4:12] = 1  # pair 0 positive, pair 1 negative (empty)
    return t, torch.tensor([1.0, 0.0])


def test_dice_perfect_wrong_and_modes():
    t, present = _target()
    perfect = (t * 2 - 1) * 30
    assert float(dice_loss(perfect, t)) < 1e-3
    assert float(dice_loss(-perfect, t)) > 0.99
    assert float(dice_loss(perfect, t, "positives", present)) < 1e-3
    assert float(dice_loss(perfect, t * 0, "positives", torch.zeros(2))) == 0.0
    with pytest.raises(ValueError):
        dice_loss(perfect, t, "positives")


def test_matching_loss_terms_and_gradients():
    t, present = _target()
    logits = torch.zeros(2, 1, 16, 16, requires_grad=True)
    pres = torch.zeros(2, requires_grad=True)
    loss = MatchingLoss(dice=1, bce=1, presence=0.5, dice_mode="positives")
    parts = loss({"mask": logits, "presence": pres}, t, present)
    expected = parts.dice + parts.bce + 0.5 * parts.presence
    assert torch.isclose(parts.total, expected)
    assert abs(float(parts.presence) - 0.6931) < 1e-3
    parts.total.backward()
    assert logits.grad.abs().sum() > 0 and pres.grad.abs().sum() > 0
    # Gradient descent on the mask alone moves it toward the truth.
    assert float(logits.grad[0, 0, 8, 8]) < 0 < float(logits.grad[1, 0, 8, 8])


def test_presence_weight_zero_keeps_graph():
    t, present = _target()
    pres = torch.zeros(2, requires_grad=True)
    parts = MatchingLoss(dice=1)({"mask": torch.zeros(2, 1, 16, 16), "presence": pres}, t, present)
    parts.total.backward()
    assert pres.grad is not None  # every parameter used: DDP needs no find_unused_parameters


def test_metrics_iou_success_pooled_presence():
    t, present = _target()
    half = t.clone()
    half[0, :, 4:8, 4:12] = 0  # predict half of the box: IoU 0.5
    out = {"mask": (half * 2 - 1) * 10, "presence": torch.tensor([5.0, -5.0])}
    s = summarize(batch_metrics(out, t, present, torch.tensor(0.3)))
    assert s["iou"] == pytest.approx((0.5 + 1.0) / 2)  # the negative: both empty -> 1
    assert s["success"] == 1.0 and s["presence_acc"] == 1.0
    assert s["iou_pooled"] == pytest.approx(0.5, abs=1e-6)
    assert s["loss"] == pytest.approx(0.3)
    # A presence call of "absent" empties the mask; no presence output: no presence_acc.
    out2 = {"mask": (t * 2 - 1) * 10, "presence": torch.tensor([-5.0, -5.0])}
    assert summarize(batch_metrics(out2, t, present))["iou"] == pytest.approx(0.5)
    s3 = summarize(batch_metrics({"mask": (t * 2 - 1) * 10, "presence": None}, t, present))
    assert s3["iou"] == 1.0 and "presence_acc" not in s3
    # Sums add up over batches (and processes).
    a = batch_metrics(out, t, present)
    assert summarize(a + a)["iou"] == pytest.approx(s["iou"])
