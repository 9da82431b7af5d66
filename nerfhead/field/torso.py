"""The torso: a 2D field over image coordinates that follows the head pose (ER-NeRF style).

Three learnable anchor points in the head frame are moved by the frame's head pose and projected
into the image; their 2D positions tell the field where the head (and so the neck and shoulders)
is. A deformation MLP moves each pixel coordinate by a pose-dependent offset, a 2D hash grid is
read at the moved coordinate, and a small MLP gives the torso's colour and alpha there. A per-frame
code absorbs what the pose does not explain (breathing, cloth); new videos use the mean code.

>>> import torch
>>> f = TorsoField(TorsoFieldConfig(), n_frames=4, image_size=(512, 512))
>>> rgb, alpha = f(torch.rand(6, 2), torch.rand(6, 6), torch.zeros(6, 8))
>>> rgb.shape, alpha.shape
(torch.Size([6, 3]), torch.Size([6]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nerfhead.field.head import mlp
from nerfhead.field.rays import Intrinsics
from nerfhead.ops.hashgrid import HashGrid, HashGridConfig


def _torso_grid() -> HashGridConfig:
    return HashGridConfig(dim=2, levels=12, features_per_level=2, log2_table_size=16, base_resolution=16,
                          max_resolution=1024)


@dataclass
class TorsoFieldConfig:
    encoding: HashGridConfig = field(default_factory=_torso_grid)
    frequencies: int = 4  # sin/cos frequencies for pixel coordinates
    pose_frequencies: int = 4  # and for the anchors' image positions
    hidden: int = 64
    code_dim: int = 8
    max_offset: float = 0.1  # deformation, as a fraction of the image


def frequency_encode(x: torch.Tensor, n: int) -> torch.Tensor:
    """(P, D) -> (P, D * (1 + 2n)): x, sin(2^k pi x), cos(2^k pi x)."""
    freqs = (2.0 ** torch.arange(n, device=x.device, dtype=x.dtype)) * np.pi
    xf = x[..., None] * freqs  # (P, D, n)
    return torch.cat([x, torch.sin(xf).flatten(1), torch.cos(xf).flatten(1)], -1)


def pixel_coords(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer pixel coordinates (N, 2) as x, y -> the field's input: pixel centres in [0, 1]^2."""
    size = torch.tensor([width, height], dtype=torch.float32, device=xy.device)
    return (xy.to(torch.float32) + 0.5) / size


class TorsoField(nn.Module):
    def __init__(self, cfg: TorsoFieldConfig, n_frames: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_size = tuple(image_size)  # (height, width)
        # anchors in the head frame (metres): chin-ish and two points either side, below the face
        self.anchors = nn.Parameter(torch.tensor([[0.0, 0.1, 0.02], [-0.08, 0.12, 0.05], [0.08, 0.12, 0.05]]))
        enc_xy = 2 * (1 + 2 * cfg.frequencies)
        enc_pose = 6 * (1 + 2 * cfg.pose_frequencies)
        self.deform = mlp(enc_xy + enc_pose + cfg.code_dim, cfg.hidden, 2, 3)
        nn.init.zeros_(self.deform[-1].weight)
        nn.init.zeros_(self.deform[-1].bias)
        self.grid = HashGrid(cfg.encoding)
        self.color = mlp(self.grid.output_dim + enc_pose + cfg.code_dim, cfg.hidden, 4, 3)
        self.codes = nn.Embedding(n_frames, cfg.code_dim)
        nn.init.zeros_(self.codes.weight)

    def neutral_code(self, n: int) -> torch.Tensor:
        return self.codes.weight.mean(0, keepdim=True).expand(n, -1)

    def anchor_positions(self, rotation: torch.Tensor, translation: torch.Tensor, k: Intrinsics) -> torch.Tensor:
        """(F, 6) image positions in [0, 1] of the three anchors for head poses (F, 3, 3), (F, 3)."""
        cam = torch.einsum("fij,aj->fai", rotation, self.anchors) + translation[:, None, :]
        z = cam[..., 2].clamp_min(1e-3)
        h, w = self.image_size
        u = (k.fx * cam[..., 0] / z + k.cx) / w
        v = (k.fy * cam[..., 1] / z + k.cy) / h
        return torch.stack([u, v], -1).reshape(len(rotation), 6)

    def forward(self, xy: torch.Tensor, pose: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``xy`` (P, 2) pixel coordinates in [0, 1]; ``pose`` (P, 6) anchor positions; ``code``
        (P, code_dim) -> (rgb (P, 3), alpha (P,))."""
        n = self.cfg.frequencies
        pose_enc = frequency_encode(pose, self.cfg.pose_frequencies)
        offset = torch.tanh(self.deform(torch.cat([frequency_encode(xy, n), pose_enc, code], -1))) * self.cfg.max_offset
        feat = self.grid((xy + offset).clamp(0.0, 1.0))
        out = self.color(torch.cat([feat, pose_enc, code], -1))
        return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3])

    def for_frame(self, pose: torch.Tensor, code: torch.Tensor):
        """The field of one frame as a function ``xy (P, 2) -> (rgb (P, 3), alpha (P,))``, equal to
        :meth:`forward` with ``pose`` (1, 6) and ``code`` (1, code_dim) on every pixel, but faster:
        what is the same for all pixels (the encoded anchors and the code) is folded once into the
        biases of both MLPs' first layers, so each pixel only carries its own coordinates."""
        n = self.cfg.frequencies
        const = torch.cat([frequency_encode(pose.reshape(1, 6), self.cfg.pose_frequencies), code.reshape(1, -1)], -1)[0]

        def fold(net: nn.Sequential, own: int) -> tuple[torch.Tensor, torch.Tensor]:
            first = net[0]
            return first.weight[:, :own], first.bias + first.weight[:, own:] @ const

        w_deform, b_deform = fold(self.deform, 2 * (1 + 2 * n))
        w_color, b_color = fold(self.color, self.grid.output_dim)

        def field(xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.deform[1:](torch.nn.functional.linear(frequency_encode(xy, n), w_deform, b_deform))
            feat = self.grid((xy + torch.tanh(h) * self.cfg.max_offset).clamp(0.0, 1.0))
            out = self.color[1:](torch.nn.functional.linear(feat, w_color, b_color))
            return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3])

        return field
