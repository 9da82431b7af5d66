"""Lips-closed detector: finds /p b m/ (viseme 1) that phone recognition missed.

The bundled en-us phone recogniser hears about half of the bilabials of espeak-ng speech as
something else (/b/ as /v/ or /dh/, an utterance-initial /m/ as silence). Their acoustics are
plain, though: a stop's closure (energy gone above ~500 Hz) ending in a burst, or a nasal murmur
(low-frequency energy, weak high bands) between vowels. A tiny network reads that from the
log-mel features around each frame (20 bands at 13 frames from -100 to +100 ms, each frame's
loudness relative to the centre one, and the recogniser's visemes at -30, 0, +30 ms; a 302-32-16-1
network) and gives the probability that the lips are closed at the frame.
Where that probability peaks above :data:`THRESHOLD`, the frames around the peak become
viseme 1; everything else keeps the recogniser's label.

The weights (``bilabial.npz``, 10,845 numbers, 23 kB) were trained by
``tools/train_bilabial.py`` on forced-alignment labels of espeak-ng speech of sentences and
random word strings; the sentences used to measure it are not among them (docs/AUDIO.md).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from nerfhead.audio.visemes import N_VISEMES

#: context frames read around each frame (100 Hz)
OFFSETS = (-10, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 10)
PAD = max(abs(o) for o in OFFSETS)
N_BANDS = 20  # 80 mel bands averaged in groups of 4
VIS_OFFSETS = (-3, 0, 3)
THRESHOLD = 0.8  # chosen for a plausible closure rate on real speech (docs/AUDIO.md)
WEIGHTS = Path(__file__).with_name("bilabial.npz")


def inputs(mel: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Network inputs for the ``len(ids)`` frames of ``mel[PAD:-PAD]``.

    ``mel`` is the scaled log-mel (:func:`nerfhead.audio.melspec.log_mel`) with ``PAD`` frames
    of context on both sides; ``ids`` the recogniser's viseme ids of the middle frames.
    """
    n = len(ids)
    mel = np.asarray(mel, np.float32)
    assert mel.shape[0] == n + 2 * PAD, (mel.shape, n)
    bands = mel.reshape(mel.shape[0], N_BANDS, -1).mean(axis=2)
    # loudness of each frame relative to its neighbourhood: a closure is a dip, whatever the level
    energy = bands.max(axis=1)
    cols = [bands[PAD + o:PAD + o + n] for o in OFFSETS]
    cols += [(energy[PAD + o:PAD + o + n] - energy[PAD:PAD + n])[:, None] for o in OFFSETS if o]
    onehot = np.eye(N_VISEMES, dtype=np.float32)[np.asarray(ids, np.int64)]
    padded = np.concatenate([np.repeat(onehot[:1], PAD, 0), onehot, np.repeat(onehot[-1:], PAD, 0)]) if n else onehot
    cols += [padded[PAD + o:PAD + o + n] for o in VIS_OFFSETS]
    return np.concatenate(cols, axis=1).astype(np.float32)


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS) as f:
        return {k: f[k].astype(np.float32) for k in f.files}


def probability(mel: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(n,) probability that the lips are closed at each frame (see :func:`inputs`)."""
    if len(ids) == 0:
        return np.zeros(0, np.float32)
    w = _weights()
    h = (inputs(mel, ids) - w["mean"]) / w["std"]
    h = np.maximum(h @ w["w1"] + w["b1"], 0.0)
    h = np.maximum(h @ w["w2"] + w["b2"], 0.0)
    z = (h @ w["w3"] + w["b3"])[:, 0]
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


def closures(p: np.ndarray, threshold: float = THRESHOLD, max_half: int = 5) -> list[tuple[int, int]]:
    """Inclusive frame spans of lips-closed events: around each local peak of ``p`` at or above
    ``threshold``, the frames where ``p`` stays above half the peak (at most ``max_half`` each side)."""
    n = len(p)
    if n == 0:
        return []
    ps = np.convolve(np.pad(p, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    spans = []
    above = ps >= threshold
    k = 0
    while k < n:
        if not above[k]:
            k += 1
            continue
        j = k
        while j + 1 < n and above[j + 1]:
            j += 1
        peak = k + int(np.argmax(ps[k:j + 1]))
        half = ps[peak] / 2
        a = peak
        while a > 0 and peak - a < max_half and ps[a - 1] >= half:
            a -= 1
        b = peak
        while b + 1 < n and b - peak < max_half and ps[b + 1] >= half:
            b += 1
        spans.append((a, b))
        k = j + 1
    return spans


def refine(mel: np.ndarray, ids: np.ndarray, speech_mask: np.ndarray | None = None) -> np.ndarray:
    """Viseme ids with the detected lips-closed events set to 1 (a new array).

    ``mel`` has ``PAD`` context frames on both sides of the ``len(ids)`` frames; frames where
    ``speech_mask`` is False (e.g. digital silence) are never relabelled.
    """
    ids = np.asarray(ids, np.int8)
    out = ids.copy()
    for a, b in closures(probability(mel, ids)):
        out[a:b + 1] = 1
    if speech_mask is not None:
        out[~speech_mask] = ids[~speech_mask]
    return out
