"""Self-driven scoring with the trivial baselines on the processed sample identity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nerfhead.avatar.portrait import composite, lower_face_mask
from nerfhead.eval.selfdriven import HeldOutFrames, frozen_source, previous_source, retrieval_source
from nerfhead.io.images import read_rgb


def test_baselines_order_and_real_frames_score_perfectly(sample_identity):
    tf = HeldOutFrames(sample_identity)
    assert len(tf.indices) == 50
    real = tf.score("real", lambda i: read_rgb(sample_identity.frame_path(i)))
    frozen = tf.score("frozen", frozen_source(sample_identity))
    previous = tf.score("previous", previous_source(sample_identity))
    for s in (frozen, previous):
        print("\n" + s.row())
    assert real.psnr == float("inf") and real.lmd == 0.0 and real.mouth_corr > 0.999
    assert previous.psnr > frozen.psnr + 5 and previous.face_psnr > frozen.face_psnr + 5
    assert previous.lmd < frozen.lmd and previous.mouth_corr > 0.4 and frozen.mouth_corr == 0.0
    # the mouth box, the seam band and the lower-face flicker
    assert real.mouth_psnr == math.inf and real.mouth_ssim == pytest.approx(1.0)
    assert real.mouth_stlpips == pytest.approx(0.0, abs=1e-9) and real.seam == 1.0 and real.flicker == 1.0
    assert previous.mouth_psnr > frozen.mouth_psnr and previous.mouth_stlpips < frozen.mouth_stlpips
    assert frozen.flicker == 0.0 and 0.7 < previous.flicker < 1.3 and 0.7 < previous.seam < 1.3


def test_retrieval_uses_nearest_features(sample_identity):
    n = sample_identity.manifest()["n_frames"]
    feats = np.zeros((n, 2))
    feats[:, 0] = np.arange(n)  # nearest training frame by "feature" = the last training frame
    src = retrieval_source(sample_identity, feats)
    last_train = sample_identity.manifest()["split"]["train"][-1]
    assert np.array_equal(src(470), read_rgb(sample_identity.frame_path(last_train)))


def test_seam_and_flicker_of_portrait_style_composites(sample_identity):
    """The real test frames with their lower face blended in as portrait mode blends it: the frame
    itself is seamless and as steady as the real video; a colour offset shows a seam; an offset
    that changes from frame to frame flickers."""
    test = sample_identity.manifest()["split"]["test"][:12]
    held = HeldOutFrames(sample_identity, test)
    tracked = sample_identity.tracks()["landmarks"]

    def blended(shift):
        def source(i):
            real = read_rgb(sample_identity.frame_path(i))
            face = np.clip(real.astype(np.int16) + shift(i), 0, 255).astype(np.uint8)
            return composite(real, face, lower_face_mask(tracked[i], real.shape))
        return source

    itself = held.score("itself", blended(lambda i: 0))
    offset = held.score("offset", blended(lambda i: np.array([40, 25, -30])))
    flicker = held.score("flicker", blended(lambda i: np.array([12, 8, -10]) * (-1) ** i))
    assert itself.seam == pytest.approx(1.0, abs=1e-6) and itself.flicker == pytest.approx(1.0, abs=1e-6)
    assert itself.mouth_stlpips < 1e-3
    assert offset.seam > 1.1 and 0.9 < offset.flicker < 1.2  # measured 1.14, 1.05 (the mask moves a little)
    assert offset.mouth_psnr < 25 and offset.mouth_stlpips > itself.mouth_stlpips
    assert flicker.flicker > 2  # measured 4.6
    # frames that are not consecutive have no flicker
    assert math.isnan(HeldOutFrames(sample_identity, test[::3]).score("itself", blended(lambda i: 0)).flicker)
