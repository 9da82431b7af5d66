"""Ray/box intersection, ray marching and sampling: kernels vs the PyTorch references, edge cases, checks.

The kernels and the references do the same arithmetic in the same order, so samples must be
identical (torch.equal), not merely close.
"""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from nerfhead.ops import backend, raymarch
from nerfhead.ops.occupancy import OccupancyGrid
from nerfhead.ops.raymarch import (
    PackedSamples,
    compact_samples,
    march_rays,
    march_rays_reference,
    ray_aabb,
    ray_aabb_reference,
    sample_along_rays,
)
from nerfhead.ops.volrend import transmittance_reference

BOX = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
INF = math.inf


def assert_same(a: PackedSamples, b: PackedSamples) -> None:
    assert torch.equal(a.packed_info, b.packed_info)
    assert torch.equal(a.ray_indices, b.ray_indices)
    assert torch.equal(a.t_starts, b.t_starts)
    assert torch.equal(a.t_ends, b.t_ends)
    assert a.t_starts.dtype == b.t_starts.dtype


def head_grid(device: str, resolution: int = 32, holes: float = 0.2, seed: int = 0) -> OccupancyGrid:
    """An ellipsoid of occupied cells with random holes and a few isolated cells (skips of all sizes)."""
    grid = OccupancyGrid(BOX, resolution=resolution)
    pts = grid.cell_points()
    gen = torch.Generator().manual_seed(seed)
    inside = (pts / torch.tensor([0.6, 0.8, 0.7])).norm(dim=-1) < 1
    noise = torch.rand(grid.num_cells, generator=gen)
    occupied = (inside & (noise > holes)) | (noise < 0.005)
    grid.update(grid.cell_indices(), occupied.float() * 100.0, decay=0.0)
    return grid.to(device)


def random_rays(n: int, device: str, dtype=torch.float32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    origins = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 3.0
    targets = (torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2.4 - 1.2)
    dirs = targets - origins
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return origins.to(device=device, dtype=dtype), dirs.to(device=device, dtype=dtype)


def test_kernels_are_built():
    if backend.mode() == "ref":
        pytest.skip("NERFHEAD_OPS=ref")
    assert backend.backend_name("raymarch") == "native"


def test_doctests():
    result = doctest.testmod(raymarch, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# --------------------------------------------------------------------------- ray_aabb


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ray_aabb_matches_reference(device, dtype):
    origins, dirs = random_rays(4000, device, dtype)
    dirs[:50, 0] = 0.0  # parallel to the x faces, inside and outside the slab
    origins[:25, 0] = 0.3
    origins[25:50, 0] = 1.7
    box = torch.tensor(BOX, dtype=dtype, device=device)
    for near in (0.0, 0.5, 2.0):
        t_near, t_far = ray_aabb(origins, dirs, box, near=near)
        want_near, want_far = ray_aabb_reference(origins, dirs, box, near)
        assert torch.equal(t_near, want_near) and torch.equal(t_far, want_far)
        hit = torch.isfinite(t_near)
        assert (t_near[hit] >= near).all() and (t_far[hit] >= t_near[hit]).all()
        assert torch.isinf(t_far[~hit]).all()


def test_ray_aabb_edge_cases(device):
    o = torch.tensor([
        [0.0, 0.0, 0.0],    # inside, along +z
        [-3.0, 0.0, 0.0],   # enters at 2, leaves at 4
        [-3.0, 5.0, 0.0],   # misses (y out of the slab, dy = 0)
        [-3.0, 1.0, 1.0],   # on the y and z faces with dy = dz = 0: inside the slabs (borders included)
        [-2.0, 0.0, 0.0],   # grazes the edge x = -1, y = 1 at t = 1: zero length
        [3.0, 0.0, 0.0],    # box behind the origin
        [0.0, 0.0, 0.0],    # zero direction inside the box
        [0.0, 2.0, 0.0],    # zero direction outside the box
    ], device=device)
    d = torch.tensor([
        [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
    ], device=device)
    t_near, t_far = ray_aabb(o, d, BOX)
    assert t_near.tolist() == [0.0, 2.0, INF, 2.0, 1.0, INF, 0.0, INF]
    assert t_far.tolist() == [1.0, 4.0, INF, 4.0, 1.0, INF, INF, INF]
    want = ray_aabb_reference(o, d, torch.tensor(BOX, device=device), 0.0)
    assert torch.equal(t_near, want[0]) and torch.equal(t_far, want[1])
    t_near, t_far = ray_aabb(o[:2], d[:2], BOX, near=3.0)  # near clamps; near beyond the exit misses
    assert t_near.tolist() == [INF, 3.0] and t_far.tolist() == [INF, 4.0]


def test_ray_aabb_no_rays(device):
    empty = torch.zeros(0, 3, device=device)
    t_near, t_far = ray_aabb(empty, empty, BOX)
    assert t_near.shape == (0,) and t_far.shape == (0,)


# --------------------------------------------------------------------------- march_rays


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("step, max_samples", [(0.013, 1024), (0.05, 7), (0.002, 64), (0.3, 1)])
def test_march_matches_reference(device, dtype, step, max_samples):
    grid = head_grid(device)
    origins, dirs = random_rays(1500, device, dtype, seed=3)
    t_near, t_far = ray_aabb(origins, dirs, grid.aabb)
    jitter = torch.rand(1500, generator=torch.Generator().manual_seed(1), dtype=dtype).to(device)
    for jit in (None, jitter):
        got = march_rays(origins, dirs, t_near, t_far, grid, step, max_samples, jit)
        want = march_rays_reference(origins, dirs, t_near, t_far, grid, step, max_samples, jit)
        assert_same(got, want)
        assert got.num_samples > 0 and int(got.packed_info[:, 1].max()) <= max_samples


def test_march_samples_follow_the_definition(device):
    grid = head_grid(device)
    origins, dirs = random_rays(500, device, seed=4)
    t_near, t_far = ray_aabb(origins, dirs, grid.aabb)
    s = march_rays(origins, dirs, t_near, t_far, grid, 0.02, 1 << 20)
    r = s.ray_indices
    mid = (s.t_starts + s.t_ends) * 0.5
    assert grid.occupied(origins[r] + dirs[r] * mid[:, None]).all()
    k = (s.t_starts - t_near[r]) / 0.02
    assert torch.allclose(k, k.round(), atol=1e-3)  # starts on the step lattice
    assert (s.t_ends <= t_far[r]).all() and (s.t_starts < s.t_ends).all()
    # every occupied candidate is emitted: count them densely in float64
    cand = torch.arange(200, device=device, dtype=torch.float64)
    t0 = t_near.double()[:, None] + cand * 0.02
    t1 = torch.minimum(t0 + 0.02, t_far.double()[:, None])
    exists = (t0 < t_far.double()[:, None]) & torch.isfinite(t_near)[:, None]
    pts = origins.double()[:, None] + dirs.double()[:, None] * ((t0 + t1) / 2)[..., None]
    occ = grid.occupied(pts.reshape(-1, 3)).reshape(exists.shape) & exists
    assert abs(int(occ.sum()) - s.num_samples) <= 2  # float32 vs float64 midpoints on cell borders


def test_march_skips_outside_and_sparse_grids(device):
    """Long rays that start and end far outside the box, through nearly empty grids: the
    skip-ahead over empty cells and over the outside must not change the samples."""
    gen = torch.Generator().manual_seed(5)
    for occupied_fraction in (0.0005, 0.01, 0.2):
        grid = OccupancyGrid(BOX, resolution=16)
        vals = (torch.rand(grid.num_cells, generator=gen) < occupied_fraction).float() * 50
        grid.update(grid.cell_indices(), vals, decay=0.0)
        grid = grid.to(device)
        origins, dirs = random_rays(800, device, seed=6)
        t_near = torch.full((800,), -4.0, device=device) + torch.rand(800, generator=gen).to(device)
        t_far = t_near + 12.0
        jitter = torch.rand(800, generator=gen).to(device)
        for step in (0.01, 0.11):
            got = march_rays(origins, dirs, t_near, t_far, grid, step, 10_000, jitter)
            want = march_rays_reference(origins, dirs, t_near, t_far, grid, step, 10_000, jitter)
            assert_same(got, want)


def test_march_on_cell_borders(device):
    """Axis-aligned rays along cell faces, with midpoints exactly on cell borders."""
    grid = head_grid(device, resolution=8, holes=0.5, seed=7)
    cell = 2.0 / 8
    ys = torch.arange(-4, 5, dtype=torch.float32) * cell  # exactly on the cell faces (and the box faces)
    yy, zz = torch.meshgrid(ys, ys, indexing="ij")
    n = yy.numel()
    origins = torch.stack([torch.full((n,), -1.0), yy.reshape(-1), zz.reshape(-1)], 1).to(device)
    for axis_dirs in ([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]):
        dirs = torch.tensor([axis_dirs], device=device).expand(n, 3).contiguous()
        t_near = torch.full((n,), -2.0, device=device)
        t_far = torch.full((n,), 2.0, device=device)
        for jit in (None, torch.full((n,), 0.5, device=device)):  # midpoints on / between the faces
            got = march_rays(origins, dirs, t_near, t_far, grid, cell, 64, jit)
            want = march_rays_reference(origins, dirs, t_near, t_far, grid, cell, 64, jit)
            assert_same(got, want)
            assert got.num_samples > 0


def test_march_degenerate_rays(device):
    grid = head_grid(device, resolution=8)
    grid.mark_all()
    o = torch.tensor([[-2.0, 0.0, 0.0]] * 5, device=device)
    d = torch.tensor([[1.0, 0.0, 0.0]] * 4 + [[0.0, 0.0, 0.0]], device=device)
    t_near = torch.tensor([1.5, INF, 2.0, -INF, 1.5], device=device)
    t_far = torch.tensor([1.5, INF, 1.0, 3.0, 2.5], device=device)  # zero length, miss, reversed, -inf, d = 0
    s = march_rays(o, d, t_near, t_far, grid, 0.1, 16)
    assert s.packed_info[:, 1].tolist() == [0, 0, 0, 0, 0]
    assert s.num_samples == 0 and s.packed_info.shape == (5, 2)
    assert_same(s, march_rays_reference(o, d, t_near, t_far, grid, 0.1, 16))
    e = torch.zeros(0, 3, device=device)
    s = march_rays(e, e, e[:, 0], e[:, 0], grid, 0.1, 16)
    assert s.num_samples == 0 and s.packed_info.shape == (0, 2)


def test_march_full_and_empty_grid(device):
    grid = head_grid(device)
    origins, dirs = random_rays(300, device, seed=8)
    t_near, t_far = ray_aabb(origins, dirs, grid.aabb)
    grid.mark_empty()
    s = march_rays(origins, dirs, t_near, t_far, grid, 0.01, 64)
    assert s.num_samples == 0 and s.packed_info.shape == (300, 2) and int(s.packed_info[:, 1].sum()) == 0
    grid.mark_all()
    s = march_rays(origins, dirs, t_near, t_far, grid, 0.01, 1 << 20)
    hit = torch.isfinite(t_near)
    want_counts = torch.ceil((t_far - t_near) / 0.01).where(hit, torch.zeros_like(t_near)).long()
    assert (s.packed_info[:, 1] - want_counts).abs().max() <= 1  # all candidates inside the box
    assert_same(s, march_rays_reference(origins, dirs, t_near, t_far, grid, 0.01, 1 << 20))
    assert torch.equal(s.packed_info[:, 0], torch.cumsum(s.packed_info[:, 1], 0) - s.packed_info[:, 1])
    s = march_rays(origins, dirs, t_near, t_far, grid, 0.01, 3)
    assert s.packed_info[:, 1].tolist() == [3 if h else 0 for h in hit.tolist()]


# --------------------------------------------------------------------------- sampling, early stop


def test_compact_samples_is_a_vectorised_filter():
    gen = torch.Generator().manual_seed(9)
    counts = torch.randint(0, 5, (50,), generator=gen)
    ray_indices = torch.repeat_interleave(torch.arange(50), counts)
    t = torch.rand(ray_indices.shape[0], generator=gen)
    info = torch.stack([torch.cumsum(counts, 0) - counts, counts], 1)
    keep = torch.rand(t.shape[0], generator=gen) > 0.4
    out = compact_samples(PackedSamples(ray_indices, t, t + 1, info), keep)
    want_counts = torch.tensor([int(keep[ray_indices == i].sum()) for i in range(50)])
    assert torch.equal(out.packed_info[:, 1], want_counts)
    assert torch.equal(out.packed_info[:, 0], torch.cumsum(want_counts, 0) - want_counts)
    assert torch.equal(out.t_starts, t[keep]) and torch.equal(out.ray_indices, ray_indices[keep])


def test_sample_along_rays_early_termination(device):
    grid = head_grid(device)
    origins, dirs = random_rays(800, device, seed=10)
    jitter = torch.rand(800, generator=torch.Generator().manual_seed(2)).to(device)
    plain = sample_along_rays(origins, dirs, grid, 0.01, 256, jitter=jitter)
    t_near, t_far = ray_aabb(origins, dirs, grid.aabb)
    assert_same(plain, march_rays_reference(origins, dirs, t_near, t_far, grid, 0.01, 256, jitter))

    def sigma_fn(t0, t1, rays):
        x = origins[rays] + dirs[rays] * ((t0 + t1) / 2)[:, None]
        return 30.0 * (x.norm(dim=-1) < 0.5).float() + 0.5

    for eps, alpha_thre in [(1e-4, 0.0), (0.2, 0.0), (1e-4, 0.01)]:
        got = sample_along_rays(origins, dirs, grid, 0.01, 256, jitter=jitter, sigma_fn=sigma_fn,
                                early_stop_eps=eps, alpha_thre=alpha_thre)
        trans, alphas = transmittance_reference(sigma_fn(plain.t_starts, plain.t_ends, plain.ray_indices),
                                                plain.t_starts, plain.t_ends, plain.packed_info)
        keep = (trans >= eps) & (alphas >= alpha_thre)
        want = compact_samples(plain, keep)
        assert torch.equal(got.packed_info, want.packed_info) and torch.equal(got.t_starts, want.t_starts)
        assert 0 < got.num_samples < plain.num_samples
        with backend.use_reference():
            ref = sample_along_rays(origins, dirs, grid, 0.01, 256, jitter=jitter, sigma_fn=sigma_fn,
                                    early_stop_eps=eps, alpha_thre=alpha_thre)
        assert_same(got, ref)


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    grid = head_grid("cpu", resolution=8)
    o, d = random_rays(4, "cpu")
    tn, tf = ray_aabb(o, d, BOX)
    good = dict(origins=o, dirs=d, t_near=tn, t_far=tf, grid=grid, step_size=0.1, max_samples=8)
    cases = [
        (dict(origins=o[:, :2].contiguous()), r"origins: expected shape \(N, 3\)"),
        (dict(dirs=d[:3]), r"dirs: expected shape \(4, 3\)"),
        (dict(dirs=d.double()), "dirs: dtype float64, but origins is float32"),
        (dict(origins=o.long()), "origins: expected dtype"),
        (dict(origins=o.t().contiguous().t()), "contiguous"),
        (dict(t_near=tn.double()), "t_near: dtype float64"),
        (dict(t_far=tf[:3]), r"t_far: expected shape \(4\)"),
        (dict(jitter=torch.zeros(5)), r"jitter: expected shape \(4\)"),
        (dict(jitter=torch.zeros(4, dtype=torch.float64)), "jitter: dtype float64"),
        (dict(grid="grid"), "grid: expected an OccupancyGrid"),
        (dict(step_size=0.0), "step_size: expected a finite number > 0"),
        (dict(step_size=float("nan")), "step_size"),
        (dict(step_size=1e-50), "rounds to 0"),
        (dict(max_samples=0), "max_samples: 0 is out of range"),
        (dict(max_samples=2.5), "max_samples: expected an int"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            march_rays(**{**good, **change})
    with pytest.raises(ValueError, match="aabb: expected 6 values"):
        ray_aabb(o, d, [0.0, 1.0])
    with pytest.raises(ValueError, match="near: expected a finite number"):
        ray_aabb(o, d, BOX, near=float("inf"))
    with pytest.raises(ValueError, match="early_stop_eps"):
        sample_along_rays(o, d, grid, 0.1, 8, early_stop_eps=2.0)
    with pytest.raises(ValueError, match="sigma_fn: expected"):
        grid.mark_all()
        sample_along_rays(o, d, grid, 0.1, 8, sigma_fn=lambda t0, t1, r: torch.zeros(1))
    with pytest.raises(ValueError, match="keep: expected dtype bool"):
        s = march_rays(**good)
        compact_samples(s, torch.ones(s.num_samples))
