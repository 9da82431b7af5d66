"""The metric code gives the known answers on known cases."""

from __future__ import annotations

import math
from itertools import islice

import cv2
import numpy as np
import pytest

from nerfhead import landmark_ids as ids
from nerfhead.avatar.portrait import composite, lower_face_mask
from nerfhead.dataset import mouth_opening
from nerfhead.eval.metrics import (SEAM_OUTSIDE, SEAM_SOLID, edge_strength, face_box, lagged_correlation,
                                   laplacian_energy, lmd, measure_landmarks, mouth_box, pearson, seam_band)
from nerfhead.quality import psnr, ssim
from nerfhead.io.video import iter_frames

# the lower lip: outer and inner lower contours without the four mouth corners
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)


@pytest.fixture(scope="module")
def real_frames(sample_capture):
    return [cv2.resize(f, (512, 512)) for f in islice(iter_frames(sample_capture), 0, 40, 8)]


@pytest.fixture(scope="module")
def real_landmarks(real_frames):
    return measure_landmarks(real_frames).astype(np.float64)


def test_identical_frames(real_frames, real_landmarks):
    f = real_frames[0]
    assert psnr(f, f) == math.inf
    assert ssim(f, f) == pytest.approx(1.0)
    assert lmd(real_landmarks, real_landmarks.copy(), 512) == 0.0


def test_psnr_known_error():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 5
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    scores = [ssim(img, np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8)) for s in (5, 40, 120)]
    assert ssim(img, img) == pytest.approx(1.0) and 1 > scores[0] > scores[1] > scores[2] > 0


@pytest.mark.parametrize("k", [1.0, 3.0, 7.5])
def test_whole_frame_shift_costs_nothing(real_landmarks, k):
    shifted = real_landmarks.copy()
    shifted[..., 0] += k
    shifted[..., 1] -= 2 * k
    assert lmd(real_landmarks, shifted, 512) == pytest.approx(0.0, abs=1e-9)


def test_whole_frame_shift_through_the_landmarker(real_frames, real_landmarks):
    """Shift real frames by 6 px: the landmarker follows, and LMD stays near its noise level."""
    m = np.float32([[1, 0, 6], [0, 1, 4]])
    moved = [cv2.warpAffine(f, m, (512, 512), borderMode=cv2.BORDER_REPLICATE) for f in real_frames]
    lms = measure_landmarks(moved)
    raw = np.nanmean(np.linalg.norm(lms[:, list(ids.LIPS), :2] - real_landmarks[:, list(ids.LIPS), :2], axis=-1))
    assert raw > 5  # uncentred, the lips moved by ~7 px
    assert lmd(real_landmarks, lms, 512) < 1.0  # the landmarker's own noise (real previous frame: ~0.9)


@pytest.mark.parametrize("k", [1.0, 4.0])
def test_lower_lip_moved(real_landmarks, k):
    moved = real_landmarks.copy()
    moved[:, list(LOWER_LIP), 1] += k
    share = len(LOWER_LIP) / len(ids.LIPS)
    # Centring moves every point by k * share: the moved ones are off by k (1 - share), the
    # others by k * share, so the mean is 2 k share (1 - share) (= k * share when share = 1/2).
    assert lmd(real_landmarks, moved, 512) == pytest.approx(2 * k * share * (1 - share), rel=1e-9)
    half = list(ids.LIPS)[:20]
    moved = real_landmarks.copy()
    moved[:, half, 1] += k
    assert lmd(real_landmarks, moved, 512) == pytest.approx(k * 0.5, rel=1e-9)


def test_lmd_scales_to_512(real_landmarks):
    moved = real_landmarks.copy()
    moved[:, list(ids.LIPS)[:20], 0] += 2.0
    at_256 = lmd(real_landmarks / 2, moved / 2, 256)
    assert at_256 == pytest.approx(lmd(real_landmarks, moved, 512))


@pytest.mark.parametrize("k", [-3, -1, 0, 2, 3])
def test_delay_gives_peak_lag(k):
    rng = np.random.default_rng(1)
    reference = np.convolve(rng.normal(size=400), np.ones(3) / 3, mode="same")
    delayed = np.roll(reference, k)  # signal trails the reference by k frames
    r, lag = lagged_correlation(delayed, reference, max_lag=3)
    assert lag == k and r > 0.95


def test_mouth_opening_and_face_box(real_landmarks, real_frames):
    op = mouth_opening(real_landmarks)
    assert op.shape == (len(real_frames),) and np.all((op >= 0) & (op < 0.3))
    rows, cols = face_box(real_landmarks[0], real_frames[0].shape)
    assert 100 < rows.stop - rows.start < 512 and 80 < cols.stop - cols.start < 512
    assert pearson(op, op) == pytest.approx(1.0) and pearson(op, np.ones_like(op)) == 0.0


def test_mouth_box_holds_the_lips_and_a_quarter_of_their_width_around(real_landmarks, real_frames):
    for lms, frame in zip(real_landmarks, real_frames):
        lips = lms[list(ids.LIPS), :2]
        width = np.ptp(lips[:, 0])
        rows, cols = mouth_box(lms, frame.shape)
        assert 40 < width < 120  # the sample's lips at 512 px
        assert cols.start <= lips[:, 0].min() - 0.25 * width < cols.start + 1
        assert cols.stop - 1 < lips[:, 0].max() + 0.25 * width <= cols.stop
        assert rows.start <= lips[:, 1].min() - 0.25 * width < rows.start + 1  # the same margin vertically
        assert rows.stop - 1 < lips[:, 1].max() + 0.25 * width <= rows.stop
    # lips at the image's edge: the box is clipped to the image
    moved = real_landmarks[0].copy()
    moved[:, 0] += 512 - moved[list(ids.LIPS), 0].max() + 2
    rows, cols = mouth_box(moved, real_frames[0].shape)
    assert cols.stop == 512 and 0 < cols.start < 512 and rows.stop <= 512


def test_seam_band_sees_an_offset_lower_face_and_not_a_seamless_one(real_landmarks, real_frames):
    """Blend a lower face into the real frame as portrait mode does: the frame itself adds no edge on
    the band, the frame with its colour offset does, a blurred one reads smoother than the real skin."""
    for lms, frame in zip(real_landmarks, real_frames):
        mask = lower_face_mask(lms, frame.shape)
        band = seam_band(mask)
        # the band: the feathered edge inside the outline and a ring of SEAM_OUTSIDE px beyond it
        assert band[mask > 0].any() and (mask[band] < SEAM_SOLID).all() and (mask >= SEAM_SOLID).any()
        outside = band & (mask == 0)
        grown = cv2.dilate((mask > 0).astype(np.uint8), np.ones((2 * SEAM_OUTSIDE + 3,) * 2, np.uint8))
        assert outside.any() and not (outside & (grown == 0)).any()
        real = edge_strength(frame, band)
        offset = np.clip(frame.astype(np.int16) + (40, 25, -30), 0, 255).astype(np.uint8)
        assert edge_strength(composite(frame, frame, mask), band) == pytest.approx(real, rel=1e-6)
        assert edge_strength(composite(frame, offset, mask), band) > 1.1 * real  # measured 1.12-1.19
        assert edge_strength(composite(frame, cv2.GaussianBlur(frame, (0, 0), 3), mask), band) < real
    assert np.isnan(edge_strength(real_frames[0], np.zeros((512, 512), bool)))


def test_laplacian_energy_measures_detail(real_frames, real_landmarks):
    """A blur lowers the mouth box's Laplacian energy (what the sharpness ratio reads); the same
    box scores the same."""
    f, box = real_frames[0], mouth_box(real_landmarks[0], real_frames[0].shape)
    sharp = laplacian_energy(f[box])
    assert sharp > 0 and laplacian_energy(f[box].copy()) == sharp
    soft, softer = (laplacian_energy(cv2.GaussianBlur(f, (0, 0), s)[box]) for s in (1.0, 2.0))
    assert softer < soft < 0.9 * sharp and softer < 0.6 * sharp, (sharp, soft, softer)


def test_open_frames_pick_the_widest_mouths_apart(sample_identity):
    """The report's mouth strip shows the capture's widest openings, spread over the clip."""
    from nerfhead.eval.strips import open_frames

    opening = mouth_opening(sample_identity.tracks()["landmarks"])
    opening[3] = np.nan  # a frame without a face is never picked
    picks = open_frames(opening, 8, spacing=5)
    assert len(picks) == 8 and picks == sorted(picks) and 3 not in picks
    assert min(np.diff(picks)) >= 5
    assert opening[picks].min() >= np.nanquantile(opening, 0.8)  # among the widest fifth
