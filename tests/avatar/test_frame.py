"""Whole-frame rendering on the briefly trained sample: the rectangle of rays that can reach the
head is exact (nothing outside it would have been marched) and chunking changes no pixel."""

from __future__ import annotations

import numpy as np
import torch

from nerfhead.dataset import Identity
from nerfhead.field.rays import pixel_rays
from nerfhead.field.renderer import RayConditions, render_rays, step_size
from nerfhead.io.images import read_rgb
from nerfhead.ops.raymarch import sample_along_rays
from nerfhead.avatar.frame import head_pixel_rect, render_frame, torso_backdrop
from nerfhead.render.poses import capture_poses
from nerfhead.avatar.load import load_avatar


def _setup(trained_sample, n=3):
    ident = Identity.at(trained_sample.name, trained_sample.root.parent)
    avatar = load_avatar(ident)
    poses = capture_poses(ident, 200)
    picks = np.linspace(0, 199, n).astype(int)  # poses across the capture
    return ident, avatar, poses, picks


def test_head_rect_holds_every_marched_ray(trained_sample):
    ident, avatar, poses, picks = _setup(trained_sample)
    model, k = avatar.model, avatar.model.intrinsics
    h, w = read_rgb(ident.background_path).shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xs, ys = xs.reshape(-1), ys.reshape(-1)
    for f in picks:
        c2w = poses.camera_to_head[f].astype(np.float32)
        x0, y0, x1, y1 = head_pixel_rect(model, c2w, k, h, w)
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        o, d = pixel_rays(torch.from_numpy(c2w), k, xs, ys)
        s = sample_along_rays(o, d, model.grid, step_size(model.field.aabb, avatar.sampling),
                              avatar.sampling.max_samples)
        hit = (s.packed_info[:, 1] > 0).reshape(h, w).numpy()
        assert hit.any()
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        assert not (hit & ~inside).any(), f"frame {f}: rays with samples outside {(x0, y0, x1, y1)}"
        # and it is tight: within about a grid cell of the occupied cells' projected centres, clipped
        # to the picture. Not of the rays that are hit: a stray occupied cell just outside the picture
        # (above the hair) widens the rectangle to the picture's edge with no ray of the picture
        # reaching it, and whether a short training run leaves one varies from run to run.
        centres = model.grid.cell_points(model.grid.occupied_mask().nonzero().squeeze(1)).numpy()
        w2c = np.linalg.inv(c2w).astype(np.float64)
        cam = centres @ w2c[:3, :3].T + w2c[:3, 3]
        u = np.clip(k.fx * cam[:, 0] / cam[:, 2] + k.cx, 0, w)
        v = np.clip(k.fy * cam[:, 1] / cam[:, 2] + k.cy, 0, h)
        cell_px = k.fx * float((model.field.aabb[1] - model.field.aabb[0]).norm()) / model.grid.resolution / 0.5
        slack = 3 + 2 * cell_px
        assert max(u.min() - x0, x1 - u.max(), v.min() - y0, y1 - v.max()) <= slack
        rows, cols = np.nonzero(hit)  # and what is hit lies within the cells' projection too
        assert min(rows.min() - v.min(), v.max() - rows.max(), cols.min() - u.min(), u.max() - cols.max()) >= -slack


def test_frame_equals_all_rays_rendered_in_any_chunks(trained_sample):
    ident, avatar, poses, picks = _setup(trained_sample, n=1)
    model, k = avatar.model, avatar.model.intrinsics
    f = int(picks[0])
    plate = read_rgb(ident.background_path)
    backdrop = torso_backdrop(model, torch.from_numpy(poses.rotation[f].astype(np.float32)),
                              torch.from_numpy(poses.translation[f].astype(np.float32)), plate)
    with torch.no_grad():
        cond = model.conditions(torch.zeros(1, model.meta.window, model.meta.feature_dim), torch.tensor([0]),
                                torch.tensor([0.3]))
    one = RayConditions(cond.audio, cond.eye, cond.frame_code)
    c2w = poses.camera_to_head[f].astype(np.float32)
    small = render_frame(model, c2w, k, backdrop, one, avatar.sampling, chunk=512)
    big = render_frame(model, c2w, k, backdrop, one, avatar.sampling, chunk=1 << 20)
    assert np.abs(small.rgb.astype(int) - big.rgb.astype(int)).max() <= 1
    assert small.opacity.max() > 0.5  # the head is there
    # every ray of the frame, no rectangle: the same picture
    h, w = plate.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    o, d = pixel_rays(torch.from_numpy(c2w), k, xs.reshape(-1), ys.reshape(-1))
    behind = torch.from_numpy(backdrop.reshape(-1, 3).astype(np.float32) / 255)
    with torch.no_grad():
        full = render_rays(model.field, model.grid, o, d, one, behind, avatar.sampling).rgb
    full = (full.clamp(0, 1).reshape(h, w, 3).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(full.astype(int) - small.rgb.astype(int)).max() <= 1
