"""Audio code per video frame: a window encoder and attention smoothing over neighbours.

As in ER-NeRF/AD-NeRF: 1D convolutions over the per-frame feature window (16 steps of the
100 Hz features, centred on the frame) and an MLP give one code per frame; softmax attention
over the codes of ``n`` neighbouring frames gives the smoothed code that drives the mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AudioNetConfig:
    code_dim: int = 32
    hidden: int = 64
    smooth_frames: int = 8  # neighbouring frames attended over


class AudioEncoder(nn.Module):
    """(B, window, D) feature windows -> (B, code_dim) codes."""

    def __init__(self, feature_dim: int, window: int = 16, cfg: AudioNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AudioNetConfig()
        h = cfg.hidden
        convs, steps, ch = [], window, feature_dim
        while steps > 1:  # halve the window until one step is left
            convs += [nn.Conv1d(ch, h, 3, stride=2, padding=1), nn.LeakyReLU(0.02)]
            ch, steps = h, (steps + 1) // 2
        self.convs = nn.Sequential(*convs)
        self.mlp = nn.Sequential(nn.Linear(ch, h), nn.LeakyReLU(0.02), nn.Linear(h, cfg.code_dim))
        self.window, self.feature_dim = window, feature_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.shape[1:] != (self.window, self.feature_dim):
            raise ValueError(f"expected audio windows (B, {self.window}, {self.feature_dim}), got {tuple(windows.shape)}")
        x = self.convs(windows.transpose(1, 2))  # (B, C, 1)
        return self.mlp(x[..., 0])


class AudioSmoother(nn.Module):
    """(B, n, code_dim) neighbouring codes -> (B, code_dim) attention-weighted code."""

    def __init__(self, cfg: AudioNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AudioNetConfig()
        d = cfg.code_dim
        self.score = nn.Sequential(
            nn.Conv1d(d, 16, 3, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(16, 8, 3, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(8, 1, 3, padding=1),
        )

    def weights(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(codes.transpose(1, 2))[:, 0], dim=-1)  # (B, n)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return (self.weights(codes)[..., None] * codes).sum(1)


def neighbour_indices(frames: torch.Tensor, n_frames: int, n: int = 8) -> torch.Tensor:
    """(B, n) indices of the ``n`` frames around each frame, clamped at the sequence ends."""
    offsets = torch.arange(n, device=frames.device) - n // 2
    return (frames[:, None] + offsets).clamp(0, n_frames - 1)


class AudioNet(nn.Module):
    """Per-frame feature windows of a whole clip -> smoothed audio code for chosen frames."""

    def __init__(self, feature_dim: int, window: int = 16, cfg: AudioNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or AudioNetConfig()
        self.encoder = AudioEncoder(feature_dim, window, self.cfg)
        self.smoother = AudioSmoother(self.cfg)
        # per-feature input normalisation, set from the training clip (saved with the model)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        # the range each feature took in training: new audio is clamped to it, so digital silence
        # (TTS pauses, padding; quieter than any room) cannot drive the field outside what it learnt
        self.register_buffer("feature_min", torch.full((feature_dim,), -torch.inf))
        self.register_buffer("feature_max", torch.full((feature_dim,), torch.inf))

    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Normalise inputs with the per-feature mean/std of ``features`` (T, D), the training clip's,
        and clamp them to its range."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-3))
        self.feature_min.copy_(features.min(0).values)
        self.feature_max.copy_(features.max(0).values)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before the range was kept: no clamping
        for name in ("feature_min", "feature_max"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, windows: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``windows``: (n_frames, window, D) of the clip; ``frames``: (B,) -> (B, code_dim)."""
        if windows.dim() != 3 or windows.shape[1:] != (self.encoder.window, self.encoder.feature_dim):
            raise ValueError(f"expected audio windows (n_frames, {self.encoder.window}, {self.encoder.feature_dim}), "
                             f"got {tuple(windows.shape)}")
        idx = neighbour_indices(frames, len(windows), self.cfg.smooth_frames)
        uniq, inverse = torch.unique(idx, return_inverse=True)
        x = (torch.maximum(torch.minimum(windows[uniq], self.feature_max), self.feature_min) - self.feature_mean) / self.feature_std
        codes = self.encoder(x)[inverse]  # (B, n, code_dim)
        return self.smoother(codes)
