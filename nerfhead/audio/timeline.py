"""The speech timeline of a clip at video frame rate: what each 40 ms frame hears.

Audio features run at ``FEATURE_RATE`` (100 Hz, 4 feature frames per video frame); video at
:data:`nerfhead.dataset.FPS`. These helpers put the 100 Hz tracks (voice activity, visemes) and
the samples (loudness) on video frames, and find runs of frames (silences). The render, the
training data, the articulation track and the lip-sync measures all read the timeline from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nerfhead.dataset import FPS

if TYPE_CHECKING:  # pragma: no cover
    from nerfhead.audio.features import AudioFeatures

FEATURE_RATE = 100.0
SAMPLE_RATE = 16000
MIN_SILENT_FRAMES = 5  # 0.2 s: shorter pauses are part of speech


def loudness_db(samples: np.ndarray, n_frames: int, rate: int = SAMPLE_RATE, first_frame: int = 0) -> np.ndarray:
    """(n_frames,) RMS level in dB of each video frame's share of ``samples`` (floor -100 dB);
    ``samples`` start at video frame ``first_frame``'s first sample (a piece of a longer audio)."""
    per = rate / FPS
    base = int(round(first_frame * per))
    out = np.full(n_frames, -100.0)
    for i in range(n_frames):
        seg = samples[int(round((first_frame + i) * per)) - base:int(round((first_frame + i + 1) * per)) - base]
        if seg.size:
            out[i] = 10 * np.log10(max(float(np.mean(seg.astype(np.float64) ** 2)), 1e-10))
    return out


def frame_labels(values: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-video-frame samples of a 100 Hz per-feature-frame array (the value at each frame's time)."""
    idx = np.clip(np.round(np.arange(n_frames) * FEATURE_RATE / FPS).astype(int), 0, len(values) - 1)
    return np.asarray(values)[idx]


def speech_mask(feats: "AudioFeatures", n_frames: int) -> np.ndarray:
    """(n_frames,) True where the voice-activity detector hears speech (everywhere without one)."""
    if feats.vad is None:
        return np.ones(n_frames, bool)
    return frame_labels(feats.vad, n_frames) >= 0.5


def long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` with runs of True shorter than ``min_len`` cleared."""
    mask = np.asarray(mask, bool)
    out = np.zeros_like(mask)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for s, e in zip(edges[::2], edges[1::2]):
        if e - s >= min_len:
            out[s:e] = True
    return out


def silent_runs(speech: np.ndarray, min_frames: int = MIN_SILENT_FRAMES) -> np.ndarray:
    """(n,) bool: frames inside runs of at least ``min_frames`` frames without speech."""
    return long_runs(~np.asarray(speech, bool), min_frames)


def silent_frames(vad: np.ndarray | None, n_frames: int) -> np.ndarray:
    """(n_frames,) bool: frames inside silences of the 100 Hz speech probability ``vad`` (None:
    speech everywhere, no silence)."""
    if vad is None:
        return np.zeros(n_frames, bool)
    return silent_runs(frame_labels(vad, n_frames) >= 0.5)
