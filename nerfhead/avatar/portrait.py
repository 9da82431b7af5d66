"""Portrait compositing: keep the real frame, synthesize only the lower face.

Hair, eyes, blinks, torso and background never need to change with the audio, so a portrait
frame is the capture's own frame with the head field's render blended in over the lower face:
below the nose to the chin and the jaw line, the cheeks beside the mouth, from that frame's
tracked landmarks. Only the rays inside that region (and a thin ring of skin around it, for the
colour match) are marched. The seam is feathered inside the region, and each frame's rendered
region is moved to the colour of the real skin around it (the field's colours drift a little
from frame to frame, the real frame's do not).
"""

from __future__ import annotations

import cv2
import numpy as np

from nerfhead import landmark_ids as ids

#: the lower face's outline: the jaw from one cheek (at the nose's height) over the chin to the
#: other cheek, then back under the nose (nostril wing, below the tip, nostril wing)
LOWER_FACE = (93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323,
              327, 2, 98)
FEATHER = 0.025  # of the face height: Gaussian sigma of the blend's edge
RING = 0.04  # of the face height: width of the ring of real skin the colours are matched to
RING_STRIDE = 2  # the ring's pixels on every 2nd row and column (a quarter of the rays)


def face_height(landmarks: np.ndarray) -> float:
    """Forehead top to chin, pixels."""
    return float(np.linalg.norm(landmarks[ids.FACE_TOP, :2] - landmarks[ids.CHIN, :2]))


def lower_face_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float = FEATHER) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of each pixel is synthesized, from one frame's (478, 2+)
    pixel landmarks. 1 well inside the lower face, falling to 0 at its outline (the feathered
    edge lies inside, so nothing outside the outline changes)."""
    h, w = shape[:2]
    outline = np.round(landmarks[list(LOWER_FACE), :2]).astype(np.int32)
    sigma = max(0.5, feather * face_height(landmarks))
    r = int(np.ceil(2 * sigma))
    # work in the outline's box with room for the blur's reach (same values as on the whole frame)
    pad = int(np.ceil(4 * sigma)) + 2
    x0, y0 = np.maximum(outline.min(0) - pad, 0)
    x1, y1 = np.minimum(outline.max(0) + pad + 1, (w, h))
    out = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    hard = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(hard, [outline - (x0, y0)], 1)
    inner = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    soft = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), sigma)
    out[y0:y1, x0:x1] = np.where(hard > 0, np.clip(soft, 0.0, 1.0), 0.0)
    return out


def skin_ring(mask: np.ndarray, landmarks: np.ndarray, width: float = RING, stride: int = RING_STRIDE) -> np.ndarray:
    """(H, W) bool: a ring of real skin just outside the blend ``mask`` (inside the face oval), on
    every ``stride``-th row and column only: the colour match needs its mean, not every pixel, and
    each of its pixels is a ray to march."""
    h, w = mask.shape
    r = max(1, int(round(width * face_height(landmarks))))
    ring = np.zeros((h, w), bool)
    box = box_of(mask > 0)
    if box is None:
        return ring
    # in the mask's box grown by the ring's width (the face oval is drawn clipped to it)
    y0, y1 = max(0, box[0].start - r - 1), min(h, box[0].stop + r + 1)
    x0, x1 = max(0, box[1].start - r - 1), min(w, box[1].stop + r + 1)
    region = (mask[y0:y1, x0:x1] > 0).astype(np.uint8)
    grown = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    face = np.zeros_like(region)
    cv2.fillPoly(face, [np.round(landmarks[list(ids.FACE_OVAL), :2]).astype(np.int32) - (x0, y0)], 1)
    ring[y0:y1, x0:x1] = (grown > 0) & (region == 0) & (face > 0)
    if stride > 1:
        sparse = np.zeros_like(ring)
        sparse[::stride, ::stride] = True
        ring &= sparse
    return ring


def colour_matched(rendered: np.ndarray, real: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """``rendered`` (H, W, 3) uint8 shifted per channel so its mean over ``ring`` is the real
    frame's there (unchanged where the ring is empty)."""
    if not ring.any():
        return rendered
    shift = real[ring].astype(np.float64).mean(0) - rendered[ring].astype(np.float64).mean(0)
    return np.clip(rendered.astype(np.float64) + shift, 0, 255).round().astype(np.uint8)


def box_of(region: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the bounding box of ``region`` (H, W) bool; None when empty."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return None
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def blend_lower_face(real: np.ndarray, head: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The portrait frame: ``head`` (colour-matched) blended into ``real`` by ``mask``; only the
    box around the mask is touched."""
    out = real.copy()
    box = box_of(mask > 0)
    if box is not None:
        out[box] = composite(real[box], head[box], mask[box])
    return out


def composite(real: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The real frame with ``rendered`` blended in by ``mask`` (H, W) in [0, 1]."""
    m = mask[..., None].astype(np.float32)
    out = real.astype(np.float32) * (1 - m) + rendered.astype(np.float32) * m
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
