"""Occupancy grid over a box: which cells may hold density, so the ray marcher skips the rest.

An :class:`OccupancyGrid` of resolution R covers the box ``aabb = [xmin, ymin, zmin, xmax, ymax,
zmax]`` with R^3 cells. It keeps, in buffers (saved and loaded with ``state_dict``):

- ``density`` (R^3,) float32: a decayed running maximum of the field's density per cell;
- ``bitfield`` (R^3 / 8,) uint8: the occupied cells, packed 8 per byte (cell ``i`` is bit
  ``i & 7`` of byte ``i >> 3``; cell (ix, iy, iz) has ``i = (ix * R + iy) * R + iz``).
  Packed bits are 8x smaller than a bool grid (256 KiB at R = 128: the marcher's lookups stay in
  the CPU's L2 cache) at the cost of one shift per lookup.
- ``aabb`` (6,) float32.

A fresh grid marks every cell occupied (so a new model is sampled everywhere) with zero
density. :meth:`OccupancyGrid.update_every_n_steps` refreshes it during training as nerfacc
and ER-NeRF do: the density at jittered cell centres, decayed maximum with the old values,
threshold ``min(mean density, 10)``.

Grid coordinates of a world point ``p``: ``x = (p - lo) * scale`` with ``scale = R / (hi - lo)``
(computed in the points' dtype, see :meth:`OccupancyGrid.geometry`); the point lies in cell
``floor(x)`` when ``0 <= x < R`` per axis, and outside the grid (never occupied) otherwise.
The same arithmetic runs in the kernels (``cuda_ext/raymarch.h``) and in the references here.

>>> import torch
>>> grid = OccupancyGrid([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=8)
>>> grid.occupied_fraction()
1.0
>>> _ = grid.update(torch.arange(grid.num_cells), (grid.cell_points()[:, 0] > 0).float() * 20.0)
>>> grid.occupied_fraction()
0.5
>>> grid.occupied(torch.tensor([[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0], [3.0, 0.0, 0.0]])).tolist()
[True, False, False]
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from nerfhead.log import get_logger
from nerfhead.ops import backend
from nerfhead.ops.checks import FLOATS, INDICES, check_range, check_tensor

log = get_logger(__name__)

FAMILY = "raymarch"

DensityFn = Callable[[Tensor], Tensor]



@functools.lru_cache(maxsize=256)
def as_float(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype``, as a Python float: scalars that the kernels (which cast a
    double to the scalar type) and the reference (which multiplies by a Python float) see alike."""
    return float(torch.tensor(float(value), dtype=torch.float64).to(dtype))


# --------------------------------------------------------------------------- bit packing

_BIT_WEIGHTS = {}


def _weights(device: torch.device) -> Tensor:
    if device not in _BIT_WEIGHTS:
        _BIT_WEIGHTS[device] = (2 ** torch.arange(8, device=device)).to(torch.uint8)
    return _BIT_WEIGHTS[device]


def pack_bits(mask: Tensor) -> Tensor:
    """Pack a bool (M,) mask (M % 8 == 0) into (M / 8,) uint8, bit ``i & 7`` of byte ``i >> 3``.

    >>> pack_bits(torch.tensor([True, False, False, False, False, False, False, True])).tolist()
    [129]
    """
    bits = mask.reshape(-1, 8).to(torch.uint8) * _weights(mask.device)
    return bits.sum(1, dtype=torch.uint8)


def unpack_bits(bitfield: Tensor) -> Tensor:
    """Inverse of :func:`pack_bits`: (M / 8,) uint8 -> bool (M,).

    >>> unpack_bits(torch.tensor([129], dtype=torch.uint8)).nonzero().flatten().tolist()
    [0, 7]
    """
    return (bitfield.reshape(-1, 1) & _weights(bitfield.device)).ne(0).reshape(-1)


# --------------------------------------------------------------------------- references


def grid_update_reference(density: Tensor, indices: Tensor, values: Tensor, decay: float,
                          threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """Plain-PyTorch grid update: returns ``(density, bitfield, threshold)`` (new tensors).

    ``density[indices] = max(density[indices] * decay, values)``; then the threshold
    ``min(mean(density), threshold)`` (mean accumulated in float64, rounded to float32) and
    ``bitfield = pack_bits(density > threshold)``. ``indices`` must be unique; NaN values count as 0.
    """
    density = density.clone()
    values = torch.nan_to_num(values, nan=0.0, posinf=math.inf, neginf=-math.inf)
    decay_f = as_float(decay, torch.float32)
    density[indices] = torch.maximum(density[indices] * decay_f, values)
    mean = (density.double().sum() / density.numel()).float()
    thr = torch.minimum(mean, torch.tensor(as_float(threshold, torch.float32), device=density.device))
    return density, pack_bits(density > thr), thr


def occupied_reference(points: Tensor, bitfield: Tensor, resolution: int, geometry: Sequence[float]) -> Tensor:
    """Plain-PyTorch occupancy lookup of world points (M, 3) -> bool (M,)."""
    lo = torch.tensor(geometry[:3], dtype=points.dtype, device=points.device)
    scale = torch.tensor(geometry[3:], dtype=points.dtype, device=points.device)
    return occupied_coords_reference((points - lo) * scale, bitfield, resolution)


def occupied_coords_reference(x: Tensor, bitfield: Tensor, resolution: int) -> Tensor:
    """Occupancy of grid coordinates x (..., 3) -> bool (...): False outside ``[0, R)^3``."""
    inside = ((x >= 0) & (x < resolution)).all(-1)
    cell = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x)).long()
    index = (cell[..., 0] * resolution + cell[..., 1]) * resolution + cell[..., 2]
    bit = (bitfield[index >> 3] >> (index & 7).to(torch.uint8)) & 1
    return inside & bit.bool()


# --------------------------------------------------------------------------- the grid


def _check_aabb(aabb: Tensor) -> None:
    if aabb.numel() != 6:
        raise ValueError(f"aabb: expected 6 values [xmin, ymin, zmin, xmax, ymax, zmax], got {aabb.numel()}")
    if not bool(torch.isfinite(aabb).all()) or not bool((aabb[3:] > aabb[:3]).all()):
        raise ValueError(f"aabb: expected finite values with max > min per axis, got {aabb.tolist()}")


def _check_update_config(decay: float, threshold: float) -> None:
    check_range("decay", decay, 0.0, 1.0)
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number, got {threshold!r}")


class OccupancyGrid(nn.Module):
    """A binary occupancy grid with a decayed-max density per cell, over one box.

    Args:
        aabb: ``[xmin, ymin, zmin, xmax, ymax, zmax]`` (sequence or tensor).
        resolution: R cells per axis (R^3 must be a multiple of 8, i.e. R even). Default 128.

    >>> grid = OccupancyGrid([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], resolution=4)
    >>> grid.cell_points(torch.tensor([0, 63])).tolist()
    [[0.125, 0.125, 0.125], [0.875, 0.875, 0.875]]
    """

    def __init__(self, aabb: Sequence[float] | Tensor, resolution: int = 128):
        super().__init__()
        if not isinstance(resolution, int) or isinstance(resolution, bool):
            raise ValueError(f"resolution: expected an int, got {type(resolution).__name__}")
        check_range("resolution", resolution, 2, 1024)
        if resolution ** 3 % 8 != 0:
            raise ValueError(f"resolution: R^3 must be a multiple of 8 (R even), got R = {resolution}")
        box = torch.as_tensor(aabb, dtype=torch.float32).detach().reshape(-1).clone()
        _check_aabb(box)
        self.resolution = resolution
        self.register_buffer("aabb", box)
        self.register_buffer("density", torch.zeros(resolution ** 3))
        self.register_buffer("bitfield", torch.full((resolution ** 3 // 8,), 255, dtype=torch.uint8))
        self._geometry_cache: dict = {}

    # ------------------------------------------------------------------ geometry

    @property
    def num_cells(self) -> int:
        return self.resolution ** 3

    def geometry(self, dtype: torch.dtype = torch.float32) -> tuple[float, ...]:
        """``(lo_x, lo_y, lo_z, scale_x, scale_y, scale_z)`` with ``scale = R / (hi - lo)``, computed
        in ``dtype`` (and cached): the grid-coordinate transform shared by kernels and references."""
        key = (dtype, self.aabb.data_ptr(), self.aabb._version)
        cached = self._geometry_cache.get(key)
        if cached is None:
            box = self.aabb.detach().cpu().to(dtype)
            lo = box[:3]
            scale = self.resolution / (box[3:] - lo)
            cached = tuple(lo.tolist() + scale.tolist())
            self._geometry_cache = {key: cached}
        return cached

    def cell_indices(self) -> Tensor:
        """All cell indices, (R^3,) int64."""
        return torch.arange(self.num_cells, device=self.density.device)

    def cell_points(self, indices: Tensor | None = None, jitter: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
        """World points (M, 3) float32 of the given cells' centres (all cells when None); with
        ``jitter``, uniformly random inside each cell instead (``generator`` on the grid's device)."""
        idx = self.cell_indices() if indices is None else self._checked_indices(indices)
        return self._cell_points(idx, jitter, generator)

    def _cell_points(self, idx: Tensor, jitter: bool, generator: torch.Generator | None) -> Tensor:
        r = self.resolution
        ijk = torch.stack([idx // (r * r), (idx // r) % r, idx % r], -1).float()
        if jitter:
            offset = torch.rand(ijk.shape, generator=generator, device=ijk.device)
        else:
            offset = torch.full_like(ijk, 0.5)
        lo, hi = self.aabb[:3], self.aabb[3:]
        return (ijk + offset) / r * (hi - lo) + lo

    # ------------------------------------------------------------------ state

    def occupied_mask(self) -> Tensor:
        """Occupied cells as a bool (R^3,) tensor."""
        return unpack_bits(self.bitfield)

    def occupied_fraction(self) -> float:
        """Fraction of occupied cells (one host synchronisation)."""
        return float(self.occupied_mask().sum()) / self.num_cells

    @torch.no_grad()
    def mark_all(self) -> None:
        """Mark every cell occupied (a fresh grid's state; the densities stay)."""
        self.bitfield.fill_(255)

    @torch.no_grad()
    def mark_empty(self) -> None:
        """Mark every cell empty (the densities stay)."""
        self.bitfield.zero_()

    def occupied(self, points: Tensor) -> Tensor:
        """Is each world point (M, 3) in an occupied cell? -> bool (M,); False outside the box."""
        check_tensor("points", points, dtype=FLOATS, shape=(None, 3), device=self.bitfield.device)
        geometry = self.geometry(points.dtype)
        module = backend.for_device(FAMILY, points.device)
        with torch.no_grad():
            if module is None:
                return occupied_reference(points, self.bitfield, self.resolution, geometry)
            return module.occupied(points, self.bitfield, self.resolution, list(geometry))

    # ------------------------------------------------------------------ updates

    def _checked_indices(self, indices: Tensor) -> Tensor:
        check_tensor("indices", indices, dtype=INDICES, shape=(None,), device=self.density.device)
        if indices.numel() > 0:
            lo, hi = torch.aminmax(indices)
            if int(lo) < 0 or int(hi) >= self.num_cells:
                raise ValueError(f"indices: cell indices must lie in [0, {self.num_cells}), "
                                 f"got values in [{int(lo)}, {int(hi)}]")
        return indices.long()

    @torch.no_grad()
    def update(self, indices: Tensor, density: Tensor, decay: float = 0.95, threshold: float = 10.0) -> Tensor:
        """Fold new densities of some cells into the grid and re-derive the occupied cells.

        ``grid[indices] = max(grid[indices] * decay, density)`` (``indices`` unique, int64/int32;
        ``density`` float32, NaN counted as 0), then every cell with ``grid > min(mean(grid),
        threshold)`` is occupied. One fused kernel (update, mean, bit packing), no host
        synchronisation on a GPU. Returns the threshold used (0-dim float32 tensor).
        """
        idx = self._checked_indices(indices)
        check_tensor("density", density, dtype=(torch.float32,), shape=(idx.shape[0],), device=self.density.device)
        _check_update_config(decay, threshold)
        return self._update(idx, density, decay, threshold)

    def _update(self, idx: Tensor, values: Tensor, decay: float, threshold: float) -> Tensor:
        """:meth:`update` on checked inputs (int64 unique in-range indices, float32 values)."""
        module = backend.for_device(FAMILY, self.density.device)
        if module is None:
            new_density, new_bits, thr = grid_update_reference(self.density, idx, values, decay, threshold)
            self.density.copy_(new_density)
            self.bitfield.copy_(new_bits)
            return thr
        return module.grid_update(self.density, self.bitfield, idx, values, decay, threshold)

    def update_cells(self, step: int, warmup_steps: int, generator: torch.Generator | None = None) -> Tensor:
        """Cells to re-evaluate at ``step``: all during warm-up, afterwards a random quarter of all
        cells plus the occupied ones (unique, sorted)."""
        if step < warmup_steps:
            return self.cell_indices()
        mask = self.occupied_mask()
        picks = torch.randint(0, self.num_cells, (self.num_cells // 4,), generator=generator, device=mask.device)
        mask[picks] = True
        return mask.nonzero().squeeze(1)

    @torch.no_grad()
    def update_every_n_steps(self, step: int, density_fn: DensityFn, n: int = 16, decay: float = 0.95,
                             threshold: float = 10.0, warmup_steps: int = 256, chunk: int = 65536,
                             generator: torch.Generator | None = None) -> bool:
        """Every ``n`` steps, evaluate ``density_fn`` at jittered cell centres and :meth:`update`.

        ``density_fn(points (M, 3) float32) -> densities (M,) or (M, 1)`` is called on at most
        ``chunk`` points at a time (bounded memory), under ``torch.no_grad``. Returns whether the
        grid was updated.

        >>> grid = OccupancyGrid([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=8)
        >>> sphere = lambda x: (x.norm(dim=-1) < 0.5).float() * 100.0
        >>> grid.update_every_n_steps(0, sphere, chunk=100)
        True
        >>> grid.update_every_n_steps(3, sphere)
        False
        >>> 0.0 < grid.occupied_fraction() < 0.2
        True
        """
        check_range("n", n, 1, math.inf)
        check_range("chunk", chunk, 1, math.inf)
        _check_update_config(decay, threshold)
        if step % n != 0:
            return False
        indices = self.update_cells(step, warmup_steps, generator)
        values = torch.empty(indices.shape[0], dtype=torch.float32, device=indices.device)
        for start in range(0, indices.shape[0], chunk):
            part = indices[start:start + chunk]
            out = density_fn(self._cell_points(part, True, generator))
            if not isinstance(out, Tensor) or out.numel() != part.shape[0]:
                got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise ValueError(f"density_fn: expected {part.shape[0]} densities for {part.shape[0]} points, "
                                 f"got {got}")
            values[start:start + chunk] = out.reshape(-1)
        self._update(indices, values, decay, threshold)
        return True

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, aabb={[round(v, 4) for v in self.aabb.tolist()]}"
