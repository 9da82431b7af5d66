"""The mouth input as a lip-shape code, and the network that predicts it from the audio.

The head field's mouth input is ``1 + K`` numbers a frame: the mouth opening (inner-lip gap over
face height, divided by the presenter's median speaking opening: :mod:`nerfhead.field.mouth`) and
``K`` lip-shape components: the first principal components of the tracked lip landmarks of the
capture's training frames, taken in the head's frame (each frame's rigid landmarks aligned onto their
mean by a similarity transform, so head turns and distance do not count as lip shape), each scaled
to unit spread. Training feeds the tracked code of each frame (teacher forcing).

A render of another voice (a script, a dub, any language) feeds the articulation rule's opening
(:mod:`nerfhead.audio.articulation` through the avatar's :class:`~nerfhead.field.mouth.MouthTrack`:
closed in silences and at /p b m/, wider for loud open vowels, for any voice) plus
:data:`RESIDUAL_GAIN` times :class:`LipPredictor`'s *correction* of it, fitted on the capture: a
regularised linear map from the frame's audio (its feature window, pooled into three 50-60 ms spans)
and the articulation track around it to what the presenter's tracked code was beyond the rule's (one
presenter keeps the lips apart in short pauses, another opens less than the rule says). The
correction learnt from one voice carries only in part to other voices: at full strength it loses the
rule's loudness tracking on other speakers; at half strength (:data:`RESIDUAL_GAIN`) every
development clip kept at least the real capture's loudness correlation and /p b m/ closing.

The presenter's *own voice* (a new recording of the person filmed, or the capture's own audio)
takes the *presenter map* instead: the same inputs mapped to the tracked code itself, no rule. It
follows the held-out mouth of the capture far better than the rule (cnn: opening correlation 0.62
against 0.40), because it learnt this speaker's timing, pauses and habits, but on other voices it
follows their loudness and /p b m/ worse than the real presenter does (docs/EVALUATION.md, issue 17).
Its output is widened about its mean by :data:`OWN_GAIN` (fitted maps and the field both narrow the
opening), within the range the tracked input had on the training frames. For each output where it
did better on held-back frames, its linear map is averaged with small nonlinear networks
(:mod:`nerfhead.field.presenter_net`).

Both maps: for each output, the inputs and the regularisation strength are chosen on held-back
frames of the capture (the simplest choice within one standard error of the best).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import nn

from nerfhead.field import presenter_net
from nerfhead.log import get_logger

log = get_logger(__name__)

PREDICT_SMOOTH = 1.0  # Gaussian sigma (video frames) of the predicted code over time
FOLDS = 5  # contiguous spans of the training frames, each held back in turn to choose inputs and strength
RIDGE = (1.0, 10.0, 100.0, 1e3, 1e4)  # regularisation strengths tried (inputs standardised)
ART_CONTEXT = 3  # articulation scores of this many frames either side of the frame
INPUTS = ("audio", "rule", "audio+rule", "none")  # input sets tried for each output
RESIDUAL_GAIN = 0.5  # share of the fitted correction a render adds to the rule's mouth input (measured)
# the presenter map's output is widened about its mean by this factor (measured: docs/EVALUATION.md, issue 17).
# A regularised map fitted to a noisy target predicts a narrower range than the target has (its best guess
# shrinks towards the mean: cnn's held-back opening spread 0.58 of the tracked one, lip component 1 0.60), and
# the field renders a narrower opening still than it is fed: widened 2x, the cnn avatar's held-out rendered
# opening followed the real one with correlation 0.63 instead of 0.47, LMD 1.54 px instead of 1.67.
OWN_GAIN = 2.0
NET_SHARE = 0.5  # the networks' share of the presenter map where they join the linear map (issue 17)
# the presenter map's network weights (buffers of LipPredictor) and their sizes without networks
NET_SHAPES = {"own_net_w1": lambda n_in, out: (0, n_in, 0), "own_net_b1": lambda n_in, out: (0, 0),
              "own_net_w2": lambda n_in, out: (0, 0, out), "own_net_b2": lambda n_in, out: (0, out)}


def canonical_lips(landmarks: np.ndarray, rigid_ids: np.ndarray, lip_ids: np.ndarray) -> np.ndarray:
    """(n, L, 3) lip landmarks of each frame (``landmarks`` (n, 478, 3)) after the similarity
    transform that best maps the frame's rigid landmarks onto their mean shape; NaN without a face."""
    pts = np.asarray(landmarks, np.float64)
    ok = np.isfinite(pts[:, rigid_ids]).all(axis=(1, 2)) & np.isfinite(pts[:, lip_ids]).all(axis=(1, 2))
    out = np.full((len(pts), len(lip_ids), 3), np.nan)
    if not ok.any():
        return out
    ref = pts[ok][:, rigid_ids].mean(0)
    ref = ref - ref.mean(0)
    for i in np.flatnonzero(ok):
        p = pts[i, rigid_ids]
        mu = p.mean(0)
        pc = p - mu
        u, s, vt = np.linalg.svd(pc.T @ ref)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rot = u @ d @ vt
        scale = float((s * np.diag(d)).sum() / max((pc ** 2).sum(), 1e-12))
        out[i] = scale * (pts[i, lip_ids] - mu) @ rot
    return out


def lip_codes(canon: np.ndarray, frames, k: int) -> np.ndarray:
    """(n, k) float32 lip-shape codes of ``canon`` (n, L, 3): projections on the first ``k``
    principal components of the frames ``frames``, each with unit standard deviation there; 0
    (the mean shape) for frames without a face."""
    n = len(canon)
    flat = canon.reshape(n, -1)
    ok = np.isfinite(flat).all(1)
    fit = np.asarray([f for f in frames if ok[f]], np.int64)
    if k == 0 or len(fit) <= k:
        return np.zeros((n, k), np.float32)
    mean = flat[fit].mean(0)
    _, _, vt = np.linalg.svd(flat[fit] - mean, full_matrices=False)
    codes = np.zeros((n, k))
    codes[ok] = (flat[ok] - mean) @ vt[:k].T
    codes /= np.maximum(codes[fit].std(0), 1e-9)
    return codes.astype(np.float32)


def pooled_windows(windows: np.ndarray) -> np.ndarray:
    """(n, 3 D) each frame's feature window (n, W, D) averaged over its first, middle and last
    thirds (before, at and after the frame's time)."""
    w = np.asarray(windows, np.float32)
    a, b = w.shape[1] * 3 // 8, w.shape[1] * 11 // 16
    return np.concatenate([w[:, :a].mean(1), w[:, a:b].mean(1), w[:, b:].mean(1)], 1)


def articulation_context(scores: np.ndarray) -> np.ndarray:
    """(n, 2 ART_CONTEXT + 1) the articulation scores of consecutive frames around each (edge padded)."""
    s = np.pad(np.asarray(scores, np.float32), ART_CONTEXT, mode="edge")
    return np.stack([s[k:k + len(scores)] for k in range(2 * ART_CONTEXT + 1)], 1)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (I, M), bias (M,)) of ridge regression on standardised inputs ``x`` (N, I)."""
    ym = y.mean(0)
    if x.shape[1] == 0:
        return np.zeros((0, y.shape[1])), ym
    w = np.linalg.solve(x.T @ x + lam * len(x) * np.eye(x.shape[1]) / 100.0, x.T @ (y - ym))
    return w, ym - x.mean(0) @ w


def _spans(n: int) -> list[np.ndarray]:
    """The :data:`FOLDS` contiguous spans of ``n`` time-ordered frames that are held back in turn."""
    return np.array_split(np.arange(n), FOLDS)


def span_errors(pred: np.ndarray, y: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """(len(folds), M) the error of held-back predictions ``pred`` of targets ``y`` (N, M) on each span
    ``folds``, as a share of the span's variance."""
    return np.stack([((pred[f] - y[f]) ** 2).mean(0) / (y[f].var(0) + 1e-12) for f in folds])


def _one_standard_error(tried: list, j: int) -> tuple[float, str, float]:
    """(held-back error, input set, strength) for output ``j``: the simplest of the ``tried`` maps
    (fewest inputs, then strongest regularisation) whose mean held-back error is within one standard
    error of the best one's (the one-standard-error rule: on a short capture the best-scoring map is
    often noise fitted to it)."""
    means = np.array([t[3][:, j].mean() for t in tried])
    best = int(np.argmin(means))
    folds = tried[best][3][:, j]
    limit = means[best] + folds.std(ddof=1) / np.sqrt(len(folds))
    pick = min((t for t, m in zip(tried, means) if m <= limit), key=lambda t: t[0])
    return float(pick[3][:, j].mean()), pick[1], pick[2]


class LipPredictor(nn.Module):
    """Audio feature windows and articulation scores of consecutive frames -> a correction of a
    prior mouth input (opening + lip-shape code; the prior 0 for checkpoints before it): a linear map
    fitted in closed form (:meth:`fit`)."""

    def __init__(self, feature_dim: int, window: int, out_dim: int) -> None:
        super().__init__()
        self.window, self.feature_dim, self.out_dim = window, feature_dim, out_dim
        n_in = 3 * feature_dim + 2 * ART_CONTEXT + 1
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        self.register_buffer("in_min", torch.full((n_in,), -torch.inf))
        self.register_buffer("in_max", torch.full((n_in,), torch.inf))
        self.register_buffer("weight", torch.zeros(n_in, out_dim))
        self.register_buffer("bias", torch.zeros(out_dim))
        # the presenter map (the tracked input itself, no prior) and, per output, whether it beat the
        # rule-corrected input on held-back frames (none in checkpoints before it)
        self.register_buffer("own_weight", torch.zeros(n_in, out_dim))
        self.register_buffer("own_bias", torch.zeros(out_dim))
        self.register_buffer("own_use", torch.zeros(out_dim, dtype=torch.bool))
        # per output, how much the presenter map's output is widened about its mean (OWN_GAIN; 1, as fitted, in
        # checkpoints before it)
        self.register_buffer("own_gain", torch.ones(out_dim))
        # per output, whether the presenter map's networks join its linear map (never in checkpoints before them),
        # and the networks (presenter_net; none kept where no output takes them; sized by the checkpoint on load)
        self.register_buffer("own_net", torch.zeros(out_dim, dtype=torch.bool))
        for name, shape in NET_SHAPES.items():
            self.register_buffer(name, torch.zeros(shape(n_in, out_dim)))
        # the range of the tracked input on the training frames: the widened presenter map stays inside it
        # (unbounded in checkpoints before it)
        self.register_buffer("own_lo", torch.full((out_dim,), -torch.inf))
        self.register_buffer("own_hi", torch.full((out_dim,), torch.inf))
        self.register_buffer("closed", torch.zeros(out_dim))  # the capture's mean closed-lips input
        # the lip shape that goes with an opening on the capture: input = prior_base + prior_slope * opening
        self.register_buffer("prior_base", torch.zeros(out_dim))
        self.register_buffer("prior_slope", torch.eye(out_dim)[0])

    def size_networks(self, state: dict, prefix: str = "") -> None:
        """Give the network buffers the sizes they have in ``state`` (a state dict; keys after ``prefix``)
        so that it loads."""
        for name in NET_SHAPES:
            if prefix + name in state:
                setattr(self, name, torch.zeros_like(state[prefix + name], device=self.weight.device))

    def prior(self, opening: torch.Tensor) -> torch.Tensor:
        """(n, out_dim) the mouth input that goes with openings ``opening`` (n,): the opening itself
        and the lip shape the capture showed with it on average (a linear fit, :meth:`fit_prior`)."""
        return self.prior_base + opening.to(self.prior_slope)[:, None] * self.prior_slope

    def fit_prior(self, targets: np.ndarray, frames) -> None:
        """Fit :meth:`prior` on the tracked mouth inputs ``targets`` (n, out_dim) of ``frames``: each
        lip-shape component against the opening (column 0) by least squares."""
        y = np.asarray(targets, np.float64)[np.asarray(frames, np.int64)]
        a = np.c_[np.ones(len(y)), y[:, 0]]
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        base, slope = coef[0], coef[1]
        base[0], slope[0] = 0.0, 1.0
        self.prior_base.copy_(torch.from_numpy(base))
        self.prior_slope.copy_(torch.from_numpy(slope))

    def inputs(self, windows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """(n, I) raw inputs of consecutive frames."""
        return np.concatenate([pooled_windows(windows), articulation_context(scores)], 1)

    def standardised(self, raw: np.ndarray) -> np.ndarray:
        lo, hi = self.in_min.cpu().numpy(), self.in_max.cpu().numpy()
        return (np.clip(raw, lo, hi) - self.in_mean.cpu().numpy()) / self.in_std.cpu().numpy()

    @torch.no_grad()
    def predict(self, windows: torch.Tensor | np.ndarray, scores: np.ndarray, own: bool = False) -> torch.Tensor:
        """(n, out_dim) the map's output for consecutive frames (``windows`` (n, window, D),
        articulation ``scores`` (n,)), smoothed over time: the correction of the prior it was fitted
        against (:meth:`fit`), or with ``own`` the presenter map's mouth input itself."""
        win = windows.cpu().numpy() if torch.is_tensor(windows) else np.asarray(windows)
        if len(win) == 0:
            return torch.zeros(0, self.out_dim, device=self.weight.device)
        weight, bias = (self.own_weight, self.own_bias) if own else (self.weight, self.bias)
        b = bias.cpu().numpy()
        x = self.standardised(self.inputs(win, scores))
        out = x @ weight.cpu().numpy() + b
        if own and self.own_net.any():
            net = self.own_net.cpu().numpy()
            nets = presenter_net.predict(x, self.own_net_w1, self.own_net_b1, self.own_net_w2, self.own_net_b2)
            out[:, net] = (1 - NET_SHARE) * out[:, net] + NET_SHARE * nets[:, net]
        if PREDICT_SMOOTH > 0 and len(out) > 1:
            out = gaussian_filter1d(out, PREDICT_SMOOTH, axis=0, mode="nearest")
        if own:
            out = b + self.own_gain.cpu().numpy() * (out - b)
            out = np.clip(out, self.own_lo.cpu().numpy(), self.own_hi.cpu().numpy())
        return torch.from_numpy(out.astype(np.float32)).to(self.weight.device)

    def fit(self, windows: np.ndarray, scores: np.ndarray, targets: np.ndarray, frames, closed_frames,
            prior: np.ndarray | None = None) -> dict:
        """Fit on the capture: its feature ``windows`` (n, window, D) and articulation ``scores`` (n,)
        for all its frames, the tracked mouth inputs ``targets`` (n, out_dim), the training ``frames``
        with a face, and ``closed_frames`` (training frames in speech with closed lips) whose mean
        target becomes :attr:`closed`. The map learns ``targets - prior`` (``prior`` (n, out_dim):
        the mouth input a render starts from; default 0, the targets themselves); the presenter map
        (``predict(own=True)``) learns the targets themselves.

        For each output, the input set (:data:`INPUTS`) and strength (:data:`RIDGE`) are chosen by
        cross-validation over ``FOLDS`` contiguous spans of ``frames`` (each span held back in turn, so
        neighbouring frames never sit on both sides), the simplest within one standard error of the
        best (:func:`_one_standard_error`); then the map is refitted on all ``frames``. The presenter
        map's linear map is then averaged with its networks (:mod:`~nerfhead.field.presenter_net`,
        :data:`NET_SHARE`) for each output where it learnt something (not a constant) and the average
        lowered the error on the same held-back spans.
        Returns per output the choice and its held-back error as a share of the held-back variance
        of what it learns (1: no better than a constant), for the map and (``own_*``) the presenter map."""
        frames = np.sort(np.asarray(frames, np.int64))
        targets = np.asarray(targets, np.float64)
        learnt = targets if prior is None else targets - np.asarray(prior, np.float64)
        raw = self.inputs(np.asarray(windows), np.asarray(scores))[frames].astype(np.float64)
        mean, std = raw.mean(0), raw.std(0) + 1e-6
        x = (raw - mean) / std
        weight, bias, report, held = self._fit_map(x, learnt[frames])
        own_weight, own_bias, own_report, own_held = self._fit_map(x, targets[frames])
        # the presenter map averages the linear map and the networks for the outputs where that did better held back
        folds = _spans(len(x))
        nets = presenter_net.fit_span_nets(x, targets[frames], folds)
        both = (1 - NET_SHARE) * own_held + NET_SHARE * nets["held"]
        both_error = span_errors(both, targets[frames], folds).mean(0)
        # only where the linear map learnt something: on the sample's 16 s a constant averaged with the networks scored
        # a hair better held back (1.046 against 1.07) and its widened output ran against the held-out mouth (-0.34)
        linear_learnt = np.array([not c.startswith("none") for c in own_report["choice"]])
        own_net = linear_learnt & (both_error < span_errors(own_held, targets[frames], folds).mean(0))
        own_held[:, own_net] = both[:, own_net]
        for j in np.flatnonzero(own_net):
            own_report["choice"][j] += " with the networks"
            own_report["held_back_error"][j] = round(float(both_error[j]), 3)
        # the presenter map takes an output only where it learnt something (not a constant) and beat, on the
        # held-back frames, what another voice gets
        other = held if prior is None else np.asarray(prior, np.float64)[frames] + RESIDUAL_GAIN * held
        own_use = linear_learnt & (((own_held - targets[frames]) ** 2).mean(0) < ((other - targets[frames]) ** 2).mean(0))
        own_gain = np.where(linear_learnt, OWN_GAIN, 1.0)
        for name, value in (("in_mean", mean), ("in_std", std), ("in_min", raw.min(0)), ("in_max", raw.max(0)),
                            ("weight", weight), ("bias", bias), ("own_weight", own_weight), ("own_bias", own_bias),
                            ("own_use", own_use), ("own_gain", own_gain), ("own_net", own_net),
                            ("own_lo", targets[frames].min(0)), ("own_hi", targets[frames].max(0))):
            getattr(self, name).copy_(torch.from_numpy(np.asarray(value)))
        for name, shape in NET_SHAPES.items():  # the networks are kept only where an output takes them
            value = nets[name.removeprefix("own_net_")] if own_net.any() else np.zeros(shape(x.shape[1], self.out_dim))
            setattr(self, name, torch.from_numpy(np.asarray(value, np.float32)).to(self.weight.device))
        own_report["used"] = own_use.tolist()
        own_report["gain"] = [round(float(g), 2) for g in own_gain]
        closed = np.asarray(closed_frames, np.int64)
        self.closed.copy_(torch.from_numpy(targets[closed].mean(0) if len(closed) else targets[frames].mean(0)))
        return {**report, **{f"own_{k}": v for k, v in own_report.items()}}

    def _fit_map(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
        """(weight (I, out_dim), bias, report, held-back predictions (N, out_dim)) of the map from
        standardised inputs ``x`` (N, I) of time-ordered frames to ``y`` (N, out_dim), inputs and
        strength chosen per output (:meth:`fit`); each frame's held-back prediction is the chosen
        map's fitted without the frame's span."""
        n_audio = 3 * self.feature_dim
        cols = {"audio": np.arange(n_audio), "rule": np.arange(n_audio, x.shape[1]),
                "audio+rule": np.arange(x.shape[1]), "none": np.arange(0)}
        folds = _spans(len(x))
        tried = []  # (complexity, name, strength, per-fold errors (FOLDS, out_dim))
        held_back = {}  # (name, strength) -> each frame's prediction by the map fitted without its span
        for name in INPUTS:
            c = cols[name]
            for lam in (RIDGE if len(c) else RIDGE[:1]):
                pred = np.zeros_like(y)
                for held in folds:
                    keep = np.setdiff1d(np.arange(len(x)), held)
                    w, b = _ridge(x[keep][:, c], y[keep], lam)
                    pred[held] = x[held][:, c] @ w + b
                tried.append(((len(c), -lam), name, lam, span_errors(pred, y, folds)))
                held_back[name, lam] = pred
        best = [_one_standard_error(tried, j) for j in range(self.out_dim)]
        weight, bias = np.zeros((x.shape[1], self.out_dim)), np.zeros(self.out_dim)
        chosen = np.zeros_like(y)
        for j, (_, name, lam) in enumerate(best):
            c = cols[name]
            w, b = _ridge(x[:, c], y[:, j:j + 1], lam)
            weight[c, j], bias[j] = w[:, 0], b[0]
            chosen[:, j] = held_back[name, lam][:, j]
        return weight, bias, {"choice": [f"{name} (strength {lam:g})" for _, name, lam in best],
                              "held_back_error": [round(e, 3) for e, _, _ in best]}, chosen
