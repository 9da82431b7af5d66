"""The render path (no autograd: density once per marched sample, colour on what early termination
keeps) gives the pixels of the training path (density pass, early termination, full field again)."""

from __future__ import annotations

import torch

from nerfhead.field.head import HeadField, HeadFieldConfig
from nerfhead.field.renderer import RayConditions, SamplingConfig, render_rays
from nerfhead.ops.occupancy import OccupancyGrid

BOX = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def _scene(seed: int = 0):
    torch.manual_seed(seed)
    field = HeadField(HeadFieldConfig(), aabb=BOX, n_frames=3)
    with torch.no_grad():
        for p in field.parameters():  # a field with structure: random tables and weights
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() == 1 else 0.3))
        # centre the log-density on log(8) inside the box: some rays turn opaque, others stay thin
        x = torch.rand(4096, 3) * 1.6 - 0.8
        log_sigma = field.density(x, torch.zeros(4096, 32), torch.zeros(4096, 1)).log()
        field.density_net[-1].bias[0] += float(torch.log(torch.tensor(8.0)) - log_sigma.median())
    grid = OccupancyGrid(BOX.reshape(-1), resolution=16)
    pts = grid.cell_points()
    grid.update(grid.cell_indices(), (pts.norm(dim=-1) < 0.8).float() * 100.0, decay=0.0, threshold=10.0)
    n = 3000
    origins = torch.tensor([0.0, 0.0, -3.0]).expand(n, 3).contiguous()
    target = torch.rand(n, 3) * 1.8 - 0.9
    dirs = torch.nn.functional.normalize(target - origins, dim=-1)
    cond = RayConditions(torch.randn(1, 32), torch.full((1, 1), 0.4), field.frame_codes.weight[1:2] + 0.3)
    return field, grid, origins, dirs, cond, torch.rand(n, 3)


def test_render_path_equals_training_path():
    field, grid, origins, dirs, cond, background = _scene()
    cfg = SamplingConfig(samples_per_box=32, max_samples=32)
    with torch.no_grad():
        fast = render_rays(field, grid, origins, dirs, cond, background, cfg)
    n = len(origins)
    rows = RayConditions(cond.audio.expand(n, -1), cond.eye.expand(n, -1), cond.frame_code.expand(n, -1))
    with torch.enable_grad():
        slow = render_rays(field, grid, origins, dirs, rows, background, cfg)
    assert fast.n_samples == slow.n_samples
    torch.testing.assert_close(fast.rgb, slow.rgb.detach(), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(fast.opacity, slow.opacity.detach(), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(fast.depth, slow.depth.detach(), atol=1e-4, rtol=1e-4)
    # the scene exercises early termination: opaque rays, and rays with many samples
    assert (fast.opacity > 0.999).sum() > 100 and (fast.opacity < 0.5).sum() > 100
    assert torch.bincount(fast.ray_indices).max() > 8
