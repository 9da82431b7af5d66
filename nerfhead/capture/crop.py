"""One fixed crop around the presenter's head for the whole capture.

The crop is the same for every frame, so the camera stays static: cropping only shifts the
principal point and resizing only scales the focal length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass
class CropBox:
    """``width`` x ``height`` source pixels at (x0, y0), resized to ``out_width`` x ``out_height``.

    >>> box = CropBox(10, 20, 100, 100, 50, 50)
    >>> box.to_output(np.array([[60.0, 70.0]])).tolist()
    [[25.0, 25.0]]
    """

    x0: int
    y0: int
    width: int
    height: int
    out_width: int
    out_height: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel (crops keep the aspect ratio)."""
        return self.out_width / self.width

    def is_identity(self, src_width: int, src_height: int) -> bool:
        return (self.x0, self.y0, self.width, self.height, self.out_width, self.out_height) == (
            0, 0, src_width, src_height, src_width, src_height)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self.is_identity(w, h):
            return rgb
        patch = rgb[self.y0:self.y0 + self.height, self.x0:self.x0 + self.width]
        if (self.width, self.height) == (self.out_width, self.out_height):
            return np.ascontiguousarray(patch)
        interp = cv2.INTER_AREA if self.width > self.out_width else cv2.INTER_CUBIC
        return cv2.resize(patch, (self.out_width, self.out_height), interpolation=interp)

    def to_output(self, pts: np.ndarray) -> np.ndarray:
        """Map source pixel coordinates (..., 2 or 3) to output pixels (z scaled like x)."""
        out = np.array(pts, dtype=np.float64, copy=True)
        out[..., 0] = (out[..., 0] - self.x0) * self.scale
        out[..., 1] = (out[..., 1] - self.y0) * self.scale
        if out.shape[-1] > 2:
            out[..., 2:] *= self.scale
        return out

    def as_dict(self) -> dict:
        return {**asdict(self), "scale": self.scale}


def full_frame(width: int, height: int) -> CropBox:
    """Keep the original frames."""
    return CropBox(0, 0, width, height, width, height)


def head_crop(landmarks: list[np.ndarray], width: int, height: int, out_size: int,
              head_scale: float = 3.0, face_center_y: float = 0.42) -> CropBox:
    """Square crop around the head, the same for all frames, clipped to the image.

    ``landmarks``: pixel landmarks from frames sampled over the capture. The side is
    ``head_scale`` times the median face height (forehead to chin), enough for hair,
    neck and shoulders; the face's centre sits ``face_center_y`` of the way down the
    crop. If the image is smaller than that, the largest square that fits is used.
    """
    pts = np.stack(landmarks)
    centers = np.median(pts[:, :, :2], axis=1)
    heights = np.ptp(pts[:, :, 1], axis=1)
    cx, cy = np.median(centers, axis=0)
    side = int(round(min(head_scale * float(np.median(heights)), width, height)))
    side = max(side, 16)
    x0 = int(np.clip(round(cx - side / 2), 0, width - side))
    y0 = int(np.clip(round(cy - face_center_y * side), 0, height - side))
    return CropBox(x0, y0, side, side, out_size, out_size)
