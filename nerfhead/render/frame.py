"""Render one whole frame of the head field over a given backdrop (torso + background)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.rays import Intrinsics, pixel_rays
from nerfhead.field.renderer import RayConditions, SamplingConfig, render_rays
from nerfhead.field.torso import pixel_coords


@dataclass
class FrameRender:
    rgb: np.ndarray  # (H, W, 3) uint8, head composited over the backdrop
    opacity: np.ndarray  # (H, W) float32 head alpha
    depth: np.ndarray  # (H, W) float32


def head_pixel_rect(model: TalkingHeadModel, c2w: np.ndarray, k: Intrinsics, height: int, width: int,
                    pad: int = 2) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the image rectangle covering the projection of the head box."""
    lo, hi = model.field.aabb.cpu().numpy()
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    w2c = np.linalg.inv(c2w)
    cam = corners @ w2c[:3, :3].T + w2c[:3, 3]
    if (cam[:, 2] <= 1e-6).any():  # camera inside or behind the box: whole image
        return 0, 0, width, height
    u = k.fx * cam[:, 0] / cam[:, 2] + k.cx
    v = k.fy * cam[:, 1] / cam[:, 2] + k.cy
    x0, x1 = int(np.clip(np.floor(u.min()) - pad, 0, width)), int(np.clip(np.ceil(u.max()) + pad, 0, width))
    y0, y1 = int(np.clip(np.floor(v.min()) - pad, 0, height)), int(np.clip(np.ceil(v.max()) + pad, 0, height))
    return x0, y0, x1, y1


@torch.no_grad()
def render_frame(model: TalkingHeadModel, c2w: np.ndarray, k: Intrinsics, backdrop: np.ndarray,
                 cond: RayConditions, sampling: SamplingConfig, chunk: int = 32768) -> FrameRender:
    """Render the head for camera ``c2w`` over ``backdrop`` (H, W, 3) uint8.

    ``cond`` holds the conditioning of this one frame (each tensor with one row). Only pixels inside
    the projected head box are marched; the rest show the backdrop.
    """
    h, w = backdrop.shape[:2]
    out = backdrop.astype(np.float32) / 255.0
    opacity = np.zeros((h, w), np.float32)
    depth = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = head_pixel_rect(model, c2w, k, h, w)
    if x1 > x0 and y1 > y0:
        ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        c2w_t = torch.from_numpy(np.asarray(c2w, np.float32))
        origins, dirs = pixel_rays(c2w_t, k, xs, ys)
        behind = torch.from_numpy(out[y0:y1, x0:x1].reshape(-1, 3).copy())
        rgb = torch.empty_like(behind)
        alpha = torch.empty(len(xs))
        dep = torch.empty(len(xs))
        for s in range(0, len(xs), chunk):
            e = min(s + chunk, len(xs))
            n = e - s
            c = RayConditions(cond.audio.expand(n, -1), cond.eye.expand(n, -1), cond.frame_code.expand(n, -1))
            r = render_rays(model.field, model.grid, origins[s:e], dirs[s:e], c, behind[s:e], sampling)
            rgb[s:e], alpha[s:e], dep[s:e] = r.rgb, r.opacity, r.depth
        out[y0:y1, x0:x1] = rgb.reshape(y1 - y0, x1 - x0, 3).numpy()
        opacity[y0:y1, x0:x1] = alpha.reshape(y1 - y0, x1 - x0).numpy()
        depth[y0:y1, x0:x1] = dep.reshape(y1 - y0, x1 - x0).numpy()
    return FrameRender((out.clip(0, 1) * 255 + 0.5).astype(np.uint8), opacity, depth)


@torch.no_grad()
def torso_backdrop(model: TalkingHeadModel, rotation: torch.Tensor, translation: torch.Tensor, plate: np.ndarray,
                   code: torch.Tensor | None = None, chunk: int = 65536) -> np.ndarray:
    """(H, W, 3) uint8: the torso field for head pose (rotation (3, 3), translation (3,)) over the
    background ``plate``; ``code`` (1, code_dim) is the torso frame code, default the neutral one."""
    h, w = plate.shape[:2]
    torso = model.torso
    device = next(model.parameters()).device
    pose = torso.anchor_positions(rotation.reshape(1, 3, 3).to(device), translation.reshape(1, 3).to(device),
                                  model.intrinsics)
    code = torso.neutral_code(1) if code is None else code
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    xy = pixel_coords(torch.stack([xs.reshape(-1), ys.reshape(-1)], -1), h, w)
    bg = torch.from_numpy(plate.reshape(-1, 3).astype(np.float32) / 255.0).to(device)
    out = torch.empty_like(bg)
    for s in range(0, len(xy), chunk):
        e = min(s + chunk, len(xy))
        rgb, alpha = torso(xy[s:e], pose.expand(e - s, -1), code.expand(e - s, -1))
        out[s:e] = rgb * alpha[:, None] + bg[s:e] * (1 - alpha[:, None])
    return (out.reshape(h, w, 3).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
