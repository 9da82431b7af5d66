"""Training really learns on the shipped sample, and a resumed run continues exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerfhead.dataset import Identity
from nerfhead.train.data import load_training_data
from nerfhead.train.preview import head_psnr
from nerfhead.train.run import TrainConfig, checkpoint_path, load_model, new_model, train_stage

STEPS = 400


@pytest.fixture(scope="module")
def trained(sample_identity, tmp_path_factory):
    """The sample identity trained for STEPS steps of the quick preset (checkpoints kept aside)."""
    data = load_training_data(sample_identity)
    ident = Identity("run", tmp_path_factory.mktemp("trained"))  # where the checkpoints go
    cfg = TrainConfig.load("quick")
    torch.manual_seed(0)
    untrained = new_model(cfg, data)
    report = train_stage("head", ident, cfg, data, until_step=STEPS)
    return ident, data, cfg, untrained, report


def test_training_learns(trained):
    ident, data, cfg, untrained, report = trained
    assert report.result.step == STEPS and checkpoint_path(ident, "head").is_file()
    model = load_model(ident)
    frames = data.test_frames[:: max(1, len(data.test_frames) // 3)][:3]
    before = head_psnr(untrained, data, frames, cfg.head.sampling)
    after = head_psnr(model, data, frames, cfg.head.sampling)
    assert after > before + 6.0, (before, after)
    assert report.last_metrics["psnr"] > 20.0


def test_resume_continues_at_the_same_step_with_the_same_loss(trained, tmp_path):
    ident, data, cfg, _, _ = trained
    # a second run trained straight to STEPS + 1 ...
    straight = Identity("straight", tmp_path)
    s = train_stage("head", straight, cfg, data, until_step=STEPS + 1)
    # ... and the first one, stopped at STEPS and resumed for one more step
    r = train_stage("head", ident, cfg, data, until_step=STEPS + 1)
    assert r.result.step == STEPS + 1 and s.result.step == STEPS + 1
    assert np.isclose(r.last_metrics["loss"], s.last_metrics["loss"], rtol=1e-5, atol=0), (r.last_metrics, s.last_metrics)
