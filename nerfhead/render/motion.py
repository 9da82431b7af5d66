"""Head motion and blinks for new audio.

- Poses replay the capture's own pose track forwards and backwards (ping-pong) from a
  chosen frame, skipping frames without a face; a zero-lag Gaussian smooths the turns.
- Blinks are drawn as a renewal process at a natural rate (about 17 a minute, never closer
  than 1.5 s), each a fast close and slower open of about 0.3 s.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from nerfhead.dataset import FPS


def pingpong(valid: np.ndarray, n_out: int, start: int = 0) -> np.ndarray:
    """(n_out,) capture frame indices walking forwards then backwards over the valid frames.

    >>> pingpong(np.array([True, True, False, True]), 7).tolist()
    [0, 1, 3, 1, 0, 1, 3]
    """
    frames = np.flatnonzero(valid)
    if len(frames) == 0:
        raise ValueError("no frames with a face to take poses from")
    if len(frames) == 1:
        return np.full(n_out, frames[0])
    pos = int(np.searchsorted(frames, start).clip(0, len(frames) - 1))
    cycle = np.concatenate([np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)])
    return frames[cycle[(pos + np.arange(n_out)) % len(cycle)]]


def smooth_c2w(c2w: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-lag Gaussian smoothing (``sigma`` in frames) of (M, 4, 4) camera poses."""
    if sigma <= 0 or len(c2w) < 3:
        return c2w.copy()
    rot = Rotation.from_matrix(c2w[:, :3, :3])
    ref = rot[len(rot) // 2]
    rel = (ref.inv() * rot).as_rotvec()  # small angles around a reference: safe to average
    rel = gaussian_filter1d(rel, sigma, axis=0, mode="nearest")
    out = c2w.copy()
    out[:, :3, :3] = (ref * Rotation.from_rotvec(rel)).as_matrix()
    out[:, :3, 3] = gaussian_filter1d(c2w[:, :3, 3], sigma, axis=0, mode="nearest")
    return out


def blink_track(n: int, fps: float = FPS, per_minute: float = 17.0, min_gap_s: float = 1.5,
                duration_s: float = 0.3, strength: float = 1.0, seed: int = 0) -> np.ndarray:
    """(n,) blink strength per frame (0 open, 1 closed) with natural timing."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    mean_gap = 60.0 / per_minute
    t = rng.uniform(0.3, mean_gap)  # first blink
    while t * fps < n:
        start = t * fps
        length = duration_s * fps
        k = np.arange(int(start), min(n, int(np.ceil(start + length)) + 1))
        phase = (k - start) / length  # 0..1: close in the first third, open in the rest
        shape = np.where(phase < 1 / 3, phase * 3, np.clip((1 - phase) * 1.5, 0, 1))
        out[k] = np.maximum(out[k], strength * np.clip(shape, 0, 1))
        t += min_gap_s + rng.exponential(max(mean_gap - min_gap_s, 0.1))
    return out
