"""Voice activity: silero-vad's bundled model, speech probability per 100 Hz frame.

The TorchScript model ships inside the silero-vad package (``silero_vad/data/silero_vad.jit``);
it is read with ``torch.jit.load`` directly. Importing ``silero_vad`` itself is avoided on
purpose: its import calls ``torch.set_num_threads(1)`` for the whole process, which would slow
everything else down. torchaudio is not needed.

The model scores 32 ms windows (512 samples) with a recurrent state. To use both cores' SIMD
lanes well the audio is scored as a batch of 3 s rows, each preceded by 1 s of the audio before
it to warm the state up (on eng.wav 1 % of frames land on the other side of 0.5 than one
sequential pass, at 4x the speed); window ``w`` covers samples ``[512 w, 512 w + 512)`` and its
probability is placed at the window's centre and interpolated linearly to the feature frame
times ``k / 100`` s.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from nerfhead.errors import NerfheadError
from nerfhead.threads import torch_threads

RATE = 16000
HOP = 160
WINDOW = 512
ROW_WINDOWS = 94  # 3 s per batch row
WARM_WINDOWS = 32  # 1 s of warm-up before each row


def model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise NerfheadError("silero-vad is not installed: run `make install`")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.jit"
    if not path.is_file():
        raise NerfheadError(f"silero-vad's bundled model is missing ({path}): reinstall silero-vad")
    return path


@lru_cache(maxsize=1)
def _model():
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.13 marks torch.jit.load deprecated; the model ships as TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(model_path()), map_location="cpu")
    model.eval()
    return model


def window_probs(samples: np.ndarray) -> np.ndarray:
    """Speech probability of each 512-sample window of ``samples`` (16 kHz mono float32)."""
    import torch

    x = np.asarray(samples, np.float32).reshape(-1)
    n = -(-x.size // WINDOW)
    if n == 0:
        return np.zeros(0, np.float32)
    rows = -(-n // ROW_WINDOWS)
    warm = WARM_WINDOWS * WINDOW
    row_len = ROW_WINDOWS * WINDOW
    padded = np.zeros(warm + rows * row_len, np.float32)
    padded[warm: warm + x.size] = x
    batch = np.lib.stride_tricks.as_strided(padded, shape=(rows, warm + row_len), strides=(row_len * 4, 4))
    # The model is small and sequential: one thread is fastest and leaves the other core free.
    with torch_threads(1), torch.inference_mode():
        out = _model().audio_forward(torch.from_numpy(np.ascontiguousarray(batch)), RATE)
    return out[:, WARM_WINDOWS:].reshape(-1)[:n].numpy().astype(np.float32)


def vad_frames(samples: np.ndarray, first_centre: int = 0, n_frames: int | None = None,
               origin: int = 0) -> np.ndarray:
    """Speech probability at the feature frames centred on ``first_centre + 160 * j``.

    ``origin`` is the sample index (in the same coordinates) where ``samples`` begins; by
    default all frames centred inside ``samples`` are returned.
    """
    x = np.asarray(samples, np.float32).reshape(-1)
    if n_frames is None:
        n_frames = -(-x.size // HOP)
    probs = window_probs(x)
    if probs.size == 0 or n_frames <= 0:
        return np.zeros(max(n_frames, 0), np.float32)
    centres = origin + np.arange(probs.size) * WINDOW + WINDOW / 2
    t = first_centre + HOP * np.arange(n_frames)
    return np.interp(t, centres, probs).astype(np.float32)

