"""Ray batches for training: a few frames per step, pixels drawn around the head.

Each ray carries its target colour and the colour *behind* the head at that pixel: the real
torso where the mask says torso, the background plate elsewhere. The head field is trained
composited over it, as in ER-NeRF, so it learns alpha 0 off the head without a torso model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerfhead.dataset import HEAD, TORSO
from nerfhead.errors import InputError
from nerfhead.field.rays import Intrinsics, pixel_rays
from nerfhead.train.frames import FrameStore


@dataclass
class RayBatch:
    origins: torch.Tensor  # (N, 3) head frame
    dirs: torch.Tensor  # (N, 3) unit
    target: torch.Tensor  # (N, 3) in [0, 1]
    behind: torch.Tensor  # (N, 3) colour behind the head (torso or background plate)
    frame: torch.Tensor  # (N,) long
    xy: torch.Tensor  # (N, 2) long pixel coordinates
    label: torch.Tensor  # (N,) uint8 mask label

    def __len__(self) -> int:
        return len(self.frame)

    def to(self, device: torch.device | str) -> "RayBatch":
        return RayBatch(*(getattr(self, f).to(device, non_blocking=True) for f in
                          ("origins", "dirs", "target", "behind", "frame", "xy", "label")))


class RaySampler:
    """Draw :class:`RayBatch` es from an identity's frames.

    ``head_fraction`` of the rays fall on the mask of label ``focus`` (the head by default; the
    torso stage focuses on the torso), ``mouth_fraction`` in the frame's mouth square
    (``mouth_boxes``: (x0, y0, x1, y1) per frame of the store; lips, teeth and the inside of the
    mouth are a few per cent of the head's pixels but most of what the audio changes),
    ``uniform_fraction`` anywhere in the frame, the rest
    uniformly in that region's bounding rectangle grown by ``margin`` pixels, so the field sees its
    silhouette. The uniform share keeps every pixel of the frame under the loss: without it the head
    field grew opaque floaters over the collar, below the head's rectangle but inside its box, and
    the torso field's alpha drifted to 0.5 on the background far from the torso.
    """

    def __init__(self, store: FrameStore, camera_to_head: np.ndarray, k: Intrinsics, frames: list[int],
                 rays: int = 4096, frames_per_batch: int = 4, head_fraction: float = 0.75, margin: int = 24,
                 seed: int = 0, focus: int = HEAD, uniform_fraction: float = 0.0, mouth_fraction: float = 0.0,
                 mouth_boxes: np.ndarray | None = None) -> None:
        shares = (head_fraction, uniform_fraction, mouth_fraction)
        if min(shares) < 0 or sum(shares) > 1:
            # they come from a training config (head_fraction / torso_fraction, uniform_fraction, mouth_fraction)
            raise InputError(f"ray fractions {head_fraction} (on the head or torso), {uniform_fraction} "
                             f"(uniform_fraction, anywhere) and {mouth_fraction} (mouth_fraction) must be >= 0 "
                             "and sum to at most 1")
        if mouth_fraction > 0 and mouth_boxes is None:
            raise ValueError("mouth_fraction needs the frames' mouth_boxes")
        if not frames:
            raise ValueError("no frames to sample rays from")
        self.store, self.k = store, k
        self.c2w = torch.from_numpy(np.asarray(camera_to_head, np.float32))
        self.frames = np.asarray(frames)
        self.rays, self.frames_per_batch = rays, frames_per_batch
        self.head_fraction, self.margin, self.focus = head_fraction, margin, focus
        self.uniform_fraction, self.mouth_fraction = uniform_fraction, mouth_fraction
        self.mouth_boxes = None if mouth_boxes is None else np.asarray(mouth_boxes, np.int64)
        self.rng = np.random.default_rng(seed)
        self.background = store.background

    def sample(self) -> RayBatch:
        picks = self.rng.choice(self.frames, size=self.frames_per_batch, replace=len(self.frames) < self.frames_per_batch)
        per = np.full(len(picks), self.rays // len(picks))
        per[: self.rays - per.sum()] += 1
        parts = [self._frame_pixels(int(f), int(n)) for f, n in zip(picks, per)]
        frame = np.concatenate([np.full(len(p), f) for f, p in zip(picks, parts)])
        xy = np.concatenate(parts)
        return self.gather(frame, xy)

    def _frame_pixels(self, i: int, n: int) -> np.ndarray:
        labels = self.store.labels[i]
        ys, xs = np.nonzero(labels == self.focus)
        h, w = labels.shape
        if len(xs) == 0:  # nothing of that label in this frame's mask: uniform
            return np.stack([self.rng.integers(0, w, n), self.rng.integers(0, h, n)], 1)
        n_head = int(round(n * self.head_fraction))
        n_any = min(n - n_head, int(round(n * self.uniform_fraction)))
        n_mouth = min(n - n_head - n_any, int(round(n * self.mouth_fraction)))
        n_around = n - n_head - n_any - n_mouth
        pick = self.rng.integers(0, len(xs), n_head)
        on_head = np.stack([xs[pick], ys[pick]], 1)
        x0, x1 = max(0, xs.min() - self.margin), min(w, xs.max() + self.margin + 1)
        y0, y1 = max(0, ys.min() - self.margin), min(h, ys.max() + self.margin + 1)
        around = np.stack([self.rng.integers(x0, x1, n_around), self.rng.integers(y0, y1, n_around)], 1)
        anywhere = np.stack([self.rng.integers(0, w, n_any), self.rng.integers(0, h, n_any)], 1)
        if n_mouth == 0:
            return np.concatenate([on_head, around, anywhere])
        mx0, my0, mx1, my1 = self.mouth_boxes[i]
        mouth = np.stack([self.rng.integers(mx0, mx1, n_mouth), self.rng.integers(my0, my1, n_mouth)], 1)
        return np.concatenate([on_head, around, anywhere, mouth])

    def rect(self, i: int, x0: int, y0: int, x1: int, y1: int) -> RayBatch:
        """Every pixel of the rectangle [x0, x1) x [y0, y1) of frame ``i``, row by row."""
        ys, xs = np.mgrid[y0:y1, x0:x1]
        xy = np.stack([xs.ravel(), ys.ravel()], 1)
        return self.gather(np.full(len(xy), i), xy)

    def gather(self, frame: np.ndarray, xy: np.ndarray) -> RayBatch:
        """Rays, targets and behind-colours for given frames and pixels."""
        order = np.argsort(frame, kind="stable")
        target = np.empty((len(frame), 3), np.uint8)
        label = np.empty(len(frame), np.uint8)
        for f in np.unique(frame):  # one memmap read per frame
            sel = order[frame[order] == f]
            img, lab = self.store.frames[f], self.store.labels[f]
            target[sel] = img[xy[sel, 1], xy[sel, 0]]
            label[sel] = lab[xy[sel, 1], xy[sel, 0]]
        behind = np.where((label == TORSO)[:, None], target, self.background[xy[:, 1], xy[:, 0]])
        frame_t = torch.from_numpy(frame.astype(np.int64))
        xy_t = torch.from_numpy(xy.astype(np.int64))
        origins, dirs = pixel_rays(self.c2w[frame_t], self.k, xy_t[:, 0], xy_t[:, 1])
        return RayBatch(origins, dirs, torch.from_numpy(target).float() / 255, torch.from_numpy(behind).float() / 255,
                        frame_t, xy_t, torch.from_numpy(label))
