"""Landmark, lip-sync and image-region metrics of the evaluation protocol (docs/EVALUATION.md):
the face and mouth boxes, the portrait blend's seam band and edge strength, the Laplacian energy
(sharpness); the image measures (PSNR, SSIM) are in :mod:`nerfhead.quality`, shared with
training's panels, and the perceptual distance (ST-LPIPS) in :mod:`nerfhead.perceptual`.

All functions take plain arrays; landmarks come from the capture's own landmarker
(:func:`measure_landmarks`), so real and generated frames are measured by the same code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from nerfhead import landmark_ids as ids

MOUTH_MARGIN = 0.25  # of the lips' box width, added on every side of the mouth box
SEAM_OUTSIDE = 2  # pixels beyond the blend mask's outline that the seam band holds
SEAM_SOLID = 0.98  # the blend mask's value from which on a pixel is inside the band's inner edge


def face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.05) -> tuple[slice, slice]:
    """Row/column slices of the landmarks' bounding box (plus ``margin`` of its size)."""
    lo = np.nanmin(landmarks[:, :2], axis=0)
    hi = np.nanmax(landmarks[:, :2], axis=0)
    pad = margin * (hi - lo)
    return _clipped_box(lo - pad, hi + pad, shape)


def mouth_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = MOUTH_MARGIN) -> tuple[slice, slice]:
    """Row/column slices of the box of the 40 lip landmarks of ``landmarks`` (478, 2+), grown by
    ``margin`` times the box's width on every side (so a closed mouth keeps the skin above and
    below its lips), clipped to an image of ``shape``."""
    lips = np.asarray(landmarks, np.float64)[list(ids.LIPS), :2]
    lo, hi = lips.min(axis=0), lips.max(axis=0)
    pad = margin * (hi[0] - lo[0])
    return _clipped_box(lo - pad, hi + pad, shape)


def _clipped_box(lo: np.ndarray, hi: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row/column slices of the box from ``lo`` to ``hi`` ((x, y) pixels), rounded outwards and clipped."""
    h, w = shape[:2]
    r0, r1 = int(max(0, np.floor(lo[1]))), int(min(h, np.ceil(hi[1])))
    c0, c1 = int(max(0, np.floor(lo[0]))), int(min(w, np.ceil(hi[0])))
    return slice(r0, r1), slice(c0, c1)


def seam_band(mask: np.ndarray, outside: int = SEAM_OUTSIDE, solid: float = SEAM_SOLID) -> np.ndarray:
    """(H, W) bool: the border of a feathered blend ``mask`` (H, W) in [0, 1] (a portrait frame's
    :func:`nerfhead.avatar.portrait.lower_face_mask`): the pixels where the mask rises from 0 to
    ``solid``, and ``outside`` pixels beyond its outline."""
    region = (mask > 0).astype(np.uint8)
    grown = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outside + 1, 2 * outside + 1)))
    return (grown > 0) & (mask < solid)


def edge_strength(rgb: np.ndarray, where: np.ndarray) -> float:
    """Mean gradient magnitude (3x3 Sobel on the grey image, 0-255 scale) of an (H, W, 3) uint8
    RGB image over the pixels of ``where`` (H, W) bool; NaN when ``where`` is empty."""
    if not where.any():
        return float("nan")
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.hypot(gx, gy)[where].mean(dtype=np.float64))


def laplacian_energy(rgb: np.ndarray) -> float:
    """Mean absolute Laplacian (3x3 aperture, grey image, 0-255 scale) of an (H, W, 3) uint8 RGB
    image: how much fine detail it holds (a blur lowers it; teeth and lip edges raise it)."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)).mean(dtype=np.float64))


def lmd(real: np.ndarray, fake: np.ndarray, image_size: int, ref_size: int = 512) -> float:
    """Lip landmark distance: mean distance (pixels at ``ref_size``) of the 40 lip landmarks,
    each set centred on its own mean first, so a shift of the whole frame costs nothing.

    ``real``, ``fake``: (..., 478, 2+) landmarks in pixels of an ``image_size`` image.
    """
    lips = list(ids.LIPS)
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    a = real[..., lips, :2] - real[..., lips, :2].mean(axis=-2, keepdims=True)
    b = fake[..., lips, :2] - fake[..., lips, :2].mean(axis=-2, keepdims=True)
    return float(np.nanmean(np.linalg.norm(a - b, axis=-1)) * ref_size / image_size)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, 0.0 when either signal is constant (no information)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lagged_correlation(signal: np.ndarray, reference: np.ndarray, max_lag: int = 3) -> tuple[float, int]:
    """Best Pearson correlation of ``signal`` with ``reference`` over lags in [-max_lag, max_lag].

    A positive lag means ``signal`` trails ``reference`` by that many frames.
    """
    best = (-math.inf, 0)
    n = min(len(signal), len(reference))
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            r = pearson(signal[lag:n], reference[:n - lag])
        else:
            r = pearson(signal[:n + lag], reference[-lag:n])
        if r > best[0]:
            best = (r, lag)
    return best


def measure_landmarks(frames) -> np.ndarray:
    """(n, 478, 3) landmarks of each RGB frame, detected independently (NaN = no face)."""
    from nerfhead.capture.landmarks import N_LANDMARKS, FaceMeshTracker

    from nerfhead.log import quiet_native_stderr

    out = []
    with quiet_native_stderr(), FaceMeshTracker(video=False) as tracker:
        for frame in frames:
            lms = tracker(frame)
            out.append(lms if lms is not None else np.full((N_LANDMARKS, 3), np.nan, np.float32))
    return np.stack(out) if out else np.zeros((0, N_LANDMARKS, 3), np.float32)
