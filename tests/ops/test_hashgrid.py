"""Hash encoding kernels against the plain-PyTorch reference: values, gradients, edges, bad inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerfhead.ops import backend
from nerfhead.ops.hashgrid import (
    ERNERF_TRIPLANE,
    PRIMES,
    HashGrid,
    HashGridConfig,
    TriPlaneEncoding,
    hash_encode,
    hash_encode_reference,
    triplane_encode,
    triplane_encode_reference,
)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kernels():
    module = backend.native("hashgrid")
    if module is None:
        pytest.skip("hashgrid kernels could not be built here")
    return module


def small(dim=2, levels=4, feats=2, log2=10, base=4, top=64) -> HashGridConfig:
    return HashGridConfig(dim=dim, levels=levels, features_per_level=feats, log2_table_size=log2,
                          base_resolution=base, max_resolution=top)


# Mixed dense + hashed levels, dense only, hash only, a single level, every feature count.
CONFIGS = {
    "2d-mixed": small(2, 6, 2, 10, 4, 128),
    "3d-mixed": small(3, 5, 2, 10, 2, 32),
    "2d-dense-only": small(2, 3, 1, 12, 2, 16),
    "3d-hash-only": small(3, 3, 4, 8, 16, 64),
    "2d-single-level": small(2, 1, 8, 8, 200, 200),
    "3d-f1": small(3, 4, 1, 9, 3, 40),
}


def rand_table(cfg: HashGridConfig, device, dtype=torch.float32, seed=0, planes=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = cfg.table_shape if planes is None else (planes, *cfg.table_shape)
    return torch.randn(shape, generator=g, dtype=dtype).to(device)


def edge_points(dim: int, cfg: HashGridConfig, device, dtype=torch.float32, seed=0) -> torch.Tensor:
    """Random points, then points on vertices and cell borders of every level, exactly 0 and 1,
    outside the box and a NaN."""
    g = torch.Generator().manual_seed(seed)
    pts = [torch.rand(200, dim, generator=g, dtype=torch.float64)]
    for res in cfg.resolutions():
        on_vertex = torch.randint(0, res + 1, (20, dim), generator=g).double() / res
        on_border = torch.rand(20, dim, generator=g, dtype=torch.float64)
        on_border[:, 0] = torch.randint(0, res + 1, (20,), generator=g).double() / res
        pts += [on_vertex, on_border]
    corners = torch.tensor([[0.0] * dim, [1.0] * dim, [0.0] + [1.0] * (dim - 1), [1.0] + [0.0] * (dim - 1)])
    outside = torch.tensor([[-0.5] * dim, [1.5] * dim, [-1e-7] + [0.5] * (dim - 1), [2.0] + [-3.0] * (dim - 1),
                            [float("inf")] + [0.3] * (dim - 1), [float("-inf")] * dim])
    nan = torch.full((1, dim), 0.25)
    nan[0, 0] = float("nan")
    return torch.cat(pts + [corners.double(), outside.double(), nan.double()]).to(dtype).to(device)


# --------------------------------------------------------------------------- config


def test_config_resolutions_grow_geometrically_from_base_to_max():
    cfg = HashGridConfig(dim=2, levels=12, features_per_level=1, log2_table_size=14, base_resolution=64,
                         max_resolution=512)
    res = cfg.resolutions()
    assert res[0] == 64 and res[-1] == 512 and len(res) == 12
    assert all(b > a for a, b in zip(res, res[1:]))
    growth = (512 / 64) ** (1 / 11)
    assert all(abs(r - 64 * growth ** i) <= 1 for i, r in enumerate(res))
    assert cfg.dense_levels() == tuple((r + 1) ** 2 <= 2 ** 14 for r in res)
    assert HashGridConfig(levels=1, base_resolution=7, max_resolution=9).resolutions() == (7,)
    assert ERNERF_TRIPLANE.output_dim == 12 and TriPlaneEncoding().output_dim == 36


@pytest.mark.parametrize("kwargs, field", [
    ({"dim": 4}, "dim"), ({"levels": 0}, "levels"), ({"levels": 33}, "levels"),
    ({"features_per_level": 3}, "features_per_level"), ({"log2_table_size": 7}, "log2_table_size"),
    ({"log2_table_size": 25}, "log2_table_size"), ({"base_resolution": 1}, "base_resolution"),
    ({"base_resolution": 64, "max_resolution": 32}, "max_resolution"), ({"max_resolution": 2 ** 21}, "max_resolution"),
    ({"levels": 4.0}, "levels"), ({"dim": True}, "dim"),
])
def test_config_rejects_out_of_range_settings(kwargs, field):
    with pytest.raises(ValueError, match=f"HashGridConfig.{field}"):
        HashGridConfig(**kwargs)


# --------------------------------------------------------------------------- reference semantics


def test_reference_blends_to_one_and_hits_table_rows_at_vertices():
    cfg = small(3, 3, 2, 10, 2, 16)
    with torch.no_grad():
        ones = hash_encode_reference(torch.rand(50, 3), torch.ones(*cfg.table_shape), cfg)
    torch.testing.assert_close(ones, torch.ones(50, 6))
    # A vertex of a hashed level reads exactly its hashed row.
    res = cfg.resolutions()[-1]
    assert not cfg.dense_levels()[-1]
    v = torch.tensor([3, 7, 11])
    row = (int(v[0]) * PRIMES[0] ^ int(v[1]) * PRIMES[1] ^ int(v[2]) * PRIMES[2]) % 2 ** 32 & (cfg.table_size - 1)
    table = torch.zeros(*cfg.table_shape)
    table[-1, row] = torch.tensor([5.0, -2.0])
    out = hash_encode_reference((v.float() / res).unsqueeze(0), table, cfg)
    torch.testing.assert_close(out[0, -2:], torch.tensor([5.0, -2.0]))


def test_reference_is_bilinear_inside_a_dense_cell():
    cfg = small(2, 1, 1, 8, 4, 4)  # one dense 4x4-cell level, 25 vertices
    table = torch.randn(*cfg.table_shape)
    x = torch.tensor([[0.3, 0.6]])  # cell (1, 2), frac (0.2, 0.4)
    t = table[0, :, 0]
    row = lambda i, j: t[i + 5 * j]  # noqa: E731
    want = 0.8 * 0.6 * row(1, 2) + 0.2 * 0.6 * row(2, 2) + 0.8 * 0.4 * row(1, 3) + 0.2 * 0.4 * row(2, 3)
    torch.testing.assert_close(hash_encode_reference(x, table, cfg)[0, 0], want)


def test_outside_points_are_clamped_to_the_box():
    cfg = CONFIGS["2d-mixed"]
    table = rand_table(cfg, "cpu")
    x = torch.tensor([[-0.5, 1.5], [0.3, -2.0], [float("nan"), 0.5]])
    clamped = torch.tensor([[0.0, 1.0], [0.3, 0.0], [0.0, 0.5]])
    torch.testing.assert_close(hash_encode(x, table, cfg), hash_encode(clamped, table, cfg))


# --------------------------------------------------------------------------- kernels vs reference: values


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hash_encode_matches_reference_on_random_and_edge_points(kernels, device, name):
    cfg = CONFIGS[name]
    table = rand_table(cfg, device)
    x = edge_points(cfg.dim, cfg, device)
    with torch.no_grad():
        got = hash_encode(x, table, cfg)
        with backend.use_reference():
            want = hash_encode(x, table, cfg)
    assert got.shape == (x.shape[0], cfg.output_dim)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_triplane_matches_reference_and_is_plane_major(kernels, device):
    cfg = small(2, 5, 2, 10, 8, 128)
    tables = rand_table(cfg, device, planes=3)
    x = edge_points(3, cfg, device)
    with torch.no_grad():
        got = triplane_encode(x, tables, cfg)
        want = triplane_encode_reference(x, tables, cfg)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
        c = cfg.output_dim
        for p, axes in enumerate(((0, 1), (1, 2), (0, 2))):
            plane = hash_encode_reference(x[:, list(axes)].contiguous(), tables[p].contiguous(), cfg)
            torch.testing.assert_close(got[:, p * c:(p + 1) * c], plane, atol=1e-6, rtol=1e-5)


def test_float64_and_empty_inputs(kernels, device):
    cfg = CONFIGS["3d-mixed"]
    table = rand_table(cfg, device, torch.float64)
    x = torch.rand(100, 3, dtype=torch.float64, device=device)
    torch.testing.assert_close(hash_encode(x, table, cfg), hash_encode_reference(x, table, cfg))
    table32 = rand_table(cfg, device).requires_grad_(True)
    empty = torch.zeros(0, 3, device=device, requires_grad=True)
    out = hash_encode(empty, table32, cfg)
    assert out.shape == (0, cfg.output_dim)
    out.sum().backward()
    assert torch.count_nonzero(table32.grad) == 0 and empty.grad.shape == (0, 3)
    tri = triplane_encode(torch.zeros(0, 3, device=device), rand_table(small(), device, planes=3), small())
    assert tri.shape == (0, 24)


# --------------------------------------------------------------------------- gradients


def interior_points(n: int, dim: int, cfg: HashGridConfig, device, seed=0) -> torch.Tensor:
    """float64 points at least 1e-3 cell widths away from every cell border of every level, so
    that the finite differences of gradcheck never cross a border."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(50 * n, dim, generator=g, dtype=torch.float64) * 0.9 + 0.05
    keep = torch.ones(x.shape[0], dtype=torch.bool)
    for res in cfg.resolutions():
        frac = torch.frac(x * res)
        keep &= ((frac > 1e-3) & (frac < 1 - 1e-3)).all(1)
    return x[keep][:n].to(device)


@pytest.mark.parametrize("name", ["2d-mixed", "3d-mixed", "3d-hash-only"])
def test_gradcheck_float64(kernels, device, name):
    cfg = CONFIGS[name]
    table = rand_table(cfg, device, torch.float64).requires_grad_(True)
    x = interior_points(12, cfg.dim, cfg, device).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda xx, tt: hash_encode(xx, tt, cfg), (x, table), eps=1e-6, atol=1e-6)


def test_gradcheck_triplane_float64(kernels, device):
    cfg = small(2, 3, 1, 8, 2, 24)
    tables = rand_table(cfg, device, torch.float64, planes=3).requires_grad_(True)
    x = interior_points(10, 3, cfg, device).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda xx, tt: triplane_encode(xx, tt, cfg), (x, tables), eps=1e-6, atol=1e-6)


def _grads(fn, x, table, grad_out):
    x = x.detach().clone().requires_grad_(True)
    table = table.detach().clone().requires_grad_(True)
    out = fn(x, table)
    out.backward(grad_out)
    return out.detach(), x.grad, table.grad


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gradients_match_reference_fp32(kernels, device, name):
    cfg = CONFIGS[name]
    table = rand_table(cfg, device)
    x = edge_points(cfg.dim, cfg, device, seed=1)
    x = x[torch.isfinite(x).all(1)]  # NaN/inf: forward only (their x gradient is 0 on both sides)
    g = torch.randn(x.shape[0], cfg.output_dim, generator=torch.Generator().manual_seed(2)).to(device)
    _, gx, gt = _grads(lambda xx, tt: hash_encode(xx, tt, cfg), x, table, g)
    with backend.use_reference():
        _, rx, rt = _grads(lambda xx, tt: hash_encode(xx, tt, cfg), x, table, g)
    torch.testing.assert_close(gt, rt, atol=1e-5, rtol=1e-5)
    scale = max(cfg.resolutions())
    torch.testing.assert_close(gx, rx, atol=1e-5 * scale, rtol=1e-4)
    outside = ((x < 0) | (x > 1))
    assert torch.all(gx[outside] == 0)


def test_triplane_gradients_match_reference_on_many_points(kernels, device):
    cfg = ERNERF_TRIPLANE
    tables = rand_table(cfg, device, planes=3) * 1e-2
    x = torch.rand(20000, 3, generator=torch.Generator().manual_seed(3)).to(device)
    g = torch.randn(20000, 36, generator=torch.Generator().manual_seed(4)).to(device)
    out, gx, gt = _grads(lambda xx, tt: triplane_encode(xx, tt, cfg), x, tables, g)
    ref, rx, rt = _grads(lambda xx, tt: triplane_encode_reference(xx, tt, cfg), x, tables, g)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gt, rt, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gx, rx, atol=1e-3, rtol=1e-3)


def test_x_gradient_only_when_asked_and_strided_upstream_gradients(kernels, device):
    cfg = CONFIGS["2d-mixed"]
    x = torch.rand(300, 2, device=device)
    table = rand_table(cfg, device).requires_grad_(True)
    hash_encode(x, table, cfg).sum().backward()  # expanded upstream gradient
    with backend.use_reference():
        t2 = table.detach().clone().requires_grad_(True)
        hash_encode(x, t2, cfg).sum().backward()
    torch.testing.assert_close(table.grad, t2.grad, atol=1e-5, rtol=1e-5)
    assert not x.requires_grad
    # Frozen table, x requires grad; a non-contiguous upstream gradient (every other column).
    xr = x.clone().requires_grad_(True)
    out = hash_encode(xr, table.detach(), cfg)
    out[:, ::2].sum().backward()
    with backend.use_reference():
        xr2 = x.clone().requires_grad_(True)
        hash_encode(xr2, table.detach(), cfg)[:, ::2].sum().backward()
    torch.testing.assert_close(xr.grad, xr2.grad, atol=1e-3, rtol=1e-4)
    big = torch.randn(300, 2 * cfg.output_dim, device=device)[:, ::2]  # column stride 2
    _, gx, gt = _grads(lambda xx, tt: hash_encode(xx, tt, cfg), x, table, big)
    with backend.use_reference():
        _, rx, rt = _grads(lambda xx, tt: hash_encode(xx, tt, cfg), x, table, big)
    torch.testing.assert_close(gt, rt, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx, rx, atol=1e-3, rtol=1e-4)


# --------------------------------------------------------------------------- modules


def test_modules_parameters_and_training_step(device):
    grid = HashGrid(CONFIGS["3d-mixed"]).to(device)
    assert grid.table.shape == CONFIGS["3d-mixed"].table_shape and grid.table.abs().max() <= 1e-4
    tri = TriPlaneEncoding().to(device)
    assert tri.tables.shape == (3, 12, 2 ** 14, 1) and tri.output_dim == 36
    x = torch.rand(64, 3, device=device)
    codes = torch.cat([grid(x), tri(x)], 1)
    assert codes.shape == (64, grid.output_dim + 36)
    codes.square().sum().backward()
    assert grid.table.grad is not None and tri.tables.grad is not None
    assert set(tri.state_dict()) == {"tables"}
    with pytest.raises(ValueError, match="tri-plane"):
        TriPlaneEncoding(HashGridConfig(dim=3))


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_value_errors():
    cfg = CONFIGS["2d-mixed"]
    table = rand_table(cfg, "cpu")
    x = torch.rand(10, 2)
    cases = [
        (lambda: hash_encode(x.double(), table, cfg), "table: dtype float32, but x is float64"),
        (lambda: hash_encode(x.half(), table.half(), cfg), "x: expected dtype"),
        (lambda: hash_encode(x.long(), table, cfg), "x: expected dtype"),
        (lambda: hash_encode(torch.rand(10, 3), table, cfg), r"x: expected shape \(N, 2\)"),
        (lambda: hash_encode(torch.rand(10), table, cfg), r"x: expected shape"),
        (lambda: hash_encode(torch.rand(2, 10).t(), table, cfg), "x: expected a contiguous tensor"),
        (lambda: hash_encode(x, table[:, :512], cfg), "table: expected shape"),
        (lambda: hash_encode(x, table.transpose(0, 1).contiguous().transpose(0, 1), cfg), "contiguous"),
        (lambda: hash_encode(x, table, {"dim": 2}), "cfg: expected a HashGridConfig"),
        (lambda: hash_encode(x.numpy(), table, cfg), "x: expected a torch.Tensor"),
        (lambda: triplane_encode(torch.rand(10, 3), table, cfg), "tables: expected shape"),
        (lambda: triplane_encode(torch.rand(10, 3), rand_table(small(3), "cpu", planes=3), small(3)), "cfg.dim"),
        (lambda: triplane_encode(x, rand_table(cfg, "cpu", planes=3), cfg), r"x: expected shape \(N, 3\)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="on cuda"):
            hash_encode(x, table.cuda(), cfg)


MISUSE_SCRIPT = """
import torch
from nerfhead.ops import backend
m = backend.native("hashgrid")
x, table = torch.rand(5, 2), torch.zeros(1, 2, 256, 1)
assert m.encode_forward(x, table, 1, 2, [0, 1], [2, 64], [1, 0]).shape == (5, 2)
calls = {
    "dense": lambda: m.encode_forward(x, table, 1, 2, [0, 1], [2, 64], [1, 1]),  # 65^2 rows > 256
    "axis": lambda: m.encode_forward(x, table, 1, 2, [0, 5], [2, 64], [1, 0]),
    "power of two": lambda: m.encode_forward(x, torch.zeros(1, 2, 300, 1), 1, 2, [0, 1], [2, 3], [0, 0]),
    "grad_out": lambda: m.encode_backward(torch.zeros(4, 2), x, table, 1, 2, [0, 1], [2, 3], [0, 0], True, True),
}
for word, call in calls.items():
    try:
        call()
    except RuntimeError as exc:
        assert word in str(exc), (word, str(exc))
    else:
        raise AssertionError(f"no error for {word}")
print("all raised")
"""


def test_direct_kernel_misuse_raises_instead_of_crashing(kernels):
    # In a child process: a C++ exception that crashed the interpreter (seen with some torch
    # builds) must fail this test, not the whole test session.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", MISUSE_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "all raised" in done.stdout, done.stderr[-2000:]


def test_resolution_math_matches_the_documented_formula():
    cfg = HashGridConfig(dim=3, levels=16, base_resolution=16, max_resolution=2048)
    growth = math.exp((math.log(2048) - math.log(16)) / 15)
    assert cfg.resolutions()[:-1] == tuple(int(math.floor(16 * growth ** i + 1e-6)) for i in range(15))
