// CUDA kernels of the 'raymarch' family. Each kernel calls the NH_HD functions of raymarch.h,
// so the GPU does exactly the per-element work of the CPU loops (raymarch_cpu.cpp). Inputs are
// validated in Python before they get here; all tensors are on the same CUDA device.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <vector>

#include "raymarch.h"
#include "cuda_launch.h"
#include "raymarch_grid.h"

namespace nh {
namespace raymarch {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void ray_aabb_kernel(int64_t n, const T* __restrict__ o, const T* __restrict__ d,
                                const T* __restrict__ box, T near, T* __restrict__ t_near, T* __restrict__ t_far) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  ray_aabb(o + 3 * i, d + 3 * i, box, near, t_near + i, t_far + i);
}

// Pass 1: samples per ray into info[2i + 1], first sampled candidate into k_first[i].
template <typename T>
__global__ void march_count_kernel(int64_t n, const T* __restrict__ o, const T* __restrict__ d,
                                   const T* __restrict__ tn, const T* __restrict__ tf, const T* __restrict__ jitter,
                                   T step, Grid<T> g, int64_t max_samples, int64_t* __restrict__ info,
                                   int64_t* __restrict__ k_first) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  const Ray<T> r = load_ray(o, d, tn, tf, jitter, step, i);
  int64_t first = 0;
  info[2 * i + 1] = march_ray<T>(r, g, 0, max_samples, i, &first, nullptr, nullptr, nullptr);
  k_first[i] = first;
}

// Pass 2: the same march from each ray's first sample, writing at the ray's offset.
template <typename T>
__global__ void march_write_kernel(int64_t n, const T* __restrict__ o, const T* __restrict__ d,
                                   const T* __restrict__ tn, const T* __restrict__ tf, const T* __restrict__ jitter,
                                   T step, Grid<T> g, const int64_t* __restrict__ info,
                                   const int64_t* __restrict__ k_first, T* __restrict__ t_starts,
                                   T* __restrict__ t_ends, int64_t* __restrict__ ray_indices) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  const int64_t count = info[2 * i + 1];
  if (count == 0) return;
  const int64_t off = info[2 * i];
  const Ray<T> r = load_ray(o, d, tn, tf, jitter, step, i);
  march_ray<T>(r, g, k_first[i], count, i, nullptr, t_starts + off, t_ends + off, ray_indices + off);
}

__global__ void grid_scatter_kernel(int64_t m, float* __restrict__ density, const int64_t* __restrict__ indices,
                                    const float* __restrict__ values, float decay) {
  const int64_t i = nh::global_index();
  if (i >= m) return;
  update_cell(density, indices[i], values[i], decay);
}

// Threshold from the device-side sum (no host synchronisation), then one byte per thread.
__global__ void grid_pack_kernel(int64_t n_bytes, const float* __restrict__ density, uint8_t* __restrict__ bits,
                                 const double* __restrict__ sum, int64_t n_cells, float cap,
                                 float* __restrict__ threshold_out) {
  const int64_t b = nh::global_index();
  if (b >= n_bytes) return;
  const float thr = grid_threshold(*sum, n_cells, cap);
  if (b == 0) *threshold_out = thr;
  bits[b] = pack_byte(density, b, thr);
}

__global__ void block_flags_kernel(int64_t n_blocks, const uint8_t* __restrict__ bits, int32_t res,
                                   uint8_t* __restrict__ blocks) {
  const int64_t b = nh::global_index();
  if (b >= n_blocks) return;
  blocks[b] = block_flag(bits, res, b);
}

template <typename T>
__global__ void occupied_kernel(int64_t n, const T* __restrict__ points, Grid<T> g, bool* __restrict__ out) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  out[i] = occupied_at(g, points + 3 * i);
}

}  // namespace

std::vector<at::Tensor> ray_aabb_cuda(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& aabb,
                                      double near) {
  const at::cuda::OptionalCUDAGuard guard(origins.device());
  const int64_t n = origins.size(0);
  at::Tensor t_near = at::empty({n}, origins.options());
  at::Tensor t_far = at::empty({n}, origins.options());
  if (n == 0) return {t_near, t_far};
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ray_aabb_cuda", [&] {
    ray_aabb_kernel<scalar_t><<<nh::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        n, origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), aabb.data_ptr<scalar_t>(),
        static_cast<scalar_t>(near), t_near.data_ptr<scalar_t>(), t_far.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {t_near, t_far};
}

std::vector<at::Tensor> march_rays_cuda(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& t_near,
                                        const at::Tensor& t_far, const at::Tensor& jitter, const at::Tensor& bitfield,
                                        int64_t res, const std::vector<double>& geometry, double step,
                                        int64_t max_samples) {
  const at::cuda::OptionalCUDAGuard guard(origins.device());
  const int64_t n = origins.size(0);
  const auto long_opts = origins.options().dtype(at::kLong);
  at::Tensor packed_info = at::zeros({n, 2}, long_opts);
  if (n == 0) {
    return {at::empty({0}, long_opts), at::empty({0}, origins.options()), at::empty({0}, origins.options()),
            packed_info};
  }
  at::Tensor k_first = at::empty({n}, long_opts);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  // Block flags (which kBlock^3 blocks hold an occupied cell), for skipping empty blocks at once.
  at::Tensor blocks;
  if (res % kBlock == 0) {
    const int64_t nb = res / kBlock;
    blocks = at::empty({nb * nb * nb}, bitfield.options());
    block_flags_kernel<<<nh::blocks_for(blocks.numel(), kThreads), kThreads, 0, stream>>>(
        blocks.numel(), bitfield.data_ptr<uint8_t>(), static_cast<int32_t>(res), blocks.data_ptr<uint8_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_count_cuda", [&] {
    const scalar_t* jp = jitter.defined() ? jitter.data_ptr<scalar_t>() : nullptr;
    march_count_kernel<scalar_t><<<nh::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        n, origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), t_near.data_ptr<scalar_t>(),
        t_far.data_ptr<scalar_t>(), jp, static_cast<scalar_t>(step),
        make_grid<scalar_t>(bitfield, blocks, res, geometry), max_samples, packed_info.data_ptr<int64_t>(),
        k_first.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Exclusive scan of the counts into the offsets column; the total sizes the outputs (one sync).
  const at::Tensor counts = packed_info.select(1, 1);
  const at::Tensor ends = at::cumsum(counts, 0);
  packed_info.select(1, 0).copy_(ends - counts);
  const int64_t total = ends[n - 1].item<int64_t>();
  at::Tensor ray_indices = at::empty({total}, long_opts);
  at::Tensor t_starts = at::empty({total}, origins.options());
  at::Tensor t_ends = at::empty({total}, origins.options());
  if (total == 0) return {ray_indices, t_starts, t_ends, packed_info};
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_write_cuda", [&] {
    const scalar_t* jp = jitter.defined() ? jitter.data_ptr<scalar_t>() : nullptr;
    march_write_kernel<scalar_t><<<nh::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        n, origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), t_near.data_ptr<scalar_t>(),
        t_far.data_ptr<scalar_t>(), jp, static_cast<scalar_t>(step),
        make_grid<scalar_t>(bitfield, blocks, res, geometry), packed_info.data_ptr<int64_t>(),
        k_first.data_ptr<int64_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(),
        ray_indices.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {ray_indices, t_starts, t_ends, packed_info};
}

at::Tensor grid_update_cuda(at::Tensor density, at::Tensor bitfield, const at::Tensor& indices,
                            const at::Tensor& values, double decay, double threshold) {
  const at::cuda::OptionalCUDAGuard guard(density.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t m = indices.numel();
  if (m > 0) {
    grid_scatter_kernel<<<nh::blocks_for(m, kThreads), kThreads, 0, stream>>>(m, density.data_ptr<float>(),
                                                                 indices.data_ptr<int64_t>(),
                                                                 values.data_ptr<float>(), static_cast<float>(decay));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const at::Tensor sum = at::sum(density, at::kDouble);  // on the device, ordered after the scatter
  at::Tensor thr = at::empty({}, density.options());
  const int64_t n_bytes = bitfield.numel();
  grid_pack_kernel<<<nh::blocks_for(n_bytes, kThreads), kThreads, 0, stream>>>(
      n_bytes, density.data_ptr<float>(), bitfield.data_ptr<uint8_t>(), sum.data_ptr<double>(), density.numel(),
      static_cast<float>(threshold), thr.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return thr;
}

at::Tensor occupied_cuda(const at::Tensor& points, const at::Tensor& bitfield, int64_t res,
                         const std::vector<double>& geometry) {
  const at::cuda::OptionalCUDAGuard guard(points.device());
  const int64_t n = points.size(0);
  at::Tensor out = at::empty({n}, points.options().dtype(at::kBool));
  if (n == 0) return out;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "occupied_cuda", [&] {
    occupied_kernel<scalar_t><<<nh::blocks_for(n, kThreads), kThreads, 0, stream>>>(
        n, points.data_ptr<scalar_t>(), make_grid<scalar_t>(bitfield, at::Tensor(), res, geometry),
        out.data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace raymarch
}  // namespace nh
