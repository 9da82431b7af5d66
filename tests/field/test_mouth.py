"""The mouth input: quantile calibration, the field's extra channel, old checkpoints still load."""

from __future__ import annotations

import numpy as np
import torch

from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel
from nerfhead.config import from_dict
from nerfhead.field.mouth import MouthTrack, interp


def test_interp_matches_numpy():
    rng = np.random.default_rng(0)
    xp = np.sort(rng.uniform(0, 1, 12))
    fp = rng.normal(size=12)
    x = rng.uniform(-0.5, 1.5, 200)
    got = interp(torch.from_numpy(x), torch.from_numpy(xp), torch.from_numpy(fp)).numpy()
    np.testing.assert_allclose(got, np.interp(x, xp, fp), atol=1e-12)


def test_calibration_matches_the_capture_distribution():
    rng = np.random.default_rng(1)
    scores = np.concatenate([np.zeros(400), rng.uniform(0, 1.1, 1200)])  # many closed frames: tied quantiles
    openings = np.concatenate([rng.uniform(0, 0.1, 400), rng.gamma(4.0, 0.3, 1200)])
    track = MouthTrack()
    track.calibrate(scores, openings)
    mapped = track(torch.from_numpy(scores).float()).numpy()
    # the mapped scores take the openings' distribution, in the scores' order
    for q in (0.5, 0.75, 0.9):
        assert abs(np.quantile(mapped, q) - np.quantile(openings, q)) < 0.05 * np.quantile(openings, 0.9)
    order = np.argsort(scores, kind="stable")
    assert (np.diff(mapped[order]) >= -1e-6).all()
    closed = float(track(torch.zeros(1)))
    assert closed < 0.1  # articulation 0 -> a closed mouth (the mean of the tied low quantiles)
    copy = MouthTrack()
    copy.load_state_dict(track.state_dict())
    assert torch.equal(copy(torch.linspace(0, 1, 7)), track(torch.linspace(0, 1, 7)))


def _meta() -> ModelMeta:
    return ModelMeta(n_frames=4, feature_dim=6, window=16, aabb=[[-0.1, -0.1, -0.1], [0.1, 0.1, 0.1]],
                     feature_spec={}, image_size=[32, 32], camera={"fx": 30.0, "fy": 30.0, "cx": 16.0, "cy": 16.0})


def test_mouth_channel_reaches_the_field():
    torch.manual_seed(0)
    model = TalkingHeadModel(ModelConfig(grid_resolution=16), _meta())
    windows = torch.randn(4, 16, 6)
    frames = torch.tensor([1, 2])
    closed = model.conditions(windows, frames, torch.zeros(2), mouth=torch.zeros(2))
    wide = model.conditions(windows, frames, torch.zeros(2), mouth=torch.full((2,), 3.0))
    code = model.cfg.audio.code_dim
    assert model.mouth_dim == 1 + model.cfg.lip_code and closed.audio.shape == (2, code + model.mouth_dim)
    assert torch.equal(closed.audio[:, :code], wide.audio[:, :code]) and (wide.audio[:, code] == 3).all()
    assert (wide.audio[:, code + 1:] == 0).all()  # openings alone: the mean lip shape
    shaped = model.conditions(windows, frames, torch.zeros(2), mouth=torch.arange(10.0).reshape(2, 5))
    assert torch.equal(shaped.audio[:, code:], torch.arange(10.0).reshape(2, 5))
    pts = torch.rand(64, 3) * 0.2 - 0.1
    sig_closed = model.field.density(pts, closed.audio[:1].expand(64, -1), closed.eye[:1].expand(64, -1))
    sig_wide = model.field.density(pts, wide.audio[:1].expand(64, -1), wide.eye[:1].expand(64, -1))
    assert not torch.allclose(sig_closed, sig_wide)


def test_checkpoint_without_mouth_loads():
    torch.manual_seed(0)
    old = TalkingHeadModel(ModelConfig(grid_resolution=16, mouth=False), _meta())
    payload = old.checkpoint_fields()
    del payload["model_config"]["mouth"]  # as written before the mouth input existed
    model = TalkingHeadModel.from_checkpoint(payload)
    assert model.mouth_track is None and model.mouth_input(torch.randn(3, 16, 6), np.zeros(3)) is None
    cond = model.conditions(torch.randn(4, 16, 6), torch.tensor([0]), torch.zeros(1), mouth=torch.ones(1))
    assert cond.audio.shape == (1, model.cfg.audio.code_dim)
    new = TalkingHeadModel(ModelConfig(grid_resolution=16), _meta())
    again = TalkingHeadModel.from_checkpoint(new.checkpoint_fields())
    assert again.mouth_track is not None and again.lip_predictor is not None and again.mouth_dim == 5
    assert again.cfg.mouth_prior == "rule"
    direct = new.checkpoint_fields()  # as written before the predictor corrected the rule
    del direct["model_config"]["mouth_prior"]
    assert TalkingHeadModel.from_checkpoint(direct).cfg.mouth_prior == "none"
    before = new.checkpoint_fields()  # as written before the lip code and its predictor
    for key in ("lip_code", "mouth_from"):
        del before["model_config"][key]
    cfg = before["model_config"]
    old_scalar = TalkingHeadModel(from_dict(ModelConfig, {**cfg, "lip_code": 0, "mouth_from": "rule"}), _meta())
    before["model"] = old_scalar.state_dict()
    rule = TalkingHeadModel.from_checkpoint(before)
    assert rule.lip_predictor is None and rule.mouth_dim == 1
    assert rule.mouth_input(torch.randn(3, 16, 6), np.array([0.0, 0.5, 1.0])).shape == (3, 1)
