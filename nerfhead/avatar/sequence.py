"""A sequence of frames of an avatar: head poses, eyes and audio in, RGB frames out.

``nerfhead render``, the evaluation's test frames and the tools all make their frames with
:func:`render_frames`, conditioned by :func:`nerfhead.avatar.conditions.frame_conditions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from nerfhead.avatar.conditions import frame_conditions
from nerfhead.avatar.drive import DrivingAudio
from nerfhead.avatar.frame import render_frame, torso_backdrop
from nerfhead.avatar.load import Avatar
from nerfhead.avatar.portrait import blend_lower_face, box_of, colour_matched, lower_face_mask, skin_ring
from nerfhead.field.rays import Intrinsics
from nerfhead.field.renderer import RayConditions

CHUNK_FRAMES = 25  # frames whose audio codes are computed together


@dataclass
class PoseTrack:
    """Per output frame, the head -> camera rotation and translation (what the torso field is
    conditioned on) and the camera -> head transform the head field is rendered from."""

    rotation: np.ndarray  # (n, 3, 3) head -> camera
    translation: np.ndarray  # (n, 3) metres

    def __len__(self) -> int:
        return len(self.rotation)

    @property
    def camera_to_head(self) -> np.ndarray:
        """(n, 4, 4) the camera poses in the head frame (what the head field renders from)."""
        c2w = np.tile(np.eye(4), (len(self), 1, 1))
        rt = np.transpose(self.rotation, (0, 2, 1))
        c2w[:, :3, :3] = rt
        c2w[:, :3, 3] = -np.einsum("nij,nj->ni", rt, self.translation)
        return c2w

    @classmethod
    def from_camera_to_head(cls, c2w: np.ndarray) -> "PoseTrack":
        w2c = np.linalg.inv(c2w)
        return cls(w2c[:, :3, :3].copy(), w2c[:, :3, 3].copy())

    @classmethod
    def of_capture(cls, tracks: dict[str, np.ndarray], frames: Sequence[int]) -> "PoseTrack":
        """The tracked poses of capture ``frames`` as they are (frames without a face: zeros)."""
        idx = np.asarray(frames, np.int64)
        return cls(np.nan_to_num(tracks["rotation"][idx]).astype(np.float64),
                   np.nan_to_num(tracks["translation"][idx]).astype(np.float64))


def conditioned_frames(avatar: Avatar, audio: DrivingAudio, frames: np.ndarray, eye: np.ndarray,
                       mouth: np.ndarray | None = None, closed_code: bool = True,
                       chunk_frames: int = CHUNK_FRAMES) -> Iterator[tuple[int, RayConditions]]:
    """(j, conditions of the j-th frame) for the sequence ``frames``, its audio codes computed
    ``chunk_frames`` at a time."""
    for a in range(0, len(frames), chunk_frames):
        b = min(a + chunk_frames, len(frames))
        cond = frame_conditions(avatar, audio, frames[a:b], eye[a:b], mouth=None if mouth is None else mouth[a:b],
                                closed_code=closed_code)
        for j in range(b - a):
            yield a + j, cond.rows(j, j + 1)


def _check_lengths(frames: np.ndarray, poses: PoseTrack, eye: np.ndarray) -> None:
    if not (len(frames) == len(poses) == len(eye)):
        raise ValueError(f"{len(frames)} frames, {len(poses)} poses and {len(eye)} eye values")


def pose_backdrop(model, poses: PoseTrack, j: int, plate: np.ndarray) -> np.ndarray:
    """The torso field for pose ``poses[j]`` over the background ``plate``: what full mode puts
    behind the head."""
    return torso_backdrop(model, torch.from_numpy(poses.rotation[j].astype(np.float32)),
                          torch.from_numpy(poses.translation[j].astype(np.float32)), plate)


def render_frames(avatar: Avatar, audio: DrivingAudio, frames: Sequence[int], poses: PoseTrack, eye: np.ndarray,
                  plate: np.ndarray, backdrop: Callable[[int], np.ndarray] | None = None,
                  intrinsics: Intrinsics | None = None, mouth: np.ndarray | None = None,
                  closed_code: bool = True, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames for the video frames ``frames`` of ``audio``, the j-th with pose
    ``poses[j]``, blink ``eye[j]`` (and mouth input ``mouth[j]`` when given): every pixel from the
    fields (full mode).

    The head is composited over ``backdrop(j)`` when given (a real torso), else over the avatar's
    torso field for that pose over the background ``plate`` (whose size sets the frame's; with
    ``intrinsics`` scaled to match for a draft)."""
    model = avatar.model
    k = model.intrinsics if intrinsics is None else intrinsics
    c2w = poses.camera_to_head.astype(np.float32)
    frames = np.asarray(frames, np.int64)
    _check_lengths(frames, poses, eye)
    with torch.no_grad():
        for f, cond in conditioned_frames(avatar, audio, frames, eye, mouth, closed_code, chunk_frames):
            behind = backdrop(f) if backdrop is not None else pose_backdrop(model, poses, f, plate)
            yield render_frame(model, c2w[f], k, behind, cond, avatar.sampling).rgb


def render_portrait_frames(avatar: Avatar, audio: DrivingAudio, frames: Sequence[int], poses: PoseTrack,
                           eye: np.ndarray, real: Callable[[int], np.ndarray], landmarks: np.ndarray,
                           closed_code: bool = True, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """Portrait mode (:mod:`nerfhead.avatar.portrait`): the j-th output is the real frame
    ``real(j)`` (tracked pose ``poses[j]``, pixel landmarks ``landmarks[j]``) with the lower face
    rendered for video frame ``frames[j]`` of ``audio`` and blended in; only the rays of the lower
    face and of the ring of skin around it are marched."""
    model = avatar.model
    c2w = poses.camera_to_head.astype(np.float32)
    frames = np.asarray(frames, np.int64)
    _check_lengths(frames, poses, eye)
    with torch.no_grad():
        for f, cond in conditioned_frames(avatar, audio, frames, eye, None, closed_code, chunk_frames):
            back = real(f)
            head, mask = render_lower_face(avatar, c2w[f], model.intrinsics, back, landmarks[f], cond)
            yield blend_lower_face(back, head, mask)


def render_lower_face(avatar: Avatar, c2w: np.ndarray, k: Intrinsics, real: np.ndarray, landmarks: np.ndarray,
                      cond: RayConditions) -> tuple[np.ndarray, np.ndarray]:
    """The lower face of a portrait frame: the head field rendered from camera ``c2w`` (intrinsics
    ``k``) on the lower face of the real frame ``real`` (H, W, 3) with pixel ``landmarks`` and on
    the ring of skin around it, colour-matched to the real skin there (the real frame elsewhere);
    and the feathered blend mask (H, W) it goes in with."""
    mask = lower_face_mask(landmarks, real.shape)
    ring = skin_ring(mask, landmarks)
    marched = (mask > 0) | ring
    head = render_frame(avatar.model, c2w, k, real, cond, avatar.sampling, pixels=marched).rgb
    box = box_of(marched)
    if box is not None:
        head[box] = colour_matched(head[box], real[box], ring[box])
    return head, mask
