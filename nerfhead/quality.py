"""Image quality measures shared by training's panels and the evaluation (docs/EVALUATION.md)."""

from __future__ import annotations

import math

import cv2
import numpy as np


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
