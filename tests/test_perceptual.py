"""ST-LPIPS (nerfhead.perceptual) on real frames of the shipped capture: a distance, shift tolerant,
differentiable, and the same numbers as the original implementation."""

from __future__ import annotations

from itertools import islice

import cv2
import numpy as np
import pytest
import torch

from nerfhead import perceptual
from nerfhead.errors import NerfheadError
from nerfhead.io.video import iter_frames
from nerfhead.perceptual import image_tensor, st_lpips, stlpips_model
from nerfhead.quality import psnr


@pytest.fixture(scope="module")
def frames(sample_capture):
    """Frames 0, 8, ..., 40 of the capture (450x450) resized to 256x256."""
    return [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in islice(iter_frames(sample_capture), 0, 41, 8)]


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def test_identical_images_are_at_zero_and_the_distance_is_symmetric(frames):
    a, b, c = frames[0], frames[2], frames[5]
    assert st_lpips([a, b], [a.copy(), b.copy()]) == pytest.approx([0.0, 0.0], abs=1e-9)
    there, back = st_lpips([a, a, b], [b, c, c]), st_lpips([b, c, c], [a, a, b])
    assert there == pytest.approx(back, rel=1e-5) and (there > 0).all()


def test_a_small_shift_costs_less_than_a_blur_or_noise(frames):
    """A 2x1 px shift loses more PSNR than a slight blur, yet ST-LPIPS ranks it far closer."""
    rng = np.random.default_rng(0)
    f = frames[0]
    moved = shifted(f, 2, 1)
    blurred = cv2.GaussianBlur(f, (0, 0), 1.0)
    noisy = np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8)
    d_moved, d_blurred, d_noisy = st_lpips([f] * 3, [moved, blurred, noisy])
    assert psnr(f, moved) < psnr(f, blurred) - 5  # per pixel, the shift is the bigger change
    assert 3 * d_moved < d_blurred and 3 * d_moved < d_noisy  # measured: 0.011, 0.076, 0.278


def test_gradients_reach_the_input_not_the_weights(frames):
    real = image_tensor(frames[:2])
    x = image_tensor([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames[:2]]).requires_grad_(True)
    model = stlpips_model()
    d = model(x, real)
    assert d.shape == (2,) and (d > 0).all()
    d.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    # a step down the gradient brings the blurred frames closer to the real ones
    with torch.no_grad():
        closer = model((x - 0.5 * x.grad / x.grad.abs().max()).clamp(-1, 1), real)
    assert (closer < d.detach()).all()


def test_values_match_the_original_implementation(frames):
    """Measured with stlpips_pytorch 0.0.2's own ``LPIPS(net="alex", variant="shift_tolerant")``
    (torchvision, IPython and torchsummary stubbed out) on these frames (``utils.im2tensor``):
    0.0221968 (frames 0 and 8), 0.0418614 (0 and 40), 0.0146812 (16 and 24)."""
    d = st_lpips([frames[0], frames[0], frames[2]], [frames[1], frames[5], frames[3]])
    assert d == pytest.approx([0.0221968, 0.0418614, 0.0146812], abs=2e-6)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(perceptual, "PACKAGE", "stlpips_pytorch_not_installed")
    with pytest.raises(NerfheadError, match="pip install stlpips-pytorch==0.0.2"):
        perceptual.weights_path()
