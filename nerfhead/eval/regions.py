"""Where a frame's error is: the frame split into face, hair, neck and collar, torso and background
by the real frame's label mask and landmarks, so that a seam under the chin or a torso of the wrong
colour shows in every report (docs/EVALUATION.md).

- face: the convex hull of the 478 landmarks;
- hair: the head label outside the face;
- neck and collar: below the chin, ``NECK_DEPTH`` face heights deep, as wide as the jaw plus
  ``NECK_WIDEN`` of its width on each side (outside the face), whatever its labels: the seam
  between head and torso field and the collar lie there;
- torso and background: the rest of those labels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.capture.segment import face_hull
from nerfhead.dataset import BACKGROUND, HEAD, TORSO
from nerfhead.quality import psnr

REGIONS = ("face", "hair", "neck_collar", "torso", "background")
NONE = 255
NECK_DEPTH = 0.5  # of the face height (forehead top to chin)
NECK_WIDEN = 0.25  # of the jaw's width, on each side


def frame_regions(labels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(H, W) uint8: the index in :data:`REGIONS` of each pixel of a real frame with label mask
    ``labels`` (H, W) and pixel landmarks ``landmarks`` (478, 2+)."""
    h, w = labels.shape
    out = np.full((h, w), NONE, np.uint8)
    out[labels == BACKGROUND] = REGIONS.index("background")
    out[labels == TORSO] = REGIONS.index("torso")
    out[labels == HEAD] = REGIONS.index("hair")
    pts = np.asarray(landmarks, np.float64)[:, :2]
    chin = pts[ids.CHIN]
    height = float(np.linalg.norm(pts[ids.FACE_TOP] - chin))
    jaw = pts[list(ids.JAW)]
    x0, x1 = jaw[:, 0].min(), jaw[:, 0].max()
    widen = NECK_WIDEN * (x1 - x0)
    r0, r1 = int(np.clip(np.floor(chin[1]), 0, h)), int(np.clip(np.ceil(chin[1] + NECK_DEPTH * height), 0, h))
    c0, c1 = int(np.clip(np.floor(x0 - widen), 0, w)), int(np.clip(np.ceil(x1 + widen), 0, w))
    out[r0:r1, c0:c1] = REGIONS.index("neck_collar")
    out[face_hull(pts, (h, w))] = REGIONS.index("face")
    return out


def region_psnr(real: np.ndarray, pred: np.ndarray, regions: np.ndarray) -> dict[str, float]:
    """PSNR of ``pred`` against ``real`` (H, W, 3) on each region of ``regions`` (NaN where empty)."""
    out = {}
    for k, name in enumerate(REGIONS):
        where = regions == k
        out[name] = psnr(real, pred, where) if where.any() else float("nan")
    return out


def mean_error_map(reals: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W) float32: the mean absolute error (0-255, mean over RGB) of each pixel over the frames."""
    total = None
    for real, pred in zip(reals, preds):
        err = np.abs(real.astype(np.float32) - pred.astype(np.float32)).mean(-1)
        total = err if total is None else total + err
    return total / max(len(reals), 1) if total is not None else np.zeros((0, 0), np.float32)
