"""Timing: features change at the right time, and the input format does not matter."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from nerfhead.audio import features_for
from nerfhead.audio.melspec import log_mel
from nerfhead.audio.windows import frame_windows


def _burst(rate: int, ms: float = 20.0, freq: float = 3000.0) -> np.ndarray:
    t = np.arange(int(rate * ms / 1000)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * np.hanning(t.size)).astype(np.float32)


@pytest.mark.parametrize("t0", [2.3437, 7.0181, 13.5063])
def test_tone_burst_lands_on_its_frame(speech, t0):
    """A 20 ms tone burst inserted into real speech at a known time: the log-mel change is
    centred on the burst (<= 10 ms) and peaks in the window of the video frame nearest to it."""
    burst = _burst(16000)
    start = int(round(t0 * 16000))
    with_burst = speech.copy()
    with_burst[start:start + burst.size] += burst
    centre = (start + burst.size / 2) / 16000  # seconds
    change = np.abs(log_mel(with_burst) - log_mel(speech)).sum(axis=1)
    k = np.arange(change.size)
    around = np.abs(k / 100 - centre) < 0.1
    estimate = float((change[around] * k[around]).sum() / change[around].sum()) / 100
    error_ms = abs(estimate - centre) * 1000
    print(f"burst at {centre:.4f} s: features centred at {estimate:.4f} s, error {error_ms:.1f} ms")
    assert error_ms <= 10.0
    # per video frame: the window's own step (index 8) changes most at the nearest frame
    n = int(len(speech) / 16000 * 25)
    own = np.abs(frame_windows(log_mel(with_burst), n)[:, 8] - frame_windows(log_mel(speech), n)[:, 8]).sum(axis=1)
    assert int(np.argmax(own)) == int(round(centre * 25))


def test_click_moves_with_its_time(speech):
    """Clicks at two times 40 ms apart (one video frame) move the change by exactly 4 feature frames."""
    peaks = []
    for t0 in (5.0, 5.04):
        x = speech.copy()
        i = int(t0 * 16000)
        x[i:i + 8] += 0.8
        change = np.abs(log_mel(x) - log_mel(speech)).sum(axis=1)
        peaks.append(int(np.argmax(change)))
    assert peaks[1] - peaks[0] == 4
    assert abs(peaks[0] - 500) <= 1


def _write_wav(path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """Write int PCM (16- or 24-bit), mono or (n, channels)."""
    x = np.atleast_2d(samples.T).T if samples.ndim == 2 else samples[:, None]
    scale = 2 ** (8 * width - 1) - 1
    ints = np.clip(np.round(x * scale), -scale - 1, scale).astype("<i4")
    raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes() if width == 3 else \
        ints.astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def test_rates_and_channels_give_the_same_features(speech, tmp_path):
    """44.1 kHz stereo 24-bit, 48 kHz stereo and 16 kHz mono copies of the same speech agree."""
    from scipy.signal import resample_poly

    clip = speech[: 12 * 16000] * 0.5  # also checks loudness normalisation: half as loud in
    ref_path = tmp_path / "mono16k.wav"
    _write_wav(ref_path, clip, 16000)
    variants = {}
    for rate, up, down, width in [(44100, 441, 160, 3), (48000, 3, 1, 2)]:
        hi = resample_poly(clip, up, down).astype(np.float32)
        stereo = np.stack([hi, hi], axis=1) * 1.7  # louder, and two channels
        p = tmp_path / f"stereo{rate}.wav"
        _write_wav(p, np.clip(stereo, -1, 1), rate, width)
        variants[rate] = features_for(p)
    ref = features_for(ref_path)
    a, b = ref.spec.parts["logmel"]
    for rate, f in variants.items():
        assert f.features.shape == ref.features.shape
        mel_diff = np.abs(f.features[:, a:b] - ref.features[:, a:b])
        loud = ref.features[:, a:b] > -0.6  # where there is sound (not the floor)
        vis_agree = float(np.mean(f.viseme_ids == ref.viseme_ids))
        vad_diff = float(np.abs(f.vad - ref.vad).mean())
        print(f"{rate} Hz stereo vs 16 kHz mono: log-mel |diff| {mel_diff[loud].mean():.4f} (loud bins), "
              f"visemes agree {vis_agree:.1%}, VAD |diff| {vad_diff:.3f}, gain {f.gain_db:+.1f} vs {ref.gain_db:+.1f} dB")
        assert np.median(mel_diff[loud]) < 0.02
        assert mel_diff[loud].mean() < 0.03
        assert vis_agree > 0.85
        assert vad_diff < 0.05
