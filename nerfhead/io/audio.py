"""Audio decoding to mono float32 at a fixed rate, and 16-bit wav writing."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from nerfhead.errors import InputError
from nerfhead.io.files import atomic_path
from nerfhead.io.media import error_reason, open_media


def iter_audio(path: str | Path, rate: int = 16000, chunk_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield mono float32 chunks of the first audio track, resampled to ``rate``.

    Memory stays flat for long files: chunks of about ``chunk_seconds`` are yielded as they
    are decoded. Raises InputError if the file has no audio track or cannot be decoded.
    """
    with open_media(path) as container:
        if not container.streams.audio:
            raise InputError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        target = int(chunk_seconds * rate)
        pending: list[np.ndarray] = []
        size = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    size += pending[-1].size
                if size >= target:
                    yield np.concatenate(pending).astype(np.float32, copy=False)
                    pending, size = [], 0
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise InputError(f"{path}: audio data is corrupt ({error_reason(exc)})") from None
        if pending:
            yield np.concatenate(pending).astype(np.float32, copy=False)


def load_audio(path: str | Path, rate: int = 16000) -> np.ndarray:
    """Whole first audio track of ``path`` as mono float32 in [-1, 1] at ``rate`` Hz.

    >>> load_audio("missing.wav")
    Traceback (most recent call last):
    ...
    nerfhead.errors.InputError: file not found: missing.wav
    """
    chunks = list(iter_audio(path, rate))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InputError(f"{path}: audio track is empty")
    return samples


def audio_start_offset(path: str | Path) -> float:
    """Seconds by which the first audio sample starts after the first video frame."""
    with open_media(path) as container:
        if not container.streams.audio or not container.streams.video:
            return 0.0
        a, v = container.streams.audio[0], container.streams.video[0]
        ta = float(a.start_time * a.time_base) if a.start_time is not None else 0.0
        tv = float(v.start_time * v.time_base) if v.start_time is not None else 0.0
        return ta - tv


def align_audio(samples: np.ndarray, offset: float, rate: int, duration: float) -> np.ndarray:
    """Shift ``samples`` by ``offset`` seconds and pad/trim to ``duration`` seconds."""
    shift = int(round(offset * rate))
    if shift > 0:
        samples = np.concatenate([np.zeros(shift, samples.dtype), samples])
    elif shift < 0:
        samples = samples[-shift:]
    n = int(round(duration * rate))
    if samples.size < n:
        samples = np.concatenate([samples, np.zeros(n - samples.size, samples.dtype)])
    return samples[:n]


def pcm16(samples: np.ndarray) -> bytes:
    """16-bit little-endian PCM of float ``samples`` in [-1, 1] (clipped), as wav files hold it."""
    return (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def save_wav(path: str | Path, samples: np.ndarray, rate: int = 16000) -> None:
    """Write mono 16-bit PCM wav atomically."""
    pcm = pcm16(samples)
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
