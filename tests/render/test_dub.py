"""`nerfhead dub`: another video of the presenter keeps its resolution, frame rate and every pixel
outside the lower face; the new audio replaces the old; bad input gives one line and exit 2."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from nerfhead.avatar.portrait import lower_face_mask
from nerfhead.capture.landmarks import FaceMeshTracker
from nerfhead.cli import app
from nerfhead.io.audio import load_audio
from nerfhead.io.video import FrameReader, iter_frames, probe_video, write_video
from nerfhead.quality import psnr
from nerfhead.render.dub import dub_video, locate_crop, lower_face_inside


def _wav(path, seconds, rate=16000):
    """Speech-like audio: the sample capture's own speech would do, but a file of known length is
    the point here (a 220 Hz tone with syllable-rate loudness changes)."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype(np.int16).tobytes())
    return path


def _clip(src, out, seconds, fps=25.0, size=None, blank=()):
    """The last ``seconds`` of ``src`` at ``fps``, pillarboxed into ``size`` (W, H) when given,
    frames ``blank`` replaced by grey (no face), with the source's audio."""
    n = probe_video(src).n_frames(fps)
    first = n - int(round(seconds * fps))
    audio = load_audio(src, 16000)[int(first / fps * 16000):]

    def frames():
        for k, img in enumerate(iter_frames(src, fps, start=first)):
            if size is not None:
                w, h = size
                s = min(w / img.shape[1], h / img.shape[0])
                img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
                canvas = np.full((h, w, 3), 16, np.uint8)
                y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
                canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
                img = canvas
            yield np.full_like(img, 128) if k in blank else img

    return write_video(out, frames(), audio, fps=fps, audio_rate=16000)


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _outside_mask_psnr(a_path, b_path, fps, frames):
    """PSNR of ``b`` against ``a`` outside ``a``'s lower-face mask (grown by 4 px), per frame."""
    out = []
    with FrameReader(a_path, fps) as a, FrameReader(b_path, fps) as b, FaceMeshTracker(video=False) as tracker:
        for i in frames:
            real = a[i]
            lms = tracker(real)
            keep = lower_face_mask(lms, real.shape) == 0
            keep = cv2.erode(keep.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            out.append(psnr(real[keep][None], b[i][keep][None]))
    return out


def test_dub_a_30fps_pillarboxed_take_with_longer_audio(trained_sample, sample_capture, tmp_path):
    """2 s of the sample at 30 fps inside a 640x480 frame, dubbed with 3 s of audio: the video replays
    forwards then backwards; size, rate and length follow the video and the audio; outside the
    lower face the frames are the video's (>= 40 dB after H.264 both ways)."""
    clip = _clip(sample_capture, tmp_path / "take.mp4", 2.0, fps=30.0, size=(640, 480))
    out = tmp_path / "dubbed.mp4"
    r = dub_video(trained_sample.name, clip, out, audio=_wav(tmp_path / "new.wav", 3.0),
                  root=trained_sample.root.parent)
    info = probe_video(out)
    assert (info.width, info.height) == (640, 480) and abs(info.source_fps - 30.0) < 1e-6
    assert r.frames == 90 and r.replayed and r.passthrough == 0 and not r.warnings, r
    frames = list(iter_frames(out, 30.0))
    assert len(frames) == 90
    assert abs(info.audio_duration - 3.0) <= 0.05, info
    # outside the mask: the video's own pixels, forwards (frames 10, 40) and replayed backwards
    # (output frame 70 shows source frame 48: 59 forwards, then 58, 57, ...)
    assert min(_outside_mask_psnr(clip, out, 30.0, [10, 40])) >= 40.0
    with FrameReader(clip, 30.0) as src, FaceMeshTracker(video=False) as tracker:
        real = src[48]
        keep = cv2.erode((lower_face_mask(tracker(real), real.shape) == 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert psnr(real[keep][None], frames[70][keep][None]) >= 40.0
        assert psnr(src[48], frames[70]) > psnr(src[10], frames[70]) + 5
    # inside the mask something changed (the lower face is rendered)
    with FaceMeshTracker(video=False) as tracker, FrameReader(clip, 30.0) as src:
        real = src[10]
        mask = lower_face_mask(tracker(real), real.shape) > 0.5
        assert np.abs(real[mask].astype(int) - frames[10][mask].astype(int)).mean() > 1.0


def test_frames_without_a_face_pass_through(trained_sample, sample_capture, tmp_path):
    """A 20-frame take with 3 faceless frames and audio of 1.6 s (40 frames): forwards, then
    backwards from frame 18; the faceless frames pass through both ways, counted."""
    clip = _clip(sample_capture, tmp_path / "take.mp4", 0.8, blank={5, 6, 7})
    out = tmp_path / "dubbed.mp4"
    r = dub_video(trained_sample.name, clip, out, audio=_wav(tmp_path / "new.wav", 1.6),
                  root=trained_sample.root.parent)
    assert r.frames == 40 and r.replayed and r.passthrough == 6  # frames 5-7 forwards and 7-5 backwards
    assert any("no face in 6 of 40" in w for w in r.warnings)
    dubbed = list(iter_frames(out))
    assert len(dubbed) == 40
    for j in (6, 32):  # source frame 6 forwards; backwards 19 + (19 - 6) - 1 = 32 (18, 17, ... from 20)
        assert np.abs(dubbed[j].astype(int) - 128).mean() < 1.0  # the grey frame, unchanged


def _face(cx, cy, height, n=5):
    """Landmarks of a face ``height`` px tall centred at (cx, cy): the 478 points spread evenly
    over a box (so their median is its centre and their extent its height)."""
    pts = np.zeros((n, 478, 3))
    spread = np.linspace(-0.5, 0.5, 478)
    pts[..., 0] = cx + 0.8 * height * spread[::-1]
    pts[..., 1] = cy + height * spread
    return pts


def test_locate_crop_keeps_the_capture_face_size_and_stays_inside_the_video():
    capture = _face(256, 215, 170)  # a 512 px capture: face 170 px tall, centred at (256, 215)
    crop = locate_crop(_face(960, 450, 340), (1080, 1920), capture, (512, 512))  # twice the size
    assert (crop.width, crop.height) == (1024, 1024) and crop.scale == 0.5
    assert (crop.x0, crop.y0) == (960 - 512, 450 - 430)
    assert locate_crop(_face(960, 500, 340), (1080, 1920), capture, (512, 512)).y0 == 1080 - 1024  # clipped
    # near the left edge: clipped into the video, the face off its usual place
    crop = locate_crop(_face(100, 500, 340), (1080, 1920), capture, (512, 512))
    assert crop.x0 == 0 and crop.width == 1024
    # a video smaller than the crop would be: the largest square that fits
    crop = locate_crop(_face(200, 150, 200), (300, 400), capture, (512, 512))
    assert crop.height == 300 and crop.width == 300 and 0 <= crop.x0 <= 100 and crop.y0 == 0
    # the lower face leaving the crop is found
    lms = np.stack([_face(256, 215, 170, 1)[0], _face(256, 500, 170, 1)[0]])
    assert lower_face_inside(lms, (512, 512)).tolist() == [True, False]


def test_another_persons_video_gets_a_warning(trained_sample, shared_data, tmp_path):
    """A different presenter (a development clip) is dubbed but warned about."""
    out = tmp_path / "other.mp4"
    r = dub_video(trained_sample.name, shared_data / "clips" / "suit_brick_700_30fps.mp4", out,
                  audio=_wav(tmp_path / "new.wav", 0.5), root=trained_sample.root.parent)
    assert out.is_file() and any("another person" in w for w in r.warnings), r.warnings


def test_no_loop_refuses_audio_longer_than_the_video(trained_sample, sample_capture, tmp_path):
    clip = _clip(sample_capture, tmp_path / "take.mp4", 1.0)
    out = tmp_path / "x.mp4"
    res = _cli("dub", trained_sample.name, clip, "--audio", _wav(tmp_path / "long.wav", 2.0), "-o", out,
               "--no-loop", "--root", trained_sample.root.parent)
    assert res.exit_code == 2 and "longer than the video" in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()


def _unwritable_dir(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere on disk; sysfs refuses even root
        return Path("/sys")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d


@pytest.mark.parametrize("case", ["no face", "audio missing", "audio corrupt", "output not writable", "image",
                                  "text file as video", "own voice of a script"])
def test_bad_input_to_dub_is_one_line(case, trained_sample, sample_capture, tmp_path):
    name, root = trained_sample.name, trained_sample.root.parent
    audio = _wav(tmp_path / "ok.wav", 1.0)
    video = _clip(sample_capture, tmp_path / "take.mp4", 1.0)
    out = tmp_path / "out.mp4"
    expect = {"no face": "no face found", "audio missing": "audio file not found", "audio corrupt": "audio",
              "output not writable": "cannot write", "image": "still image", "text file as video": "cannot read",
              "own voice of a script": "--own-voice"}[case]
    if case == "no face":
        video = write_video(tmp_path / "noface.mp4", (np.full((240, 320, 3), 90, np.uint8) for _ in range(25)),
                            np.zeros(16000, np.float32), fps=25, audio_rate=16000)
    elif case == "audio missing":
        audio = tmp_path / "nope.wav"
    elif case == "audio corrupt":
        audio = tmp_path / "bad.wav"
        audio.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())
    elif case == "output not writable":
        out = _unwritable_dir(tmp_path) / "out.mp4"
    elif case == "image":
        frame = next(iter_frames(sample_capture))
        video = tmp_path / "still.png"
        cv2.imwrite(str(video), frame[..., ::-1])
    elif case == "text file as video":
        video = tmp_path / "notes.mp4"
        video.write_text("not a video\n")
    speech = ["--text", "Hi.", "--own-voice"] if case == "own voice of a script" else ["--audio", audio]
    res = _cli("dub", name, video, *speech, "-o", out, "--root", root)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and expect in lines[0].lower() and "Traceback" not in res.output, res.output
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]
    assert not leftovers, leftovers
