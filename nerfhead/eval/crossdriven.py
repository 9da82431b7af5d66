"""Cross-driven evaluation: the avatar driven by other audio (other voices, other languages),
scored with the lip-sync proxies of :mod:`nerfhead.eval.lipsync` beside the real capture."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nerfhead.audio.features import AudioFeatures
from nerfhead.avatar.conditions import clip_mouth
from nerfhead.avatar.drive import DrivingAudio, capture_audio
from nerfhead.dataset import FPS, mouth_opening
from nerfhead.eval.lipsync import LipSyncScores, lipsync_scores
from nerfhead.eval.metrics import measure_landmarks
from nerfhead.log import get_logger, progress
from nerfhead.render.driven import AvatarRenderer, RenderOptions

log = get_logger(__name__)


def capture_scores(renderer: AvatarRenderer) -> LipSyncScores:
    """The same measures on the real capture with its own audio (tracked landmarks)."""
    ident = renderer.ident
    opening = mouth_opening(np.asarray(ident.tracks()["landmarks"], np.float64))
    return lipsync_scores("real capture, own audio", opening, capture_audio(ident)[0])


def driven_scores(renderer: AvatarRenderer, audio: str | Path, seconds: float | None = 10.0,
                  opts: RenderOptions | None = None, feats: AudioFeatures | None = None) -> LipSyncScores:
    """Render the first ``seconds`` of ``audio`` (head over the plate; the torso does not move the
    lips) and score the mouth of the rendered frames, and (``asked_*``) the mouth input it was given.
    ``feats``: the features to drive with when they are already computed (a script spoken by a
    voice, :meth:`AvatarRenderer.features`); ``audio`` then only names the row."""
    if feats is None:
        feats, _ = renderer.features(audio)
    total = feats.n_video_frames
    n = total if seconds is None else min(total, max(1, int(round(seconds * FPS))))
    frames = renderer.frames(feats, opts or RenderOptions(), 0, n, torso=False)
    with progress(f"render + measure {Path(audio).name}", total=n) as bar:
        def counted():
            for f in frames:
                yield f
                bar.advance()

        landmarks = measure_landmarks(counted())
    scores = lipsync_scores(Path(audio).name, mouth_opening(landmarks), feats)
    asked = clip_mouth(renderer.model, DrivingAudio.of(feats, n))
    if asked is not None:  # correlation and margin do not depend on the opening's units
        own = lipsync_scores(scores.name, asked[:, 0].cpu().numpy().astype(np.float64), feats)
        scores.asked_corr, scores.asked_margin = own.loudness_corr, own.bilabial_margin
    return scores


def cross_driven(renderer: AvatarRenderer, audio_files: Sequence[str | Path], seconds: float | None = 10.0) -> list[LipSyncScores]:
    """Scores for each audio file, after the real capture's own row."""
    rows = [capture_scores(renderer)]
    for path in audio_files:
        rows.append(driven_scores(renderer, path, seconds))
    return rows
