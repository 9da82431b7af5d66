"""Still image files: RGB frames as JPEG/PNG and single-channel label masks as PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nerfhead.errors import InputError


def write_rgb(path: str | Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image; the format follows the suffix (.jpg or .png)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if str(path).endswith(".jpg") else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write image {path}")


def caption(img: np.ndarray, text: str, scale: int | None = None) -> np.ndarray:
    """Write ``text`` in the top-left corner of an RGB uint8 image, in place (white on a dark outline)."""
    scale = scale or max(1, round(img.shape[0] / 256))
    for colour, width in (((0, 0, 0), 3 * scale), ((255, 255, 255), scale)):
        cv2.putText(img, text, (6, 16 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.42 * scale, colour, width, cv2.LINE_AA)
    return img


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_labels(path: str | Path, labels: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as a lossless PNG."""
    if not cv2.imwrite(str(path), labels.astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write mask {path}")


def read_labels(path: str | Path) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise InputError(f"cannot read mask {path}")
    return labels
