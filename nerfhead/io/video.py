"""Video decoding normalised to a fixed frame rate, and H.264 + AAC mp4 encoding.

Decoding follows presentation timestamps, so variable-frame-rate captures are resampled
correctly: output frame ``i`` shows the source frame nearest to time ``i / fps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from nerfhead.errors import InputError
from nerfhead.io.files import atomic_path
from nerfhead.io.media import error_reason, is_image_container, open_media


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    source_fps: float
    duration: float  # seconds, from the first to one frame past the last video frame
    has_audio: bool
    audio_rate: int | None
    codec: str
    frames_in_header: int = 0  # the video stream's frame count as the container states it (0: unknown)
    audio_duration: float | None = None  # seconds of the first audio stream, where the container says

    def n_frames(self, fps: float) -> int:
        return max(1, int(round(self.duration * fps)))


def probe_video(path: str | Path, min_duration: float = 0.0) -> VideoInfo:
    """Describe a video file; raise InputError if it is not a usable video.

    ``min_duration`` (seconds) rejects stills and clips too short to be a capture.
    """
    with open_media(path) as container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream")
        if is_image_container(container):
            raise InputError(f"{path} is a still image, not a video")
        vs = container.streams.video[0]
        rate = float(vs.average_rate or vs.guessed_rate or 25)
        duration = _duration(container, vs, rate)
        audio = container.streams.audio[0] if container.streams.audio else None
        info = VideoInfo(
            path=str(path),
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            source_fps=rate,
            duration=duration,
            has_audio=audio is not None,
            audio_rate=audio.rate if audio is not None else None,
            codec=vs.codec_context.name,
            frames_in_header=int(vs.frames or 0),
            audio_duration=float(audio.duration * audio.time_base) if audio is not None and audio.duration else None,
        )
    if info.width <= 0 or info.height <= 0:
        raise InputError(f"{path}: video stream has no frames")
    if info.duration < min_duration:
        raise InputError(f"{path} is {info.duration:.2f} s long; a capture needs at least {min_duration:g} s of video")
    return info


def _duration(container, vs, rate: float) -> float:
    if vs.duration is not None and vs.time_base is not None:
        return float(vs.duration * vs.time_base)
    if vs.frames:
        return vs.frames / rate
    if container.duration is not None:
        return container.duration / av.time_base
    # Unknown: count frames (cheap for short files, needed for some raw streams).
    n = sum(1 for _ in container.decode(video=0))
    container.seek(0)
    return n / rate


def iter_frames(path: str | Path, fps: float = 25.0, start: int = 0) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames (H, W, 3) resampled to ``fps`` by presentation time, from output
    frame ``start`` on (a seek to the keyframe before it, then decoding up to it).

    Exactly ``probe_video(path).n_frames(fps) - start`` frames are yielded.
    """
    with open_media(path) as container:
        stream = _VideoStream(path, container, fps)
        yield from stream.frames(start)


class _VideoStream:
    """The first video stream of an open container, decoded from any output frame on."""

    def __init__(self, path: str | Path, container, fps: float) -> None:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream")
        self.path, self.container, self.fps = path, container, fps
        self.vs = container.streams.video[0]
        self.vs.thread_type = "AUTO"
        self.src_rate = float(self.vs.average_rate or self.vs.guessed_rate or fps)
        self.total = max(1, int(round(_duration(container, self.vs, self.src_rate) * fps)))
        self._t0: float | None = None
        self._used = False  # decoded from before: a read from frame 0 must seek back

    def _first_time(self) -> float:
        if self._t0 is None:
            if self._used:
                self.container.seek(0, stream=self.vs)
            self._used = True
            decoded = self.container.decode(self.vs)
            first = next(decoded, None)
            decoded.close()
            self._t0 = first.time if first is not None and first.time is not None else 0.0
        return self._t0

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Output frames ``start .. total - 1``."""
        try:
            t0 = None
            if start > 0:
                t0 = self._first_time()
                target = t0 + (start - 0.5) / self.fps
                self.container.seek(max(0, int(target / self.vs.time_base)), stream=self.vs, backward=True,
                                    any_frame=False)
            elif self._used:  # decoded before: back to the start
                self.container.seek(0, stream=self.vs)
            self._used = True
            yield from _resampled(self.path, self.container.decode(self.vs), self.fps, self.src_rate, self.total,
                                  t0, start)
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: video data is corrupt ({error_reason(exc)})") from None


def _resampled(path, decoded, fps: float, src_rate: float, total: int, t0: float | None,
               start: int) -> Iterator[np.ndarray]:
    """Output frames ``start .. total - 1``: each the decoded frame nearest its time ``i / fps``
    (times counted from ``t0``, default the first decoded frame's)."""
    out_i = start
    prev_t = prev_img = None
    for k, frame in enumerate(decoded):
        t = frame.time if frame.time is not None else k / src_rate
        if t0 is None:
            t0 = t
        t -= t0
        img = _to_rgb(frame)
        if prev_img is not None:
            midpoint = 0.5 * (prev_t + t)
            while out_i < total and out_i / fps < midpoint - 1e-9:
                yield prev_img
                out_i += 1
        prev_t, prev_img = t, img
        if out_i >= total:
            break
    if prev_img is None:
        raise InputError(f"{path}: video stream has no decodable frames")
    while out_i < total:
        yield prev_img
        out_i += 1


class FrameReader:
    """The frames of a video at ``fps`` by index, in any order, with flat memory.

    Reads ahead of the last one decode on; a read behind it (a video replayed backwards) decodes
    the ``window`` frames up to it from the keyframe before them and keeps them, so playing
    backwards costs one seek per ``window`` frames.
    """

    def __init__(self, path: str | Path, fps: float, window: int = 16) -> None:
        self.path, self.fps, self.window = Path(path), fps, window
        self._kept: dict[int, np.ndarray] = {}
        self._stream: Iterator[np.ndarray] | None = None
        self._next = 0  # index the stream yields next
        self._open = open_media(path)
        try:
            self._video = _VideoStream(path, self._open.__enter__(), fps)
        except BaseException:
            self._open.__exit__(None, None, None)
            raise
        self.n = self._video.total

    @property
    def kept(self) -> int:
        """How many decoded frames are held (at most ``window``)."""
        return len(self._kept)

    def __len__(self) -> int:
        return self.n

    def _restart(self, start: int) -> None:
        if self._stream is not None:
            self._stream.close()
        self._kept.clear()
        self._stream, self._next = self._video.frames(start), start

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n:
            raise IndexError(f"frame {i} of a {self.n}-frame video")
        if i in self._kept:
            return self._kept[i]
        if self._stream is None or i < self._next or i > self._next + 4 * self.window:
            self._restart(max(0, i - self.window + 1))
        while self._next <= i:
            frame = next(self._stream)
            self._kept[self._next] = frame
            self._next += 1
            for old in [k for k in self._kept if k <= self._next - 1 - self.window]:
                del self._kept[old]
        return self._kept[i]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._open is not None:
            self._open.__exit__(None, None, None)
            self._open = None

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    img = frame.to_ndarray(format="rgb24")
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    if rotation:
        # Display matrix rotation is counter-clockwise in degrees.
        img = np.ascontiguousarray(np.rot90(img, k=rotation // 90))
    return img


class VideoWriter:
    """Stream frames (and optionally mono audio) into an H.264 + AAC mp4, atomically.

    The file appears at ``path`` only after :meth:`close`; on an exception inside a
    ``with`` block nothing is left behind.

    >>> import tempfile, numpy as np, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.mp4"
    >>> with VideoWriter(out, fps=25, size=(64, 48), audio_rate=16000) as w:
    ...     w.write(np.zeros((48, 64, 3), np.uint8), np.zeros(640, np.float32))
    >>> out.exists()
    True
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_rate: int | None = None,
                 crf: int = 18, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        width, height = size
        self._container = av.open(str(tmp), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width = width + (width % 2)
        self._video.height = height + (height % 2)
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio = None
        self._audio_pts = 0
        if audio_rate:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "mono"
            self._audio_rate = audio_rate
        self._closed = False

    def write(self, frame: np.ndarray, audio: np.ndarray | None = None) -> None:
        """Append one RGB uint8 frame and, if given, the audio samples that play with it."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        h, w = self._video.height, self._video.width
        if frame.shape[:2] != (h, w):
            frame = np.pad(frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._video.encode(vf):
            self._container.mux(packet)
        if audio is not None and self._audio is not None:
            self.write_audio(audio)

    def write_audio(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(1, -1)
        if samples.shape[1] == 0:
            return
        af = av.AudioFrame.from_ndarray(np.clip(samples, -1, 1), format="fltp", layout="mono")
        af.sample_rate = self._audio_rate
        af.pts = self._audio_pts
        af.time_base = Fraction(1, self._audio_rate)
        self._audio_pts += samples.shape[1]
        for packet in self._audio.encode(af):
            self._container.mux(packet)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            for packet in self._audio.encode(None):
                self._container.mux(packet)
        self._container.close()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the file is being discarded anyway
            pass
        try:
            self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames, audio: np.ndarray | None = None, fps: float = 25.0,
                audio_rate: int = 16000) -> Path:
    """Write an iterable of RGB frames (and mono audio played from frame 0) as an mp4."""
    writer = None
    per = audio_rate / fps
    try:
        for i, frame in enumerate(frames):
            if writer is None:
                writer = VideoWriter(path, fps, (frame.shape[1], frame.shape[0]),
                                     audio_rate if audio is not None else None)
            chunk = None if audio is None else audio[int(round(i * per)):int(round((i + 1) * per))]
            writer.write(frame, chunk)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError("write_video needs at least one frame")
    writer.close()
    return Path(path)


def frame_count(path: str | Path, fps: float = 25.0) -> int:
    """Number of frames :func:`iter_frames` yields for ``path`` (from its duration)."""
    return probe_video(path).n_frames(fps)


def sample_indices(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices in ``range(n)`` (all of them if ``k >= n``)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


__all__ = ["FrameReader", "VideoInfo", "VideoWriter", "frame_count", "iter_frames", "probe_video", "sample_indices", "write_video"]
