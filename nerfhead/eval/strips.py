"""Image strips a person compares at a glance: mouth crops of real and generated frames, and what
each number of an avatar's mouth input does."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.io.images import caption


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, size: int = 160, zoom: float = 2.2) -> np.ndarray:
    """(size, size, 3) uint8: a square around the lips of ``landmarks`` (478, 2+), whose side is
    ``zoom`` times the mouth width, resized to ``size``. Without lips: the frame's lower middle."""
    h, w = frame.shape[:2]
    lips = np.asarray(landmarks, np.float64)[list(ids.LIPS), :2]
    if np.isfinite(lips).all():
        cx, cy = lips.mean(0)
        side = zoom * max(np.ptp(lips[:, 0]), 8.0)
    else:
        cx, cy, side = w / 2, h * 0.65, w / 4
    half = side / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def mouth_strip(rows: Sequence[Sequence[np.ndarray]], landmarks: Sequence[np.ndarray], labels: Sequence[str],
                size: int = 160) -> np.ndarray:
    """One row of mouth crops per image set (e.g. real / ours / silent), one column per frame; every
    row is cropped where the *first* row's landmarks put the lips, so rows compare pixel for pixel."""
    out = []
    for row, label in zip(rows, labels):
        crops = [mouth_crop(img, lms, size) for img, lms in zip(row, landmarks)]
        strip = np.concatenate(crops, 1)
        out.append(caption(strip, label, 1))
    return np.concatenate(out, 0)


def open_frames(opening: np.ndarray, k: int, spacing: int = 5) -> list[int]:
    """Indices of up to ``k`` of the widest ``opening`` values (NaN: no face) at least ``spacing``
    apart, in time order: the frames where the inside of the mouth (teeth, tongue) shows."""
    picks: list[int] = []
    for j in np.argsort(-np.nan_to_num(np.asarray(opening, np.float64), nan=-np.inf)):
        if len(picks) == k or not np.isfinite(opening[j]):
            break
        if all(abs(int(j) - p) >= spacing for p in picks):
            picks.append(int(j))
    return sorted(picks)


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def speaking_frame(data, frames: Sequence[int]) -> int:
    """The frame of ``frames`` nearest their middle that lies in speech (in silences the capture's
    silence code, not the mouth input, decides the mouth); the middle one if none does."""
    frames = list(frames)
    order = sorted(range(len(frames)), key=lambda k: abs(k - len(frames) // 2))
    return next((frames[k] for k in order if data.audio.silence[frames[k]] == 0), frames[len(frames) // 2])


def lip_component_strip(avatar, data, frame: int) -> np.ndarray:
    """(H, W, 3) uint8: one row per mouth-input component (the opening, then lip shape 1..K); the
    real frame's mouth, then that component at the capture's :data:`QUANTILES` with the others at
    their medians, on training-data frame ``frame`` (its pose, audio, blink and real backdrop; a
    frame in speech: :func:`speaking_frame`)."""
    from nerfhead.avatar.sequence import PoseTrack, render_frames

    model = avatar.model
    inputs = data.mouth_inputs(model.mouth_dim - 1).numpy()[data.train_frames]
    median = np.median(inputs, 0)
    vectors = []
    for c in range(model.mouth_dim):
        for q in QUANTILES:
            v = median.copy()
            v[c] = np.quantile(inputs[:, c], q)
            vectors.append(v)
    frames = [frame] * len(vectors)
    renders = list(render_frames(avatar, data.audio, frames, PoseTrack.of_capture(data.ident.tracks(), frames),
                                 data.blink[frames].numpy(), np.asarray(data.store.background),
                                 backdrop=lambda j: data.backdrop(frame), mouth=np.asarray(vectors, np.float32),
                                 closed_code=False, chunk_frames=len(QUANTILES)))
    x0, y0, x1, y1 = data.mouth_box(frame, max(8, int(round(0.2 * data.store.width))))
    names = ["opening"] + [f"lip shape {k}" for k in range(1, model.mouth_dim)]
    rows = []
    for c, name in enumerate(names):
        crops = [caption(renders[c * len(QUANTILES) + k][y0:y1, x0:x1].copy(), f"{QUANTILES[k]:.0%}" if c == 0 else "")
                 for k in range(len(QUANTILES))]
        rows.append(np.concatenate([caption(np.array(data.store.frames[frame][y0:y1, x0:x1]), name)] + crops, 1))
    return np.concatenate(rows, 0)
