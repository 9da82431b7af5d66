"""One path from a checkpoint to a frame: the evaluation's test frames are the frames `nerfhead
render` makes for the same audio, poses and eyes, pixel for pixel."""

from __future__ import annotations

import numpy as np

from nerfhead.avatar.conditions import clip_mouth
from nerfhead.avatar.load import load_avatar
from nerfhead.avatar.rest import closed_weights
from nerfhead.avatar.sequence import PoseTrack
from nerfhead.dataset import Identity
from nerfhead.eval.selfdriven import HeldOutRenders
from nerfhead.render.driven import AvatarRenderer, RenderOptions
from nerfhead.train.data import load_training_data

N = 8


def _busiest_window(data, avatar, n=N) -> list[int]:
    """``n`` consecutive test frames where the closed-lips code acts most (closed lips in speech)."""
    test = data.test_frames
    rest = (1 - data.audio.silence) * closed_weights(clip_mouth(avatar.model, data.audio)[:, 0].cpu().numpy())
    best = max(range(len(test) - n + 1), key=lambda s: float(rest[test[s:s + n]].sum()))
    return test[best:best + n]


def test_evaluation_frames_equal_render_frames(trained_sample):
    ident = Identity.at(trained_sample.name, trained_sample.root.parent)
    avatar = load_avatar(ident)
    data = load_training_data(ident, avatar.model.extractor)
    frames = _busiest_window(data, avatar)
    assert frames == list(range(frames[0], frames[0] + N))
    evaluated = HeldOutRenders(avatar, data, frames).render(data.audio, "eval path")

    renderer = AvatarRenderer(ident.name, ident.root.parent)
    feats, _ = renderer.features(ident.audio_path)  # the capture's own audio, as a user would pass it (--own-voice)
    poses = PoseTrack.of_capture(ident.tracks(), frames)
    rendered = list(renderer.frames(feats, RenderOptions(own_voice=True), frames[0], N, poses=poses,
                                    eye=data.blink[frames].numpy()))
    assert len(rendered) == N
    for i, frame in zip(frames, rendered):
        assert np.array_equal(evaluated[i], frame), f"frame {i}: eval and render differ"
    # and the rest codes were in play: without them the same frames differ
    plain = list(renderer.frames(feats, RenderOptions(closed_code=False, own_voice=True), frames[0], N, poses=poses,
                                 eye=data.blink[frames].numpy()))
    if avatar.rest.closed is not None:
        assert any(not np.array_equal(a, b) for a, b in zip(rendered, plain))
