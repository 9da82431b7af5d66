"""Ray/box intersection and occupancy-guided ray marching into packed samples.

The sampler of the head field, after nerfacc's occupancy-grid estimator: rays are clipped to
the grid's box (:func:`ray_aabb`), marched with a fixed step through the occupied cells of an
:class:`~nerfhead.ops.occupancy.OccupancyGrid` (:func:`march_rays`) and, given the field's
density, cut where the ray has become opaque (:func:`sample_along_rays`).

Samples are defined deterministically, so the kernels and the reference agree bit for bit:
candidate ``k = 0, 1, ...`` of a ray covers ``[t_near + (k + j) step, t_near + (k + 1 + j) step]``,
its end clipped to ``t_far`` (``j`` in [0, 1) the ray's jitter, 0 without jitter); it exists
while its start is < ``t_far``, and it is a sample iff its midpoint lies in an occupied cell; a
ray keeps its first ``max_samples`` samples. The kernels jump over empty cells (and the outside
of the grid) without changing this set.

Output: :class:`PackedSamples` (the packed format shared with :mod:`nerfhead.ops.volrend`).
None of these ops is differentiable (like nerfacc's sampler): the returned t values carry no
gradient.

>>> import torch
>>> from nerfhead.ops.occupancy import OccupancyGrid
>>> grid = OccupancyGrid([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=8)   # all cells occupied
>>> origins = torch.tensor([[-3.0, 0.0, 0.0], [-3.0, 5.0, 0.0]])
>>> dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
>>> s = sample_along_rays(origins, dirs, grid, step_size=0.5, max_samples=16)
>>> s.packed_info.tolist()                                    # ray 1 misses the box
[[0, 4], [4, 0]]
>>> s.t_starts.tolist(), s.t_ends.tolist()
([2.0, 2.5, 3.0, 3.5], [2.5, 3.0, 3.5, 4.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from nerfhead.log import get_logger
from nerfhead.ops.checks import FLOATS, check_range, check_same, check_tensor
from nerfhead.ops import backend
from nerfhead.ops.occupancy import FAMILY, OccupancyGrid, as_float, occupied_coords_reference

log = get_logger(__name__)

SigmaFn = Callable[[Tensor, Tensor, Tensor], Tensor]

# The reference marches rays in chunks of at most this many candidates (bounded memory).
_REFERENCE_CANDIDATES = 1 << 22


@dataclass
class PackedSamples:
    """Samples of N rays packed into flat arrays, sorted by ray and then by t.

    - ``ray_indices`` (S,) int64: the ray of each sample;
    - ``t_starts``, ``t_ends`` (S,): the sample intervals (the rays' dtype);
    - ``packed_info`` (N, 2) int64: per ray ``[offset of its first sample, count]`` (count 0:
      no samples).
    """

    ray_indices: Tensor
    t_starts: Tensor
    t_ends: Tensor
    packed_info: Tensor

    @property
    def num_samples(self) -> int:
        return self.t_starts.shape[0]

    @property
    def num_rays(self) -> int:
        return self.packed_info.shape[0]


# --------------------------------------------------------------------------- ray / box


def _check_rays(origins: Tensor, dirs: Tensor) -> None:
    check_tensor("origins", origins, dtype=FLOATS, shape=(None, 3))
    check_tensor("dirs", dirs, dtype=FLOATS, shape=(origins.shape[0], 3))
    check_same(["origins", "dirs"], [origins, dirs])


def _box_tensor(aabb: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    box = torch.as_tensor(aabb).to(dtype=like.dtype, device=like.device).reshape(-1).contiguous()
    if box.numel() != 6:
        raise ValueError(f"aabb: expected 6 values [xmin, ymin, zmin, xmax, ymax, zmax], got {box.numel()}")
    return box


def _check_near(near: float) -> None:
    if not isinstance(near, (int, float)) or not math.isfinite(near):
        raise ValueError(f"near: expected a finite number, got {near!r}")


def ray_aabb_reference(origins: Tensor, dirs: Tensor, aabb: Tensor, near: float = 0.0) -> tuple[Tensor, Tensor]:
    """Plain-PyTorch :func:`ray_aabb` (``aabb`` a (6,) tensor of the rays' dtype and device)."""
    lo, hi = aabb[:3], aabb[3:]
    parallel = dirs == 0
    a = (lo - origins) / dirs
    b = (hi - origins) / dirs
    inf = torch.full_like(a, math.inf)
    entry = torch.where(parallel, -inf, torch.minimum(a, b)).amax(-1)
    exit_ = torch.where(parallel, inf, torch.maximum(a, b)).amin(-1)
    outside = (parallel & ((origins < lo) | (origins > hi))).any(-1)
    t_near = torch.clamp(entry, min=as_float(near, origins.dtype))
    hit = ~outside & (exit_ >= t_near)
    return torch.where(hit, t_near, inf[:, 0]), torch.where(hit, exit_, inf[:, 0])


def ray_aabb(origins: Tensor, dirs: Tensor, aabb: Sequence[float] | Tensor, near: float = 0.0) -> tuple[Tensor, Tensor]:
    """Where rays ``origins + t * dirs`` enter and leave a box: ``(t_near, t_far)``, each (N,).

    ``aabb = [xmin, ymin, zmin, xmax, ymax, zmax]``. ``t_near`` is clamped to ``>= near``. A hit
    has ``t_near <= t_far`` (a ray grazing an edge or corner: ``t_near == t_far``); a miss,
    including a box entirely behind ``near``, has ``t_near = t_far = +inf``. An origin inside the
    box gives ``t_near = near``. A direction component of exactly 0 does not constrain t when the
    origin lies within that slab (borders included), and misses otherwise. ``dirs`` need not be
    normalised (t is in units of ``|dirs|``).

    >>> o = torch.tensor([[-2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-2.0, 3.0, 0.0]])
    >>> d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    >>> ray_aabb(o, d, [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    (tensor([1., 0., inf]), tensor([3., 1., inf]))
    """
    _check_rays(origins, dirs)
    _check_near(near)
    box = _box_tensor(aabb, origins)
    module = backend.for_device(FAMILY, origins.device)
    with torch.no_grad():
        if module is None:
            return ray_aabb_reference(origins, dirs, box, near)
        t_near, t_far = module.ray_aabb(origins, dirs, box, as_float(near, origins.dtype))
    return t_near, t_far


# --------------------------------------------------------------------------- marching


def _candidate_count(t_near: Tensor, t_far: Tensor, step: float) -> int:
    finite = torch.isfinite(t_near) & torch.isfinite(t_far)
    length = torch.where(finite, t_far - t_near, torch.zeros_like(t_near)).clamp(min=0)
    longest = float(length.max()) if length.numel() else 0.0
    return int(math.floor(longest / step)) + 3


def _march_chunk(origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, jitter: Tensor, bits: Tensor,
                 resolution: int, lo: Tensor, scale: Tensor, step: float, max_samples: int, k: int):
    """Reference march of a chunk of rays over k candidates: (ray rows, k index, t0, t1) of the
    samples, and a flag telling whether k was too small."""
    kf = torch.arange(k, dtype=origins.dtype, device=origins.device)
    tn, tf, j = t_near[:, None], t_far[:, None], jitter[:, None]
    t0 = tn + (kf + j) * step
    t1 = torch.minimum(tn + (kf + 1 + j) * step, tf)
    finite = torch.isfinite(t_near) & torch.isfinite(t_far)
    exists = (t0 < tf) & finite[:, None]
    mid = (t0 + t1) * 0.5
    points = origins[:, None, :] + dirs[:, None, :] * mid[..., None]
    occupied = exists & occupied_coords_reference((points - lo) * scale, bits, resolution)
    keep = occupied & (torch.cumsum(occupied, 1) <= max_samples)
    return keep, t0[keep], t1[keep], bool(exists[:, -1].any())


def march_rays_reference(origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, grid: OccupancyGrid,
                         step_size: float, max_samples: int, jitter: Tensor | None = None) -> PackedSamples:
    """Plain-PyTorch :func:`march_rays` (tests every candidate; rays in chunks of bounded size)."""
    n, dtype = origins.shape[0], origins.dtype
    geometry = grid.geometry(dtype)
    lo = torch.tensor(geometry[:3], dtype=dtype, device=origins.device)
    scale = torch.tensor(geometry[3:], dtype=dtype, device=origins.device)
    step = as_float(step_size, dtype)
    jit = torch.zeros_like(t_near) if jitter is None else jitter
    k = _candidate_count(t_near, t_far, step)
    rows = max(1, _REFERENCE_CANDIDATES // max(k, 1))
    counts, starts, ends = [], [], []
    for first in range(0, n, rows):
        part = slice(first, first + rows)
        args = (origins[part], dirs[part], t_near[part], t_far[part], jit[part])
        keep, t0, t1, short = _march_chunk(*args, grid.bitfield, grid.resolution, lo, scale, step, max_samples, k)
        while short:  # never expected: k covers every ray by construction
            k *= 2
            keep, t0, t1, short = _march_chunk(*args, grid.bitfield, grid.resolution, lo, scale, step,
                                               max_samples, k)
        counts.append(keep.sum(1))
        starts.append(t0)
        ends.append(t1)
    count = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.int64, device=origins.device)
    return _pack(count, torch.cat(starts) if starts else t_near[:0], torch.cat(ends) if ends else t_near[:0])


def _pack(counts: Tensor, t_starts: Tensor, t_ends: Tensor) -> PackedSamples:
    """PackedSamples from per-ray counts and the samples in ray order."""
    offsets = torch.cumsum(counts, 0) - counts
    ray_indices = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
    return PackedSamples(ray_indices, t_starts, t_ends, torch.stack([offsets, counts], 1))


def _check_march(origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, grid: OccupancyGrid,
                 step_size: float, max_samples: int, jitter: Tensor | None) -> None:
    _check_rays(origins, dirs)
    n = origins.shape[0]
    check_tensor("t_near", t_near, dtype=FLOATS, shape=(n,))
    check_tensor("t_far", t_far, dtype=FLOATS, shape=(n,))
    names, tensors = ["origins", "t_near", "t_far"], [origins, t_near, t_far]
    if jitter is not None:
        check_tensor("jitter", jitter, dtype=FLOATS, shape=(n,))
        names.append("jitter")
        tensors.append(jitter)
    check_same(names, tensors)
    if not isinstance(grid, OccupancyGrid):
        raise ValueError(f"grid: expected an OccupancyGrid, got {type(grid).__name__}")
    if grid.bitfield.device != origins.device:
        raise ValueError(f"grid: on {grid.bitfield.device}, but the rays are on {origins.device}")
    if not isinstance(step_size, (int, float)) or not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size: expected a finite number > 0, got {step_size!r}")
    if as_float(step_size, origins.dtype) <= 0:
        raise ValueError(f"step_size: {step_size} rounds to 0 in {str(origins.dtype).removeprefix('torch.')}")
    if not isinstance(max_samples, int) or isinstance(max_samples, bool):
        raise ValueError(f"max_samples: expected an int, got {type(max_samples).__name__}")
    check_range("max_samples", max_samples, 1, 1 << 30)


def march_rays(origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, grid: OccupancyGrid,
               step_size: float, max_samples: int, jitter: Tensor | None = None) -> PackedSamples:
    """March rays through the occupied cells of ``grid`` with a fixed step: packed samples.

    Candidate ``k`` of ray i is ``[t_near + (k + j) step, t_near + (k + 1 + j) step]`` clipped to
    ``t_far`` (``j = jitter[i]`` in [0, 1), 0 when ``jitter`` is None; pass ``torch.rand(N)`` in
    training); it is a sample iff its midpoint is in an occupied cell; each ray keeps its first
    ``max_samples`` samples. Rays with a non-finite ``t_near`` or ``t_far`` (misses of
    :func:`ray_aabb`) or ``t_far <= t_near`` get no samples. ``origins``/``dirs`` (N, 3),
    ``t_near``/``t_far``/``jitter`` (N,): one float dtype, on the grid's device.

    >>> from nerfhead.ops.occupancy import OccupancyGrid
    >>> grid = OccupancyGrid([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], resolution=2)
    >>> grid.mark_empty()
    >>> _ = grid.update(torch.tensor([4]), torch.tensor([100.0]))   # cell (1, 0, 0): x >= 0.5
    >>> o, d = torch.tensor([[0.0, 0.25, 0.25]]), torch.tensor([[1.0, 0.0, 0.0]])
    >>> s = march_rays(o, d, torch.tensor([0.0]), torch.tensor([1.0]), grid, step_size=0.25, max_samples=8)
    >>> s.t_starts.tolist(), s.packed_info.tolist()
    ([0.5, 0.75], [[0, 2]])
    """
    _check_march(origins, dirs, t_near, t_far, grid, step_size, max_samples, jitter)
    module = backend.for_device(FAMILY, origins.device)
    with torch.no_grad():
        if module is None:
            return march_rays_reference(origins, dirs, t_near, t_far, grid, step_size, max_samples, jitter)
        out = module.march_rays(origins, dirs, t_near, t_far, jitter, grid.bitfield, grid.resolution,
                                list(grid.geometry(origins.dtype)), as_float(step_size, origins.dtype), max_samples)
    return PackedSamples(*out)


# --------------------------------------------------------------------------- early termination


def compact_samples(samples: PackedSamples, keep: Tensor) -> PackedSamples:
    """The samples where ``keep`` (S,) bool is True, re-packed (order kept; vectorised).

    >>> s = PackedSamples(torch.tensor([0, 0, 1]), torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 2.0, 1.0]),
    ...                   torch.tensor([[0, 2], [2, 1]]))
    >>> compact_samples(s, torch.tensor([True, False, False])).packed_info.tolist()
    [[0, 1], [1, 0]]
    """
    check_tensor("keep", keep, dtype=(torch.bool,), shape=(samples.num_samples,), device=samples.t_starts.device)
    ray_indices = samples.ray_indices[keep]
    counts = torch.bincount(ray_indices, minlength=samples.num_rays)
    offsets = torch.cumsum(counts, 0) - counts
    return PackedSamples(ray_indices, samples.t_starts[keep], samples.t_ends[keep], torch.stack([offsets, counts], 1))


def _transmittance(sigmas: Tensor, samples: PackedSamples) -> tuple[Tensor, Tensor]:
    from nerfhead.ops.volrend import transmittance

    return transmittance(sigmas, samples.t_starts, samples.t_ends, samples.packed_info)


def sample_along_rays(origins: Tensor, dirs: Tensor, grid: OccupancyGrid, step_size: float, max_samples: int,
                      near: float = 0.0, jitter: Tensor | None = None, sigma_fn: SigmaFn | None = None,
                      early_stop_eps: float = 1e-4, alpha_thre: float = 0.0) -> PackedSamples:
    """Samples of rays in the occupied part of ``grid``'s box: :func:`ray_aabb` + :func:`march_rays`,
    then, with ``sigma_fn``, early termination.

    ``sigma_fn(t_starts (S,), t_ends (S,), ray_indices (S,)) -> sigmas (S,)`` (or (S, 1)): the
    density at the samples (as nerfacc; the caller forms the points, e.g. at the midpoints). It
    runs under ``torch.no_grad``. Then a sample is dropped when the transmittance before it is
    below ``early_stop_eps`` (the ray is already opaque) or its alpha is below ``alpha_thre``,
    and the rest is re-packed.

    >>> from nerfhead.ops.occupancy import OccupancyGrid
    >>> grid = OccupancyGrid([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=8)
    >>> o, d = torch.tensor([[-3.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
    >>> opaque = lambda t0, t1, rays: torch.full_like(t0, 1e4)
    >>> sample_along_rays(o, d, grid, 0.5, 16).num_samples
    4
    >>> sample_along_rays(o, d, grid, 0.5, 16, sigma_fn=opaque).num_samples   # stops after the first
    1
    """
    _check_rays(origins, dirs)
    _check_near(near)
    if not isinstance(grid, OccupancyGrid):
        raise ValueError(f"grid: expected an OccupancyGrid, got {type(grid).__name__}")
    check_range("early_stop_eps", early_stop_eps, 0.0, 1.0)
    check_range("alpha_thre", alpha_thre, 0.0, 1.0)
    t_near, t_far = ray_aabb(origins, dirs, grid.aabb.to(origins.dtype), near)
    samples = march_rays(origins, dirs, t_near, t_far, grid, step_size, max_samples, jitter)
    if sigma_fn is None or samples.num_samples == 0:
        return samples
    with torch.no_grad():
        sigmas = sigma_fn(samples.t_starts, samples.t_ends, samples.ray_indices)
        if not isinstance(sigmas, Tensor) or sigmas.numel() != samples.num_samples:
            got = tuple(sigmas.shape) if isinstance(sigmas, Tensor) else type(sigmas).__name__
            raise ValueError(f"sigma_fn: expected {samples.num_samples} sigmas, got {got}")
        sigmas = sigmas.detach().reshape(-1).to(samples.t_starts.dtype).contiguous()
        trans, alphas = _transmittance(sigmas, samples)
        keep = trans >= early_stop_eps
        if alpha_thre > 0:
            keep &= alphas >= alpha_thre
        return compact_samples(samples, keep)


__all__ = ["PackedSamples", "ray_aabb", "ray_aabb_reference", "march_rays", "march_rays_reference",
           "compact_samples", "sample_along_rays"]
