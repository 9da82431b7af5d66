"""Temporal stability of a rendered sequence: landmark jitter and flicker (mean frame-to-frame
change) over a region: the background here, the portrait blend's lower face in the self-driven
scores (:mod:`nerfhead.eval.selfdriven`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def mean_change(frames: Sequence[np.ndarray], regions: Sequence[np.ndarray]) -> float:
    """Mean absolute change (0-255 scale) between consecutive frames on the pixels that both
    frames' ``regions`` ((H, W) bool, one per frame) hold: the mean over the pairs of each pair's
    mean. NaN when no pair shares a pixel."""
    changes = []
    for a, b, ma, mb in zip(frames, frames[1:], regions, regions[1:]):
        m = ma & mb
        if m.any():
            changes.append(float(np.abs(a.astype(np.int16) - b.astype(np.int16))[m].mean()))
    return float(np.mean(changes)) if changes else float("nan")


def temporal_stability(frames: list[np.ndarray], landmarks: np.ndarray, background: list[np.ndarray],
                       size: int) -> dict[str, float]:
    """Landmark jitter: mean second difference of the 478 landmarks between consecutive frames
    (px at 512; smooth motion costs little, flicker a lot). Background flicker: mean absolute
    change between consecutive frames (/255) on pixels that are background in both."""
    lm = np.asarray(landmarks, np.float64)[..., :2] * (512.0 / size)
    acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]
    jitter = float(np.nanmean(np.linalg.norm(acc, axis=-1))) if len(lm) > 2 else float("nan")
    return {"landmark_jitter_px": jitter, "background_flicker": mean_change(frames, background)}
