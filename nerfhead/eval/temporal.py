"""Temporal stability of a rendered sequence: landmark jitter and background flicker."""

from __future__ import annotations

import numpy as np


def temporal_stability(frames: list[np.ndarray], landmarks: np.ndarray, background: list[np.ndarray],
                       size: int) -> dict[str, float]:
    """Landmark jitter: mean second difference of the 478 landmarks between consecutive frames
    (px at 512; smooth motion costs little, flicker a lot). Background flicker: mean absolute
    change between consecutive frames (/255) on pixels that are background in both."""
    lm = np.asarray(landmarks, np.float64)[..., :2] * (512.0 / size)
    acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]
    jitter = float(np.nanmean(np.linalg.norm(acc, axis=-1))) if len(lm) > 2 else float("nan")
    flick = []
    for a, b, ma, mb in zip(frames, frames[1:], background, background[1:]):
        m = ma & mb
        if m.any():
            flick.append(float(np.abs(a.astype(np.int16) - b.astype(np.int16))[m].mean()))
    return {"landmark_jitter_px": jitter, "background_flicker": float(np.mean(flick)) if flick else float("nan")}
