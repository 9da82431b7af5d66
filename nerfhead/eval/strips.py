"""Image strips a person compares at a glance: mouth crops of real and generated frames."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.io.images import caption


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, size: int = 160, zoom: float = 2.2) -> np.ndarray:
    """(size, size, 3) uint8: a square around the lips of ``landmarks`` (478, 2+), whose side is
    ``zoom`` times the mouth width, resized to ``size``. Without lips: the frame's lower middle."""
    h, w = frame.shape[:2]
    lips = np.asarray(landmarks, np.float64)[list(ids.LIPS), :2]
    if np.isfinite(lips).all():
        cx, cy = lips.mean(0)
        side = zoom * max(np.ptp(lips[:, 0]), 8.0)
    else:
        cx, cy, side = w / 2, h * 0.65, w / 4
    half = side / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def mouth_strip(rows: Sequence[Sequence[np.ndarray]], landmarks: Sequence[np.ndarray], labels: Sequence[str],
                size: int = 160) -> np.ndarray:
    """One row of mouth crops per image set (e.g. real / ours / silent), one column per frame; every
    row is cropped where the *first* row's landmarks put the lips, so rows compare pixel for pixel."""
    out = []
    for row, label in zip(rows, labels):
        crops = [mouth_crop(img, lms, size) for img, lms in zip(row, landmarks)]
        strip = np.concatenate(crops, 1)
        out.append(caption(strip, label, 1))
    return np.concatenate(out, 0)
