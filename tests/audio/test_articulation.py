"""The articulation track on real speech: closed in silences and at /p b m/, louder opens wider."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_erosion

from nerfhead.audio import features_for
from nerfhead.audio.articulation import articulation_track
from nerfhead.audio.loading import load_normalized
from nerfhead.audio.timeline import frame_labels, loudness_db, long_runs, speech_mask
from nerfhead.audio.visemes import PBM
from nerfhead.eval.metrics import pearson
from nerfhead.io.audio import save_wav


def test_track_on_real_speech(sample_capture):
    feats = features_for(sample_capture)
    track = articulation_track(feats)
    n = feats.n_video_frames
    assert track.shape == (n,) and track.dtype == np.float32
    assert track.min() >= 0 and track.max() <= 1.2
    speech = speech_mask(feats, n)
    assert track[speech].mean() > 0.2  # speech opens the mouth
    silent = long_runs(~speech, 5)
    inside = binary_erosion(silent, iterations=2)  # the edges ease in and out (coarticulation)
    assert inside.any() and track[inside].max() < 0.02  # silences of 0.2 s or more: closed
    pbm = frame_labels(np.asarray(feats.viseme_ids) == PBM, n)
    assert pbm.any() and (track[pbm] == 0).all()  # the lips close wherever /p b m/ is heard
    assert pearson(track, loudness_db(feats.samples, n)) > 0.4


def test_track_closed_in_padding(sample_capture, tmp_path):
    """Speech followed by 3 s of digital silence (TTS padding): the mouth closes and stays closed."""

    samples, _ = load_normalized(sample_capture)
    rate = 16000
    padded = np.concatenate([samples[: rate * 6], np.zeros(rate * 3, np.float32)])
    path = tmp_path / "padded.wav"
    save_wav(path, padded, rate)
    track = articulation_track(features_for(path))
    assert len(track) == 225
    assert track[:150].max() > 0.5 and track[155:].max() < 0.02
