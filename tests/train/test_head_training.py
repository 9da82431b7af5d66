"""Training really learns on the shipped sample, a resumed run continues exactly, and the torso
stage (head frozen) improves the whole composited frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerfhead.dataset import BACKGROUND, TORSO, Identity
from nerfhead.errors import IdentityError
from nerfhead.train.data import load_training_data
from nerfhead.train.preview import head_psnr, write_preview
from nerfhead.avatar.checkpoint import load_checkpoint, save_checkpoint
from nerfhead.avatar.load import checkpoint_path, load_avatar
from nerfhead.avatar.frame import torso_alpha
from nerfhead.train.run import TrainConfig, new_model, resume_stage, stage_payload, train_stage

STEPS = 400


@pytest.fixture(scope="module")
def trained(sample_identity, tmp_path_factory):
    """The sample identity trained for STEPS steps of the quick preset (checkpoints kept aside)."""
    cfg = TrainConfig.load("quick")
    data = load_training_data(sample_identity, cfg.features)
    ident = Identity("run", tmp_path_factory.mktemp("trained"))  # where the checkpoints go
    cfg.head.steps = STEPS + 1  # the resume test below finishes the head stage
    cfg.lips.steps = 40
    cfg.torso.steps = 200
    torch.manual_seed(0)
    untrained = new_model(cfg, data)
    report = train_stage("head", ident, cfg, data, until_step=STEPS)
    return ident, data, cfg, untrained, report


def test_training_learns(trained):
    ident, data, cfg, untrained, report = trained
    assert report.result.step == STEPS and checkpoint_path(ident, "head").is_file()
    model = load_avatar(ident, checkpoint_path(ident, "head")).model
    frames = data.test_frames[:: max(1, len(data.test_frames) // 3)][:3]
    before = head_psnr(untrained, data, frames, cfg.head.sampling)
    after = head_psnr(model, data, frames, cfg.head.sampling)
    assert after > before + 6.0, (before, after)
    assert report.last_metrics["psnr"] > 20.0


def test_resume_continues_at_the_same_step_with_the_same_loss(trained, tmp_path):
    ident, data, cfg, _, _ = trained
    # the stage stopped at STEPS; a later run picks it up there
    r = train_stage("head", ident, cfg, data, until_step=STEPS + 1)
    assert r.result.step == STEPS + 1 and r.result.finished
    # and a resumed stage computes exactly the step the uninterrupted run computes next
    model, stage, steps, step = resume_stage("head", load_checkpoint(checkpoint_path(ident, "head")), data, cfg)
    for _ in range(3):
        stage.step(step)
        step += 1
    save_checkpoint(tmp_path / "mid.pt", stage_payload("head", model, stage, step, steps, cfg, data, {}))
    live = stage.step(step)
    _, resumed_stage, _, resumed_step = resume_stage("head", load_checkpoint(tmp_path / "mid.pt"), data, cfg)
    assert resumed_step == step
    resumed = resumed_stage.step(resumed_step)
    assert resumed["loss"] == live["loss"] and resumed["samples_per_ray"] == live["samples_per_ray"], (live, resumed)


def test_torso_stage_improves_the_composited_frame(trained):
    ident, data, cfg, _, _ = trained
    train_stage("head", ident, cfg, data)  # finish the head (no-op if the resume test did)
    with pytest.raises(IdentityError, match="lips stage"):
        train_stage("torso", ident, cfg, data)  # stages run in order
    lips = train_stage("lips", ident, cfg, data)
    assert lips.result.finished and lips.last_metrics["psnr"] > 20.0
    head_only = load_avatar(ident, checkpoint_path(ident, "lips"))
    frames = data.test_frames[:2]
    before = np.mean(write_preview(head_only, data, ident.root / "before.png", n=2, torso=True))
    cfg.model.torso.hidden = 48  # the torso field is built from this config's model.torso at its stage's start
    report = train_stage("torso", ident, cfg, data)
    assert report.result.finished and checkpoint_path(ident, "torso").is_file()
    avatar = load_avatar(ident, checkpoint_path(ident, "torso"))
    model = avatar.model
    assert model.cfg.torso.hidden == 48 and model.torso.color[0].out_features == 48
    # the head is frozen in the torso stage
    for (name, a), b in zip(head_only.model.field.state_dict().items(), model.field.state_dict().values()):
        assert torch.equal(a, b), name
    after = np.mean(write_preview(avatar, data, ident.root / "after.png", n=2))
    assert after > before + 2.0, (before, after)
    # the torso's alpha follows the segmentation on a held-out frame: opaque on the torso (a white
    # shirt over a darker plate renders white, not grey) and clear on all of the background
    f = int(frames[0])
    with torch.no_grad():
        alpha = torso_alpha(model, data.rotation[f], data.translation[f]).numpy()
    labels = data.store.labels[f]
    assert alpha[labels == TORSO].mean() > 0.9, alpha[labels == TORSO].mean()
    assert alpha[labels == BACKGROUND].mean() < 0.1, alpha[labels == BACKGROUND].mean()

