"""Rays built from the dataset's camera pass through the 3D points the tracker saw."""

from __future__ import annotations

import numpy as np
import torch

from nerfhead import landmark_ids as ids
from nerfhead.field.rays import Intrinsics, head_box, pixel_rays


def test_rays_through_landmarks_pass_the_canonical_points(sample_identity):
    m = sample_identity.manifest()
    t = sample_identity.tracks()
    k = Intrinsics.from_manifest(m)
    frames = np.array([0, 100, 300, 499])
    rigid = list(ids.RIGID)
    c2w = torch.from_numpy(t["camera_to_head"][frames]).repeat_interleave(len(rigid), 0)
    uv = torch.from_numpy(t["landmarks"][frames][:, rigid, :2].reshape(-1, 2)).double() - 0.5
    o, d = pixel_rays(c2w, k, uv[:, 0], uv[:, 1])
    pts = torch.from_numpy(np.tile(t["canonical_shape"][rigid], (len(frames), 1)))
    # distance of each 3D point from its ray, in metres
    v = pts - o
    dist = (v - (v * d).sum(-1, keepdim=True) * d).norm(dim=-1)
    assert torch.median(dist) < 0.002  # ~1 px at half a metre
    box = head_box(t["canonical_shape"])
    assert (box[0] < t["canonical_shape"].min(0)).all() and (box[1] > t["canonical_shape"].max(0)).all()
    # every camera looks at the box from outside
    eye = c2w[:, :3, 3].numpy()
    assert ((eye < box[0]) | (eye > box[1])).any(axis=1).all()
