"""Self-driven evaluation on an identity's held-out test frames, with trivial baselines.

A *frame source* maps a test frame index to an RGB uint8 image. The model is one source;
the baselines are others, measured by exactly the same code:

- ``frozen``: the last training frame for every test frame;
- ``retrieval``: the training frame whose audio features are nearest to the test frame's;
- ``previous``: the real previous frame (the metrics' noise floor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from nerfhead.dataset import Identity
from nerfhead.eval.metrics import face_box, lmd, measure_landmarks, mouth_opening, pearson, psnr, ssim
from nerfhead.io.images import read_rgb

FrameSource = Callable[[int], np.ndarray]


@dataclass
class SelfDrivenScores:
    name: str
    psnr: float
    ssim: float
    face_psnr: float
    face_ssim: float
    lmd: float
    mouth_corr: float
    n_frames: int
    per_frame_psnr: list = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def row(self) -> str:
        return (f"{self.name:<12} PSNR {self.psnr:5.2f}  SSIM {self.ssim:.3f}  face PSNR {self.face_psnr:5.2f}  "
                f"face SSIM {self.face_ssim:.3f}  LMD {self.lmd:4.2f}  mouth corr {self.mouth_corr:+.2f}")


class HeldOutFrames:
    """The real test frames of an identity and their landmarks (measured once)."""

    def __init__(self, ident: Identity, indices: Sequence[int] | None = None) -> None:
        self.ident = ident
        m = ident.manifest()
        self.indices = list(m["split"]["test"] if indices is None else indices)
        self.size = m["image"]["width"]
        self.frames = [read_rgb(ident.frame_path(i)) for i in self.indices]
        self.landmarks = measure_landmarks(self.frames)
        self.opening = mouth_opening(self.landmarks)
        self.measured: dict[str, np.ndarray] = {}  # landmarks of each scored source's frames, by name

    def score(self, name: str, source: FrameSource) -> SelfDrivenScores:
        preds = [source(i) for i in self.indices]
        pred_lms = measure_landmarks(preds)
        self.measured[name] = pred_lms
        p, s, fp, fs = [], [], [], []
        for real, pred, lms in zip(self.frames, preds, self.landmarks):
            p.append(psnr(real, pred))
            s.append(ssim(real, pred))
            if np.isfinite(lms).all():
                rows, cols = face_box(lms, real.shape)
                fp.append(psnr(real[rows, cols], pred[rows, cols]))
                fs.append(ssim(real[rows, cols], pred[rows, cols]))
        return SelfDrivenScores(
            name=name,
            psnr=_mean_psnr(p), ssim=float(np.mean(s)),
            face_psnr=_mean_psnr(fp), face_ssim=float(np.mean(fs)) if fs else float("nan"),
            lmd=lmd(self.landmarks, pred_lms, self.size),
            mouth_corr=pearson(mouth_opening(pred_lms), self.opening),
            n_frames=len(self.indices),
            per_frame_psnr=[round(v, 3) if np.isfinite(v) else None for v in p],
        )


def _mean_psnr(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


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
