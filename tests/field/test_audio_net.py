"""Audio network shapes, attention normalisation, and that the code depends on the audio."""

from __future__ import annotations

import pytest
import torch

from nerfhead.field.audio_net import AudioNet, neighbour_indices


def test_codes_shape_and_attention():
    torch.manual_seed(0)
    net = AudioNet(feature_dim=20, window=16)
    windows = torch.randn(50, 16, 20)
    frames = torch.tensor([0, 10, 49])
    code = net(windows, frames)
    assert code.shape == (3, 32)
    w = net.smoother.weights(torch.randn(3, 8, 32))
    assert torch.allclose(w.sum(-1), torch.ones(3)) and (w > 0).all()
    # a frame's code follows its own audio, not audio far away
    changed = windows.clone()
    changed[10] += 3.0
    assert not torch.allclose(net(changed, frames)[1], code[1])
    assert torch.allclose(net(changed, frames)[2], code[2])


def test_neighbours_clamped():
    idx = neighbour_indices(torch.tensor([0, 5, 9]), 10, 8)
    assert idx.tolist()[0] == [0, 0, 0, 0, 0, 1, 2, 3] and idx.max() == 9 and idx.shape == (3, 8)


def test_wrong_window_shape_is_a_clear_error():
    net = AudioNet(feature_dim=20)
    with pytest.raises(ValueError, match="expected audio windows"):
        net(torch.randn(5, 16, 21), torch.tensor([0]))
