"""The closed-lips code: where a render's mouth input asks for closed lips, the audio code moves to
the capture's own code for closed lips in speech (a foreign voice's code can hold the mouth open)."""

from __future__ import annotations

import numpy as np
import torch

from nerfhead.audio import features_for
from nerfhead.avatar.conditions import clip_mouth
from nerfhead.avatar.drive import DrivingAudio
from nerfhead.audio.timeline import silent_runs, speech_mask
from nerfhead.render.driven import AvatarRenderer, RenderOptions
from nerfhead.avatar.rest import CLOSED_OPENING, closed_code, closed_weights, silence_weights
from nerfhead.dataset import normalised_opening


def test_weights_follow_how_closed_the_mouth_input_is():
    m = np.array([0.0, CLOSED_OPENING, 1.5 * CLOSED_OPENING, 2 * CLOSED_OPENING, 1.0, 3.0])
    assert np.allclose(closed_weights(m), [1.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    assert closed_weights(None) is None


def test_closed_code_is_the_mean_code_of_the_captures_closed_speaking_frames(trained_sample):
    r = AvatarRenderer(trained_sample.name, root=trained_sample.root.parent)
    m = trained_sample.manifest()
    feats = features_for(trained_sample.audio_path, extractor=r.model.extractor)
    n, train = m["n_frames"], list(m["split"]["train"])
    windows = torch.from_numpy(np.ascontiguousarray(feats.windows_for(n), np.float32))
    opening, _ = normalised_opening(trained_sample.tracks()["landmarks"], speech_mask(feats, n))
    speaking = ~silent_runs(speech_mask(feats, n))
    picked = [f for f in train if speaking[f] and opening[f] <= CLOSED_OPENING]
    assert len(picked) >= 5, "the sample's presenter closes the lips while speaking"
    code = closed_code(r.model, windows, feats.vad, train, opening)
    with torch.no_grad():
        own = r.model.conditions(windows, torch.tensor(picked), torch.zeros(len(picked)),
                                 mouth=r.model.closed_mouth(len(picked))).audio
    assert code.shape == (1, own.shape[1])
    assert torch.allclose(code, own.mean(0, keepdim=True), atol=1e-6)
    assert torch.equal(r.avatar.rest.closed, code)  # computed when training ended, stored in the checkpoint


def test_render_changes_only_the_frames_asked_to_close(trained_sample):
    r = AvatarRenderer(trained_sample.name, root=trained_sample.root.parent)
    feats = features_for(trained_sample.audio_path, extractor=r.model.extractor)
    n = 40
    weights = closed_weights(clip_mouth(r.model, DrivingAudio.of(feats, n))[:, 0].cpu().numpy())
    silent = silence_weights(feats.vad, n) == 1  # the silence code alone decides there
    assert (weights > 0).any() and (weights == 0).any()
    frames = {flag: list(r.frames(feats, RenderOptions(scale=0.25, closed_code=flag), 0, n, torso=False))
              for flag in (False, True)}
    same = [np.array_equal(a, b) for a, b in zip(frames[False], frames[True])]
    for i in range(n):
        if weights[i] == 0 or silent[i]:
            assert same[i], i
    assert not all(same[i] for i in range(n) if weights[i] == 1 and not silent[i])
