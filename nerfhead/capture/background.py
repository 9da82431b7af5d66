"""Static background plate from the pixels the person never covers.

Per pixel, the median over sampled frames in which the pixel is background (with a margin
around the person, so soft hair edges do not bleed in); pixels the person covers in every
sampled frame are inpainted from their surroundings.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nerfhead.dataset import BACKGROUND


@dataclass
class Plate:
    image: np.ndarray  # (H, W, 3) uint8
    inpainted: np.ndarray  # (H, W) bool: never seen as background
    always_visible: np.ndarray  # (H, W) bool: background in every sampled frame
    error_mae: float  # mean |plate - frame| (0-255) over always-visible pixels of the samples
    error_psnr: float


def background_plate(frames: np.ndarray, labels: np.ndarray, margin: int = 6, chunk_rows: int = 64) -> Plate:
    """Plate from sampled frames (K, H, W, 3) uint8 and their label masks (K, H, W)."""
    k, h, w, _ = frames.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    visible = np.stack([cv2.erode((lab == BACKGROUND).astype(np.uint8), kernel) > 0 for lab in labels])
    plate = np.zeros((h, w, 3), np.float32)
    for r0 in range(0, h, chunk_rows):
        sl = slice(r0, min(h, r0 + chunk_rows))
        vals = frames[:, sl].astype(np.float32)
        vals[~visible[:, sl]] = np.nan
        vals = np.sort(np.moveaxis(vals, 0, -1), axis=-1)  # NaN sort last
        count = np.isfinite(vals[..., 0, :]).sum(-1)  # (rows, W)
        mid = np.maximum(count - 1, 0) // 2
        idx = np.broadcast_to(mid[..., None, None], vals.shape[:-1] + (1,))
        plate[sl] = np.take_along_axis(vals, idx, axis=-1)[..., 0]
    seen = visible.any(0)
    image = np.nan_to_num(plate).clip(0, 255).round().astype(np.uint8)
    inpainted = ~seen
    if inpainted.any():
        image = cv2.inpaint(image, inpainted.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    always = visible.all(0)
    if always.any():
        diff = np.abs(frames[:, always].astype(np.float32) - image[always].astype(np.float32))
        mae = float(diff.mean())
        mse = float((diff ** 2).mean())
        psnr = float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
    else:
        mae, psnr = float("nan"), float("nan")
    return Plate(image, inpainted, always, mae, psnr)
