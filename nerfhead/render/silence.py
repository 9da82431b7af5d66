"""Silences: the mouth at rest wherever the driving audio has no speech.

Digital silence (TTS pauses, padding) and other people's room noise are unlike anything in the
capture's audio, and the audio code they give can open the mouth or tint the face. Where the
voice-activity detector hears no speech for a while, the render uses the *capture's own*
silence code instead (the mean audio code of the capture's training frames without speech),
blended in and out over a few frames so nothing jumps.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from nerfhead.eval.lipsync import frame_labels, long_runs

MIN_SILENT_FRAMES = 5  # 0.2 s: shorter pauses are part of speech
RAMP_FRAMES = 3


def silent_runs(speech: np.ndarray, min_frames: int = MIN_SILENT_FRAMES) -> np.ndarray:
    """(n,) bool: frames inside runs of at least ``min_frames`` frames without speech."""
    return long_runs(~np.asarray(speech, bool), min_frames)


def silence_weights(vad: np.ndarray | None, n_frames: int, ramp: int = RAMP_FRAMES) -> np.ndarray:
    """(n_frames,) float32 in [0, 1]: how much of the silence code each video frame takes, from
    the 100 Hz speech probability ``vad`` (None: speech everywhere)."""
    if vad is None or n_frames == 0:
        return np.zeros(n_frames, np.float32)
    speech = frame_labels(vad, n_frames) >= 0.5
    w = silent_runs(speech).astype(np.float64)
    if ramp > 1:
        w = np.minimum(w, uniform_filter1d(w, 2 * ramp - 1, mode="nearest"))  # ease in and out inside the run
    return w.astype(np.float32)


@torch.no_grad()
def silence_code(model, windows: torch.Tensor, vad: np.ndarray | None, frames: list[int]) -> torch.Tensor | None:
    """(1, A) mean audio code of ``frames`` (the capture's training frames) that lie in silences,
    with the mouth input of a closed mouth (articulation 0) where the model has one; None when the
    capture has too few silent frames to say."""
    if vad is None:
        return None
    quiet = silent_runs(frame_labels(vad, len(windows)) >= 0.5)
    picked = [f for f in frames if quiet[f]]
    if len(picked) < MIN_SILENT_FRAMES:
        return None
    n = len(picked)
    cond = model.conditions(windows, torch.tensor(picked), torch.zeros(n), mouth=model.mouth_input(np.zeros(n)))
    return cond.audio.mean(0, keepdim=True)


def blend(codes: torch.Tensor, code: torch.Tensor | None, weights: np.ndarray) -> torch.Tensor:
    """``codes`` (B, A) moved towards ``code`` (1, A) by ``weights`` (B,)."""
    if code is None or not np.any(weights):
        return codes
    w = torch.from_numpy(np.asarray(weights, np.float32)).to(codes)[:, None]
    return codes * (1 - w) + code.to(codes) * w
