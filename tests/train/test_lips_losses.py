"""The lips fine-tune's mouth-square losses on the shipped sample: the inner-mouth mask follows the
tracked inner lips, and each extra term adds to the loss and reaches the field's parameters."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from nerfhead.train.data import load_training_data
from nerfhead.train.head_stage import HeadStage
from nerfhead.train.run import TrainConfig, new_model


@pytest.fixture(scope="module")
def data(sample_identity):
    return load_training_data(sample_identity, "default")


def test_mouth_interior_follows_the_inner_lips(data):
    frames = np.asarray(data.train_frames)
    opening = data.mouth.numpy()[frames]
    wide, shut = int(frames[np.argmax(opening)]), int(frames[np.argmin(opening)])
    size = int(round(0.14 * data.store.width))
    areas = {}
    for i in (wide, shut):
        x0, y0, x1, y1 = data.mouth_box(i, size)
        mask = data.mouth_interior(i, x0, y0, x1, y1)
        assert mask.shape == (y1 - y0, x1 - x0)
        areas[i] = int(mask.sum())
        if mask.any():  # inside the tracked lips' box
            ys, xs = np.nonzero(mask)
            lips = data.lip_points[i] - (x0, y0)
            assert xs.min() >= lips[:, 0].min() - 3 and xs.max() <= lips[:, 0].max() + 3
            assert ys.min() >= lips[:, 1].min() - 3 and ys.max() <= lips[:, 1].max() + 3
    assert areas[wide] > 4 * max(areas[shut], 1), areas  # an open mouth has an inside, closed lips hardly


def _first_square_step(data, frame: int, cfg, extra: dict) -> tuple[HeadStage, dict]:
    """A fresh model's lips stage (on the mouth square of ``frame`` only) and its first step's metrics."""
    torch.manual_seed(0)
    model = new_model(cfg, data)
    stage = HeadStage(model, replace(data, train_frames=[frame]),
                      replace(cfg.lips, sampling=cfg.head.sampling, **extra))
    return stage, stage.step(0)  # step 0 is a square step (lips_every 2)


TERMS = ("lips_perceptual_weight", "lips_gradient_weight", "lips_inner_weight")


@pytest.mark.parametrize("term", TERMS)
def test_square_terms_add_to_the_loss_and_have_gradients(data, term):
    cfg = TrainConfig.load("quick")
    # only the frame with the widest tracked mouth: the inner-mouth term has pixels to weigh
    frames = np.asarray(data.train_frames)
    wide = int(frames[np.argmax(data.mouth.numpy()[frames])])
    off = {t: 0.0 for t in TERMS}
    _, plain = _first_square_step(data, wide, cfg, off)
    stage, weighted = _first_square_step(data, wide, cfg, {**off, term: 1.0})
    assert weighted["mse"] == pytest.approx(plain["mse"], rel=1e-5)  # the same square, the same render
    assert weighted["loss"] > plain["loss"] + 1e-6, (term, plain, weighted)
    # the term alone, on the real square and a blurred copy of it: zero at the real one, and a
    # gradient that pulls the render towards it
    batch, square = stage._batch(0)
    _, x0, y0, x1, y1 = square
    real = batch.target.reshape(y1 - y0, x1 - x0, 3)
    soft = torch.from_numpy(cv2.GaussianBlur(real.numpy(), (0, 0), 2.0)).reshape(-1, 3).requires_grad_(True)
    assert stage.square_loss(batch.target, batch.target, square).item() == pytest.approx(0.0, abs=1e-6)
    loss = stage.square_loss(soft, batch.target, square)
    loss.backward()
    assert loss.item() > 0 and soft.grad.abs().sum() > 0
