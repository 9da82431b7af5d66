"""Self-driven evaluation on an identity's held-out test frames, with trivial baselines.

The avatar renders every test frame from the frame's own pose, audio and blink, exactly as
``nerfhead render --own-voice`` renders a frame (:func:`nerfhead.avatar.sequence.render_frames`:
the audio code, the mouth input from the presenter map, the capture's closed-lips and silence
codes; neutral frame code; torso field and plate). Two more renders of the same frames check
that audio drives the mouth: test-frame audio shuffled among the test frames, and digital
silence (a render of silent audio); a third (avatars with the presenter map) takes the same audio
as another voice's (the rule's mouth input, what a script or a dub in another voice gets). The
portrait row is the real test frame with only its lower face rendered (``--composite portrait``,
SyncTalk's portrait protocol): the real pixels outside the lower face inflate its full-frame PSNR;
compare the modes on the face box and LMD.

A *frame source* maps a test frame index to an RGB uint8 image. The model is one source;
the baselines are others, measured by exactly the same code:

- ``frozen``: the last training frame for every test frame;
- ``retrieval``: the training frame whose audio features are nearest to the test frame's;
- ``previous``: the real previous frame (the metrics' noise floor).

Every source is measured on the same regions of the real test frames, found once: the face box,
the mouth box (:func:`nerfhead.eval.metrics.mouth_box`, from the measured lip landmarks), and the
portrait blend's lower-face mask and its seam band (:func:`nerfhead.avatar.portrait.lower_face_mask`
of the tracked landmarks, the ones the portrait render blends with), so full mode, portrait mode
and the baselines compare on the same pixels.
"""

from __future__ import annotations

import tempfile
import time
import wave
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from nerfhead.audio.timeline import SAMPLE_RATE
from nerfhead.avatar.drive import DrivingAudio
from nerfhead.avatar.load import Avatar
from nerfhead.avatar.portrait import lower_face_mask
from nerfhead.avatar.sequence import PoseTrack, pose_backdrop, render_frames, render_portrait_frames
from nerfhead.dataset import FPS, Identity, mouth_opening
from nerfhead.eval.metrics import (edge_strength, face_box, laplacian_energy, lmd, measure_landmarks, mouth_box,
                                   pearson, seam_band)
from nerfhead.eval.regions import REGIONS, frame_regions, mean_error_map, region_psnr
from nerfhead.eval.temporal import mean_change
from nerfhead.io.images import read_labels, read_rgb
from nerfhead.log import progress
from nerfhead.perceptual import st_lpips, stlpips_model
from nerfhead.quality import psnr, ssim
from nerfhead.train.data import TrainingData

FrameSource = Callable[[int], np.ndarray]
MOUTH_PATCH = 128  # side (px) the mouth box is resized to for ST-LPIPS, the same for every identity

NAN = float("nan")


@dataclass
class SelfDrivenScores:
    """One source's scores on the test frames (docs/EVALUATION.md). The measures added after the
    first reports default to NaN, so older report.json files still load."""

    name: str
    psnr: float
    ssim: float
    face_psnr: float
    face_ssim: float
    lmd: float
    mouth_corr: float
    n_frames: int
    mouth_psnr: float = NAN  # in the mouth box
    mouth_ssim: float = NAN
    mouth_stlpips: float = NAN  # ST-LPIPS of the mouth box resized to MOUTH_PATCH (lower is better)
    mouth_sharpness: float = NAN  # Laplacian energy in the mouth box over the real frames' (1 = as sharp)
    seam: float = NAN  # edge strength on the portrait seam band over the real frames' (1 = no added edge)
    flicker: float = NAN  # frame-to-frame change in the lower-face mask over the real frames' (1 = as steady)
    regions: dict = field(default_factory=dict)  # PSNR on face, hair, neck and collar, torso, background
    per_frame_psnr: list = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def row(self) -> str:
        """Three lines: the whole frame, face box and lips; the mouth box, seam and flicker; PSNR by region."""
        regions = "  ".join(f"{k.replace('_', '/')} {v:5.2f}" for k, v in self.regions.items())
        return (f"{self.name:<12} PSNR {self.psnr:5.2f}  SSIM {self.ssim:.3f}  face PSNR {self.face_psnr:5.2f}  "
                f"face SSIM {self.face_ssim:.3f}  LMD {self.lmd:4.2f}  mouth corr {self.mouth_corr:+.2f}\n"
                f"{'':<12} mouth PSNR {self.mouth_psnr:5.2f}  SSIM {self.mouth_ssim:.3f}  "
                f"ST-LPIPS {self.mouth_stlpips:.3f}  sharpness {self.mouth_sharpness:.2f}  seam {self.seam:.2f}  "
                f"flicker {self.flicker:.2f} (x real)"
                + (f"\n{'':<12} PSNR by region: {regions}" if regions else ""))


class HeldOutFrames:
    """The real test frames of an identity, their landmarks and the regions every source is
    measured on (face and mouth boxes, lower-face masks, seam bands), found once; and the real
    frames' own edge strength on the bands and flicker in the masks, the references of the
    seam and flicker ratios."""

    def __init__(self, ident: Identity, indices: Sequence[int] | None = None) -> None:
        self.ident = ident
        m = ident.manifest()
        self.indices = list(m["split"]["test"] if indices is None else indices)
        self.size = m["image"]["width"]
        shape = (m["image"]["height"], m["image"]["width"])
        self.frames = [read_rgb(ident.frame_path(i)) for i in self.indices]
        self.landmarks = measure_landmarks(self.frames)
        self.opening = mouth_opening(self.landmarks)
        found = [np.isfinite(lms).all() for lms in self.landmarks]
        self.face_boxes = [face_box(lms, shape) if ok else None for lms, ok in zip(self.landmarks, found)]
        self.mouth_boxes = [mouth_box(lms, shape) if ok else None for lms, ok in zip(self.landmarks, found)]
        self.mouth_patches = [mouth_patch(f, box) for f, box in zip(self.frames, self.mouth_boxes) if box is not None]
        self.real_sharpness = mouth_sharpness(self.frames, self.mouth_boxes)
        stlpips_model()  # loaded now: a missing weights package fails before any frame is rendered
        # the blend mask of the portrait render: from the tracked landmarks it composites with
        blends = [lower_face_mask(lms, shape) for lms in ident.tracks()["landmarks"][self.indices]]
        self.lower_face = [b > 0 for b in blends]
        self.seam_bands = [seam_band(b) for b in blends]
        self.real_edges = np.array([edge_strength(f, band) for f, band in zip(self.frames, self.seam_bands)])
        first = self.indices[0] if self.indices else 0
        self.contiguous = self.indices == list(range(first, first + len(self.indices)))
        self.real_flicker = mean_change(self.frames, self.lower_face) if self.contiguous else NAN
        self.measured: dict[str, np.ndarray] = {}  # landmarks of each scored source's frames, by name
        # face, hair, neck and collar, torso, background of each real frame (labels and landmarks)
        tracked = ident.tracks()["landmarks"][self.indices]
        self.regions = [frame_regions(read_labels(ident.mask_path(i)), lms) for i, lms in zip(self.indices, tracked)]
        self.error_maps: dict[str, np.ndarray] = {}  # mean absolute error per pixel of each scored source

    def score(self, name: str, source: FrameSource) -> SelfDrivenScores:
        preds = [source(i) for i in self.indices]
        pred_lms = measure_landmarks(preds)
        self.measured[name] = pred_lms
        p = [psnr(real, pred) for real, pred in zip(self.frames, preds)]
        s = [ssim(real, pred) for real, pred in zip(self.frames, preds)]
        fp, fs = (_in_boxes(m, self.frames, preds, self.face_boxes) for m in (psnr, ssim))
        mp, ms = (_in_boxes(m, self.frames, preds, self.mouth_boxes) for m in (psnr, ssim))
        patches = [mouth_patch(f, box) for f, box in zip(preds, self.mouth_boxes) if box is not None]
        edges = np.array([edge_strength(f, band) for f, band in zip(preds, self.seam_bands)])
        flicker = mean_change(preds, self.lower_face) if self.contiguous else NAN
        by_region = [region_psnr(r, f, reg) for r, f, reg in zip(self.frames, preds, self.regions)]
        self.error_maps[name] = mean_error_map(self.frames, preds)
        return SelfDrivenScores(
            name=name,
            psnr=_mean_psnr(p), ssim=float(np.mean(s)),
            face_psnr=_mean_psnr(fp), face_ssim=_mean(fs),
            lmd=lmd(self.landmarks, pred_lms, self.size),
            mouth_corr=pearson(mouth_opening(pred_lms), self.opening),
            n_frames=len(self.indices),
            mouth_psnr=_mean_psnr(mp), mouth_ssim=_mean(ms),
            mouth_stlpips=_mean(list(st_lpips(self.mouth_patches, patches))),
            mouth_sharpness=_ratio(mouth_sharpness(preds, self.mouth_boxes), self.real_sharpness),
            seam=_ratio(edges, self.real_edges),
            flicker=flicker / self.real_flicker if self.real_flicker > 0 else NAN,
            regions={k: _region_mean([d[k] for d in by_region]) for k in REGIONS},
            per_frame_psnr=[round(v, 3) if np.isfinite(v) else None for v in p],
        )


def mouth_patch(frame: np.ndarray, box: tuple[slice, slice], size: int = MOUTH_PATCH) -> np.ndarray:
    """The ``box`` of ``frame`` resized to (size, size): what ST-LPIPS compares of the mouth."""
    return cv2.resize(frame[box], (size, size), interpolation=cv2.INTER_AREA)


def mouth_sharpness(frames: Sequence[np.ndarray], boxes: Sequence[tuple[slice, slice] | None]) -> np.ndarray:
    """(n,) the Laplacian energy of each frame's mouth box (NaN for a frame without one)."""
    return np.array([laplacian_energy(f[box]) if box is not None else NAN for f, box in zip(frames, boxes)])


def _in_boxes(measure: Callable[[np.ndarray, np.ndarray], float], real: list[np.ndarray], pred: list[np.ndarray],
              boxes: list[tuple[slice, slice] | None]) -> list[float]:
    """``measure`` of each pair of frames inside its box (frames without a box left out)."""
    return [measure(r[box], f[box]) for r, f, box in zip(real, pred, boxes) if box is not None]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else NAN


def _mean_psnr(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


def _region_mean(values: list[float]) -> float:
    """Mean PSNR over the frames where the region exists (NaN: in none)."""
    present = [v for v in values if not np.isnan(v)]
    return _mean_psnr(present) if present else NAN


def _ratio(scored: np.ndarray, real: np.ndarray) -> float:
    """sum(scored) / sum(real) over the entries finite in both; NaN when the real sum is 0 or none is."""
    ok = np.isfinite(scored) & np.isfinite(real)
    total = float(real[ok].sum())
    return float(scored[ok].sum()) / total if ok.any() and total > 0 else NAN


def frozen_source(ident: Identity) -> FrameSource:
    last = ident.manifest()["split"]["train"][-1]
    frame = read_rgb(ident.frame_path(last))
    return lambda i: frame


def previous_source(ident: Identity) -> FrameSource:
    return lambda i: read_rgb(ident.frame_path(i - 1))


def retrieval_source(ident: Identity, features: np.ndarray) -> FrameSource:
    """Nearest training frame by per-frame audio features (n_frames, D), z-scored on training frames."""
    train = np.asarray(ident.manifest()["split"]["train"])
    feats = features.reshape(len(features), -1).astype(np.float64)
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
    z = (feats - mu) / sd

    def source(i: int) -> np.ndarray:
        d = ((z[train] - z[i]) ** 2).sum(1)
        return read_rgb(ident.frame_path(int(train[int(np.argmin(d))])))

    return source


# the goals for the self-driven test frames (docs/EVALUATION.md)
GOALS = {"psnr": 30.0, "face_psnr": 30.0, "lmd": 1.6, "mouth_corr": 0.6}


@dataclass
class SelfDrivenReport:
    identity: str
    checkpoint: str
    stage: str
    step: int
    n_test_frames: int
    scores: dict[str, SelfDrivenScores]  # ours (full), portrait, frozen, retrieval, previous
    audio_check: dict[str, SelfDrivenScores]  # ours with shuffled / silent audio (/ own audio taken as another voice)
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


def silent_audio(n_frames: int, extractor: str = "default") -> DrivingAudio:
    """The driving inputs of digital silence as long as ``n_frames`` video frames (by ``extractor``)."""
    from nerfhead.audio import features_for

    with tempfile.TemporaryDirectory(prefix="nerfhead-silence-") as tmp:
        path = Path(tmp) / "silence.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(np.zeros(int((n_frames / FPS + 0.5) * SAMPLE_RATE), np.int16).tobytes())
        feats = features_for(path, cache=False, extractor=extractor)
        return DrivingAudio.of(feats, n_frames)


class HeldOutRenders:
    """Renders of an avatar's test frames with their own poses and blinks, as a render makes them;
    the backdrop (audio-independent: torso field and plate, or the real torso for an avatar
    without a trained torso) is rendered once a frame."""

    def __init__(self, avatar: Avatar, data: TrainingData, frames: list[int]) -> None:
        self.avatar, self.data, self.frames = avatar, data, list(frames)
        tracks = data.ident.tracks()
        self.poses = PoseTrack.of_capture(tracks, self.frames)
        self.landmarks = tracks["landmarks"][self.frames].astype(np.float32)
        self.eye = data.blink[self.frames].numpy()
        self.plate = np.asarray(data.store.background)
        self._backdrops: dict[int, np.ndarray] = {}

    def backdrop(self, j: int) -> np.ndarray:
        if j not in self._backdrops:
            if self.avatar.has_torso:
                self._backdrops[j] = pose_backdrop(self.avatar.model, self.poses, j, self.plate)
            else:
                self._backdrops[j] = self.data.backdrop(self.frames[j])
        return self._backdrops[j]

    def render_portrait(self, audio: DrivingAudio, label: str) -> dict[int, np.ndarray]:
        """Test frame index -> the real test frame with its lower face rendered (portrait mode)."""
        frames = render_portrait_frames(self.avatar, audio, self.frames, self.poses, self.eye,
                                        lambda j: np.asarray(self.data.store.frames[self.frames[j]]), self.landmarks)
        return self._collect(frames, label)

    def _collect(self, frames, label: str) -> dict[int, np.ndarray]:
        out = {}
        with progress(label, total=len(self.frames)) as bar:
            for i, rgb in zip(self.frames, frames):
                out[i] = rgb
                bar.advance()
        return out

    def render(self, audio: DrivingAudio, label: str) -> dict[int, np.ndarray]:
        """Test frame index -> rendered frame, driven by ``audio`` (a clip as long as the capture)."""
        return self._collect(render_frames(self.avatar, audio, self.frames, self.poses, self.eye, self.plate,
                                           backdrop=self.backdrop), label)


@dataclass
class SelfDrivenRun:
    """The self-driven scores and what the report draws from the same renders."""

    report: SelfDrivenReport
    test: list[int]
    real: list[np.ndarray]
    ours: dict[int, np.ndarray]
    portrait: dict[int, np.ndarray]
    silent: dict[int, np.ndarray]
    real_landmarks: np.ndarray
    ours_landmarks: np.ndarray
    error_maps: dict[str, np.ndarray] = field(default_factory=dict)  # mean |error| per pixel, by source
    regions: np.ndarray | None = None  # the regions of the middle test frame (for drawing)


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

    renders = HeldOutRenders(avatar, data, test)
    scores: dict[str, SelfDrivenScores] = {}
    t0 = time.perf_counter()
    ours = renders.render(data.audio, "render test frames")
    seconds["render"] = time.perf_counter() - t0
    scores["ours"] = held.score("ours", ours.__getitem__)
    t0 = time.perf_counter()
    portrait = renders.render_portrait(data.audio, "render test frames, portrait")
    seconds["render_portrait"] = time.perf_counter() - t0
    scores["portrait"] = held.score("portrait", portrait.__getitem__)
    t0 = time.perf_counter()
    scores["frozen"] = held.score("frozen", frozen_source(ident))
    scores["retrieval"] = held.score("retrieval", retrieval_source(ident, data.windows.numpy()))
    scores["previous"] = held.score("previous", previous_source(ident))
    seconds["baselines"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    shuffled = renders.render(data.audio.permuted(test), "render, shuffled audio")
    audio_check = {"shuffled": held.score("shuffled", shuffled.__getitem__)}
    silent = renders.render(silent_audio(data.n_frames, avatar.model.extractor), "render, silent audio")
    audio_check["silent"] = held.score("silent", silent.__getitem__)
    if avatar.model.has_presenter_map:  # the same audio taken as another voice (the rule's mouth input)
        other = renders.render(replace(data.audio, own_voice=False), "render, mouth as for another voice")
        audio_check["as another voice"] = held.score("as another voice", other.__getitem__)
    seconds["audio_check"] = time.perf_counter() - t0
    report = SelfDrivenReport(ident.name, str(avatar.checkpoint), avatar.stage, avatar.step, len(test), scores,
                              audio_check, list(scores["ours"].per_frame_psnr), seconds)
    return SelfDrivenRun(report, test, held.frames, ours, portrait, silent, held.landmarks, held.measured["ours"],
                         held.error_maps, held.regions[len(held.regions) // 2] if held.regions else None)
