"""The mouth-opening input of the head field, and its calibration to one presenter.

The field takes the mouth opening (inner-lip gap / face height) divided by the presenter's median
opening while speaking, so 1 is a typical speaking mouth and 0 closed lips. Training feeds the
tracked opening of each frame. A render feeds the articulation track of the new audio
(:mod:`nerfhead.audio.articulation`) mapped through :class:`MouthTrack`: a monotone map fitted
so the capture's own articulation track takes the same distribution of values as the capture's
tracked openings (quantile matching). Each presenter's mouth thus opens as far and as often as it
did in the capture, at the moments the new audio calls for.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

N_QUANTILES = 33


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(xp)`` at ``x`` (``xp`` increasing), constant beyond the ends."""
    if len(xp) == 1:
        return fp.expand_as(x).clone()
    x = x.clamp(float(xp[0]), float(xp[-1]))
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    w = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return f0 + w * (f1 - f0)


class MouthTrack(nn.Module):
    """Articulation score -> the field's mouth input; identity until :meth:`calibrate`."""

    def __init__(self) -> None:
        super().__init__()
        q = torch.linspace(0.0, 1.0, N_QUANTILES)
        self.register_buffer("score_q", q.clone())
        self.register_buffer("opening_q", q.clone())
        self.register_buffer("n_knots", torch.tensor(N_QUANTILES))

    def calibrate(self, scores: np.ndarray, openings: np.ndarray) -> None:
        """Fit the map on the capture: its articulation ``scores`` and tracked (normalised)
        ``openings`` of the same frames. Tied score quantiles (the many closed frames) take the
        mean of their opening quantiles."""
        scores, openings = np.asarray(scores, np.float64), np.asarray(openings, np.float64)
        ok = np.isfinite(scores) & np.isfinite(openings)
        if ok.sum() < 2:
            raise ValueError("need at least two frames with a tracked mouth to calibrate the mouth track")
        qs = np.linspace(0.0, 1.0, N_QUANTILES)
        sq, oq = np.quantile(scores[ok], qs), np.quantile(openings[ok], qs)
        knots, inverse = np.unique(sq, return_inverse=True)
        values = np.bincount(inverse, weights=oq) / np.bincount(inverse)
        self.score_q.zero_()
        self.opening_q.zero_()
        self.score_q[: len(knots)] = torch.from_numpy(knots)
        self.opening_q[: len(knots)] = torch.from_numpy(values)
        self.n_knots.fill_(len(knots))

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        k = int(self.n_knots)
        return interp(scores.to(self.score_q.dtype), self.score_q[:k], self.opening_q[:k])
