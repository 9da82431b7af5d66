"""Bad input: one clear line, never a traceback; pure silence is valid."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from nerfhead.audio import features_for
from nerfhead.audio.tts import read_script, resolve_rate
from nerfhead.audio.voices import resolve_voice
from nerfhead.cli import app
from nerfhead.errors import InputError
from nerfhead.io.audio import save_wav
from nerfhead.io.video import VideoWriter


def _cli(*args):
    result = CliRunner().invoke(app, ["features", *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_bytes(b""), "file is empty"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 50), "cannot read"),
    (lambda p: p.write_text("just some text, not audio\n" * 100), "cannot read"),
])
def test_unreadable_files(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=message):
        features_for(path)
    code, out = _cli(path)
    assert code == 2 and message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) <= 2  # one message (rich may wrap a long path)


def test_video_without_audio(tmp_path):
    path = tmp_path / "silent_video.mp4"
    with VideoWriter(path, fps=25, size=(64, 48)) as w:
        for _ in range(10):
            w.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(InputError, match="has no audio track"):
        features_for(path)
    code, out = _cli(path)
    assert code == 2 and "no audio track" in out


def test_pure_silence_gives_silence_features(tmp_path):
    path = tmp_path / "silence.wav"
    save_wav(path, np.zeros(3 * 16000, np.float32))
    f = features_for(path)
    assert f.features.shape == (300, 91) and np.all(np.isfinite(f.features))
    assert f.gain_db == 0.0
    assert np.all(f.viseme_ids == 0) and float(f.vad.max()) < 0.2
    assert np.allclose(f.features[:, :80], -1.0)
    assert f.windows.shape == (75, 16, 91)


def test_very_short_audio(tmp_path):
    path = tmp_path / "blip.wav"
    save_wav(path, np.full(100, 0.1, np.float32))
    f = features_for(path)
    assert f.features.shape == (1, 91) and f.n_video_frames == 1


def test_wav_with_a_truncated_body(sample_capture, tmp_path):
    good = tmp_path / "good.wav"
    from nerfhead.io.audio import load_audio

    save_wav(good, load_audio(sample_capture)[:32000])
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2 + 1])  # header says 2 s, body has 1 s and an odd byte
    f = features_for(cut)
    assert 0.9 < f.duration < 1.1


def test_text_errors(tmp_path):
    with pytest.raises(InputError, match="--text is empty"):
        read_script("  ... !")
    with pytest.raises(InputError, match="text file not found"):
        read_script(text_file=tmp_path / "none.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_script(text_file=tmp_path / "latin1.txt")
    with pytest.raises(InputError, match="either --text or --text-file"):
        read_script("a", tmp_path / "x.txt")
    with pytest.raises(InputError, match="outside 80-450"):
        resolve_rate(1000)
    with pytest.raises(InputError, match="unknown voice 'en us; rm -rf'; installed: "):
        resolve_voice("en us; rm -rf")
    if shutil.which("espeak-ng"):
        assert resolve_voice("de+f3").name == "espeak:de+f3" and resolve_voice("espeak:de").name == "espeak:de+klatt"
    code, out = _cli("--text", "   ")
    assert code == 2 and "--text is empty" in out
    code, out = _cli()
    assert code == 2 and "give an audio file" in out


def test_unknown_voice_and_missing_espeak(monkeypatch):
    from nerfhead.audio.voices import piper_voices

    code, out = _cli("--text", "hello", "--voice", "xx-nonexistent")
    assert code == 2 and out.count("\n") == 1 and "unknown voice 'xx-nonexistent'; installed: " in out
    assert all(v.name in out for v in piper_voices()) and "nerfhead voices" in out
    if shutil.which("espeak-ng"):
        assert "espeak:LANG for" in out
    code, out = _cli("--text", "hello", "--voice", "piper:nobody-medium")
    assert code == 2 and "unknown voice 'piper:nobody-medium'" in out
    monkeypatch.setenv("PATH", "/nonexistent")
    code, out = _cli("--text", "hello there", "--voice", "espeak:de")
    assert code == 2 and "espeak-ng is not installed" in out
