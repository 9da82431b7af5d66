"""Per-video-frame windows of the 100 Hz features, as the audio network reads them.

Video frame ``i`` is at time ``i / fps``; its window holds ``size`` (16) feature frames around
feature frame ``c = i * rate / fps`` (``4 i`` at 25 fps): frames ``c - size/2 .. c + size/2 - 1``,
so ``window[size // 2]`` is the frame's own time. Frames outside the audio repeat the first or
last feature frame (edge padding). The result is a read-only strided view: no copy, so windows
for hours of audio cost no memory.

>>> import numpy as np
>>> w = frame_windows(np.arange(10, dtype=np.float32)[:, None], n_frames=3)
>>> w.shape, w[0, :, 0].tolist()[6:10], w[1, 8, 0]
((3, 16, 1), [0.0, 0.0, 0.0, 1.0], 4.0)
"""

from __future__ import annotations

import numpy as np

from nerfhead.audio.timeline import FEATURE_RATE as RATE
from nerfhead.dataset import FPS

WINDOW = 16


def frame_windows(features: np.ndarray, n_frames: int, fps: float = FPS, rate: float = RATE,
                  size: int = WINDOW) -> np.ndarray:
    """(n_frames, size, D) windows of ``features`` (T, D) centred on each video frame."""
    feats = np.asarray(features)
    if feats.ndim != 2:
        raise ValueError(f"expected (T, D) features, got shape {feats.shape}")
    if n_frames <= 0:
        return np.zeros((0, size, feats.shape[1]), feats.dtype)
    step = rate / fps
    half = size // 2
    if abs(step - round(step)) < 1e-9 and feats.shape[0] > 0:
        step = int(round(step))
        last = step * (n_frames - 1) + size - half - 1  # highest frame index any window reads
        pad_after = max(0, last - (feats.shape[0] - 1))
        padded = np.pad(feats, ((half, pad_after), (0, 0)), mode="edge")
        padded = np.ascontiguousarray(padded)
        s0, s1 = padded.strides
        return np.lib.stride_tricks.as_strided(padded, shape=(n_frames, size, feats.shape[1]),
                                               strides=(s0 * step, s0, s1), writeable=False)
    # frame rates that do not divide 100 Hz: nearest feature frame for each window centre
    centres = np.round(np.arange(n_frames) * step).astype(np.int64)
    idx = np.clip(centres[:, None] + np.arange(-half, size - half)[None], 0, max(feats.shape[0] - 1, 0))
    if feats.shape[0] == 0:
        return np.zeros((n_frames, size, feats.shape[1]), feats.dtype)
    return feats[idx]


def n_video_frames(duration: float, fps: float = FPS) -> int:
    """Video frames that cover ``duration`` seconds (as :class:`nerfhead.io.video.VideoInfo` counts)."""
    return max(1, int(round(duration * fps)))
