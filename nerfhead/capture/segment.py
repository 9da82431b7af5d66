"""Per-frame label masks: background, head (face + hair), torso/neck.

The person comes from mediapipe's bundled selfie segmentation. The head is the part of
the person above the jaw line (the jaw contour of the face mesh, extended sideways along
the face's own horizontal axis), plus the face hull itself; the rest of the person is
torso/neck, so the neck below the chin belongs to the torso as in ER-NeRF.
"""

from __future__ import annotations

import cv2
import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.dataset import BACKGROUND, HEAD, TORSO


class PersonSegmenter:
    """Soft person mask (H, W) float32 in [0, 1] from mediapipe selfie segmentation."""

    def __init__(self, model: int = 0) -> None:
        import mediapipe as mp

        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = self._seg.process(np.ascontiguousarray(rgb)).segmentation_mask
        if mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return mask.astype(np.float32, copy=False)

    def close(self) -> None:
        self._seg.close()

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def face_hull(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled convex hull (H, W) bool of the face landmarks."""
    hull = cv2.convexHull(np.round(landmarks[:, :2]).astype(np.int32))
    out = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)


def above_jaw(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the half-plane-like region above the jaw line, in the face's own frame."""
    h, w = shape
    pts = landmarks[:, :2].astype(np.float64)
    x_axis = pts[ids.EYE_CORNERS[3]] - pts[ids.EYE_CORNERS[0]]
    x_axis /= np.linalg.norm(x_axis) + 1e-9
    up = np.array([x_axis[1], -x_axis[0]])  # perpendicular, pointing to the top of the head
    far = 4.0 * (h + w)
    jaw = pts[list(ids.JAW)]
    left, right = jaw[0], jaw[-1]
    poly = np.concatenate([
        jaw,
        [right + x_axis * far, right + x_axis * far + up * far,
         left - x_axis * far + up * far, left - x_axis * far],
    ])
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(poly).astype(np.int32)], 1)
    return out.astype(bool)


def label_mask(person: np.ndarray, landmarks: np.ndarray | None, threshold: float = 0.5) -> np.ndarray:
    """(H, W) uint8 labels from a soft person mask and the frame's landmarks (None = no face)."""
    is_person = person > threshold
    labels = np.where(is_person, TORSO, BACKGROUND).astype(np.uint8)
    if landmarks is None:
        return labels
    hull = face_hull(landmarks, person.shape)
    head = (is_person & above_jaw(landmarks, person.shape)) | hull
    labels[head] = HEAD
    return labels
