"""Video IO: frame-rate normalisation by timestamps (VFR too) and H.264 + AAC muxing."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio
from nerfhead.io.video import FrameReader, iter_frames, probe_video, write_video


def _coded(value: int) -> np.ndarray:
    """A 64x64 frame whose brightness encodes ``value`` in 0..35 (robust to compression)."""
    return np.full((64, 64, 3), 20 + 6 * value, np.uint8)


def _decode_value(frame: np.ndarray) -> int:
    return int(round((frame.mean() - 20) / 6))


def _write_timed(path, times_s):
    """mp4 whose i-th frame (value i) is shown at times_s[i] seconds (variable frame rate)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"crf": "10"}
        for i, t in enumerate(times_s):
            f = av.VideoFrame.from_ndarray(_coded(i), format="rgb24")
            f.pts = int(round(t * 1000))
            f.time_base = Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_variable_frame_rate_follows_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    gaps = rng.choice([1 / 60, 1 / 30, 1 / 15, 0.1], size=22)
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    path = tmp_path / "vfr.mp4"
    _write_timed(path, times)
    out = [_decode_value(f) for f in iter_frames(path, fps=25)]
    assert len(out) == probe_video(path).n_frames(25)
    for i, got in enumerate(out):
        t = i / 25
        nearest = int(np.argmin(np.abs(times - t)))
        # ties between two source frames may go either way
        ok = {nearest} | {j for j in range(len(times)) if abs(abs(times[j] - t) - abs(times[nearest] - t)) < 1e-3}
        assert got in ok, (i, t, got, nearest)


def test_thirty_fps_to_twenty_five(tmp_path):
    path = tmp_path / "30.mp4"
    _write_timed(path, np.arange(30) / 30)  # 1 s at 30 fps
    out = [_decode_value(f) for f in iter_frames(path, fps=25)]
    assert len(out) == 25
    assert out == [int(round(i * 30 / 25)) for i in range(25)]


def test_writer_muxes_audio_of_equal_duration(tmp_path):
    rate, fps, n = 16000, 25, 60
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n * rate // fps) / rate)).astype(np.float32)
    path = write_video(tmp_path / "av.mp4", [_coded(i % 20) for i in range(n)], tone, fps=fps, audio_rate=rate)
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        v_dur = float(v.duration * v.time_base)
        a_dur = float(a.duration * a.time_base)
    assert abs(v_dur - n / fps) < 1e-6
    assert abs(a_dur - v_dur) <= 1 / fps + 0.03  # AAC adds at most one codec frame (64 ms at 16 kHz)
    back = load_audio(path)
    assert abs(back.size / rate - n / fps) < 1 / fps + 0.07
    assert 0.15 < np.sqrt(np.mean(back ** 2)) < 0.25  # the tone survives (RMS 0.21)
    assert [_decode_value(f) for f in iter_frames(path)] == [i % 20 for i in range(n)]


def test_writer_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "broken.mp4"

    def frames():
        yield _coded(1)
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        write_video(target, frames())
    assert list(tmp_path.iterdir()) == []


def test_audio_of_video_without_audio(tmp_path):
    path = write_video(tmp_path / "silent.mp4", [_coded(0)] * 10)
    with pytest.raises(InputError, match="no audio track"):
        load_audio(path)


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_frame_reader_any_order_equals_a_straight_decode(sample_capture, fps):
    """Backwards, forwards, jumps: every frame is the one a straight decode gives (the shipped
    sample, 25 fps, also read at 30 fps), with at most a window of frames kept."""
    straight = list(iter_frames(sample_capture, fps))
    n = len(straight)
    order = list(range(0, 40)) + [5] + list(range(n - 1, n - 80, -1)) + list(range(0, 40)) + [n // 2, 3, n - 1]
    with FrameReader(sample_capture, fps, window=16) as reader:
        assert len(reader) == n
        for i in order:
            assert np.array_equal(reader[i], straight[i]), i
            assert reader.kept <= 16
        with pytest.raises(IndexError):
            reader[n]
    starts = list(iter_frames(sample_capture, fps, start=n - 5))
    assert len(starts) == 5 and all(np.array_equal(a, b) for a, b in zip(starts, straight[-5:]))
