"""Renders of training/test frames while training: for the progress panels, tests and checks."""

from __future__ import annotations

import numpy as np
import torch

from nerfhead.capture.segment import HEAD
from nerfhead.eval.metrics import psnr
from nerfhead.io.images import write_rgb
from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig
from nerfhead.render.frame import FrameRender, render_frame, torso_backdrop
from nerfhead.train.data import TrainingData


def render_dataset_frame(model: TalkingHeadModel, data: TrainingData, i: int, sampling: SamplingConfig,
                         torso: bool = False, windows: torch.Tensor | None = None,
                         backdrop: np.ndarray | None = None, audio_code: torch.Tensor | None = None,
                         articulation: np.ndarray | None = None) -> FrameRender:
    """Frame ``i``'s camera, audio window and blink, with the neutral frame code, rendered over its
    real backdrop (real torso, else the plate) or, with ``torso``, over the torso field and the plate
    (the frame as the avatar renders it). The mouth input comes from the audio, as in a render (the
    capture's articulation track, not the tracked opening). ``windows`` and ``articulation``
    replace the capture's audio windows and articulation track (other audio for the same frames);
    ``backdrop`` is a backdrop already rendered for this frame."""
    device = next(model.parameters()).device
    windows = data.windows if windows is None else windows
    articulation = data.articulation if articulation is None else articulation
    cond = model.conditions(windows.to(device), torch.tensor([i], device=device), data.blink[[i]].to(device),
                            mouth=model.mouth_input(articulation[[i]]))
    if audio_code is not None:
        cond.audio = audio_code.to(cond.audio)
    if backdrop is None:
        backdrop = dataset_backdrop(model, data, i, torso)
    return render_frame(model, data.camera_to_head[i], data.intrinsics, backdrop, cond, sampling)


def dataset_backdrop(model: TalkingHeadModel, data: TrainingData, i: int, torso: bool) -> np.ndarray:
    """What frame ``i``'s head is composited over: the torso field and plate, else the real torso."""
    if torso:
        return torso_backdrop(model, data.rotation[i], data.translation[i], np.asarray(data.store.background))
    return data.backdrop(i)


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


def write_preview(model: TalkingHeadModel, data: TrainingData, path, sampling: SamplingConfig, n: int = 3) -> list[float]:
    """A PNG with ``n`` held-out test frames, real (left) beside the avatar's render (right);
    returns each frame's full-frame PSNR."""

    frames = data.test_frames[:: max(1, len(data.test_frames) // n)][:n]
    rows, scores = [], []
    for i in frames:
        real = np.asarray(data.store.frames[i])
        fake = render_dataset_frame(model, data, i, sampling, torso=True).rgb
        scores.append(psnr(real, fake))
        rows.append(np.concatenate([real, fake], 1))
    write_rgb(path, np.concatenate(rows, 0))
    return scores
