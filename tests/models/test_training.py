"""A few optimiser steps on a tiny batch of real photo pairs lower the loss of both networks
(the full trainer lives in tmatch.train; this only checks the models can learn)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tmatch import geometry
from tmatch.models import ModelConfig, build_model
from tmatch.models.inputs import prepare_inputs, prepare_target


def _pairs(cfg: ModelConfig, photos: list[np.ndarray]):
    images, queries, targets, present = [], [], [], []
    for i, photo in enumerate(photos):
        img = cv2.resize(photo, (160, 128), interpolation=cv2.INTER_AREA)
        x, y, w, h = 20 + 10 * i, 30, 60, 44
        tpl = img[y:y + h, x:x + w]
        absent = i == len(photos) - 1  # last pair: template from another photo
        if absent:
            tpl = cv2.resize(photos[0], (160, 128), interpolation=cv2.INTER_AREA)[70:114, 90:150]
        mask = np.zeros(img.shape[:2], bool) if absent else \
            geometry.mask_from_polygon(geometry.rect_polygon(x, y, w, h), img.shape[:2])
        inp = prepare_inputs(cfg, tpl, img)
        images.append(inp.image)
        queries.append(inp.query)
        targets.append(prepare_target(cfg, mask, inp))
        present.append(0.0 if absent else 1.0)
    return torch.stack(images), torch.stack(queries), torch.stack(targets), torch.tensor(present)


def _loss(out, target, present):
    loss = F.binary_cross_entropy_with_logits(out["mask"], target)
    prob = out["mask"].sigmoid()
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    loss = loss + dice
    if out["presence"] is not None:
        loss = loss + F.binary_cross_entropy_with_logits(out["presence"], present)
    return loss


@pytest.mark.parametrize("cfg", [
    ModelConfig(arch="neural-seg", input_size=96, template_size=48),
    ModelConfig(arch="dual-unet", input_size=96, decoder_channels=(64, 32, 32, 16, 16)),
], ids=["neural", "dual-unet"])
def test_feature_few_steps_lower_the_loss(cfg, astronaut, coffee, chelsea, rocket):
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = _pairs(cfg, [astronaut, coffee, chelsea, rocket])
    image, query, target, present = batch
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss = _loss(model(image, query), target, present)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * losses[0], losses
