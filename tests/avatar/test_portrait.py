"""Portrait compositing: the capture's own frames with only the lower face rendered; everything
outside the blend mask stays the real frame, after H.264 too."""

from __future__ import annotations

import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.avatar.portrait import colour_matched, composite, lower_face_mask, skin_ring
from nerfhead.dataset import Identity
from nerfhead.io.images import read_rgb
from nerfhead.io.video import iter_frames
from nerfhead.quality import psnr
from nerfhead.render.driven import RenderOptions, render_video
from nerfhead.render.poses import capture_frames


def test_mask_covers_the_lower_face_and_nothing_above_the_nose(sample_identity):
    tracks = sample_identity.tracks()
    shape = read_rgb(sample_identity.frame_path(0)).shape
    for i in (0, 250, 499):
        lms = tracks["landmarks"][i]
        mask = lower_face_mask(lms, shape)
        assert mask.min() >= 0 and mask.max() <= 1
        x, y = np.round(lms[list(ids.LIPS), :2].mean(0)).astype(int)
        assert mask[y, x] > 0.99  # the mouth is rendered whole
        for eye in ids.RIGHT_EYE_CORNERS + ids.LEFT_EYE_CORNERS + (ids.FACE_TOP,):
            ex, ey = np.round(lms[eye, :2]).astype(int)
            assert mask[ey, ex] == 0
        ring = skin_ring(mask, lms)
        assert ring.any() and not (ring & (mask > 0)).any()


def test_composite_and_colour_match():
    real = np.full((8, 8, 3), 100, np.uint8)
    rendered = np.full((8, 8, 3), 90, np.uint8)
    ring = np.zeros((8, 8), bool)
    ring[0] = True
    assert (colour_matched(rendered, real, ring) == 100).all()
    mask = np.zeros((8, 8), np.float32)
    mask[4:, 4:] = 1.0
    out = composite(real, rendered, mask)
    assert (out[:4] == 100).all() and (out[4:, 4:] == 90).all()


def test_portrait_render_keeps_the_real_frame_outside_the_mask(trained_sample, sample_capture, tmp_path):
    ident = Identity.at(trained_sample.name, trained_sample.root.parent)
    out = tmp_path / "portrait.mp4"
    opts = RenderOptions(composite="portrait", pose_start=100, duration=1.0)
    r = render_video(ident.name, out, audio=sample_capture, root=ident.root.parent, opts=opts)
    assert r.frames == 25
    idx = capture_frames(ident, 25, 100)
    tracks = ident.tracks()
    shape = read_rgb(ident.frame_path(0)).shape
    scores, inside = [], []
    for j, frame in enumerate(iter_frames(out)):
        real = read_rgb(ident.frame_path(int(idx[j])))
        mask = lower_face_mask(tracks["landmarks"][idx[j]], shape)
        scores.append(psnr(real[mask == 0], frame[mask == 0]))
        inside.append(psnr(real[mask > 0.5], frame[mask > 0.5]))
    assert len(scores) == 25
    assert min(scores) >= 40.0, scores  # H.264 of the real frames costs about this much
    assert max(inside) < min(scores) - 5  # and the lower face is the avatar's, not the real one


def test_render_defaults_to_portrait_and_to_full_where_only_full_can_render(trained_sample, sample_capture, tmp_path):
    """`nerfhead render` without --composite keeps the capture's real frames (their upper half is
    the capture frame replayed); --pose-from and --scale fall back to full mode."""
    from typer.testing import CliRunner

    from nerfhead.cli import app
    from nerfhead.render.driven import default_composite

    assert default_composite(None, 1.0) == "portrait"
    assert default_composite("nodding.mp4", 1.0) == "full" and default_composite(None, 0.5) == "full"
    ident = Identity.at(trained_sample.name, trained_sample.root.parent)
    out = tmp_path / "default.mp4"
    res = CliRunner().invoke(app, ["render", ident.name, "--audio", str(sample_capture), "--duration", "0.4",
                                   "-o", str(out), "--root", str(ident.root.parent)])
    assert res.exit_code == 0, res.output
    idx = capture_frames(ident, 10, 0)
    for j, frame in enumerate(iter_frames(out)):
        real = read_rgb(ident.frame_path(int(idx[j])))
        assert psnr(real[:200], frame[:200]) >= 40.0  # hair, eyes, background: the real frame
