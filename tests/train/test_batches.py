"""Ray batches carry the right pixels, mostly on the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerfhead.dataset import HEAD, TORSO
from nerfhead.errors import InputError
from nerfhead.field.rays import Intrinsics
from nerfhead.train.batches import RaySampler
from nerfhead.train.frames import FrameStore


def _sampler(ident, tmp_path, **kw):
    store = FrameStore(ident, cache_dir=tmp_path)
    m = ident.manifest()
    return RaySampler(store, ident.tracks()["camera_to_head"], Intrinsics.from_manifest(m), m["split"]["train"], **kw)


def test_batch_targets_and_behind_colours(sample_identity, tmp_path):
    sampler = _sampler(sample_identity, tmp_path, rays=2048, frames_per_batch=4, seed=3)
    b = sampler.sample()
    assert len(b) == 2048 and b.origins.shape == (2048, 3)
    assert torch.allclose(b.dirs.norm(dim=-1), torch.ones(2048), atol=1e-5)
    assert len(torch.unique(b.frame)) <= 4 and int(b.frame.max()) < 450  # training frames only
    assert (b.label == HEAD).float().mean() > 0.7
    store = sampler.store
    for j in (0, 700, 2047):
        f, (x, y) = int(b.frame[j]), b.xy[j].tolist()
        assert np.allclose(b.target[j].numpy() * 255, store.frames[f][y, x], atol=1e-3)
        expect = store.frames[f][y, x] if b.label[j] == TORSO else store.background[y, x]
        assert np.allclose(b.behind[j].numpy() * 255, expect, atol=1e-3)


def test_rect_covers_every_pixel_in_order(sample_identity, tmp_path):
    sampler = _sampler(sample_identity, tmp_path)
    b = sampler.rect(10, 100, 200, 110, 204)
    assert len(b) == 40
    img = (b.target.numpy().reshape(4, 10, 3) * 255).round().astype(np.uint8)
    assert np.array_equal(img, sampler.store.frames[10][200:204, 100:110])


def test_uniform_share_reaches_the_whole_frame(sample_identity, tmp_path):
    """Rays outside the head's rectangle: what keeps the head field off the collar and the torso
    field's alpha at 0 on all of the background."""
    plain = _sampler(sample_identity, tmp_path, rays=4096, seed=1)
    spread = _sampler(sample_identity, tmp_path, rays=4096, seed=1, uniform_fraction=0.2)
    h, w = plain.store.labels[0].shape

    def outside(b):
        far = np.zeros(len(b), bool)
        for f in torch.unique(b.frame).tolist():
            ys, xs = np.nonzero(plain.store.labels[f] == HEAD)
            sel = (b.frame == f).numpy()
            x, y = b.xy[sel, 0].numpy(), b.xy[sel, 1].numpy()
            far[sel] = (x < xs.min() - 24) | (x > xs.max() + 24) | (y < ys.min() - 24) | (y > ys.max() + 24)
        return far.mean()

    assert outside(plain.sample()) == 0.0
    share = outside(spread.sample())
    assert 0.03 < share < 0.2, share  # a part of the 20 % drawn anywhere lands off the head's rectangle
    assert (spread.sample().label == HEAD).float().mean() > 0.7  # still mostly on the head
    with pytest.raises(InputError, match="fractions"):
        _sampler(sample_identity, tmp_path, head_fraction=0.9, uniform_fraction=0.2)


def test_mouth_share_lands_in_each_frames_mouth_square(sample_identity, tmp_path):
    """``mouth_fraction`` of the rays fall in the frame's mouth square, which follows the tracked
    lips: where the training then spends them on what the audio moves."""
    from nerfhead.train.data import load_training_data

    data = load_training_data(sample_identity)
    size = 64
    boxes = np.array([data.mouth_box(i, size) for i in range(data.n_frames)])

    def in_mouth(b):
        box = boxes[b.frame.numpy()]
        x, y = b.xy[:, 0].numpy(), b.xy[:, 1].numpy()
        return ((x >= box[:, 0]) & (x < box[:, 2]) & (y >= box[:, 1]) & (y < box[:, 3])).mean()

    plain = data.sampler(4096, 4, 0.75, seed=2, uniform_fraction=0.1)
    biased = data.sampler(4096, 4, 0.6, seed=2, uniform_fraction=0.1, mouth_fraction=0.2, mouth_size=size)
    before, after = in_mouth(plain.sample()), in_mouth(biased.sample())
    assert before < 0.12 and after > 0.2 + 0.6 * before * 0.9, (before, after)
    # the squares sit on the lips: they move with the head across the capture
    lips = np.array([data.lip_points[i].mean(0) for i in data.train_frames])
    centres = (boxes[data.train_frames, :2] + boxes[data.train_frames, 2:]) / 2
    assert np.abs(centres - lips).max() < 2 and np.ptp(centres[:, 0]) > 3
    with pytest.raises(InputError, match="mouth_fraction"):
        data.sampler(4096, 4, 0.75, seed=2, uniform_fraction=0.1, mouth_fraction=0.2, mouth_size=size)
