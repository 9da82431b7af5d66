"""Our kernels against the plain-PyTorch reference of the same op, measured in one run.

    .venv/bin/python tools/bench_kernels.py [--repeats 5] [--device cpu|cuda]

One line per op and configuration: reference time, kernel time and the speed ratio (median of
``--repeats`` timed runs after one warm-up). Sizes follow the issue: 262,144 points for the hash
encodings, 4,096 rays for marching and rendering, and one whole head-field training step at
4,096 rays. Ends with the process's peak memory.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from nerfhead.field.audio_net import AudioNetConfig  # noqa: E402
from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel  # noqa: E402
from nerfhead.field.renderer import RayConditions, SamplingConfig, render_rays  # noqa: E402
from nerfhead.ops import backend  # noqa: E402
from nerfhead.ops.hashgrid import HashGridConfig, hash_encode, triplane_encode  # noqa: E402
from nerfhead.ops.occupancy import OccupancyGrid  # noqa: E402
from nerfhead.ops.raymarch import march_rays, ray_aabb  # noqa: E402
from nerfhead.ops.volrend import volume_render  # noqa: E402

POINTS = 262_144
RAYS = 4_096


def timed(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median wall time of ``fn`` in ms (one untimed warm-up run first)."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def compare(label: str, fn: Callable[[], object], repeats: int, device: str, ref_repeats: int | None = None) -> None:
    with backend.use_reference():
        ref = timed(fn, ref_repeats or repeats, device)
    with backend.use_reference(False):
        ours = timed(fn, repeats, device)
    print(f"{label:<44} ref {ref:9.1f} ms   ours {ours:8.1f} ms   {ref / ours:6.1f}x", flush=True)


def bench_hash(repeats: int, device: str) -> None:
    g = torch.Generator(device="cpu").manual_seed(0)
    tri = HashGridConfig(dim=2, levels=12, features_per_level=1, log2_table_size=14, base_resolution=64,
                         max_resolution=512)
    x3 = torch.rand(POINTS, 3, generator=g).to(device)
    tables = (torch.rand(3, tri.levels, 2 ** tri.log2_table_size, 1, generator=g) * 2e-4 - 1e-4).to(device)
    tables.requires_grad_(True)

    def tri_fwd_bwd():
        triplane_encode(x3, tables, tri).sum().backward()

    compare("hash2d triplane (3x12x1, 2^14) fwd+bwd", tri_fwd_bwd, repeats, device)
    with torch.no_grad():
        compare("hash2d triplane (3x12x1, 2^14) fwd", lambda: triplane_encode(x3, tables, tri), repeats, device)

    for dim in (2, 3):
        big = HashGridConfig(dim=dim, levels=16, features_per_level=2, log2_table_size=19, base_resolution=16,
                             max_resolution=2048 if dim == 2 else 512)
        x = torch.rand(POINTS, dim, generator=g).to(device)
        table = (torch.rand(16, 2 ** 19, 2, generator=g) * 2e-4 - 1e-4).to(device).requires_grad_(True)

        def fwd_bwd(x=x, table=table, big=big):
            hash_encode(x, table, big).sum().backward()

        compare(f"hash{dim}d large (16x2, 2^19) fwd+bwd", fwd_bwd, repeats, device, ref_repeats=3)


def head_rays(n: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of a 512x512 camera 0.6 m in front of a 0.3 m head box, through the box's image."""
    g = torch.Generator().manual_seed(seed)
    f = 900.0
    px = torch.rand(n, 2, generator=g) * 240 + 136  # the pixels that see the box
    d = torch.stack([(px[:, 0] - 256) / f, (px[:, 1] - 256) / f, torch.ones(n)], -1)
    d = d / d.norm(dim=-1, keepdim=True)
    o = torch.tensor([0.0, 0.0, -0.6]).expand(n, 3).contiguous()
    return o.to(device), d.to(device)


def ellipsoid_grid(res: int, device: str) -> OccupancyGrid:
    """A grid whose occupied cells form a head-like ellipsoid (~30 % of the box)."""
    aabb = torch.tensor([-0.15, -0.15, -0.15, 0.15, 0.15, 0.15])
    grid = OccupancyGrid(aabb, resolution=res).to(device)
    pts = grid.cell_points()
    r = (pts[:, 0] / 0.12) ** 2 + (pts[:, 1] / 0.14) ** 2 + (pts[:, 2] / 0.11) ** 2
    density = torch.where(r < 1, torch.full_like(r, 50.0), torch.zeros_like(r))
    grid.update(torch.arange(res ** 3, device=device), density, decay=0.0, threshold=10.0)
    return grid


def bench_march_render(repeats: int, device: str) -> None:
    grid = ellipsoid_grid(128, device)
    o, d = head_rays(RAYS, device)
    step = float(math.sqrt(3) * 0.3 / 64)
    jitter = torch.rand(RAYS, device=device)

    def march():
        t0, t1 = ray_aabb(o, d, grid.aabb)
        return march_rays(o, d, t0, t1, grid, step, 64, jitter=jitter)

    compare("ray_aabb + march (4096 rays, 128^3, 64 max)", march, repeats, device)
    with backend.use_reference(False):
        s = march()
    n = int(s.ray_indices.numel())
    sig = (torch.rand(n, device=device) * 100).requires_grad_(True)
    rgb = torch.rand(n, 3, device=device).requires_grad_(True)

    def render():
        r = volume_render(sig, rgb, s.t_starts, s.t_ends, s.packed_info)
        (r.rgb.sum() + r.depth.sum() + r.opacity.sum()).backward()

    compare(f"volume render fwd+bwd ({n / RAYS:.1f} samples/ray)", render, repeats, device)

    def both():  # the same jitter gives the same samples, so the same-sized values fit every call
        p = march()
        r = volume_render(sig, rgb, p.t_starts, p.t_ends, p.packed_info)
        (r.rgb.sum() + r.depth.sum() + r.opacity.sum()).backward()

    compare("march + volume render fwd+bwd (4096 rays)", both, repeats, device)

    dens = torch.rand(128 ** 3, device=device) * 20
    idx = torch.arange(128 ** 3, device=device)
    compare("occupancy grid update (128^3 cells)", lambda: grid.update(idx, dens, decay=0.95, threshold=10.0),
            repeats, device)


def bench_training_step(repeats: int, device: str) -> None:
    """One head-field training step: march, field, render, loss, backward, Adam."""
    torch.manual_seed(0)
    meta = ModelMeta(n_frames=100, feature_dim=91, window=16, aabb=[[-0.15, -0.15, -0.15], [0.15, 0.15, 0.15]],
                     feature_spec={}, image_size=[512, 512], camera={"fx": 900.0, "fy": 900.0, "cx": 256.0, "cy": 256.0})
    model = TalkingHeadModel(ModelConfig(audio=AudioNetConfig(), grid_resolution=128), meta).to(device)
    occupied = ellipsoid_grid(128, device)
    model.grid.load_state_dict(occupied.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-15)
    windows = torch.randn(100, 16, 91, device=device)
    o, d = head_rays(RAYS, device, seed=1)
    frames = torch.randint(0, 100, (RAYS,), device=device)
    target = torch.rand(RAYS, 3, device=device)
    sampling = SamplingConfig(samples_per_box=32, max_samples=32)
    stats = {}

    def step():
        cond = model.conditions(windows, frames, torch.zeros(RAYS, device=device), model.field.frame_codes(frames))
        out = render_rays(model.field, model.grid, o, d, cond, torch.zeros(RAYS, 3, device=device), sampling,
                          jitter=torch.rand(RAYS, device=device))
        loss = ((out.rgb - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        stats["samples"] = out.n_samples

    compare("head-field training step (4096 rays)", step, repeats, device, ref_repeats=3)
    print(f"{'':<44} ({stats['samples'] / RAYS:.1f} samples/ray after early termination)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--only", choices=["hash", "march", "step"], default=None)
    args = ap.parse_args()
    for fam in backend.FAMILIES:
        if backend.native(fam) is None:
            raise SystemExit(f"the '{fam}' kernels could not be built: nothing to compare")
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}"
          + (f" ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else f" ({cpu})"))
    if args.only in (None, "hash"):
        bench_hash(args.repeats, args.device)
    if args.only in (None, "march"):
        bench_march_render(args.repeats, args.device)
    if args.only in (None, "step"):
        bench_training_step(args.repeats, args.device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this benchmark: {peak:.0f} MiB"
          + (f"; peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if args.device == "cuda" else ""))


if __name__ == "__main__":
    main()
