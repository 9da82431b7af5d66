"""Driving audio at another video frame rate (a 30 fps take being dubbed): the windows are centred
on each frame's own time, the articulation and silence tracks interpolated; at the instants both
rates share, every input equals the capture rate's."""

from __future__ import annotations

import numpy as np

from nerfhead.audio import features_for
from nerfhead.avatar.drive import DrivingAudio


def test_driving_audio_at_30_fps_agrees_with_25_fps_at_shared_instants(sample_capture):
    feats = features_for(sample_capture)
    at25, at30 = DrivingAudio.of(feats), DrivingAudio.of(feats, fps=30.0)
    assert at30.n_frames == round(feats.duration * 30) and at25.n_frames == feats.n_video_frames
    k = min(at25.n_frames // 5, at30.n_frames // 6)
    assert np.array_equal(at25.windows[::5][:k], at30.windows[::6][:k])  # t = 0, 0.2, 0.4 ... s
    assert np.allclose(at25.articulation[::5][:k], at30.articulation[::6][:k])
    assert np.allclose(at25.silence[::5][:k], at30.silence[::6][:k])
    # between them the tracks move smoothly: no frame repeats the one before it where speech moves
    changing = np.abs(np.diff(at25.articulation)) > 1e-3
    assert (np.abs(np.diff(at30.articulation)) > 0).mean() >= 0.9 * changing.mean()


def test_only_the_capture_audio_is_the_presenter_own_voice(sample_identity):
    """The capture's audio is marked as the presenter's own voice (and stays so shuffled); any other
    clip is another voice unless the caller says otherwise (``render --own-voice``)."""
    from nerfhead.avatar.drive import capture_audio

    feats, audio = capture_audio(sample_identity)
    assert audio.own_voice and audio.permuted(list(range(10, 40))).own_voice
    assert not DrivingAudio.of(feats).own_voice and DrivingAudio.of(feats, own_voice=True).own_voice
    assert DrivingAudio.of(feats, fps=30.0, own_voice=True).own_voice
