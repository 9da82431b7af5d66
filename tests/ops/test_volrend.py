"""Packed volume rendering: the kernels against the plain-PyTorch reference, values and gradients."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerfhead.ops import backend
from nerfhead.ops.volrend import (
    RenderResult,
    check_packed_info,
    transmittance,
    transmittance_reference,
    volume_render,
    volume_render_reference,
)

OUTPUTS = ("rgb", "opacity", "depth", "weights")


@pytest.fixture(autouse=True)
def kernels():
    """Every test here runs the compiled kernels (a failed build is an error, not a fallback)."""
    with backend.use_reference(False):
        yield backend.native("volrend")


def packed(counts, channels: int = 3, *, device="cpu", dtype=torch.float32, seed: int = 0,
           sigma_scale: float = 5.0, dt_scale: float = 0.1):
    """Random packed samples: (sigmas, rgbs, t_starts, t_ends, packed_info) for rays of ``counts`` samples."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.as_tensor(counts, dtype=torch.int64)
    n_samples = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    dt = (torch.rand(n_samples, generator=g, dtype=torch.float64) + 0.1) * dt_scale
    ends = torch.cumsum(dt, 0)
    ray_ids = torch.repeat_interleave(torch.arange(len(counts)), counts)
    base = (ends - dt)[offsets.clamp(max=max(n_samples - 1, 0))][ray_ids] if n_samples else ends
    t_starts = 2.0 + (ends - dt) - base
    t_ends = t_starts + dt
    sigmas = -torch.log(torch.rand(n_samples, generator=g, dtype=torch.float64)) * sigma_scale
    rgbs = torch.rand(n_samples, channels, generator=g, dtype=torch.float64)
    to = dict(device=device, dtype=dtype)
    return (sigmas.to(**to), rgbs.to(**to), t_starts.to(**to), t_ends.to(**to),
            torch.stack([offsets, counts], 1).to(device))


def random_counts(n_rays: int, high: int, seed: int = 1) -> torch.Tensor:
    counts = torch.randint(1, high + 1, (n_rays,), generator=torch.Generator().manual_seed(seed))
    counts[::7] = 0  # rays that miss the box
    return counts


def as_tuple(result: RenderResult) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(result, name) for name in OUTPUTS)


def render_and_grads(render, sigmas, rgbs, t_starts, t_ends, info, upstream):
    sigmas = sigmas.detach().clone().requires_grad_(True)
    rgbs = rgbs.detach().clone().requires_grad_(True)
    out = as_tuple(render(sigmas, rgbs, t_starts, t_ends, info))
    grads = torch.autograd.grad(out, (sigmas, rgbs), upstream, allow_unused=True)
    return tuple(o.detach() for o in out), grads


def upstream_grads(outputs, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(o.shape, generator=g, dtype=torch.float64).to(o) for o in outputs)


def assert_matches_reference(data, *, rtol=1e-5, atol=1e-6, grad_rtol=1e-4, grad_atol=1e-5):
    """Values and gradients (random upstream gradients into all four outputs) of kernel and reference."""
    ref_out = as_tuple(volume_render_reference(*[d.detach() for d in data[:2]], *data[2:]))
    upstream = upstream_grads(ref_out)
    out, grads = render_and_grads(volume_render, *data, upstream)
    ref_out, ref_grads = render_and_grads(volume_render_reference, *data, upstream)
    for name, a, b in zip(OUTPUTS, out, ref_out):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")
    for name, a, b in zip(("sigmas", "rgbs"), grads, ref_grads):
        assert torch.isfinite(a).all(), f"grad {name} not finite"
        torch.testing.assert_close(a, b, rtol=grad_rtol, atol=grad_atol, msg=lambda m, n=name: f"grad {n}: {m}")
    return out, grads


# --------------------------------------------------------------------------- values and gradients


def test_kernels_are_built(kernels):
    assert kernels is not None


def test_transmittance_matches_reference(device):
    sigmas, _, t_starts, t_ends, info = packed(random_counts(300, 40), device=device)
    trans, alphas = transmittance(sigmas, t_starts, t_ends, info)
    ref_trans, ref_alphas = transmittance_reference(sigmas, t_starts, t_ends, info)
    torch.testing.assert_close(trans, ref_trans, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alphas, ref_alphas, rtol=1e-5, atol=1e-7)
    first = info[info[:, 1] > 0, 0]
    assert torch.all(trans[first] == 1)
    weights = volume_render(sigmas, torch.zeros(len(sigmas), 1, device=device), t_starts, t_ends, info).weights
    assert torch.equal(trans * alphas, weights)  # the ray marcher sees the renderer's T, bit for bit


def test_transmittance_has_no_grad(device):
    sigmas, _, t_starts, t_ends, info = packed([3, 2], device=device)
    trans, alphas = transmittance(sigmas.requires_grad_(True), t_starts, t_ends, info)
    assert not trans.requires_grad and not alphas.requires_grad


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_render_matches_reference(device, channels):
    data = packed(random_counts(512, 64), channels, device=device)
    out, _ = assert_matches_reference(data)
    rgb, opacity, depth, weights = out
    assert rgb.shape == (512, channels) and weights.shape == data[0].shape
    assert torch.all(opacity <= 1 + 1e-6) and torch.all(weights >= 0)


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_gradcheck_float64(device, channels):
    sigmas, rgbs, t_starts, t_ends, info = packed([3, 0, 1, 4], channels, device=device, dtype=torch.float64,
                                                  sigma_scale=3.0, dt_scale=0.3)

    def render(s, c):
        return as_tuple(volume_render(s, c, t_starts, t_ends, info))

    assert torch.autograd.gradcheck(render, (sigmas.requires_grad_(True), rgbs.requires_grad_(True)))


@pytest.mark.parametrize("output", OUTPUTS)
def test_each_output_alone_drives_gradients(device, output):
    data = packed(random_counts(64, 12), device=device)
    sigmas = data[0].clone().requires_grad_(True)
    loss = getattr(volume_render(sigmas, *data[1:]), output).square().sum()
    loss.backward()
    ref_sigmas = data[0].clone().requires_grad_(True)
    getattr(volume_render_reference(ref_sigmas, *data[1:]), output).square().sum().backward()
    torch.testing.assert_close(sigmas.grad, ref_sigmas.grad, rtol=1e-4, atol=1e-5)


def test_only_rgbs_require_grad(device):
    sigmas, rgbs, t_starts, t_ends, info = packed([4, 3], device=device)
    rgbs.requires_grad_(True)
    out = volume_render(sigmas, rgbs, t_starts, t_ends, info)
    out.rgb.sum().backward()
    torch.testing.assert_close(rgbs.grad, out.weights.detach()[:, None].expand(-1, 3).contiguous())


def test_no_grad_mode_gives_plain_tensors(device):
    data = packed([5, 0, 2], device=device)
    data[0].requires_grad_(True)
    with torch.no_grad():
        out = volume_render(*data)
    assert not out.rgb.requires_grad


# --------------------------------------------------------------------------- edge cases


def test_rays_without_samples(device):
    data = packed([0, 3, 0, 0, 2, 0], device=device)
    out, _ = assert_matches_reference(data)
    rgb, opacity, depth, _ = out
    empty = data[4][:, 1] == 0
    assert torch.all(rgb[empty] == 0) and torch.all(opacity[empty] == 0) and torch.all(depth[empty] == 0)


@pytest.mark.parametrize("n_rays", [0, 5])
def test_no_samples_at_all(device, n_rays):
    data = packed([0] * n_rays, device=device)
    sigmas = data[0].requires_grad_(True)
    out = volume_render(sigmas, *data[1:])
    assert out.rgb.shape == (n_rays, 3) and torch.all(out.rgb == 0) and torch.all(out.opacity == 0)
    assert out.weights.shape == (0,)
    (out.rgb.sum() + out.opacity.sum()).backward()
    assert sigmas.grad.shape == (0,)
    trans, alphas = transmittance(data[0].detach(), data[2], data[3], data[4])
    assert trans.shape == alphas.shape == (0,)


def test_zero_length_intervals(device):
    sigmas, rgbs, t_starts, t_ends, info = packed([4, 3, 5], device=device)
    t_ends = t_ends.clone()
    t_ends[::2] = t_starts[::2]
    out, _ = assert_matches_reference((sigmas, rgbs, t_starts, t_ends, info))
    assert torch.all(out[3][::2] == 0)
    _, alphas = transmittance(sigmas, t_starts, t_ends, info)
    assert torch.all(alphas[::2] == 0)


def test_huge_sigma_is_opaque_with_finite_gradients(device):
    sigmas, rgbs, t_starts, t_ends, info = packed([4, 6, 1, 5], device=device)
    sigmas = sigmas.clone()
    sigmas[[1, 4, 10]] = 1e6  # second sample of ray 0, first of ray 1, the single one of ray 2
    out, grads = assert_matches_reference((sigmas, rgbs, t_starts, t_ends, info))
    trans, alphas = transmittance(sigmas, t_starts, t_ends, info)
    assert torch.all(alphas[[1, 4, 10]] == 1)
    assert torch.all(trans[[2, 3, 5, 6, 7, 8, 9]] == 0)
    torch.testing.assert_close(out[1][1:3], torch.ones(2, device=device))
    assert all(torch.isfinite(t).all() for t in out + grads)
    occluded = [2, 3, 5, 6, 7, 8, 9]
    assert torch.all(out[3][occluded] == 0) and torch.all(grads[0][occluded] == 0)  # exactly, not ~1e-9


def test_sigma_zero_everywhere(device):
    sigmas, rgbs, t_starts, t_ends, info = packed([4, 0, 7], device=device)
    sigmas = torch.zeros_like(sigmas)
    out, grads = assert_matches_reference((sigmas, rgbs, t_starts, t_ends, info))
    assert torch.all(out[3] == 0) and torch.all(out[1] == 0)
    trans, _ = transmittance(sigmas, t_starts, t_ends, info)
    assert torch.all(trans == 1)
    assert torch.all(grads[1] == 0) and torch.any(grads[0] != 0)


def test_single_sample_per_ray(device):
    data = packed([1] * 200, device=device)
    out, _ = assert_matches_reference(data)
    torch.testing.assert_close(out[3], -torch.expm1(-data[0] * (data[3] - data[2])))


@pytest.mark.parametrize("channels", [1, 8])
def test_long_rays_underflow(device, channels):
    data = packed([1000, 3, 1000], channels, device=device, sigma_scale=20.0)
    out, grads = assert_matches_reference(data)
    trans, _ = transmittance(*data[:1], *data[2:])
    assert trans[999] == 0 and trans[-1] == 0  # T underflowed to exactly zero, without NaN
    torch.testing.assert_close(out[1][[0, 2]], torch.ones(2, device=device))


def test_reference_mode_runs_the_reference(device):
    data = packed([3, 2], device=device)
    with backend.use_reference():
        out = volume_render(*data)
    ref = volume_render_reference(*data)
    for a, b in zip(as_tuple(out), as_tuple(ref)):
        assert torch.equal(a, b)


def test_result_is_a_dataclass(device):
    out = volume_render(*packed([2], device=device))
    assert [f.name for f in dataclasses.fields(out)] == list(OUTPUTS)


# --------------------------------------------------------------------------- bad inputs


def bad(**changes):
    sigmas, rgbs, t_starts, t_ends, info = packed([3, 0, 2])
    args = dict(sigmas=sigmas, rgbs=rgbs, t_starts=t_starts, t_ends=t_ends, packed_info=info)
    args.update(changes)
    return args


BAD_INPUTS = {
    "sigmas int": (bad(sigmas=torch.ones(5, dtype=torch.int64)), "sigmas: expected dtype"),
    "sigmas half": (bad(sigmas=torch.ones(5, dtype=torch.float16)), "sigmas: expected dtype"),
    "sigmas 2d": (bad(sigmas=torch.ones(5, 1)), "sigmas: expected shape"),
    "t_starts short": (bad(t_starts=torch.zeros(4)), "t_starts: expected shape"),
    "t_ends float64": (bad(t_ends=torch.ones(5, dtype=torch.float64)), "t_ends: dtype float64"),
    "rgbs 1d": (bad(rgbs=torch.ones(5)), "rgbs: expected shape"),
    "rgbs no channel": (bad(rgbs=torch.ones(5, 0)), "at least one channel"),
    "rgbs rows": (bad(rgbs=torch.ones(6, 3)), "rgbs: expected shape"),
    "rgbs strided": (bad(rgbs=torch.ones(3, 5).t()), "contiguous"),
    "sigmas strided": (bad(sigmas=torch.ones(10)[::2]), "contiguous"),
    "packed_info int32": (bad(packed_info=torch.tensor([[0, 3], [3, 0], [3, 2]], dtype=torch.int32)),
                          "packed_info: expected dtype int64"),
    "packed_info shape": (bad(packed_info=torch.tensor([0, 3, 3, 2])), "packed_info: expected shape"),
    "packed_info device": (bad(packed_info=torch.zeros(3, 2, dtype=torch.int64, device="meta")),
                           "packed_info: expected a tensor on cpu"),
    "counts short": (bad(packed_info=torch.tensor([[0, 3], [3, 0], [3, 1]])), "the counts sum to 4, but there are 5"),
    "counts long": (bad(packed_info=torch.tensor([[0, 3], [3, 0], [3, 3]])), "the counts sum to 6, but there are 5"),
    "negative count": (bad(packed_info=torch.tensor([[0, 3], [3, -1], [3, 3]])), "ray 1 has -1"),
    "offset out of range": (bad(packed_info=torch.tensor([[0, 3], [3, 0], [9, 2]])),
                            "ray 2 starts at offset 9, expected 3"),
    "offset overlap": (bad(packed_info=torch.tensor([[0, 3], [3, 0], [1, 2]])), "ray 2 starts at offset 1"),
    "negative offset": (bad(packed_info=torch.tensor([[-1, 3], [3, 0], [3, 2]])), "ray 0 starts at offset -1"),
    "not a tensor": (bad(sigmas=[1.0, 2.0]), "sigmas: expected a torch.Tensor"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_raise_value_error(case):
    args, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        volume_render(**args)
    if "rgbs" not in case:
        args = {k: v for k, v in args.items() if k != "rgbs"}
        with pytest.raises(ValueError, match=message):
            transmittance(**args)


def test_empty_ray_offset_is_ignored():
    check_packed_info(torch.tensor([[0, 3], [99, 0], [3, 2], [-5, 0]]), 5)


DIRECT_CALLS = """
import torch
from nerfhead.ops import backend
with backend.use_reference(False):
    m = backend.native("volrend")
s, t0, t1, c = torch.rand(5), torch.zeros(5), torch.ones(5), torch.rand(5, 3)
for call in (lambda: m.render_forward(s, c, t0, t1, torch.tensor([[0, 3], [4, 2]])),
             lambda: m.transmittance(s, t0, t1, torch.tensor([[0, 3], [4, 2]])),
             lambda: m.transmittance(s, t0, t1, torch.tensor([[0, 3], [3, 2]], dtype=torch.int32))):
    try:
        call()
    except ValueError as e:
        print(str(e).splitlines()[0])
"""


def test_kernel_refuses_malformed_inputs_without_crashing(kernels):
    """Called directly (past the Python checks), malformed inputs raise ValueError, never crash.

    In a child process: on one CUDA image (torch 2.11, GCC 13) any C++ exception thrown by an
    extension killed the interpreter; that must fail this test, not the whole run."""
    done = subprocess.run([sys.executable, "-c", DIRECT_CALLS], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, f"the extension crashed on a malformed input:\n{done.stderr[-2000:]}"
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and "out of range" in lines[0] and "out of range" in lines[1], done.stdout
    assert "packed_info must be a contiguous int64" in lines[2]
