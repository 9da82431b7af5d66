"""OccupancyGrid: fused update kernel vs the PyTorch reference, lookups, refresh schedule, checks."""

from __future__ import annotations

import doctest
import io

import pytest
import torch

from nerfhead.ops import backend, occupancy
from nerfhead.ops.occupancy import (
    OccupancyGrid,
    grid_update_reference,
    occupied_reference,
    pack_bits,
    unpack_bits,
)

BOX = [-1.0, -0.5, -2.0, 1.0, 1.5, 0.0]


def make_grid(device: str, resolution: int = 16) -> OccupancyGrid:
    return OccupancyGrid(BOX, resolution=resolution).to(device)


def random_update(grid: OccupancyGrid, gen: torch.Generator, fraction: float = 0.5):
    n = grid.num_cells
    indices = torch.randperm(n, generator=gen)[: int(n * fraction)].to(grid.density.device)
    values = (torch.rand(indices.shape[0], generator=gen) * 30.0).to(grid.density.device)
    return indices, values


def test_kernels_are_built():
    if backend.mode() == "ref":
        pytest.skip("NERFHEAD_OPS=ref")
    assert backend.backend_name("raymarch") == "native"


def test_doctests():
    result = doctest.testmod(occupancy, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_fresh_grid_is_all_occupied_with_zero_density():
    grid = OccupancyGrid(BOX)
    assert grid.resolution == 128
    assert grid.density.shape == (128 ** 3,) and grid.density.dtype == torch.float32
    assert grid.bitfield.shape == (128 ** 3 // 8,) and grid.bitfield.dtype == torch.uint8
    assert grid.occupied_fraction() == 1.0 and float(grid.density.abs().sum()) == 0.0
    grid.mark_empty()
    assert grid.occupied_fraction() == 0.0
    grid.mark_all()
    assert grid.occupied_fraction() == 1.0


def test_pack_unpack_roundtrip():
    mask = torch.rand(4096, generator=torch.Generator().manual_seed(0)) > 0.5
    assert torch.equal(unpack_bits(pack_bits(mask)), mask)


@pytest.mark.parametrize("resolution", [8, 32, 128])
def test_update_matches_reference(device, resolution):
    gen = torch.Generator().manual_seed(resolution)
    grid = make_grid(device, resolution)
    for decay, cap in [(0.95, 10.0), (0.5, 3.0), (1.0, 100.0)]:
        indices, values = random_update(grid, gen)
        want_density, want_bits, want_thr = grid_update_reference(grid.density, indices, values, decay, cap)
        thr = grid.update(indices, values, decay=decay, threshold=cap)
        assert torch.equal(grid.density, want_density)
        assert torch.equal(grid.bitfield, want_bits)
        assert float(thr) == float(want_thr)


def test_update_semantics(device):
    grid = make_grid(device, 4)
    grid.density.fill_(10.0)
    idx = torch.tensor([0, 1, 2], device=device)
    grid.update(idx, torch.tensor([5.0, 20.0, float("nan")], device=device), decay=0.5, threshold=100.0)
    assert grid.density[:4].tolist() == [5.0, 20.0, 5.0, 10.0]  # max(old * decay, new); NaN counts as 0
    mean = float(grid.density.double().mean())
    assert torch.equal(grid.occupied_mask(), grid.density > mean)
    grid.update(idx[:0], torch.zeros(0, device=device), threshold=6.0)  # no cells: threshold = min(mean, cap)
    assert torch.equal(grid.occupied_mask(), grid.density > 6.0)


def test_update_all_zero_density_marks_everything_empty(device):
    grid = make_grid(device, 8)
    grid.update(grid.cell_indices(), torch.zeros(grid.num_cells, device=device))
    assert grid.occupied_fraction() == 0.0


def test_occupied_lookup_matches_reference(device):
    gen = torch.Generator().manual_seed(1)
    grid = make_grid(device, 16)
    grid.update(*random_update(grid, gen, 1.0))
    lo, hi = torch.tensor(BOX[:3]), torch.tensor(BOX[3:])
    pts = (torch.rand(5000, 3, generator=gen) * 1.4 - 0.2) * (hi - lo) + lo  # inside and outside
    borders = torch.stack([hi, lo, torch.tensor([0.0, 0.0, -1.0]), torch.tensor([0.125, 0.5, -0.25])])
    for points in (pts, borders):
        for dtype in (torch.float32, torch.float64):
            p = points.to(device=device, dtype=dtype)
            want = occupied_reference(p, grid.bitfield, grid.resolution, grid.geometry(dtype))
            assert torch.equal(grid.occupied(p), want)
    outside = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.5, -1.0], [0.0, 0.0, -2.5]], device=device)
    grid.mark_all()
    assert grid.occupied(outside).tolist() == [False, False, False]  # the upper faces are outside too
    assert grid.occupied(torch.tensor([[-1.0, -0.5, -2.0]], device=device)).tolist() == [True]


def test_cell_points_centres_and_jitter(device):
    grid = make_grid(device, 8)
    centres = grid.cell_points()
    assert centres.shape == (512, 3)
    lo = torch.tensor(BOX[:3], device=device)
    size = (torch.tensor(BOX[3:], device=device) - lo) / 8
    ijk = torch.floor((centres - lo) / size).long()
    assert torch.equal((ijk[:, 0] * 8 + ijk[:, 1]) * 8 + ijk[:, 2], torch.arange(512, device=device))
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.tensor([0, 77, 511], device=device)
    jittered = grid.cell_points(idx, jitter=True, generator=gen)
    assert ((jittered - centres[idx]).abs() <= size / 2 + 1e-6).all()
    assert not torch.equal(jittered, centres[idx])


def test_update_every_n_steps(device):
    grid = make_grid(device, 16)
    calls = []

    def sphere(x):
        calls.append(x.shape[0])
        return ((x - torch.tensor([0.0, 0.5, -1.0], device=x.device)).norm(dim=-1) < 0.6).float() * 50.0

    assert not grid.update_every_n_steps(5, sphere, n=16)
    assert calls == []
    assert grid.update_every_n_steps(0, sphere, n=16, chunk=1000)  # warm-up: every cell
    assert sum(calls) == grid.num_cells and max(calls) <= 1000
    occupied_before = grid.occupied_mask().clone()
    assert 0.05 < grid.occupied_fraction() < 0.3
    calls.clear()
    gen = torch.Generator(device=device).manual_seed(0)
    assert grid.update_every_n_steps(512, sphere, n=16, warmup_steps=256, generator=gen)
    assert grid.num_cells // 4 <= sum(calls) < grid.num_cells  # a quarter plus the occupied cells
    cells = grid.update_cells(512, 256, torch.Generator(device=device).manual_seed(0))
    assert torch.equal(cells, torch.unique(cells))
    assert occupied_before[cells].sum() == occupied_before.sum()  # every occupied cell re-evaluated
    with pytest.raises(ValueError, match="density_fn: expected"):
        grid.update_every_n_steps(0, lambda x: torch.zeros(3, device=x.device))


def test_state_dict_roundtrip_and_geometry_refresh():
    gen = torch.Generator().manual_seed(2)
    grid = OccupancyGrid(BOX, resolution=8)
    grid.update(*random_update(grid, gen, 1.0))
    other = OccupancyGrid([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], resolution=8)
    assert other.geometry() != grid.geometry()
    other.load_state_dict(grid.state_dict())
    assert torch.equal(other.bitfield, grid.bitfield) and torch.equal(other.density, grid.density)
    assert other.geometry() == grid.geometry()
    buf = io.BytesIO()
    torch.save(grid.state_dict(), buf)
    buf.seek(0)
    third = OccupancyGrid(BOX, resolution=8)
    third.load_state_dict(torch.load(buf))
    assert torch.equal(third.bitfield, grid.bitfield)


@pytest.mark.parametrize("kwargs, message", [
    (dict(aabb=BOX, resolution=3), "R even"),
    (dict(aabb=BOX, resolution=0), "resolution"),
    (dict(aabb=BOX, resolution=8.0), "expected an int"),
    (dict(aabb=[0.0, 0.0, 0.0, 1.0, 1.0], resolution=8), "6 values"),
    (dict(aabb=[0.0, 0.0, 0.0, 1.0, -1.0, 1.0], resolution=8), "max > min"),
    (dict(aabb=[0.0, 0.0, 0.0, 1.0, float("inf"), 1.0], resolution=8), "finite"),
])
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OccupancyGrid(**kwargs)


def test_bad_update_inputs():
    grid = OccupancyGrid(BOX, resolution=8)
    idx = torch.arange(4)
    vals = torch.ones(4)
    cases = [
        ((torch.tensor([0, 512]), torch.ones(2)), {}, r"indices: cell indices must lie in \[0, 512\)"),
        ((torch.tensor([-1]), torch.ones(1)), {}, "indices: cell indices"),
        ((idx.float(), vals), {}, "indices: expected dtype"),
        ((idx, vals.double()), {}, "density: expected dtype float32"),
        ((idx, torch.ones(3)), {}, r"density: expected shape \(4\), got \(3,\)"),
        ((idx, torch.ones(8)[::2]), {}, "contiguous"),
        ((idx.reshape(2, 2), vals), {}, "indices: expected shape"),
        ((idx, vals), dict(decay=1.5), "decay"),
        ((idx, vals), dict(threshold=float("nan")), "threshold"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            grid.update(*args, **kwargs)
    with pytest.raises(ValueError, match=r"points: expected shape \(N, 3\)"):
        grid.occupied(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="points: expected dtype"):
        grid.occupied(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="n: "):
        grid.update_every_n_steps(0, lambda x: x[:, 0], n=0)
