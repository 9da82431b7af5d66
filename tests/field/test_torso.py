"""The torso field's per-frame fast path against its plain forward."""

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
