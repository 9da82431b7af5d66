"""Render-time motion: ping-pong poses, smoothing without lag, natural blinks."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from nerfhead.render.motion import blink_track, pingpong, smooth_c2w


def test_pingpong_walks_valid_frames_and_turns():
    valid = np.ones(10, bool)
    valid[4] = False
    idx = pingpong(valid, 40, start=6)
    assert idx[0] == 6 and 4 not in idx
    steps = np.diff(idx)
    assert set(np.abs(steps)) <= {1, 2}  # never a jump (2 = across the faceless frame)
    assert idx.max() == 9 and idx.min() == 0


def test_smoothing_has_no_lag_and_removes_jitter():
    n = 200
    t = np.arange(n)
    yaw = 10 * np.sin(2 * np.pi * t / 100)
    rng = np.random.default_rng(0)
    noisy = yaw + rng.normal(0, 0.5, n)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.from_euler("y", noisy[:, None], degrees=True).as_matrix()
    c2w[:, :3, 3] = np.stack([np.sin(2 * np.pi * t / 100), np.zeros(n), np.full(n, -0.5)], 1)
    out = smooth_c2w(c2w, sigma=2.0)
    got = Rotation.from_matrix(out[:, :3, :3]).as_euler("yxz", degrees=True)[:, 0]
    # jitter removed
    assert np.std(got[10:-10] - yaw[10:-10]) < 0.5 * np.std(noisy[10:-10] - yaw[10:-10])
    # zero lag: the best alignment with the clean signal is at shift 0
    errs = [np.mean((np.roll(got, s)[20:-20] - yaw[20:-20]) ** 2) for s in range(-3, 4)]
    assert int(np.argmin(errs)) == 3
    np.testing.assert_allclose(np.linalg.det(out[:, :3, :3]), 1.0, atol=1e-9)


def test_blinks_at_natural_rate():
    fps = 25
    b = blink_track(60 * fps * 5, fps=fps, seed=1)  # five minutes
    onsets = np.flatnonzero((b[1:] > 0.5) & (b[:-1] <= 0.5))
    per_minute = len(onsets) / 5
    assert 10 <= per_minute <= 25
    assert np.diff(onsets).min() >= 1.5 * fps - 1
    assert b.max() > 0.95 and (b == 0).mean() > 0.8  # eyes open most of the time
