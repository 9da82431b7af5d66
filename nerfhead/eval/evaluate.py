"""Evaluate a trained avatar on its identity's held-out test frames (self-driven protocol).

The avatar renders every test frame from the frame's own camera, audio and blink (neutral frame
code, torso field, background plate); the trivial baselines and the noise floor are scored by
the same code on the same frames (:mod:`nerfhead.eval.selfdriven`). Two more renders of the same
frames check that audio drives the mouth: test-frame audio windows shuffled among the test
frames, and silence (as a render of silent audio: the capture's own silence code,
see :mod:`nerfhead.render.silence`).
"""

from __future__ import annotations

import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nerfhead.dataset import Identity
from nerfhead.eval.selfdriven import (HeldOutFrames, SelfDrivenScores, frozen_source, previous_source,
                                      retrieval_source)
from nerfhead.eval.strips import mouth_strip
from nerfhead.log import get_logger, progress
from nerfhead.train.data import TrainingData
from nerfhead.train.preview import dataset_backdrop, render_dataset_frame
from nerfhead.render.silence import silence_code
from nerfhead.train.run import Avatar

log = get_logger(__name__)

# the goals for the self-driven test frames (docs/EVALUATION.md)
GOALS = {"psnr": 30.0, "face_psnr": 30.0, "lmd": 1.6, "mouth_corr": 0.6}


@dataclass
class SelfDrivenReport:
    identity: str
    checkpoint: str
    stage: str
    step: int
    n_test_frames: int
    scores: dict[str, SelfDrivenScores]  # ours, frozen, retrieval, previous
    audio_check: dict[str, SelfDrivenScores]  # ours with shuffled / silent audio
    per_frame_psnr: list[float]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "identity": self.identity, "checkpoint": self.checkpoint, "stage": self.stage, "step": self.step,
            "n_test_frames": self.n_test_frames,
            "scores": {k: v.as_dict() for k, v in self.scores.items()},
            "audio_check": {k: v.as_dict() for k, v in self.audio_check.items()},
            "goals": GOALS, "goals_met": self.goals_met(), "per_frame_psnr": self.per_frame_psnr,
            "seconds": self.seconds,
        }

    def goals_met(self) -> dict[str, bool]:
        ours = self.scores["ours"].as_dict()
        return {k: bool(ours[k] <= v if k == "lmd" else ours[k] >= v) for k, v in GOALS.items()}


def silent_windows(data: TrainingData) -> torch.Tensor:
    """Audio feature windows of digital silence as long as the capture (same extractor)."""
    from nerfhead.audio import features_for

    n = data.n_frames
    seconds = n / 25.0 + 0.5
    with tempfile.TemporaryDirectory(prefix="nerfhead-silence-") as tmp:
        path = Path(tmp) / "silence.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.zeros(int(seconds * 16000), np.int16).tobytes())
        feats = features_for(path, cache=False)
    return torch.from_numpy(np.ascontiguousarray(feats.windows_for(n), np.float32))


def capture_silence_code(avatar: Avatar, data: TrainingData) -> torch.Tensor | None:
    """What a render uses where the audio is silent: the capture's own silence code
    (:mod:`nerfhead.render.silence`); None if the capture has no silences."""
    from nerfhead.audio import features_for

    feats = features_for(data.ident.audio_path)
    with torch.no_grad():
        return silence_code(avatar.model, data.windows, feats.vad, data.train_frames)


def shuffled_audio(data: TrainingData, frames: list[int], seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """The capture's audio windows and articulation track with those of ``frames`` permuted among
    themselves (one derangement for both)."""
    rng = np.random.default_rng(seed)
    frames = np.asarray(frames)
    perm = rng.permutation(len(frames))
    while len(frames) > 1 and (perm == np.arange(len(frames))).any():
        perm = rng.permutation(len(frames))
    windows, articulation = data.windows.clone(), data.articulation.copy()
    windows[frames] = data.windows[frames[perm]]
    articulation[frames] = data.articulation[frames[perm]]
    return windows, articulation


class _AvatarFrames:
    """Test-frame renders of an avatar; the torso backdrop (audio-independent) is rendered once a frame."""

    def __init__(self, avatar: Avatar, data: TrainingData) -> None:
        self.avatar, self.data = avatar, data
        self._backdrops: dict[int, np.ndarray] = {}

    def render(self, frames: list[int], windows: torch.Tensor | None, label: str,
               audio_code: torch.Tensor | None = None, articulation: np.ndarray | None = None) -> dict[int, np.ndarray]:
        out = {}
        with progress(label, total=len(frames)) as bar:
            for i in frames:
                if i not in self._backdrops:
                    self._backdrops[i] = dataset_backdrop(self.avatar.model, self.data, i, self.avatar.has_torso)
                out[i] = render_dataset_frame(self.avatar.model, self.data, i, self.avatar.sampling,
                                              windows=windows, backdrop=self._backdrops[i], audio_code=audio_code,
                                              articulation=articulation).rgb
                bar.advance()
        return out


@dataclass
class SelfDrivenRun:
    """The self-driven scores and what the report draws from the same renders."""

    report: SelfDrivenReport
    test: list[int]
    real: list[np.ndarray]
    ours: dict[int, np.ndarray]
    silent: dict[int, np.ndarray]
    real_landmarks: np.ndarray
    ours_landmarks: np.ndarray


def run_selfdriven(ident: Identity, avatar: Avatar, data: TrainingData,
                   max_frames: int | None = None) -> SelfDrivenRun:
    """Render the test frames (own audio, shuffled audio, silence) and score them beside the baselines."""
    seconds: dict[str, float] = {}
    test = list(data.test_frames)
    if max_frames is not None and len(test) > max_frames:
        test = test[:max_frames]
    t0 = time.perf_counter()
    held = HeldOutFrames(ident, test)
    seconds["measure_real"] = time.perf_counter() - t0

    renders = _AvatarFrames(avatar, data)
    n = len(test)
    scores: dict[str, SelfDrivenScores] = {}
    t0 = time.perf_counter()
    ours = renders.render(test, None, "render test frames")
    seconds["render"] = time.perf_counter() - t0
    scores["ours"] = held.score("ours", ours.__getitem__)
    t0 = time.perf_counter()
    scores["frozen"] = held.score("frozen", frozen_source(ident))
    scores["retrieval"] = held.score("retrieval", retrieval_source(ident, data.windows.numpy()))
    scores["previous"] = held.score("previous", previous_source(ident))
    seconds["baselines"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    windows, articulation = shuffled_audio(data, test)
    audio_check = {"shuffled": held.score("shuffled", renders.render(test, windows, "render, shuffled audio",
                                                                     articulation=articulation).__getitem__)}
    code = capture_silence_code(avatar, data)  # what a render of silent audio uses; else silent features
    silent = renders.render(test, None if code is not None else silent_windows(data), "render, silent audio",
                            audio_code=code)
    audio_check["silent"] = held.score("silent", silent.__getitem__)
    seconds["audio_check"] = time.perf_counter() - t0
    report = SelfDrivenReport(ident.name, str(avatar.checkpoint), avatar.stage, avatar.step, n, scores, audio_check,
                              list(scores["ours"].per_frame_psnr), seconds)
    return SelfDrivenRun(report, test, held.frames, ours, silent, held.landmarks, held.measured["ours"])


def temporal_stability(frames: list[np.ndarray], landmarks: np.ndarray, background: list[np.ndarray],
                       size: int) -> dict[str, float]:
    """Landmark jitter: mean second difference of the 478 landmarks between consecutive frames
    (px at 512; smooth motion costs little, flicker a lot). Background flicker: mean absolute
    change between consecutive frames (/255) on pixels that are background in both."""
    lm = np.asarray(landmarks, np.float64)[..., :2] * (512.0 / size)
    acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]
    jitter = float(np.nanmean(np.linalg.norm(acc, axis=-1))) if len(lm) > 2 else float("nan")
    flick = []
    for a, b, ma, mb in zip(frames, frames[1:], background, background[1:]):
        m = ma & mb
        if m.any():
            flick.append(float(np.abs(a.astype(np.int16) - b.astype(np.int16))[m].mean()))
    return {"landmark_jitter_px": jitter, "background_flicker": float(np.mean(flick)) if flick else float("nan")}


def _picks(run: SelfDrivenRun, k: int) -> list[int]:
    return list(range(0, len(run.test), max(1, len(run.test) // k)))[:k]


def _mouth_strip(run: SelfDrivenRun) -> np.ndarray:
    picks = _picks(run, 8)
    ids = [run.test[p] for p in picks]
    return mouth_strip([[run.real[p] for p in picks], [run.ours[i] for i in ids], [run.silent[i] for i in ids]],
                       [run.real_landmarks[p] for p in picks], labels=("real", "ours", "silent"))
