"""Packed volume rendering: weights, colour, opacity and depth of rays from their samples.

Packed samples: the samples of N rays lie in one flat array of S samples, sorted by ray and
then by t. ``packed_info`` (N, 2) int64 holds, per ray, ``[offset of its first sample, count]``
(count 0: a ray without samples, whose offset is ignored). Per sample: ``t_starts``, ``t_ends``
(S,), ``sigmas`` (S,) (density, already activated, >= 0) and ``rgbs`` (S, C) (any C >= 1).

The maths (NeRF): ``alpha_i = 1 - exp(-sigma_i (t_end_i - t_start_i))``, transmittance before
a sample ``T_i = prod_{j<i} (1 - alpha_j)`` within its ray, weight ``w_i = T_i alpha_i``.

:func:`transmittance` gives ``T_i`` and ``alpha_i`` (no gradient; the ray marcher uses it for
early termination). :func:`volume_render` gives the weights and the per-ray sums, and is
differentiable w.r.t. ``sigmas`` and ``rgbs`` through all four outputs; ``t_starts``/``t_ends``
are treated as constants (they come from the sampler). Both run on the compiled ``volrend``
kernels (CPU loops or CUDA, ``cuda_ext/volrend*.{h,cpp,cu}``) and fall back to the
plain-PyTorch references below (:func:`transmittance_reference`,
:func:`volume_render_reference`), which are also the test oracle.

Numerics: alpha is computed as ``-expm1(-tau)`` (exact for tiny optical depths) and T as a
running ``T - T * alpha`` in the kernels (``exp(-cumsum(tau))`` in the reference): a huge sigma
gives alpha 1, T exactly 0 behind it and exactly zero gradients there, never inf or NaN.
:func:`transmittance` and :func:`volume_render` produce the same T bit for bit, so the ray
marcher terminates rays on the transmittance the renderer uses. The backward kernel rebuilds T
from the weights (nothing per sample is stored beyond the inputs and weights).

>>> import torch
>>> packed_info = torch.tensor([[0, 2], [2, 0]])          # ray 0: two samples, ray 1: none
>>> sigmas = torch.tensor([1.0, 1e6])                     # the second sample is opaque
>>> rgbs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
>>> t_starts, t_ends = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
>>> out = volume_render_reference(sigmas, rgbs, t_starts, t_ends, packed_info)
>>> out.opacity
tensor([1., 0.])
>>> out.weights
tensor([0.6321, 0.3679])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from nerfhead.log import get_logger
from nerfhead.ops import backend
from nerfhead.ops.checks import FLOATS, check_same, check_tensor

log = get_logger(__name__)

FAMILY = "volrend"


@dataclass
class RenderResult:
    """What :func:`volume_render` returns for N rays holding S packed samples.

    Attributes:
        rgb: (N, C) ``sum_i w_i c_i``; not composited: add ``(1 - opacity)[:, None] * background``.
        opacity: (N,) ``sum_i w_i`` in [0, 1] (the ray's accumulated alpha).
        depth: (N,) ``sum_i w_i (t_start_i + t_end_i) / 2``, unnormalised: divide by ``opacity``
            for the expected distance of the surface the ray hits.
        weights: (S,) ``w_i = T_i alpha_i`` of every sample.
    """

    rgb: Tensor
    opacity: Tensor
    depth: Tensor
    weights: Tensor


# --------------------------------------------------------------------------- input checks


def check_packed_info(packed_info: Tensor, n_samples: int) -> None:
    """Raise ValueError unless ``packed_info`` describes ``n_samples`` packed samples.

    Counts must be >= 0 and sum to ``n_samples``, and every ray with samples must start where
    the rays before it end (samples packed in ray order, no gaps, no overlap). Vectorised: one
    host synchronisation on a GPU.

    >>> check_packed_info(torch.tensor([[0, 2], [2, 0], [2, 3]]), 5)
    >>> check_packed_info(torch.tensor([[0, 2], [2, 2]]), 5)
    Traceback (most recent call last):
    ...
    ValueError: packed_info: the counts sum to 4, but there are 5 samples (the last ray's offset + count must equal S)
    """
    check_tensor("packed_info", packed_info, dtype=(torch.int64,), shape=(None, 2))
    offsets, counts = packed_info[:, 0], packed_info[:, 1]
    starts = torch.cumsum(counts, 0) - counts
    misplaced = (counts > 0) & (offsets != starts)
    bad = (counts < 0).any() | misplaced.any() | (counts.sum() != n_samples)
    if not bool(bad):
        return
    if bool((counts < 0).any()):
        ray = int(torch.nonzero(counts < 0)[0, 0])
        raise ValueError(f"packed_info: counts must be >= 0, ray {ray} has {int(counts[ray])}")
    total = int(counts.sum())
    if total != n_samples:
        raise ValueError(f"packed_info: the counts sum to {total}, but there are {n_samples} samples "
                         "(the last ray's offset + count must equal S)")
    ray = int(torch.nonzero(misplaced)[0, 0])
    raise ValueError(f"packed_info: ray {ray} starts at offset {int(offsets[ray])}, expected {int(starts[ray])} "
                     "(samples must be packed in ray order, without gaps or overlap)")


def _check_samples(sigmas: Tensor, t_starts: Tensor, t_ends: Tensor, packed_info: Tensor,
                   rgbs: Tensor | None = None) -> None:
    check_tensor("sigmas", sigmas, dtype=FLOATS, shape=(None,))
    n = sigmas.shape[0]
    check_tensor("t_starts", t_starts, dtype=FLOATS, shape=(n,))
    check_tensor("t_ends", t_ends, dtype=FLOATS, shape=(n,))
    names, tensors = ["sigmas", "t_starts", "t_ends"], [sigmas, t_starts, t_ends]
    if rgbs is not None:
        check_tensor("rgbs", rgbs, dtype=FLOATS, shape=(n, None))
        if rgbs.shape[1] < 1:
            raise ValueError("rgbs: expected at least one channel, got shape (S, 0)")
        names.append("rgbs")
        tensors.append(rgbs)
    check_same(names, tensors)
    check_tensor("packed_info", packed_info, dtype=(torch.int64,), shape=(None, 2), device=sigmas.device)
    check_packed_info(packed_info, n)



# --------------------------------------------------------------------------- references


def _ray_layout(packed_info: Tensor, n_samples: int) -> tuple[Tensor, Tensor, int]:
    """Per sample: its ray and its index within the ray; and the longest ray's count."""
    n_rays = packed_info.shape[0]
    counts = packed_info[:, 1]
    ray_ids = torch.repeat_interleave(torch.arange(n_rays, device=packed_info.device), counts,
                                      output_size=n_samples)
    local = torch.arange(n_samples, device=packed_info.device) - packed_info[ray_ids, 0]
    width = int(counts.max()) if n_rays > 0 and n_samples > 0 else 0
    return ray_ids, local, width


def _exclusive_ray_cumsum(values: Tensor, ray_ids: Tensor, local: Tensor, n_rays: int, width: int) -> Tensor:
    """``sum_{j<i} values_j`` over the samples j of sample i's ray.

    Summed in a padded (rays, width + 1) layout whose column 0 is zero, so that no ray sees
    another ray's sum (a flat cumsum minus the ray's start would lose precision after a ray
    with a huge optical depth)."""
    dense = values.new_zeros(n_rays, width + 1).index_put((ray_ids, local + 1), values)
    return dense.cumsum(1)[ray_ids, local]


def _reference_parts(sigmas: Tensor, t_starts: Tensor, t_ends: Tensor, packed_info: Tensor):
    n_samples = sigmas.shape[0]
    ray_ids, local, width = _ray_layout(packed_info, n_samples)
    tau = sigmas * (t_ends - t_starts)
    alphas = -torch.expm1(-tau)
    trans = torch.exp(-_exclusive_ray_cumsum(tau, ray_ids, local, packed_info.shape[0], width))
    return trans, alphas, ray_ids


def transmittance_reference(sigmas: Tensor, t_starts: Tensor, t_ends: Tensor,
                            packed_info: Tensor) -> tuple[Tensor, Tensor]:
    """Plain-PyTorch :func:`transmittance` (inputs not checked).

    >>> info = torch.tensor([[0, 2]])
    >>> transmittance_reference(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]), info)
    (tensor([1.0000, 0.3679]), tensor([0.6321, 0.6321]))
    """
    with torch.no_grad():
        trans, alphas, _ = _reference_parts(sigmas, t_starts, t_ends, packed_info)
    return trans, alphas


def volume_render_reference(sigmas: Tensor, rgbs: Tensor, t_starts: Tensor, t_ends: Tensor,
                            packed_info: Tensor) -> RenderResult:
    """Plain-PyTorch :func:`volume_render` (inputs not checked; differentiable by autograd).

    >>> info = torch.tensor([[0, 1]])
    >>> out = volume_render_reference(torch.tensor([1e6]), torch.ones(1, 3), torch.zeros(1), torch.ones(1), info)
    >>> out.rgb, out.depth
    (tensor([[1., 1., 1.]]), tensor([0.5000]))
    """
    t_starts, t_ends = t_starts.detach(), t_ends.detach()
    trans, alphas, ray_ids = _reference_parts(sigmas, t_starts, t_ends, packed_info)
    weights = trans * alphas
    n_rays = packed_info.shape[0]
    rgb = rgbs.new_zeros(n_rays, rgbs.shape[1]).index_add(0, ray_ids, weights[:, None] * rgbs)
    opacity = weights.new_zeros(n_rays).index_add(0, ray_ids, weights)
    depth = weights.new_zeros(n_rays).index_add(0, ray_ids, weights * (0.5 * (t_starts + t_ends)))
    return RenderResult(rgb=rgb, opacity=opacity, depth=depth, weights=weights)


# --------------------------------------------------------------------------- kernels


class _VolumeRender(torch.autograd.Function):
    """Fused forward/backward kernels; gradients to sigmas and rgbs from all four outputs.

    Saves rgbs, the intervals, packed_info and the weights (the backward needs no sigmas)."""

    @staticmethod
    def forward(ctx, module, sigmas, rgbs, t_starts, t_ends, packed_info):
        rgb, opacity, depth, weights = module.render_forward(sigmas, rgbs, t_starts, t_ends, packed_info)
        ctx.module = module
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(rgbs, t_starts, t_ends, packed_info, weights)  # not sigmas: not needed
        return rgb, opacity, depth, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rgb, grad_opacity, grad_depth, grad_weights):
        need_sigmas, need_rgbs = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        grads = (grad_rgb, grad_opacity, grad_depth, grad_weights)
        if not (need_sigmas or need_rgbs) or all(g is None for g in grads):
            return None, None, None, None, None, None
        rgbs, t_starts, t_ends, packed_info, weights = ctx.saved_tensors
        grad_rgb, grad_opacity, grad_depth, grad_weights = (None if g is None else g.contiguous() for g in grads)
        grad_sigmas, grad_rgbs = ctx.module.render_backward(
            rgbs, t_starts, t_ends, packed_info, weights, grad_rgb, grad_opacity, grad_depth, grad_weights,
            need_sigmas, need_rgbs)
        return None, grad_sigmas, grad_rgbs, None, None, None


def transmittance(sigmas: Tensor, t_starts: Tensor, t_ends: Tensor, packed_info: Tensor) -> tuple[Tensor, Tensor]:
    """Transmittance before each sample and each sample's alpha, ``(trans, alphas)``, both (S,).

    ``trans_i = prod_{j<i} (1 - alpha_j)`` over the earlier samples of the same ray (1 for a
    ray's first sample), ``alpha_i = 1 - exp(-sigma_i (t_end_i - t_start_i))``. No gradient.
    Raises ValueError on malformed inputs (see the module docstring for the packed format).

    >>> info = torch.tensor([[0, 3]])
    >>> trans, alphas = transmittance(torch.tensor([0.0, 1e6, 1.0]), torch.tensor([0.0, 1.0, 2.0]),
    ...                               torch.tensor([1.0, 2.0, 3.0]), info)
    >>> trans, alphas
    (tensor([1., 1., 0.]), tensor([0.0000, 1.0000, 0.6321]))
    """
    _check_samples(sigmas, t_starts, t_ends, packed_info)
    module = backend.for_device(FAMILY, sigmas.device)
    with torch.no_grad():
        if module is None:
            return transmittance_reference(sigmas, t_starts, t_ends, packed_info)
        trans, alphas = module.transmittance(sigmas, t_starts, t_ends, packed_info)
    return trans, alphas


def volume_render(sigmas: Tensor, rgbs: Tensor, t_starts: Tensor, t_ends: Tensor,
                  packed_info: Tensor) -> RenderResult:
    """Render packed samples: per-ray colour, opacity and depth, and per-sample weights.

    Differentiable w.r.t. ``sigmas`` and ``rgbs`` from gradients flowing into any of the four
    outputs (not twice differentiable); ``t_starts``/``t_ends`` get no gradient. Huge sigmas
    give alpha 1 with finite gradients. Raises ValueError on malformed inputs.

    >>> info = torch.tensor([[0, 2], [2, 0]])
    >>> sigmas = torch.tensor([1.0, 1e6], requires_grad=True)
    >>> rgbs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    >>> out = volume_render(sigmas, rgbs, torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]), info)
    >>> out.rgb.detach()
    tensor([[0.6321, 0.0000, 0.3679],
            [0.0000, 0.0000, 0.0000]])
    >>> out.rgb[:, 0].sum().backward()
    >>> rgbs.grad[:, 0]                                   # = the weights
    tensor([0.6321, 0.3679])
    """
    _check_samples(sigmas, t_starts, t_ends, packed_info, rgbs)
    module = backend.for_device(FAMILY, sigmas.device)
    if module is None:
        return volume_render_reference(sigmas, rgbs, t_starts, t_ends, packed_info)
    if torch.is_grad_enabled() and (sigmas.requires_grad or rgbs.requires_grad):
        rgb, opacity, depth, weights = _VolumeRender.apply(module, sigmas, rgbs, t_starts, t_ends, packed_info)
    else:
        rgb, opacity, depth, weights = module.render_forward(sigmas, rgbs, t_starts, t_ends, packed_info)
    return RenderResult(rgb=rgb, opacity=opacity, depth=depth, weights=weights)
