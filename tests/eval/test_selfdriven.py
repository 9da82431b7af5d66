"""Self-driven scoring with the trivial baselines on the processed sample identity."""

from __future__ import annotations

import numpy as np

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


def test_retrieval_uses_nearest_features(sample_identity):
    n = sample_identity.manifest()["n_frames"]
    feats = np.zeros((n, 2))
    feats[:, 0] = np.arange(n)  # nearest training frame by "feature" = the last training frame
    src = retrieval_source(sample_identity, feats)
    last_train = sample_identity.manifest()["split"]["train"][-1]
    assert np.array_equal(src(470), read_rgb(sample_identity.frame_path(last_train)))
