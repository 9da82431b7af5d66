"""The error split by region (face, hair, neck and collar, torso, background) on real frames."""

from __future__ import annotations

import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.eval.regions import REGIONS, frame_regions, mean_error_map, region_psnr
from nerfhead.io.images import read_labels, read_rgb
from nerfhead.quality import psnr


def test_regions_of_a_real_frame_and_an_error_below_the_chin(sample_identity):
    i = sample_identity.manifest()["split"]["test"][0]
    real = read_rgb(sample_identity.frame_path(i))
    labels = read_labels(sample_identity.mask_path(i))
    lms = sample_identity.tracks()["landmarks"][i]
    regions = frame_regions(labels, lms)
    counts = {name: int((regions == k).sum()) for k, name in enumerate(REGIONS)}
    assert all(v > 500 for v in counts.values()), counts  # every region present on a head-and-shoulders frame
    x, y = np.round(lms[ids.CHIN, :2]).astype(int)
    assert regions[y + 10, x] == REGIONS.index("neck_collar")
    nose = np.round(lms[1, :2]).astype(int)
    assert regions[nose[1], nose[0]] == REGIONS.index("face")
    assert regions[2, 2] == REGIONS.index("background")
    same = region_psnr(real, real, regions)
    assert all(v == np.inf for v in same.values())
    # darken the pixels just below the chin: only the neck/collar region loses
    pred = real.copy()
    pred[y + 2:y + 30, x - 20:x + 20] //= 2
    hurt = region_psnr(real, pred, regions)
    assert hurt["neck_collar"] < psnr(real, pred) - 5 and all(hurt[k] == np.inf for k in REGIONS if k != "neck_collar"), hurt
    err = mean_error_map([real, real], [real, pred])
    assert err.shape == real.shape[:2] and err[y + 10, x] > 10 and err[5, 5] == 0
