"""Eye openness from eyelid landmarks (replaces OpenFace's AU45 blink intensity)."""

from __future__ import annotations

import numpy as np

from nerfhead import landmark_ids as ids


def eye_ratio(landmarks: np.ndarray) -> np.ndarray:
    """(N,) mean eyelid gap / eye width of both eyes, from 3D pixel landmarks (N, 478, 3).

    Using 3D distances keeps the ratio steady under head turns. NaN where no face.
    """
    ratios = []
    for lids, corners in ((ids.RIGHT_EYE_LIDS, ids.RIGHT_EYE_CORNERS), (ids.LEFT_EYE_LIDS, ids.LEFT_EYE_CORNERS)):
        gaps = [np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1) for a, b in lids]
        width = np.linalg.norm(landmarks[:, corners[0]] - landmarks[:, corners[1]], axis=-1)
        ratios.append(np.mean(gaps, axis=0) / np.maximum(width, 1e-6))
    return np.mean(ratios, axis=0)


def blink_strength(ratio: np.ndarray) -> np.ndarray:
    """(N,) 0 = eyes as open as usual, 1 = closed; the identity's median ratio is 'open'.

    Like the AU45 scalar the reference method feeds its eye code. NaN stays NaN.
    """
    open_ref = np.nanmedian(ratio) if np.isfinite(ratio).any() else 1.0
    return np.clip(1.0 - ratio / max(open_ref, 1e-6), 0.0, 1.0)
