"""What training reads of an identity: frames (memory-mapped), rays, audio windows, blinks and
mouth openings."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from nerfhead import landmark_ids as ids
from nerfhead.audio.timeline import speech_mask
from nerfhead.avatar.drive import DrivingAudio, capture_audio
from nerfhead.avatar.rest import closed_frames
from nerfhead.dataset import HEAD, TORSO, Identity, normalised_opening
from nerfhead.field.lips import canonical_lips, lip_codes
from nerfhead.field.rays import Intrinsics, head_box
from nerfhead.log import get_logger
from nerfhead.train.batches import RaySampler
from nerfhead.train.frames import FrameStore

log = get_logger(__name__)

MIN_INTERIOR_AREA = 4.0  # px^2: an inner lip contour enclosing less is closed lips (no mouth interior)
MAX_LIP_CODE = 8  # lip-shape components kept with the training data (a model uses its config's lip_code)


@dataclass
class TrainingData:
    ident: Identity
    store: FrameStore
    intrinsics: Intrinsics
    camera_to_head: np.ndarray  # (n_frames, 4, 4)
    train_frames: list[int]
    test_frames: list[int]
    windows: torch.Tensor  # (n_frames, window, D) float32 audio feature windows of the capture
    features: torch.Tensor  # (T, D) the capture's 100 Hz features (for normalisation statistics)
    feature_spec: dict
    blink: torch.Tensor  # (n_frames,) float32 in [0, 1]
    rotation: torch.Tensor  # (n_frames, 3, 3) float32 head -> camera
    translation: torch.Tensor  # (n_frames, 3) float32 metres
    aabb: np.ndarray  # (2, 3) head box in the head frame
    lip_points: np.ndarray  # (n_frames, 40, 2) tracked lip landmarks in pixels (NaN without a face)
    inner_lips: np.ndarray  # (n_frames, 20, 2) the tracked inner lip contour (landmark_ids.INNER_LIPS) in pixels
    mouth: torch.Tensor  # (n_frames,) float32 tracked mouth opening / median speaking opening (1 without a face)
    mouth_scale: float  # the median speaking opening (inner-lip gap / face height): ``mouth``'s unit
    lips: np.ndarray  # (n_frames, MAX_LIP_CODE) float32 lip-shape codes (nerfhead.field.lips; 0 without a face)
    vad: np.ndarray | None  # (T,) the capture's 100 Hz speech probability
    audio: DrivingAudio  # the capture's audio as a render reads it (windows, articulation, silences)

    @property
    def n_frames(self) -> int:
        return self.store.n

    def mouth_inputs(self, lip_code: int) -> torch.Tensor:
        """(n_frames, 1 + lip_code) float32 the tracked mouth input of every frame: the opening, then
        the first ``lip_code`` lip-shape components (teacher forcing)."""
        if lip_code > self.lips.shape[1]:
            raise ValueError(f"at most {self.lips.shape[1]} lip-shape components, not {lip_code}")
        return torch.cat([self.mouth[:, None], torch.from_numpy(self.lips[:, :lip_code])], 1)

    def closed_frames(self) -> list[int]:
        """Training frames in speech whose tracked lips are closed (the capture's closed-lips code)."""
        return closed_frames(self.vad, self.n_frames, self.train_frames, self.mouth.numpy())

    def backdrop(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 what is behind the head in frame ``i``: its real torso, else the plate."""
        torso = (self.store.labels[i] == TORSO)[..., None]
        return np.where(torso, self.store.frames[i], self.store.background)

    def mouth_box(self, i: int, size: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): a ``size``-pixel square around frame ``i``'s tracked lips, inside the image."""
        lips = self.lip_points[i]
        h, w = self.store.height, self.store.width
        if np.isfinite(lips).all():
            cx, cy = (int(v) for v in lips.mean(0))
        else:
            cx, cy = w // 2, int(h * 0.65)
        x0 = int(np.clip(cx - size // 2, 0, max(w - size, 0)))
        y0 = int(np.clip(cy - size // 2, 0, max(h - size, 0)))
        return x0, y0, min(x0 + size, w), min(y0 + size, h)

    def mouth_interior(self, i: int, x0: int, y0: int, x1: int, y1: int, grow: int = 2) -> np.ndarray:
        """(y1 - y0, x1 - x0) bool: the pixels of the rectangle inside frame ``i``'s tracked inner lip
        contour (teeth, tongue, the dark of an open mouth), grown by ``grow`` pixels; none for closed
        lips or a frame without a face."""
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        ring = self.inner_lips[i]
        # closed lips: a ring of no area (fillPoly would still draw its outline)
        if np.isfinite(ring).all() and cv2.contourArea(ring.astype(np.float32)) >= MIN_INTERIOR_AREA:
            cv2.fillPoly(mask, [np.round(ring - (x0, y0)).astype(np.int32)], 1)
            if grow > 0 and mask.any():
                mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        return mask > 0

    def sampler(self, rays: int, frames_per_batch: int, head_fraction: float, seed: int,
                focus: int = HEAD, uniform_fraction: float = 0.0, mouth_fraction: float = 0.0,
                mouth_size: int = 0) -> RaySampler:
        """Rays of the training frames (:class:`RaySampler`); ``mouth_fraction`` of them in each
        frame's ``mouth_size``-pixel mouth square (:meth:`mouth_box`)."""
        boxes = (np.array([self.mouth_box(i, mouth_size) for i in range(self.n_frames)])
                 if mouth_fraction > 0 else None)
        return RaySampler(self.store, self.camera_to_head, self.intrinsics, self.train_frames, rays=rays,
                          frames_per_batch=frames_per_batch, head_fraction=head_fraction, seed=seed, focus=focus,
                          uniform_fraction=uniform_fraction, mouth_fraction=mouth_fraction, mouth_boxes=boxes)


def load_training_data(ident: Identity, extractor: str = "default") -> TrainingData:
    """Everything training needs of a processed identity (frames stay on disk, memory-mapped), its
    audio features made by ``extractor`` (a trained avatar's: ``model.extractor``)."""
    m = ident.manifest()
    tracks = ident.tracks()
    store = FrameStore(ident)
    feats, audio = capture_audio(ident, extractor)
    windows = torch.from_numpy(np.ascontiguousarray(audio.windows, np.float32))
    c2w = np.nan_to_num(tracks["camera_to_head"]).astype(np.float32)
    blink = torch.from_numpy(np.nan_to_num(tracks["blink"]).clip(0, 1).astype(np.float32))
    n = m["n_frames"]
    mouth, mouth_scale = normalised_opening(tracks["landmarks"], speech_mask(feats, n))
    return TrainingData(
        ident=ident, store=store, intrinsics=Intrinsics.from_manifest(m), camera_to_head=c2w,
        train_frames=list(m["split"]["train"]), test_frames=list(m["split"]["test"]), windows=windows,
        features=torch.from_numpy(np.array(feats.features, np.float32)), feature_spec=feats.spec.to_dict(),
        blink=blink, rotation=torch.from_numpy(np.nan_to_num(tracks["rotation"]).astype(np.float32)),
        translation=torch.from_numpy(np.nan_to_num(tracks["translation"]).astype(np.float32)), aabb=head_box(tracks["canonical_shape"]).astype(np.float32),
        lip_points=tracks["landmarks"][:, tracks["lip_ids"], :2].astype(np.float32),
        inner_lips=tracks["landmarks"][:, list(ids.INNER_LIPS), :2].astype(np.float32),
        mouth=torch.from_numpy(mouth), mouth_scale=mouth_scale,
        lips=lip_codes(canonical_lips(tracks["landmarks"], tracks["rigid_ids"], tracks["lip_ids"]), m["split"]["train"],
                       MAX_LIP_CODE),
        vad=feats.vad, audio=audio)
