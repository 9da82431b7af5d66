"""Lip-sync proxies for video driven by any audio (no ground-truth frames needed).

Per video frame: the mouth opening (inner-lip gap / face height, from landmarks) and the audio
loudness. Three measures (docs/EVALUATION.md), always reported beside the real capture with
its own audio, since they are weak, noisy signals on real speech:

- ``loudness_corr``: correlation of mouth opening with loudness (dB), best lag in +-3 frames;
- ``bilabial_margin``: how much more often the mouth closes during /p b m/ segments than
  during vowel segments (a segment "closes" when the opening drops to half the clip's median
  speech opening within it, one frame either side included);
- ``silence_opening``: mean opening in silences (no speech for at least 0.2 s), beside the
  mean opening in speech.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from nerfhead.audio.features import AudioFeatures
from nerfhead.audio.timeline import FEATURE_RATE, MIN_SILENT_FRAMES, SAMPLE_RATE, loudness_db, silent_runs, speech_mask
from nerfhead.audio.visemes import PBM, VOWELS
from nerfhead.dataset import FPS
from nerfhead.eval.metrics import lagged_correlation


@dataclass
class LipSyncScores:
    name: str
    loudness_corr: float
    lag: int  # frames the mouth trails the loudness at the best correlation
    bilabial_margin: float
    closed_at_bilabial: float
    closed_at_vowels: float
    n_bilabial: int
    silence_opening: float
    speech_opening: float
    n_frames: int
    # the same two measures on the mouth input a render was given (its articulation track through the
    # avatar's map): what the field was asked for, beside what the landmarker measured (None: not a render)
    asked_corr: float | None = None
    asked_margin: float | None = None
    opening: list = field(default_factory=list, repr=False)  # per frame, for plots
    loudness: list = field(default_factory=list, repr=False)  # dB per frame

    def as_dict(self) -> dict:
        return asdict(self)

    def row(self) -> str:
        asked = ("" if self.asked_corr is None else
                 f"  (asked: corr {self.asked_corr:+.2f}, margin {self.asked_margin:+.2f})")
        return (f"{self.name:<22} corr {self.loudness_corr:+.2f} (lag {self.lag:+d})  /p b m/ margin "
                f"{self.bilabial_margin:+.2f} ({self.closed_at_bilabial:.2f} vs {self.closed_at_vowels:.2f}, "
                f"n={self.n_bilabial})  silence {self.silence_opening:.3f} / speech {self.speech_opening:.3f}{asked}")


def _segments(ids: np.ndarray) -> list[tuple[int, int, int]]:
    """(viseme, start, end) runs of equal ids at 100 Hz (end exclusive)."""
    change = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(ids)]])
    return [(int(ids[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def _closed_rate(opening: np.ndarray, segments, threshold: float) -> tuple[float, int]:
    closed = []
    for _, s, e in segments:
        a = max(0, int(np.floor(s * FPS / FEATURE_RATE)) - 1)
        b = min(len(opening), int(np.ceil(e * FPS / FEATURE_RATE)) + 1)
        vals = opening[a:b]
        vals = vals[np.isfinite(vals)]
        if vals.size:
            closed.append(vals.min() <= threshold)
    return (float(np.mean(closed)) if closed else float("nan")), len(closed)


def lipsync_scores(name: str, opening: np.ndarray, feats: AudioFeatures, samples: np.ndarray | None = None,
                   first_frame: int = 0) -> LipSyncScores:
    """Scores of a mouth-opening track (n,) against the audio ``feats`` it was driven by (video
    frames ``first_frame ..``; ``samples``: the 16 kHz audio, default the features' own)."""
    opening = np.asarray(opening, np.float64)
    n = len(opening)
    samples = feats.samples if samples is None else samples
    start = int(round(first_frame * SAMPLE_RATE / FPS))
    loud = loudness_db(samples[start:], n)
    speech = speech_mask(feats, first_frame + n)[first_frame:]
    corr, lag = lagged_correlation(opening, loud, max_lag=3)
    ok = np.isfinite(opening)
    median_speech = float(np.median(opening[speech & ok])) if (speech & ok).any() else float("nan")
    threshold = 0.5 * median_speech
    f0, f1 = first_frame * FEATURE_RATE / FPS, (first_frame + n) * FEATURE_RATE / FPS
    segs = []
    if feats.viseme_ids is not None:
        for v, s, e in _segments(np.asarray(feats.viseme_ids)):
            if s >= f0 and e <= f1:
                segs.append((v, s - f0, e - f0))
    pbm, n_pbm = _closed_rate(opening, [s for s in segs if s[0] == PBM], threshold)
    vow, _ = _closed_rate(opening, [s for s in segs if s[0] in VOWELS], threshold)
    silent = silent_runs(speech, MIN_SILENT_FRAMES) & ok
    return LipSyncScores(
        name=name, loudness_corr=float(corr), lag=int(lag), bilabial_margin=float(pbm - vow),
        closed_at_bilabial=pbm, closed_at_vowels=vow, n_bilabial=n_pbm,
        silence_opening=float(opening[silent].mean()) if silent.any() else float("nan"),
        speech_opening=median_speech, n_frames=n,
        opening=[round(float(v), 5) if np.isfinite(v) else None for v in opening], loudness=[round(float(v), 2) for v in loud])
