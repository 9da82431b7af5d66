"""Audio in: decode any file to 16 kHz mono, normalise loudness, cut long audio into blocks.

Two streaming passes keep memory flat for long files:

1. :func:`scan_audio` decodes once and keeps only a content hash, the sample count, the peak
   and one RMS value per 10 ms; from these :func:`loudness_gain` picks one gain for the file.
2. :func:`iter_normalized` decodes again and yields the gain-applied chunks;
   :func:`iter_blocks` regroups them into blocks of 8-16 s cut at the quietest 10 ms inside
   that range, each with 1 s of audio before and 0.25 s after as context, so per-block
   features join without seams.

Loudness: the RMS of the *active* 10 ms frames (above -55 dBFS and within 35 dB of the loud
frames) is brought to -23 dBFS, the gain is capped so the peak stays at or below -0.5 dBFS and
at +40 dB, and a file without active frames keeps gain 1 (pure silence stays silence).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from nerfhead.errors import InputError
from nerfhead.io.audio import iter_audio

RATE = 16000
HOP = 160  # samples per 10 ms feature frame
TARGET_DBFS = -23.0
PEAK_LIMIT = 10 ** (-0.5 / 20)
MAX_GAIN_DB = 40.0
ACTIVE_FLOOR_DBFS = -55.0
ACTIVE_RANGE_DB = 35.0


@dataclass(frozen=True)
class AudioScan:
    """What the first pass learns about a file."""

    path: str
    n_samples: int
    sha256: str  # of the decoded 16 kHz mono float32 samples (before normalisation)
    peak: float
    gain: float  # linear gain that :func:`iter_normalized` applies

    @property
    def duration(self) -> float:
        return self.n_samples / RATE

    @property
    def gain_db(self) -> float:
        return 20.0 * float(np.log10(self.gain))


def scan_audio(path: str | Path) -> AudioScan:
    """Decode ``path`` once (streaming) and return its hash, length, peak and loudness gain.

    Raises InputError for missing, corrupt, empty or audio-less files.
    """
    sha = hashlib.sha256()
    n = 0
    peak = 0.0
    frame_ms: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)
    for chunk in iter_audio(path, RATE):
        chunk = np.ascontiguousarray(chunk, np.float32)
        if not np.all(np.isfinite(chunk)):
            chunk = np.nan_to_num(chunk, nan=0.0, posinf=1.0, neginf=-1.0)
        sha.update(chunk.tobytes())
        n += chunk.size
        if chunk.size:
            peak = max(peak, float(np.abs(chunk).max()))
        buf = np.concatenate([carry, chunk])
        whole = buf.size // HOP * HOP
        frame_ms.append(np.mean(buf[:whole].reshape(-1, HOP).astype(np.float64) ** 2, axis=1))
        carry = buf[whole:]
    if carry.size:
        frame_ms.append(np.array([np.mean(carry.astype(np.float64) ** 2)]))
    if n == 0:
        raise InputError(f"{path}: audio track is empty")
    ms = np.concatenate(frame_ms) if frame_ms else np.zeros(0)
    return AudioScan(path=str(path), n_samples=n, sha256=sha.hexdigest(), peak=peak, gain=loudness_gain(ms, peak))


def loudness_gain(frame_ms: np.ndarray, peak: float) -> float:
    """Linear gain bringing the active frames' RMS to TARGET_DBFS (see module docstring).

    >>> loudness_gain(np.zeros(100), 0.0)
    1.0
    >>> round(20 * np.log10(loudness_gain(np.full(100, 10 ** (-43 / 10)), 0.01)), 1)
    20.0
    """
    frame_ms = np.asarray(frame_ms, np.float64)
    if frame_ms.size == 0 or peak <= 0:
        return 1.0
    db = 10.0 * np.log10(np.maximum(frame_ms, 1e-20))
    loud = np.percentile(db, 95)
    active = (db > ACTIVE_FLOOR_DBFS) & (db > loud - ACTIVE_RANGE_DB)
    if not active.any():
        return 1.0
    level = 10.0 * np.log10(frame_ms[active].mean())
    gain_db = min(TARGET_DBFS - level, MAX_GAIN_DB)
    gain = min(10 ** (gain_db / 20.0), PEAK_LIMIT / peak)
    return float(gain)


def iter_normalized(path: str | Path, gain: float, chunk_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Second pass: 16 kHz mono float32 chunks of ``path`` multiplied by ``gain``."""
    for chunk in iter_audio(path, RATE, chunk_seconds=chunk_seconds):
        chunk = np.nan_to_num(np.asarray(chunk, np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        yield np.clip(chunk * np.float32(gain), -1.0, 1.0)


def load_normalized(path: str | Path) -> tuple[np.ndarray, AudioScan]:
    """Whole file as loudness-normalised 16 kHz mono float32, with its scan."""
    scan = scan_audio(path)
    return np.concatenate(list(iter_normalized(path, scan.gain))), scan


@dataclass
class Block:
    """A piece of the audio with context: ``samples[left:left + core]`` is the block itself."""

    samples: np.ndarray
    start: int  # absolute index of the first core sample (a multiple of HOP)
    left: int
    core: int

    @property
    def first_frame(self) -> int:
        return self.start // HOP

    @property
    def n_frames(self) -> int:
        """Feature frames whose centre (k * HOP) lies inside the core."""
        return -(-(self.start + self.core) // HOP) - self.first_frame

    @property
    def core_samples(self) -> np.ndarray:
        return self.samples[self.left:self.left + self.core]


def iter_blocks(chunks: Iterable[np.ndarray], min_seconds: float = 8.0, max_seconds: float = 16.0,
                left_seconds: float = 1.0, right_seconds: float = 0.25) -> Iterator[Block]:
    """Regroup a stream of sample chunks into :class:`Block` s cut at quiet points.

    Cuts fall on multiples of HOP samples, at the 10 ms frame of least energy (smoothed over
    50 ms) between ``min_seconds`` and ``max_seconds`` into the block; the result depends only
    on the samples, not on how they were chunked.
    """
    lo, hi = int(min_seconds * RATE) // HOP * HOP, int(max_seconds * RATE) // HOP * HOP
    left_n, right_n = int(left_seconds * RATE), int(right_seconds * RATE)
    buf = np.zeros(0, np.float32)
    buf_start = 0  # absolute index of buf[0]
    core_start = 0
    for chunk in chunks:
        buf = np.concatenate([buf, np.asarray(chunk, np.float32)])
        while buf_start + buf.size - core_start >= hi + right_n:
            rel = core_start - buf_start
            # 10 ms frames from 2 frames before the earliest cut to 2 after the latest
            region = buf[rel + lo - 2 * HOP: rel + hi + 3 * HOP]
            frames = region[: region.size // HOP * HOP].reshape(-1, HOP).astype(np.float64)
            energy = np.convolve((frames ** 2).sum(axis=1), np.ones(5), mode="same")
            cand = np.arange(2, 2 + (hi - lo) // HOP + 1)  # cut just before region frame k
            k = int(cand[np.argmin(energy[np.minimum(cand, energy.size - 1)])])
            cut = core_start + lo + (k - 2) * HOP
            yield _make_block(buf, buf_start, core_start, cut, left_n, right_n)
            core_start = cut
            drop = max(0, core_start - left_n - buf_start)
            buf, buf_start = buf[drop:], buf_start + drop
    end = buf_start + buf.size
    if end > core_start or core_start == 0:
        yield _make_block(buf, buf_start, core_start, end, left_n, right_n)


def _make_block(buf: np.ndarray, buf_start: int, core_start: int, cut: int, left_n: int, right_n: int) -> Block:
    a = max(buf_start, core_start - left_n)
    b = min(buf_start + buf.size, cut + right_n)
    return Block(samples=buf[a - buf_start: b - buf_start].copy(), start=core_start, left=core_start - a,
                 core=cut - core_start)
