"""Image and lip-sync metrics of the evaluation protocol (docs/EVALUATION.md).

All functions take plain arrays; landmarks come from the capture's own landmarker
(:func:`measure_landmarks`), so real and generated frames are measured by the same code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from nerfhead.capture import landmark_ids as ids


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 (or [0, 255]) images; ``inf`` for identical images.

    >>> x = np.zeros((4, 4, 3), np.uint8)
    >>> psnr(x, x)
    inf
    """
    d = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        d = d[mask]
    mse = float(np.mean(d ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) over RGB channels.

    Only windows that lie inside the image count ('valid' filtering); images smaller than
    the window use a window as large as they allow.
    """
    size = min(11, a.shape[0], a.shape[1])
    size -= 1 - size % 2
    r = size // 2
    fa = a.astype(np.float32) / 255.0
    fb = b.astype(np.float32) / 255.0

    def blur(x: np.ndarray) -> np.ndarray:
        y = cv2.GaussianBlur(x, (size, size), 1.5, borderType=cv2.BORDER_REFLECT)
        return y[r:y.shape[0] - r, r:y.shape[1] - r]

    mu_a, mu_b = blur(fa), blur(fb)
    var_a = blur(fa * fa) - mu_a ** 2
    var_b = blur(fb * fb) - mu_b ** 2
    cov = blur(fa * fb) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean(dtype=np.float64))


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


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap / face height (forehead top to chin) per frame: (..., 478, 2+) -> (...)."""
    gap = np.linalg.norm(landmarks[..., ids.INNER_LIP_TOP, :2] - landmarks[..., ids.INNER_LIP_BOTTOM, :2], axis=-1)
    height = np.linalg.norm(landmarks[..., ids.FACE_TOP, :2] - landmarks[..., ids.CHIN, :2], axis=-1)
    return gap / np.maximum(height, 1e-6)


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
