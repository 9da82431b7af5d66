"""How far the mouth should open at each video frame of any speech: the articulation track.

An avatar trained on a few minutes of one person learns the *shape* of the mouth from audio well,
but its *opening* regresses to the mean: from the audio code alone it rarely closes the lips or
opens wide, and new voices and languages make that worse. So the head field is also conditioned
on an explicit mouth opening (teacher-forced with the tracked opening in training), and a render
drives that input with this track, computed from cues that hold for any voice and language:

- loudness of each frame relative to the clip's own median speech level (a quiet syllable opens
  less, whatever the recording level): 0 at ``RANGE_DB`` below it, 1 at it;
- the viseme heard (``nerfhead.audio.visemes``): how wide the jaw opens for that mouth shape
  (``OPENNESS``, a phonetic prior: open vowels widest, /p b m/ closed);
- silences (no speech for at least 0.2 s): closed;
- lightly smoothed in time (coarticulation), then the lips closed wherever /p b m/ is heard.

The track is unitless (0 closed, about 1 a loud open vowel); each avatar maps it to its own
presenter's openings by quantile matching (:class:`nerfhead.field.mouth.MouthTrack`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from nerfhead.audio.features import AudioFeatures
from nerfhead.audio.timeline import FEATURE_RATE, silent_runs, speech_mask
from nerfhead.audio.visemes import PBM
from nerfhead.dataset import FPS

#: jaw opening per viseme (SIL PBM FV TH ALV CH RW AA EE OO), 1 = the widest
OPENNESS = np.array([0.0, 0.0, 0.25, 0.35, 0.4, 0.35, 0.4, 1.0, 0.7, 0.6])
RANGE_DB = 15.0  # a frame this far below the clip's median speech level counts as closed
SMOOTH_FRAMES = 1.0  # Gaussian sigma, video frames
UNKNOWN_OPENNESS = 0.6  # speech without phone labels (no recogniser): a mid opening


def articulation_track(feats: AudioFeatures, n_frames: int | None = None) -> np.ndarray:
    """(n_frames,) float32 mouth-opening score of each video frame of ``feats`` (default: all)."""
    n = feats.n_video_frames if n_frames is None else n_frames
    if n == 0:
        return np.zeros(0, np.float32)
    loud = feats.loudness(n)
    speech = speech_mask(feats, n)
    ref = float(np.median(loud[speech])) if speech.any() else float(np.median(loud))
    envelope = np.clip((loud - ref + RANGE_DB) / RANGE_DB, 0.0, 1.2)
    per = int(round(FEATURE_RATE / FPS))  # feature frames per video frame
    if feats.viseme_ids is not None and len(feats.viseme_ids):
        ids = np.asarray(feats.viseme_ids, np.int64)
        starts = np.round(np.arange(n) * FEATURE_RATE / FPS).astype(np.int64)
        span = np.clip(starts[:, None] + np.arange(-1, per - 1)[None, :], 0, len(ids) - 1)  # the frame's 40 ms
        openness = OPENNESS[ids[span]].mean(1)
        closed = (ids[span] == PBM).any(1)
    else:
        openness = np.full(n, UNKNOWN_OPENNESS)
        closed = np.zeros(n, bool)
    score = envelope * openness
    score[silent_runs(speech)] = 0.0
    if SMOOTH_FRAMES > 0:
        score = gaussian_filter1d(score, SMOOTH_FRAMES, mode="nearest")
    score[closed] = 0.0
    return score.astype(np.float32)
