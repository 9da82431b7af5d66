"""Rendering rays through the head field: occupancy-guided sampling, field, volume rendering.

The functional core (as nerfacc's ``rendering``): ``render_rays`` marches the rays through the
occupancy grid, drops samples behind opaque surfaces (early termination by transmittance, with
a density-only pass that runs without gradients), evaluates the full field on what is left and
composites the result over the colour behind the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nerfhead.field.head import HeadField
from nerfhead.ops.occupancy import OccupancyGrid
from nerfhead.ops.raymarch import compact_samples, sample_along_rays
from nerfhead.ops.volrend import transmittance, volume_render


@dataclass
class RayConditions:
    """Per-ray conditioning: audio code (N, A), eye (N, 1), frame code (N, F)."""

    audio: torch.Tensor
    eye: torch.Tensor
    frame_code: torch.Tensor

    def rows(self, a: int, b: int) -> "RayConditions":
        """The conditions of rows ``a .. b - 1``."""
        return RayConditions(self.audio[a:b], self.eye[a:b], self.frame_code[a:b])


@dataclass
class SamplingConfig:
    samples_per_box: int = 32  # step size = box diagonal / samples_per_box (ER-NeRF: 16)
    max_samples: int = 32  # per ray
    early_stop_eps: float = 1e-4  # drop samples once transmittance is below this
    alpha_threshold: float = 0.0


@dataclass
class RenderedRays:
    rgb: torch.Tensor  # (N, 3) composited over ``background``
    head_rgb: torch.Tensor  # (N, 3) the head alone (premultiplied by its opacity)
    opacity: torch.Tensor  # (N,)
    depth: torch.Tensor  # (N,) unnormalised (sum of weights * t)
    n_samples: int
    audio_attention: torch.Tensor  # (S, A) per sample, for the ambient-attention penalty
    ray_indices: torch.Tensor  # (S,)
    weights: torch.Tensor  # (S,)


def step_size(aabb: torch.Tensor, cfg: SamplingConfig) -> float:
    lo, hi = aabb.reshape(2, 3)
    return float((hi - lo).norm()) / cfg.samples_per_box


def render_rays(field: HeadField, grid: OccupancyGrid, origins: torch.Tensor, dirs: torch.Tensor,
                cond: RayConditions, background: torch.Tensor, cfg: SamplingConfig,
                jitter: torch.Tensor | None = None) -> RenderedRays:
    """Render rays (N, 3) through the head field, composited over ``background`` (N, 3).

    Without autograd (rendering) the density runs once per marched sample and the colour only
    on the samples early termination keeps; training evaluates the kept samples again with
    gradients. Both give the same pixels. Rendering accepts conditions with one row for all rays.
    """
    if not torch.is_grad_enabled():
        return _render_rays_inference(field, grid, origins, dirs, cond, background, cfg, jitter)

    def sigma_fn(t_starts: torch.Tensor, t_ends: torch.Tensor, ray_indices: torch.Tensor) -> torch.Tensor:
        pts = origins[ray_indices] + dirs[ray_indices] * ((t_starts + t_ends) * 0.5)[:, None]
        return field.density(pts, cond.audio[ray_indices], cond.eye[ray_indices])

    samples = sample_along_rays(origins, dirs, grid, step_size(field.aabb, cfg), cfg.max_samples, jitter=jitter,
                                sigma_fn=sigma_fn, early_stop_eps=cfg.early_stop_eps,
                                alpha_thre=cfg.alpha_threshold)
    ri = samples.ray_indices
    mids = ((samples.t_starts + samples.t_ends) * 0.5)[:, None]
    pts = origins[ri] + dirs[ri] * mids
    out = field(pts, dirs[ri], cond.audio[ri], cond.eye[ri], cond.frame_code[ri])
    res = volume_render(out.sigma, out.rgb, samples.t_starts, samples.t_ends, samples.packed_info)
    rgb = res.rgb + (1.0 - res.opacity)[:, None] * background
    return RenderedRays(rgb, res.rgb, res.opacity, res.depth, int(ri.numel()), out.audio_attention, ri, res.weights)


def _render_rays_inference(field: HeadField, grid: OccupancyGrid, origins: torch.Tensor, dirs: torch.Tensor,
                           cond: RayConditions, background: torch.Tensor, cfg: SamplingConfig,
                           jitter: torch.Tensor | None) -> RenderedRays:
    samples = sample_along_rays(origins, dirs, grid, step_size(field.aabb, cfg), cfg.max_samples, jitter=jitter)
    ri = samples.ray_indices
    pts = origins[ri] + dirs[ri] * ((samples.t_starts + samples.t_ends) * 0.5)[:, None]
    def per_sample(t: torch.Tensor) -> torch.Tensor:  # one row (a whole frame's rays) broadcasts, no copy
        return t.expand(len(ri), -1) if t.shape[0] == 1 else t[ri]

    sigma, geo, a_att, _ = field.density_features(pts, per_sample(cond.audio), per_sample(cond.eye))
    if samples.num_samples:
        trans, alphas = transmittance(sigma.contiguous(), samples.t_starts, samples.t_ends, samples.packed_info)
        keep = trans >= cfg.early_stop_eps
        if cfg.alpha_threshold > 0:
            keep &= alphas >= cfg.alpha_threshold
        samples = compact_samples(samples, keep)
        sigma, geo, a_att, ri = sigma[keep], geo[keep], a_att[keep], samples.ray_indices
    rgb = field.colour(dirs[ri], geo, per_sample(cond.frame_code))
    res = volume_render(sigma, rgb, samples.t_starts, samples.t_ends, samples.packed_info)
    out = res.rgb + (1.0 - res.opacity)[:, None] * background
    return RenderedRays(out, res.rgb, res.opacity, res.depth, int(ri.numel()), a_att, ri, res.weights)
