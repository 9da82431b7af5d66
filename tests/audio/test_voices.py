"""TTS voices: names that say the engine, piper's natural voice speaking and aligned, the listing."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest
from typer.testing import CliRunner

from nerfhead.audio import features_for, voices
from nerfhead.audio.tts import synthesize
from nerfhead.cli import app
from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio

needs_piper = pytest.mark.skipif(not voices.piper_voices(),
                                 reason="no piper voice installed (make install adds the `voices` extra)")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make install)")
JOE = "piper:en_US-joe-medium"
SCRIPT = "Members of the public may submit a complaint by email. The plumber grabbed a rubber mop from the bucket."


@needs_piper
def test_piper_speaks_a_script_aligned_word_by_word(tmp_path):
    speech = synthesize(text=SCRIPT, voice=JOE, out=tmp_path / "s.wav", cache=False)
    assert speech.voice == JOE and speech.language == "en-us"
    with wave.open(str(speech.path)) as w:  # resampled from the voice's 22.05 kHz
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
    x = load_audio(speech.path)
    assert [s for _, _, s in speech.sentences] == SCRIPT.replace("email. ", "email.|").split("|")
    (a0, b0, _), (a1, b1, _) = speech.sentences
    assert a0 == 0 and b0 == a1 and abs(b1 - x.size / 16000) < 1e-3
    assert 2.0 < b0 < 6.0 and 2.0 < b1 - a1 < 6.0  # about 150-200 words a minute
    # speech, not noise or silence: loud in the middle of each sentence, quiet in the pause after it
    rms = lambda a, b: float(np.sqrt(np.mean(x[int(a * 16000):int(b * 16000)] ** 2)))
    assert rms(a0 + 0.3, b0 - 0.5) > 0.05 and rms(b0 - 0.15, b0) < 0.01
    feats = features_for(speech.path, text=speech.text, voice=JOE)
    assert feats.phone_source == "aligned"
    spoken = [p for p, _, _ in feats.phones if p != "SIL"]
    assert spoken[:4] == ["M", "EH", "M", "B"]
    assert spoken[-3] == "K" and spoken[-2] in ("AH", "IH") and spoken[-1] == "T"  # "bucket": either entry


@needs_piper
def test_rate_scales_piper_and_numbers_are_spoken_as_words(tmp_path):
    slow = synthesize(text="It fell 3.5 % to $4.2 million.", voice=JOE, rate=110, out=tmp_path / "a.wav", cache=False)
    fast = synthesize(text="It fell 3.5 % to $4.2 million.", voice=JOE, rate=240, out=tmp_path / "b.wav", cache=False)
    assert slow.text == "It fell three point five percent to four point two million dollars."
    assert slow.sentences[-1][1] > 1.6 * fast.sentences[-1][1]
    feats = features_for(text="It fell 3.5 % to $4.2 million.", voice=JOE)
    assert feats.phone_source == "aligned"


@needs_piper
def test_voice_names(monkeypatch, tmp_path):
    joe = voices.resolve_voice(JOE)
    assert voices.resolve_voice(None) == joe  # piper is the default for English
    assert voices.resolve_voice("en-us") == joe and voices.resolve_voice("en_US-joe-medium") == joe
    if shutil.which("espeak-ng"):
        assert voices.resolve_voice("de").name == "espeak:de+klatt"  # no piper voice speaks German
        assert voices.resolve_voice("espeak:en-us").name == "espeak:en-us+klatt"
        assert voices.resolve_voice("en-us+f3").engine == "espeak"  # a +variant is espeak-ng's
    with pytest.raises(InputError, match=r"unknown voice 'piper:de_DE-nobody'; installed: piper:en_US-joe-medium"):
        voices.resolve_voice("piper:de_DE-nobody")
    # a voice downloaded by hand: a folder in $NERFHEAD_PIPER_VOICES with the model and its config
    for suffix in (".onnx", ".onnx.json"):
        (tmp_path / f"en_GB-copy-medium{suffix}").symlink_to(joe.model + suffix[5:])
    (tmp_path / "broken.onnx.json").write_text("{not json")
    monkeypatch.setenv("NERFHEAD_PIPER_VOICES", str(tmp_path))
    voices.piper_voices.cache_clear()
    try:
        names = [v.name for v in voices.piper_voices()]
        assert "piper:en_GB-copy-medium" in names and JOE in names and len(names) == len(set(names))
    finally:
        monkeypatch.delenv("NERFHEAD_PIPER_VOICES")
        voices.piper_voices.cache_clear()


@needs_espeak
def test_voices_command_lists_what_is_installed():
    res = CliRunner().invoke(app, ["voices"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    for v in voices.piper_voices():
        assert v.name in out
    assert "espeak:LANG" in out and " de " in out and " fr-fr " in out and "(default)" in out
