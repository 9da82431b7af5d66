"""Landmark and lip-sync metrics of the evaluation protocol (docs/EVALUATION.md); the image
measures (PSNR, SSIM) are in :mod:`nerfhead.quality`, shared with training's panels.

All functions take plain arrays; landmarks come from the capture's own landmarker
(:func:`measure_landmarks`), so real and generated frames are measured by the same code.
"""

from __future__ import annotations

import math

import numpy as np

from nerfhead import landmark_ids as ids


def face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.05) -> tuple[slice, slice]:
    """Row/column slices of the landmarks' bounding box (plus ``margin`` of its size)."""
    h, w = shape[:2]
    x0, y0 = np.nanmin(landmarks[:, :2], axis=0)
    x1, y1 = np.nanmax(landmarks[:, :2], axis=0)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    r0, r1 = int(max(0, np.floor(y0 - my))), int(min(h, np.ceil(y1 + my)))
    c0, c1 = int(max(0, np.floor(x0 - mx))), int(min(w, np.ceil(x1 + mx)))
    return slice(r0, r1), slice(c0, c1)


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
