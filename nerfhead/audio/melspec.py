"""Log-mel spectrogram: 80 bins at 100 Hz from 16 kHz audio, frames centred on their time.

Frame ``k`` is centred on sample ``k * 160``, i.e. on time ``k / 100`` s: it sees a 25 ms Hann
window from ``k / 100 - 12.5 ms`` to ``k / 100 + 12.5 ms`` (zeros beyond the ends of the audio).
Power spectrum (FFT 512, scaled so a full-scale sine peaks near 0 dB) -> 80 triangular mel
filters between 20 Hz and 7600 Hz (HTK mel scale, each the weighted mean power of its bins) -> ``log10`` floored at
-10 -> ``(x + 5) / 5``, so digital silence is -1 and normal speech lies roughly in [-1, 1].

>>> import numpy as np
>>> log_mel(np.zeros(16000)).shape
(100, 80)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

RATE = 16000
HOP = 160
WIN = 400
N_FFT = 512
N_MELS = 80
FMIN, FMAX = 20.0, 7600.0
LOG_FLOOR = -10.0


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = RATE,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32 matrix of triangular filters whose weights sum to 1."""
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(up, down))
    empty = fb.sum(axis=1) == 0  # a low band narrower than one FFT bin: use its nearest bin
    fb[empty, np.abs(freqs[None] - centre[empty]).argmin(axis=1)] = 1.0
    fb /= fb.sum(axis=1, keepdims=True)  # each band = mean power over its bins
    return np.ascontiguousarray(fb.T, np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    w = np.hanning(WIN + 1)[:-1]
    return (w / w.sum() * 2.0).astype(np.float32)  # a full-scale sine -> |X| peak ~ 1


def log_mel(samples: np.ndarray, first_centre: int = 0, n_frames: int | None = None) -> np.ndarray:
    """(n_frames, 80) float32 log-mel of frames centred on ``first_centre + 160 * j``.

    ``samples`` are 16 kHz mono float32; positions outside them count as zeros. By default the
    frames are all those centred inside the array: ``ceil(len(samples) / 160)`` from sample 0.
    """
    x = np.asarray(samples, np.float32).reshape(-1)
    if n_frames is None:
        n_frames = -(-x.size // HOP)
    if n_frames <= 0:
        return np.zeros((0, N_MELS), np.float32)
    half = WIN // 2
    lo = first_centre - half
    hi = first_centre + HOP * (n_frames - 1) + half
    pad_l, pad_r = max(0, -lo), max(0, hi - x.size)
    seg = x[max(lo, 0): min(hi, x.size)]
    if pad_l or pad_r:
        seg = np.concatenate([np.zeros(pad_l, np.float32), seg, np.zeros(pad_r, np.float32)])
    frames = np.lib.stride_tricks.as_strided(seg, shape=(n_frames, WIN), strides=(HOP * 4, 4), writeable=False)
    spec = np.fft.rfft(frames * _window(), n=N_FFT, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = power @ mel_filterbank()
    out = np.log10(np.maximum(mel, 10 ** LOG_FLOOR))
    return ((out + 5.0) / 5.0).astype(np.float32)
