"""The one way a frame is conditioned at inference: audio code, mouth input, rest codes, eyes.

Every render (``nerfhead render``, the evaluation's test frames, the cross-driven lip sync, the
tools) conditions its frames here, so what the report measures is what users get.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nerfhead.avatar.drive import DrivingAudio
from nerfhead.avatar.rest import blend, closed_weights
from nerfhead.field.renderer import RayConditions


@torch.no_grad()
def clip_mouth(model, audio: DrivingAudio, lo: int = 0, hi: int | None = None) -> torch.Tensor | None:
    """(hi - lo, mouth_dim) the mouth input the audio asks for at video frames ``lo .. hi - 1``
    (default: all); None for a model without the mouth input."""
    hi = audio.n_frames if hi is None else hi
    device = next(model.parameters()).device
    win = torch.from_numpy(np.array(audio.windows[lo:hi], np.float32)).to(device)
    return model.mouth_input(win, audio.articulation[lo:hi], audio.own_voice)


@torch.no_grad()
def frame_conditions(avatar, audio: DrivingAudio, frames: Sequence[int], eye: np.ndarray,
                     mouth: np.ndarray | None = None, closed_code: bool = True) -> RayConditions:
    """Ray conditions of video frames ``frames`` of ``audio`` (one row each, neutral frame code).

    ``eye``: (n,) blink values; ``mouth``: the field's mouth input to use instead of the one the
    audio asks for (a sweep of the mouth): (n,) openings or (n, mouth_dim) whole inputs. The audio
    code attends over the neighbouring frames' windows; where the mouth input closes the lips the
    code moves to the capture's closed-lips code (``closed_code``), and in silences to its silence code;
    the mouth input stays what was asked (the rule's opening closes the lips there, corrected by
    what the presenter did: :meth:`~nerfhead.field.model.TalkingHeadModel.mouth_input`).
    """
    model, rest = avatar.model, avatar.rest
    frames = np.asarray(frames, np.int64)
    margin = model.audio_net.cfg.smooth_frames
    lo, hi = max(0, int(frames.min()) - margin), min(audio.n_frames, int(frames.max()) + 1 + margin)
    device = next(model.parameters()).device
    win = torch.from_numpy(np.array(audio.windows[lo:hi], np.float32)).to(device)  # a copy: the view is read-only
    if mouth is None:
        mouth_in = model.mouth_input(win, audio.articulation[lo:hi], audio.own_voice)
        mouth_in = None if mouth_in is None else mouth_in[torch.from_numpy(frames - lo).to(mouth_in.device)]
    else:
        mouth_in = model.mouth_vector(mouth)
    eye_t = torch.from_numpy(np.array(eye, np.float32)).to(device)
    cond = model.conditions(win, torch.from_numpy(frames - lo).to(device), eye_t, mouth=mouth_in)
    dims = cond.audio.shape[1] - model.mouth_dim  # the audio code's; the mouth input follows
    if closed_code and mouth_in is not None:
        cond.audio = blend(cond.audio, rest.closed, closed_weights(mouth_in[:, 0].cpu().numpy()), dims)
    cond.audio = blend(cond.audio, rest.silence, audio.silence[frames], dims)
    return cond
