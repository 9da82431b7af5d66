"""The torso field's per-frame fast path against its plain forward; its settings in checkpoints."""

import torch

from nerfhead.field.torso import TorsoField, TorsoFieldConfig


def _field() -> TorsoField:
    torch.manual_seed(0)
    f = TorsoField(TorsoFieldConfig(), n_frames=5, image_size=(64, 48))
    with torch.no_grad():  # untrained fields start with zero deformation and codes: make every part count
        for p in f.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return f


def test_for_frame_equals_forward():
    f = _field()
    xy = torch.rand(1000, 2)
    pose = torch.rand(1, 6)
    code = f.codes.weight[3:4]
    with torch.no_grad():
        rgb0, alpha0 = f(xy, pose.expand(len(xy), -1), code.expand(len(xy), -1))
        rgb1, alpha1 = f.for_frame(pose, code)(xy)
    assert rgb1.shape == (1000, 3) and alpha1.shape == (1000,)
    torch.testing.assert_close(rgb1, rgb0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha1, alpha0, atol=1e-5, rtol=1e-5)
    assert alpha0.std() > 1e-3  # not a trivially constant field


def test_for_frame_depends_on_pose_and_code():
    f = _field()
    xy = torch.rand(200, 2)
    with torch.no_grad():
        a = f.for_frame(torch.rand(1, 6), f.codes.weight[0:1])(xy)[0]
        b = f.for_frame(torch.rand(1, 6), f.codes.weight[0:1])(xy)[0]
        c = f.for_frame(torch.rand(1, 6), f.codes.weight[1:2])(xy)[0]
    assert (a - b).abs().max() > 1e-4 and (b - c).abs().max() > 1e-4


def test_checkpoint_before_pose_frequencies_loads_and_use_torso_rebuilds():
    """A checkpoint written before the anchors had their own frequency count used ``frequencies``
    for them; ``use_torso`` swaps in a new, untrained torso field with other settings."""
    from dataclasses import replace

    from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel

    meta = ModelMeta(n_frames=4, feature_dim=6, window=16, aabb=[[-0.1, -0.1, -0.1], [0.1, 0.1, 0.1]],
                     feature_spec={}, image_size=[32, 32], camera={"fx": 30.0, "fy": 30.0, "cx": 16.0, "cy": 16.0})
    torch.manual_seed(0)
    old = TalkingHeadModel(ModelConfig(grid_resolution=16, torso=TorsoFieldConfig(frequencies=3, pose_frequencies=3)),
                           meta)
    payload = old.checkpoint_fields()
    del payload["model_config"]["torso"]["pose_frequencies"]
    model = TalkingHeadModel.from_checkpoint(payload)
    assert model.cfg.torso.pose_frequencies == 3
    for a, b in zip(old.torso.state_dict().values(), model.torso.state_dict().values()):
        assert torch.equal(a, b)
    model.use_torso(replace(model.cfg.torso, pose_frequencies=5, hidden=32))
    assert model.cfg.torso.pose_frequencies == 5 and model.torso.color[0].out_features == 32
    again = TalkingHeadModel.from_checkpoint(model.checkpoint_fields())
    assert again.cfg.torso.pose_frequencies == 5
