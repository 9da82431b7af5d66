"""Per-video-frame windows of the 100 Hz features, as the audio network reads them.

Video frame ``i`` is at time ``i / fps``; its window holds ``size`` (16) feature frames around
feature frame ``c = round(i * rate / fps)`` (``4 i`` at 25 fps): frames ``c - size/2 .. c + size/2 - 1``,
so ``window[size // 2]`` is the frame's own time. Frames outside the audio repeat the first or
last feature frame (edge padding). :class:`FrameWindows` builds the windows a caller indexes
and nothing else: the features are read (from memory, or from a
:class:`~nerfhead.audio.featurefile.FeatureFile` on disk) only for the frames asked, so windows
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


class FrameWindows:
    """(n_frames, size, D) windows of ``features`` (an array, or anything with ``shape``,
    ``dtype`` and ``rows(lo, hi)``), built on indexing: ``w[a:b]``, ``w[frames]``, ``w[i, 8]``,
    ``np.asarray(w)``."""

    def __init__(self, features, n_frames: int, fps: float = FPS, rate: float = RATE, size: int = WINDOW) -> None:
        if len(features.shape) != 2:
            raise ValueError(f"expected (T, D) features, got shape {tuple(features.shape)}")
        self.features = features
        self.n_frames = max(0, int(n_frames))
        self.step = rate / fps
        self.size = int(size)
        self.dtype = np.dtype(getattr(features, "dtype", np.float32))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n_frames, self.size, int(self.features.shape[1])

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        frames = np.arange(self.n_frames)[key]
        out = self._gather(np.atleast_1d(frames))
        if np.ndim(frames) == 0:
            return out[0][rest] if rest else out[0]
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _gather(self, frames: np.ndarray) -> np.ndarray:
        t, d = self.features.shape
        if len(frames) == 0 or t == 0:
            return np.zeros((len(frames), self.size, d), self.dtype)
        centres = np.round(frames.astype(np.float64) * self.step).astype(np.int64)
        idx = np.clip(centres[:, None] + np.arange(-(self.size // 2), self.size - self.size // 2)[None], 0, t - 1)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        if hasattr(self.features, "rows"):
            block = self.features.rows(lo, hi)
        else:
            block = np.asarray(self.features[lo:hi])
        return block[idx - lo]


def frame_windows(features, n_frames: int, fps: float = FPS, rate: float = RATE,
                  size: int = WINDOW) -> FrameWindows:
    """(n_frames, size, D) windows of ``features`` (T, D) centred on each video frame."""
    return FrameWindows(features, n_frames, fps=fps, rate=rate, size=size)


def n_video_frames(duration: float, fps: float = FPS) -> int:
    """Video frames that cover ``duration`` seconds (as :class:`nerfhead.io.video.VideoInfo` counts)."""
    return max(1, int(round(duration * fps)))
