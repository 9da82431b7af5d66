"""Renders of training/test frames while training: for the progress panels, tests and checks.

Frames are conditioned as a render conditions them (:mod:`nerfhead.avatar.conditions`): the
audio code and mouth input come from the capture's audio, not from the tracked opening.
"""

from __future__ import annotations

import numpy as np

from nerfhead.avatar.conditions import frame_conditions
from nerfhead.avatar.frame import FrameRender, render_frame, torso_backdrop
from nerfhead.avatar.load import Avatar
from nerfhead.avatar.sequence import PoseTrack, render_frames
from nerfhead.dataset import HEAD
from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig
from nerfhead.io.images import write_rgb
from nerfhead.quality import psnr
from nerfhead.train.data import TrainingData


def render_dataset_frame(model: TalkingHeadModel, data: TrainingData, i: int, sampling: SamplingConfig,
                         torso: bool = False) -> FrameRender:
    """Frame ``i``'s camera, audio and blink rendered by the model being trained (no rest codes
    yet: they are computed when a stage saves), over its real backdrop (real torso, else the
    plate) or, with ``torso``, over the torso field and the plate."""
    avatar = Avatar.of_model(model, sampling)
    cond = frame_conditions(avatar, data.audio, [i], data.blink[[i]].numpy())
    if torso:
        backdrop = torso_backdrop(model, data.rotation[i], data.translation[i], np.asarray(data.store.background))
    else:
        backdrop = data.backdrop(i)
    return render_frame(model, data.camera_to_head[i], data.intrinsics, backdrop, cond, sampling)


def head_psnr(model: TalkingHeadModel, data: TrainingData, frames: list[int], sampling: SamplingConfig) -> float:
    """Mean PSNR (dB) over ``frames`` inside the rectangle around the head mask."""
    values = []
    for i in frames:
        real = np.asarray(data.store.frames[i])
        ys, xs = np.nonzero(data.store.labels[i] == HEAD)
        if len(xs) == 0:
            continue
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        fake = render_dataset_frame(model, data, i, sampling).rgb
        values.append(psnr(real[box], fake[box]))
    return float(np.mean(values)) if values else float("nan")


def write_preview(avatar: Avatar, data: TrainingData, path, n: int = 3, torso: bool | None = None) -> list[float]:
    """A PNG with ``n`` held-out test frames, real (left) beside the avatar's render (right), made
    as ``nerfhead render`` makes frames; returns each frame's full-frame PSNR. ``torso``: over the
    torso field (default: when the avatar's torso is trained), else over the real torso."""
    torso = avatar.has_torso if torso is None else torso
    frames = data.test_frames[:: max(1, len(data.test_frames) // n)][:n]
    tracks = data.ident.tracks()
    fakes = render_frames(avatar, data.audio, frames, PoseTrack.of_capture(tracks, frames),
                          data.blink[frames].numpy(), np.asarray(data.store.background),
                          backdrop=None if torso else (lambda j: data.backdrop(frames[j])),
                          chunk_frames=1)
    rows, scores = [], []
    for i, fake in zip(frames, fakes):
        real = np.asarray(data.store.frames[i])
        scores.append(psnr(real, fake))
        rows.append(np.concatenate([real, fake], 1))
    write_rgb(path, np.concatenate(rows, 0))
    return scores
