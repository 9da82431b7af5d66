"""Rest codes: the capture's own audio codes for silence and closed lips, where new audio would mislead.

Digital silence (TTS pauses, padding) and other people's room noise are unlike anything in the
capture's audio, and the audio code they give can open the mouth or tint the face. Where the
voice-activity detector hears no speech for a while, the render uses the *capture's own*
silence code instead (the mean audio code of the capture's training frames without speech),
blended in and out over a few frames so nothing jumps.

Likewise within speech: where the articulation track closes the lips (/p b m/, quiet frames), a
foreign voice's audio code can hold the mouth a little open against the mouth input. There the
render takes the capture's *closed-lips code*: the mean audio code of the capture's speaking
frames whose tracked lips were closed.

Both codes are computed once, when a training stage ends (:func:`rest_codes`), and stored in the
avatar's checkpoint; every render and evaluation reads them from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from nerfhead.audio.timeline import MIN_SILENT_FRAMES, silent_frames

RAMP_FRAMES = 3
CLOSED_OPENING = 0.25  # tracked opening / median speaking opening at or below which lips count as closed
MIN_CLOSED_FRAMES = 5


def silence_weights(vad: np.ndarray | None, n_frames: int, ramp: int = RAMP_FRAMES) -> np.ndarray:
    """(n_frames,) float32 in [0, 1]: how much of the silence code each video frame takes, from
    the 100 Hz speech probability ``vad`` (None: speech everywhere)."""
    if vad is None or n_frames == 0:
        return np.zeros(n_frames, np.float32)
    w = silent_frames(vad, n_frames).astype(np.float64)
    if ramp > 1:
        w = np.minimum(w, uniform_filter1d(w, 2 * ramp - 1, mode="nearest"))  # ease in and out inside the run
    return w.astype(np.float32)


@torch.no_grad()
def _closed_mouth_code(model, windows: torch.Tensor, picked: list[int], min_frames: int) -> torch.Tensor | None:
    """(1, A) mean audio code of the capture frames ``picked``, eyes open and with the mouth input
    of a closed mouth (articulation 0) where the model has one; None for fewer than ``min_frames``."""
    n = len(picked)
    if n < min_frames:
        return None
    device = next(model.parameters()).device
    cond = model.conditions(windows.to(device), torch.tensor(picked, device=device), torch.zeros(n, device=device),
                            mouth=model.closed_mouth(n))
    return cond.audio.mean(0, keepdim=True).cpu()


def silence_code(model, windows: torch.Tensor, vad: np.ndarray | None, frames: list[int]) -> torch.Tensor | None:
    """(1, A) mean audio code of ``frames`` (the capture's training frames) that lie in silences,
    with the mouth input of a closed mouth where the model has one; None when the capture has too
    few silent frames to say."""
    if vad is None:
        return None
    quiet = silent_frames(vad, len(windows))
    return _closed_mouth_code(model, windows, [f for f in frames if quiet[f]], MIN_SILENT_FRAMES)


def closed_code(model, windows: torch.Tensor, vad: np.ndarray | None, frames: list[int],
                opening: np.ndarray) -> torch.Tensor | None:
    """(1, A) mean audio code of ``frames`` (the capture's training frames) in speech whose tracked
    ``opening`` (normalised, :func:`nerfhead.dataset.normalised_opening`) shows closed lips, with
    the mouth input of a closed mouth; None for a model without the mouth input or when the capture
    has too few such frames."""
    if model.mouth_track is None:
        return None
    return _closed_mouth_code(model, windows, closed_frames(vad, len(windows), frames, opening), MIN_CLOSED_FRAMES)


def closed_frames(vad: np.ndarray | None, n_frames: int, frames: list[int], opening: np.ndarray) -> list[int]:
    """Those of ``frames`` in speech whose tracked ``opening`` (normalised) shows closed lips."""
    quiet = silent_frames(vad, n_frames)
    return [f for f in frames if not quiet[f] and opening[f] <= CLOSED_OPENING]


def closed_weights(mouth: np.ndarray | None) -> np.ndarray | None:
    """(n,) float32 share of the closed-lips code per frame from the field's mouth input ``mouth``
    (normalised opening asked for): 1 up to ``CLOSED_OPENING``, falling to 0 at twice that."""
    if mouth is None:
        return None
    m = np.asarray(mouth, np.float64)
    return np.clip((2 * CLOSED_OPENING - m) / CLOSED_OPENING, 0.0, 1.0).astype(np.float32)


def blend(codes: torch.Tensor, code: torch.Tensor | None, weights: np.ndarray, dims: int | None = None) -> torch.Tensor:
    """``codes`` (B, A) moved towards ``code`` (1, A) by ``weights`` (B,); only the first ``dims``
    columns (default all), the others kept."""
    if code is None or not np.any(weights):
        return codes
    d = codes.shape[1] if dims is None else dims
    w = torch.from_numpy(np.asarray(weights, np.float32)).to(codes)[:, None]
    return torch.cat([codes[:, :d] * (1 - w) + code[:, :d].to(codes) * w, codes[:, d:]], 1)


@dataclass
class RestCodes:
    """The capture's silence and closed-lips codes, (1, A) each, or None where the capture lacks them."""

    silence: torch.Tensor | None = None
    closed: torch.Tensor | None = None

    def as_dict(self) -> dict:
        return {"silence": self.silence, "closed": self.closed}

    @classmethod
    def from_dict(cls, d: dict) -> "RestCodes":
        return cls(d.get("silence"), d.get("closed"))


def rest_codes(model, windows: torch.Tensor, vad: np.ndarray | None, frames: list[int],
               opening: np.ndarray) -> RestCodes:
    """Both rest codes of a trained ``model`` from its capture: audio feature ``windows`` (n, W, D),
    the 100 Hz speech probability ``vad``, the training ``frames`` and their normalised tracked
    ``opening`` (n,)."""
    was_training = model.training
    model.eval()
    try:
        return RestCodes(silence_code(model, windows, vad, frames), closed_code(model, windows, vad, frames, opening))
    finally:
        model.train(was_training)
