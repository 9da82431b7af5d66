"""Camera rays in the head frame, and the head's bounding box.

The head is static in its own frame and the camera moves (``camera_to_head`` from the
dataset), as in the NeRF formulation of talking heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Intrinsics":
        cam = manifest["camera"]
        return cls(cam["fx"], cam["fy"], cam["cx"], cam["cy"])

    def scaled(self, factor: float) -> "Intrinsics":
        """For an image resized by ``factor``."""
        return Intrinsics(self.fx * factor, self.fy * factor, self.cx * factor, self.cy * factor)


def pixel_rays(c2w: torch.Tensor, k: Intrinsics, xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions (N, 3) of rays through pixel centres (xs, ys).

    ``c2w``: (N, 4, 4) or (4, 4) camera-to-head transforms (OpenCV camera axes); ``xs``, ``ys``:
    (N,) integer or float pixel coordinates (the ray passes through x + 0.5, y + 0.5).

    >>> o, d = pixel_rays(torch.eye(4), Intrinsics(100, 100, 50, 50), torch.tensor([49.5]), torch.tensor([49.5]))
    >>> d.tolist()
    [[0.0, 0.0, 1.0]]
    """
    xs = xs.to(c2w.dtype)
    ys = ys.to(c2w.dtype)
    cam = torch.stack([(xs + 0.5 - k.cx) / k.fx, (ys + 0.5 - k.cy) / k.fy, torch.ones_like(xs)], -1)
    rot = c2w[..., :3, :3]
    dirs = torch.einsum("...ij,...j->...i", rot, cam) if rot.dim() == 3 else cam @ rot.T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[..., :3, 3].expand_as(dirs)
    return origins.contiguous(), dirs.contiguous()


def head_box(canonical_shape: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """(2, 3) axis-aligned box in the head frame around the face shape, grown for hair and the
    back of the head: ``margin`` of the face's size on each side, more above (hair) and behind."""
    lo, hi = canonical_shape.min(0), canonical_shape.max(0)
    size = hi - lo
    s = float(size[:2].max())
    lo = lo - margin * size
    hi = hi + margin * size
    lo[1] -= 0.25 * s  # hair above the forehead (y points to the chin)
    lo[2] -= 0.05 * s  # in front of the nose tip
    hi[2] = max(hi[2], lo[2] + 0.9 * s)  # the back of the head
    return np.stack([lo, hi])
