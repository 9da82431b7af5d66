"""`nerfhead render` on the shipped sample: a playable mp4 whose audio and video agree, silences,
batches, head motion from another video, and one-line errors for bad input."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest
from typer.testing import CliRunner

from nerfhead.cli import app
from nerfhead.io.audio import load_audio
from nerfhead.io.video import iter_frames, probe_video
from nerfhead.render.driven import AvatarRenderer, RenderOptions, render_batch, render_video


def _wav(path, seconds, rate=16000, tone=0.0):
    t = np.arange(int(seconds * rate)) / rate
    x = (tone * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return path


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_render_part_of_a_video_file_with_its_audio(trained_sample, sample_capture, tmp_path):
    out = tmp_path / "part.mp4"
    r = render_video(trained_sample.name, out, audio=sample_capture, root=trained_sample.root.parent,
                     opts=RenderOptions(start=3.0, duration=2.0))
    assert r.frames == 50 and out.is_file()
    info = probe_video(out)
    assert info.has_audio and info.frames_in_header == 50 and abs(info.duration - 2.0) <= 0.04 + 1e-6, info
    assert abs(info.audio_duration - info.duration) <= 0.04, info
    frames = list(iter_frames(out))
    assert len(frames) == 50 and frames[0].shape == (512, 512, 3)
    # the muxed audio is the capture's own, from 3 s on (compare loudness envelopes)
    ours = load_audio(out, 16000)[: 32000]
    src = load_audio(sample_capture, 16000)[48000: 80000]
    env = lambda x: np.sqrt(np.convolve(x ** 2, np.ones(800) / 800, "same"))[::400]
    assert np.corrcoef(env(ours[: len(src)]), env(src[: len(ours)]))[0, 1] > 0.9
    # motion: consecutive frames differ a little (head moves, blinks), never jump
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert max(diffs) < 8.0


def test_silence_only_renders_a_closed_still_mouth(trained_sample, tmp_path):
    out = tmp_path / "silence.mp4"
    r = render_video(trained_sample.name, out, audio=_wav(tmp_path / "silence.wav", 1.2),
                     root=trained_sample.root.parent, opts=RenderOptions(height=256, scale=0.5))
    assert r.frames == 30 and probe_video(out).width == 256


def test_batch_renders_each_file_and_reports_bad_ones(trained_sample, tmp_path):
    audio_dir = tmp_path / "scripts"
    audio_dir.mkdir()
    _wav(audio_dir / "a.wav", 0.6, tone=0.3)
    _wav(audio_dir / "b.wav", 0.4, rate=44100, tone=0.3)
    (audio_dir / "broken.mp3").write_bytes(b"not audio at all")
    items = render_batch(trained_sample.name, audio_dir, tmp_path / "out", root=trained_sample.root.parent)
    done = {i.source.name: i for i in items}
    assert done["a.wav"].result.frames == 15 and done["b.wav"].result.frames == 10
    assert done["broken.mp3"].result is None and "broken.mp3" in done["broken.mp3"].error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]


def test_pose_from_another_video(trained_sample, sample_capture, tmp_path):
    renderer = AvatarRenderer(trained_sample.name, trained_sample.root.parent)
    own = renderer.poses(40, RenderOptions())
    other = renderer.poses(40, RenderOptions(pose_from=str(sample_capture)))
    # the sample moved onto itself: the same motion (relative to its median pose), within tracking noise
    from nerfhead.capture.pose import relative_angle_deg
    rel_own = relative_angle_deg(own.rotation[1:], own.rotation[:-1])
    rel_other = relative_angle_deg(other.rotation[1:], other.rotation[:-1])
    assert abs(rel_own.mean() - rel_other.mean()) < 0.2


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (needed for --text)")
def test_render_a_script(trained_sample, tmp_path):
    """A script renders with the default voice (piper's where installed), numbers said as words;
    espeak-ng still speaks the other languages; an unknown voice is one line naming the installed."""
    from nerfhead.audio.tts import synthesize
    from nerfhead.audio.voices import default_voice, piper_voices
    from nerfhead.io.audio import load_audio

    root = trained_sample.root.parent
    script = tmp_path / "script.txt"
    script.write_text("Sales rose 3.5 % in 2023.")
    out = tmp_path / "script.mp4"
    res = _cli("render", trained_sample.name, "--text-file", script, "-o", out, "--root", root)
    assert res.exit_code == 0, res.output
    info = probe_video(out)
    spoken = synthesize(text_file=script)  # the same words and voice: the render's cached speech
    assert spoken.voice == default_voice().name and (not piper_voices() or spoken.voice.startswith("piper:"))
    assert spoken.text == "Sales rose three point five percent in twenty twenty-three."
    seconds = load_audio(spoken.path).size / 16000
    assert info.has_audio and abs(info.n_frames(25) - seconds * 25) <= 1.5
    res = _cli("render", trained_sample.name, "--text", "Bonjour.", "--voice", "espeak:fr", "-o", tmp_path / "fr.mp4",
               "--root", root)
    assert res.exit_code == 0, res.output
    res = _cli("render", trained_sample.name, "--text", "Hi.", "--voice", "klingon", "-o", tmp_path / "k.mp4",
               "--root", root)
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "unknown voice 'klingon'; installed:" in res.output
    assert all(v.name in res.output for v in piper_voices()) and not (tmp_path / "k.mp4").exists()


def test_own_voice_renders_the_presenter_map(trained_sample, sample_capture, tmp_path):
    """``--own-voice``: the same audio, the mouth from the presenter map where the avatar has one
    (the rule's otherwise, with a warning): a video either way, of the same length."""
    root = trained_sample.root.parent
    res = _cli("render", trained_sample.name, "--audio", sample_capture, "--duration", "1", "--own-voice",
               "-o", tmp_path / "own.mp4", "--root", root)
    assert res.exit_code == 0, res.output
    assert probe_video(tmp_path / "own.mp4").frames_in_header == 25


def test_bad_input_is_one_line_and_exit_2(trained_sample, sample_identity, tmp_path):
    root = trained_sample.root.parent
    name = trained_sample.name
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    cases = {
        "not trained": (["render", "nobody", "--audio", tmp_path / "corrupt.wav", "-o", tmp_path / "x.mp4"], "nobody"),
        "missing audio": (["render", name, "--audio", tmp_path / "missing.wav", "-o", tmp_path / "x.mp4"], "not found"),
        "corrupt audio": (["render", name, "--audio", tmp_path / "corrupt.wav", "-o", tmp_path / "x.mp4"], "corrupt.wav"),
        "empty text": (["render", name, "--text", "  ", "-o", tmp_path / "x.mp4"], "empty"),
        "no input": (["render", name, "-o", tmp_path / "x.mp4"], "--audio"),
        "unwritable": (["render", name, "--text", "Hi.", "-o", tmp_path / "no" / "dir" / "x.mp4"], "does not exist"),
        "not mp4": (["render", name, "--text", "Hi.", "-o", tmp_path / "x.avi"], ".mp4"),
        "own voice of a script": (["render", name, "--text", "Hi.", "--own-voice", "-o", tmp_path / "x.mp4"], "--own-voice"),
    }
    for what, (args, needle) in cases.items():
        res = _cli(*args, "--root", root)
        assert res.exit_code == 2, (what, res.output)
        assert needle in res.output and "Traceback" not in res.output, (what, res.output)
    assert not (tmp_path / "x.mp4").exists()
