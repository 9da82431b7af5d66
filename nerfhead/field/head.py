"""The audio-conditioned head field (ER-NeRF style).

A point x in the head box is encoded by a tri-plane hash encoding (three 2D multiresolution hash
grids, ``nerfhead.ops.hashgrid``). From that code a *region attention* MLP predicts per-channel
weights for the audio code and a weight for the eye (blink) scalar, so only the points that move
with speech (mouth, jaw) listen to audio. A density MLP takes (position code, gated audio, gated
eye) to a density and geometry features; a colour MLP takes (view direction SH, geometry
features, per-frame latent code) to RGB. The per-frame codes absorb lighting drift in training;
rendering new audio uses the mean code.

>>> import torch
>>> f = HeadField(HeadFieldConfig(), aabb=torch.tensor([[-1., -1, -1], [1, 1, 1]]), n_frames=10)
>>> out = f(torch.zeros(5, 3), torch.tensor([[0., 0, 1]]).expand(5, 3), torch.zeros(5, 32), torch.zeros(5, 1),
...         torch.zeros(5, 4))
>>> out.sigma.shape, out.rgb.shape
(torch.Size([5]), torch.Size([5, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nerfhead.field.sh import sh_encode
from nerfhead.ops.hashgrid import ERNERF_TRIPLANE, HashGridConfig, TriPlaneEncoding


def mlp(d_in: int, hidden: int, d_out: int, layers: int) -> nn.Sequential:
    """``layers`` linear layers (ReLU between) from ``d_in`` to ``d_out``."""
    dims = [d_in] + [hidden] * (layers - 1) + [d_out]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


@dataclass
class HeadFieldConfig:
    encoding: HashGridConfig = ERNERF_TRIPLANE  # frozen dataclass: safe as a default
    audio_dim: int = 32  # smoothed audio code (AudioNet output)
    hidden: int = 64
    density_layers: int = 3
    geo_features: int = 64
    color_hidden: int = 64
    color_layers: int = 2
    frame_code_dim: int = 4
    attention_hidden: int = 32
    max_log_density: float = 15.0  # exp(15) ~ 3.3e6: caps the density activation


@dataclass
class FieldOutput:
    sigma: torch.Tensor  # (P,) density, >= 0
    rgb: torch.Tensor  # (P, 3) in [0, 1]
    audio_attention: torch.Tensor  # (P, audio_dim) region attention on the audio code
    eye_attention: torch.Tensor  # (P, 1)


class HeadField(nn.Module):
    """Density and colour of points in the head box, conditioned on audio, eyes and frame."""

    def __init__(self, cfg: HeadFieldConfig, aabb: torch.Tensor, n_frames: int) -> None:
        super().__init__()
        self.cfg = cfg
        aabb = torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3)
        self.register_buffer("aabb", aabb.clone())
        self.encoding = TriPlaneEncoding(cfg.encoding)
        enc = self.encoding.output_dim
        self.audio_attention = mlp(enc, cfg.attention_hidden, cfg.audio_dim, 2)
        self.eye_attention = mlp(enc, cfg.attention_hidden, 1, 2)
        self.density_net = mlp(enc + cfg.audio_dim + 1, cfg.hidden, 1 + cfg.geo_features, cfg.density_layers)
        self.color_net = mlp(16 + cfg.geo_features + cfg.frame_code_dim, cfg.color_hidden, 3, cfg.color_layers)
        self.frame_codes = nn.Embedding(n_frames, cfg.frame_code_dim)
        nn.init.zeros_(self.frame_codes.weight)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """World (head frame) points -> [0, 1]^3 box coordinates."""
        lo, hi = self.aabb[0], self.aabb[1]
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    def neutral_code(self, n: int) -> torch.Tensor:
        """The frame code used for new audio: the mean of the training codes."""
        return self.frame_codes.weight.mean(0, keepdim=True).expand(n, -1)

    def _density(self, code: torch.Tensor, audio: torch.Tensor, eye: torch.Tensor):
        a_att = torch.sigmoid(self.audio_attention(code)) * 2.0  # per-channel gate in (0, 2)
        e_att = torch.sigmoid(self.eye_attention(code))
        h = self.density_net(torch.cat([code, audio * a_att, eye * e_att], -1))
        sigma = torch.exp(h[:, 0].clamp(max=self.cfg.max_log_density))
        return sigma, h[:, 1:], a_att, e_att

    def density(self, x: torch.Tensor, audio: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        """(P,) densities at world points ``x`` with per-point audio (P, A) and eye (P, 1) codes."""
        return self.density_features(x, audio, eye)[0]

    def density_features(self, x: torch.Tensor, audio: torch.Tensor, eye: torch.Tensor):
        """(sigma (P,), geometry features (P, G), audio attention, eye attention) at world points."""
        return self._density(self.encoding(self.normalise(x)), audio, eye)

    def colour(self, dirs: torch.Tensor, geo: torch.Tensor, frame_code: torch.Tensor) -> torch.Tensor:
        """(P, 3) colour seen along ``dirs`` from the geometry features of :meth:`density_features`."""
        return torch.sigmoid(self.color_net(torch.cat([sh_encode(dirs), geo, frame_code], -1)))

    def forward(self, x: torch.Tensor, dirs: torch.Tensor, audio: torch.Tensor, eye: torch.Tensor,
                frame_code: torch.Tensor) -> FieldOutput:
        sigma, geo, a_att, e_att = self.density_features(x, audio, eye)
        return FieldOutput(sigma, self.colour(dirs, geo, frame_code), a_att, e_att)
