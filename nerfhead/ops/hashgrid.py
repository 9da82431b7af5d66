"""Multiresolution hash encoding (instant-ngp style): 2D/3D grids and ER-NeRF's tri-plane.

A :class:`HashGridConfig` describes one grid: ``levels`` resolutions growing geometrically
from ``base_resolution`` to ``max_resolution`` cells per axis, each level a table of
``2**log2_table_size`` rows of ``features_per_level`` values. A point's code at a level is the
bilinear (2D) / trilinear (3D) blend of the rows of its cell's corners. A level whose
``(res + 1)**dim`` vertices fit the table is indexed densely (no collisions); finer levels use
the spatial hash ``(v0 * 1 ^ v1 * 2654435761 ^ v2 * 805459861) mod T``.

Coordinates are expected in ``[0, 1]``; anything outside is clamped to the box (and gets no
gradient), NaN counts as 0. Outputs are level-major: column ``l * F + f``; the tri-plane puts
its three planes (x, y), (y, z), (x, z) one after the other (plane-major).

:func:`hash_encode` and :func:`triplane_encode` run the compiled kernels
(``cuda_ext/hashgrid*``) when :mod:`nerfhead.ops.backend` has them, else the plain-PyTorch
references :func:`hash_encode_reference` / :func:`triplane_encode_reference` (same hashing,
same interpolation; also the test oracle).

>>> cfg = HashGridConfig(dim=2, levels=4, features_per_level=2, log2_table_size=10,
...                      base_resolution=4, max_resolution=32)
>>> cfg.resolutions(), cfg.dense_levels()
((4, 8, 16, 32), (True, True, True, False))
>>> grid = HashGrid(cfg)
>>> grid(torch.rand(5, 2)).shape
torch.Size([5, 8])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from nerfhead.log import get_logger
from nerfhead.ops import backend
from nerfhead.ops.checks import FLOATS, check_same, check_tensor

log = get_logger(__name__)

FAMILY = "hashgrid"
PRIMES = (1, 2654435761, 805459861)
MAX_RESOLUTION = 2 ** 20
# ER-NeRF's tri-plane: per plane 12 levels x 1 feature, 2^14 rows, 64 -> 512 cells.
TRIPLANE_AXES = ((0, 1), (1, 2), (0, 2))


@dataclass(frozen=True)
class HashGridConfig:
    """One multiresolution hash grid (each plane of a tri-plane is one 2D grid).

    Raises ValueError on out-of-range settings.

    >>> HashGridConfig(dim=3, levels=16).output_dim
    32
    >>> HashGridConfig(levels=40)
    Traceback (most recent call last):
    ...
    ValueError: HashGridConfig.levels: 40 is out of range [1, 32]
    """

    dim: int = 3
    """Dimension of the grid: 2 or 3."""
    levels: int = 16
    """Number of resolutions, 1..32."""
    features_per_level: int = 2
    """Values per table row: 1, 2, 4 or 8."""
    log2_table_size: int = 19
    """log2 of the rows per level table, 8..24."""
    base_resolution: int = 16
    """Cells per axis at the coarsest level (>= 2)."""
    max_resolution: int = 2048
    """Cells per axis at the finest level (>= base_resolution, <= 2**20)."""

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise ValueError(f"HashGridConfig.{name}: {getattr(self, name)!r} {allowed}")

        for name in ("dim", "levels", "features_per_level", "log2_table_size", "base_resolution", "max_resolution"):
            value = getattr(self, name)
            need(name, isinstance(value, int) and not isinstance(value, bool), "is not an int")
        need("dim", self.dim in (2, 3), "must be 2 or 3")
        need("levels", 1 <= self.levels <= 32, "is out of range [1, 32]")
        need("features_per_level", self.features_per_level in (1, 2, 4, 8), "must be 1, 2, 4 or 8")
        need("log2_table_size", 8 <= self.log2_table_size <= 24, "is out of range [8, 24]")
        need("base_resolution", 2 <= self.base_resolution <= MAX_RESOLUTION, f"is out of range [2, {MAX_RESOLUTION}]")
        need("max_resolution", self.base_resolution <= self.max_resolution <= MAX_RESOLUTION,
             f"is out of range [base_resolution={self.base_resolution}, {MAX_RESOLUTION}]")

    @property
    def table_size(self) -> int:
        """Rows of each level's table."""
        return 2 ** self.log2_table_size

    @property
    def output_dim(self) -> int:
        """Values per point: levels x features_per_level."""
        return self.levels * self.features_per_level

    @property
    def table_shape(self) -> tuple[int, int, int]:
        """(levels, table_size, features_per_level)."""
        return (self.levels, self.table_size, self.features_per_level)

    def resolutions(self) -> tuple[int, ...]:
        """Cells per axis of each level: floor(base * growth**l), base first, max last."""
        return _resolutions(self.base_resolution, self.max_resolution, self.levels)

    def dense_levels(self) -> tuple[bool, ...]:
        """Per level: True when its (res + 1)**dim vertices fit the table (dense indexing)."""
        return tuple((r + 1) ** self.dim <= self.table_size for r in self.resolutions())


@lru_cache(maxsize=256)
def _resolutions(base: int, top: int, levels: int) -> tuple[int, ...]:
    if levels == 1:
        return (base,)
    growth = math.exp((math.log(top) - math.log(base)) / (levels - 1))
    res = [min(top, int(math.floor(base * growth ** lv + 1e-6))) for lv in range(levels)]
    res[-1] = top
    return tuple(res)


ERNERF_TRIPLANE = HashGridConfig(dim=2, levels=12, features_per_level=1, log2_table_size=14, base_resolution=64,
                                 max_resolution=512)
"""ER-NeRF's tri-plane planes: 12 levels x 1 feature, 2^14 rows, 64 -> 512 (36 outputs)."""


# --------------------------------------------------------------------------- validation


def _check_config(cfg) -> None:
    if not isinstance(cfg, HashGridConfig):
        raise ValueError(f"cfg: expected a HashGridConfig, got {type(cfg).__name__}")


def _check_hash_inputs(x: Tensor, table: Tensor, cfg: HashGridConfig) -> None:
    _check_config(cfg)
    check_tensor("x", x, dtype=FLOATS, shape=(None, cfg.dim))
    check_tensor("table", table, dtype=FLOATS, shape=cfg.table_shape)
    check_same(["x", "table"], [x, table])


def _check_triplane_inputs(x: Tensor, tables: Tensor, cfg: HashGridConfig) -> None:
    _check_config(cfg)
    if cfg.dim != 2:
        raise ValueError(f"cfg.dim: a tri-plane is made of 2D grids, got dim={cfg.dim}")
    check_tensor("x", x, dtype=FLOATS, shape=(None, 3))
    check_tensor("tables", tables, dtype=FLOATS, shape=(3, *cfg.table_shape))
    check_same(["x", "tables"], [x, tables])


# --------------------------------------------------------------------------- reference


def _encode_reference(x: Tensor, tables: Tensor, cfg: HashGridConfig, axes: tuple[tuple[int, ...], ...]) -> Tensor:
    """Plain-PyTorch encoding of G grids: tables (G, L, T, F), grid g reads x[:, axes[g]].

    Vectorised over points, one step per level. Per axis d the two vertex coordinates of the
    cell (lo_d, lo_d + 1) give two row terms and two weights; the 2**D corners are their outer
    sum/xor/product (corner k = sum_d bit_d 2**d), then one gather reads the corner rows.
    """
    n, dev = x.shape[0], x.device
    n_grids, levels, t_size, feats = tables.shape
    dim = len(axes[0])
    columns = torch.tensor([a for grid in axes for a in grid], device=dev)
    coords = x.clamp(0.0, 1.0).nan_to_num(0.0)[:, columns].reshape(n, n_grids, dim)
    grid_offset = (torch.arange(n_grids, device=dev) * t_size).view(1, n_grids, 1)  # rows of grid g in a level
    step = torch.tensor([0, 1], device=dev)
    outs = []
    for res, dense, level_tables in zip(cfg.resolutions(), cfg.dense_levels(), tables.unbind(1)):
        pos = coords * res
        lo = pos.detach().floor().clamp_(max=res - 1)
        frac = pos - lo  # (N, G, D); carries the gradient w.r.t. x
        weights = _outer([torch.stack((1.0 - frac[..., d], frac[..., d]), -1) for d in range(dim)], torch.mul)
        verts = [lo[..., d].long().unsqueeze(-1) + step for d in range(dim)]  # (N, G, 2) per axis
        if dense:
            terms = [verts[d] * (res + 1) ** d for d in range(dim)]
            terms[0] = terms[0] + grid_offset
            rows = _outer(terms, torch.add)
        else:
            terms = [(verts[d] * PRIMES[d]) & (t_size - 1) for d in range(dim)]
            terms[0] = terms[0] | grid_offset  # above the mask bits: same as adding it after the xor
            rows = _outer(terms, torch.bitwise_xor)
        corner_feats = level_tables.reshape(-1, feats).index_select(0, rows.reshape(-1))
        corner_feats = corner_feats.view(n, n_grids, 2 ** dim, feats)
        outs.append((weights.unsqueeze(-1) * corner_feats).sum(2))  # (N, G, F)
    return torch.stack(outs, 2).reshape(n, n_grids * levels * feats)


def _outer(parts: list[Tensor], op) -> Tensor:
    """Combine per-axis pairs (..., 2) into (..., 2**D) with ``op``; entry k = op over d of parts[d][bit_d(k)]."""
    out = parts[0]
    for p in parts[1:]:
        out = op(p.unsqueeze(-1), out.unsqueeze(-2)).flatten(-2)
    return out


def hash_encode_reference(x: Tensor, table: Tensor, cfg: HashGridConfig) -> Tensor:
    """Plain-PyTorch :func:`hash_encode` (the fallback and the test oracle).

    >>> cfg = HashGridConfig(dim=2, levels=2, features_per_level=1, log2_table_size=8,
    ...                      base_resolution=2, max_resolution=4)
    >>> table = torch.arange(2 * 256, dtype=torch.float32).reshape(2, 256, 1)
    >>> hash_encode_reference(torch.tensor([[0.5, 0.0]]), table, cfg)   # vertices (1, 0) and (2, 0)
    tensor([[  1., 258.]])
    """
    _check_hash_inputs(x, table, cfg)
    return _encode_reference(x, table.unsqueeze(0), cfg, (tuple(range(cfg.dim)),))


def triplane_encode_reference(x: Tensor, tables: Tensor, cfg: HashGridConfig) -> Tensor:
    """Plain-PyTorch :func:`triplane_encode` (the fallback and the test oracle)."""
    _check_triplane_inputs(x, tables, cfg)
    return _encode_reference(x, tables, cfg, TRIPLANE_AXES)


# --------------------------------------------------------------------------- kernels



def _layout(cfg: HashGridConfig, axes: tuple[tuple[int, ...], ...]) -> tuple:
    """The kernels' description of an encoding: grids, dim, flat axes, resolutions, dense flags."""
    return (len(axes), cfg.dim, [a for grid in axes for a in grid], list(cfg.resolutions()),
            [int(d) for d in cfg.dense_levels()])


class _Encode(torch.autograd.Function):
    """Kernel forward/backward; the x gradient is computed only when x requires it."""

    @staticmethod
    def forward(ctx, module, x: Tensor, tables: Tensor, layout: tuple) -> Tensor:
        ctx.module, ctx.layout = module, layout
        ctx.save_for_backward(x, tables)
        return module.encode_forward(x, tables, *layout)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        need_x, need_tables = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        if not (need_x or need_tables):
            return None, None, None, None
        x, tables = ctx.saved_tensors
        # grad_out may be strided (e.g. expanded by .sum()): the CPU kernels read it in place.
        grad_x, grad_tables = ctx.module.encode_backward(grad_out, x, tables, *ctx.layout, need_x, need_tables)
        return None, grad_x, grad_tables, None


def _encode(x: Tensor, tables: Tensor, cfg: HashGridConfig, axes: tuple[tuple[int, ...], ...]) -> Tensor:
    module = backend.for_device(FAMILY, x.device)
    if module is None:
        return _encode_reference(x, tables, cfg, axes)
    layout = _layout(cfg, axes)
    if torch.is_grad_enabled() and (x.requires_grad or tables.requires_grad):
        return _Encode.apply(module, x, tables, layout)
    return module.encode_forward(x, tables, *layout)


def hash_encode(x: Tensor, table: Tensor, cfg: HashGridConfig) -> Tensor:
    """Multiresolution hash encoding of points ``x`` (N, dim) in [0, 1] -> (N, levels * features).

    ``table`` is (levels, 2**log2_table_size, features_per_level), same dtype (float32/64) and
    device as ``x``. Output column ``l * F + f`` is feature f at level l. Points outside
    [0, 1] are clamped to the box. Differentiable w.r.t. ``table`` and, only when
    ``x.requires_grad``, w.r.t. ``x`` (zero outside the box; once differentiable). Raises
    ValueError on a wrong dtype/device/shape or non-contiguous input.

    >>> cfg = HashGridConfig(dim=3, levels=2, features_per_level=2, log2_table_size=8,
    ...                      base_resolution=2, max_resolution=16)
    >>> table = torch.ones(*cfg.table_shape, requires_grad=True)
    >>> codes = hash_encode(torch.rand(4, 3), table, cfg)
    >>> codes.shape, torch.allclose(codes, torch.ones(4, 4))     # weights sum to 1
    (torch.Size([4, 4]), True)
    >>> codes.sum().backward()
    >>> float(table.grad.sum())                                  # 4 points x 2 levels x 2 features
    16.0
    """
    _check_hash_inputs(x, table, cfg)
    return _encode(x, table.unsqueeze(0), cfg, (tuple(range(cfg.dim)),))


def triplane_encode(x: Tensor, tables: Tensor, cfg: HashGridConfig) -> Tensor:
    """Tri-plane encoding: three 2D hash grids on the (x, y), (y, z), (x, z) planes.

    ``x`` (N, 3) in [0, 1]^3 (clamped), ``tables`` (3, levels, 2**log2_table_size, features)
    with ``cfg.dim == 2`` (the config of one plane) -> (N, 3 * levels * features), plane-major
    (column ``(p * levels + l) * F + f``). All three planes run in one kernel call.
    Differentiable like :func:`hash_encode`.

    >>> tables = torch.zeros(3, *ERNERF_TRIPLANE.table_shape)
    >>> triplane_encode(torch.rand(8, 3), tables, ERNERF_TRIPLANE).shape
    torch.Size([8, 36])
    """
    _check_triplane_inputs(x, tables, cfg)
    return _encode(x, tables, cfg, TRIPLANE_AXES)


# --------------------------------------------------------------------------- modules


def _init_table(shape: tuple[int, ...], scale: float = 1e-4) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-scale, scale))


class HashGrid(nn.Module):
    """A learnable multiresolution hash grid: forward(x (N, dim) in [0, 1]) -> (N, output_dim).

    >>> grid = HashGrid(HashGridConfig(dim=3, levels=4, log2_table_size=12, max_resolution=64))
    >>> grid.output_dim, grid(torch.rand(10, 3)).shape
    (8, torch.Size([10, 8]))
    """

    def __init__(self, cfg: HashGridConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or HashGridConfig()
        _check_config(self.cfg)
        self.table = _init_table(self.cfg.table_shape)

    @property
    def output_dim(self) -> int:
        return self.cfg.output_dim

    def forward(self, x: Tensor) -> Tensor:
        return hash_encode(x, self.table, self.cfg)

    def extra_repr(self) -> str:
        return f"{self.cfg}"


class TriPlaneEncoding(nn.Module):
    """ER-NeRF's tri-plane: three learnable 2D hash grids on the xy, yz and xz planes.

    forward(x (N, 3) in [0, 1]^3) -> (N, 3 * levels * features); defaults to
    :data:`ERNERF_TRIPLANE` (36 outputs).

    >>> enc = TriPlaneEncoding()
    >>> enc.output_dim, enc(torch.rand(10, 3)).shape
    (36, torch.Size([10, 36]))
    """

    def __init__(self, cfg: HashGridConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ERNERF_TRIPLANE
        _check_config(self.cfg)
        if self.cfg.dim != 2:
            raise ValueError(f"cfg.dim: a tri-plane is made of 2D grids, got dim={self.cfg.dim}")
        self.tables = _init_table((3, *self.cfg.table_shape))

    @property
    def output_dim(self) -> int:
        return 3 * self.cfg.output_dim

    def forward(self, x: Tensor) -> Tensor:
        return triplane_encode(x, self.tables, self.cfg)

    def extra_repr(self) -> str:
        return f"{self.cfg}"
