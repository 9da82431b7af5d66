// Packed volume rendering on the GPU: one thread per ray, running the same per-ray functions
// (volrend.h) as the CPU loops. Inputs were checked and outputs allocated by volrend_cpu.cpp.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "volrend.h"
#include "cuda_launch.h"

namespace nh {
namespace volrend {
namespace {

constexpr int kThreads = 128;

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}
template <typename T>
T* mut_ptr_or_null(at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
__global__ void transmittance_kernel(int64_t n_rays, const int64_t* __restrict__ info, const T* __restrict__ sigma,
                                     const T* __restrict__ t0, const T* __restrict__ t1, T* __restrict__ trans,
                                     T* __restrict__ alpha) {
  const int64_t r = nh::global_index();
  if (r >= n_rays) return;
  const int64_t o = info[2 * r], n = info[2 * r + 1];
  if (n <= 0) return;
  ray_transmittance<T>(n, sigma + o, t0 + o, t1 + o, trans + o, alpha + o);
}

template <typename T, int kC>
__global__ void render_forward_kernel(int64_t n_rays, int64_t C, const int64_t* __restrict__ info,
                                      const T* __restrict__ sigma, const T* __restrict__ rgb,
                                      const T* __restrict__ t0, const T* __restrict__ t1, T* __restrict__ weights,
                                      T* __restrict__ out_rgb, T* __restrict__ out_opacity,
                                      T* __restrict__ out_depth) {
  const int64_t r = nh::global_index();
  if (r >= n_rays) return;
  const int64_t n = info[2 * r + 1] > 0 ? info[2 * r + 1] : 0;
  const int64_t o = n > 0 ? info[2 * r] : 0;  // an empty ray's offset is never used
  ray_render_forward<T, kC>(n, C, sigma + o, t0 + o, t1 + o, rgb + o * C, weights + o, out_rgb + r * C,
                            out_opacity + r, out_depth + r);
}

template <typename T, int kC>
__global__ void render_backward_kernel(int64_t n_rays, int64_t C, const int64_t* __restrict__ info,
                                       const T* __restrict__ rgb, const T* __restrict__ t0,
                                       const T* __restrict__ t1, const T* __restrict__ weights,
                                       const T* __restrict__ g_rgb, const T* __restrict__ g_opacity,
                                       const T* __restrict__ g_depth, const T* __restrict__ g_weights,
                                       T* __restrict__ grad_sigma, T* __restrict__ grad_rgb) {
  const int64_t r = nh::global_index();
  if (r >= n_rays) return;
  const int64_t o = info[2 * r], n = info[2 * r + 1];
  if (n <= 0) return;
  const RayGrads<T> g{g_rgb ? g_rgb + r * C : nullptr, g_opacity ? g_opacity[r] : T(0),
                      g_depth ? g_depth[r] : T(0), g_weights ? g_weights + o : nullptr};
  ray_render_backward<T, kC>(n, C, t0 + o, t1 + o, rgb + o * C, weights + o, g,
                             grad_sigma ? grad_sigma + o : nullptr, grad_rgb ? grad_rgb + o * C : nullptr);
}

}  // namespace

void transmittance_cuda(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,
                        const at::Tensor& packed_info, at::Tensor& trans, at::Tensor& alphas) {
  const int64_t n_rays = packed_info.size(0);
  if (n_rays == 0 || sigmas.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(sigmas.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "volrend_transmittance_cuda", [&] {
    transmittance_kernel<scalar_t><<<nh::blocks_for(n_rays, kThreads), kThreads, 0, stream>>>(
        n_rays, packed_info.data_ptr<int64_t>(), sigmas.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
        t_ends.data_ptr<scalar_t>(), trans.data_ptr<scalar_t>(), alphas.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void render_forward_cuda(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& t_starts,
                         const at::Tensor& t_ends, const at::Tensor& packed_info, at::Tensor& rgb,
                         at::Tensor& opacity, at::Tensor& depth, at::Tensor& weights) {
  const int64_t n_rays = packed_info.size(0), C = rgbs.size(1);
  if (n_rays == 0) return;  // rays without samples are still written (zeros) by the kernel
  const c10::cuda::CUDAGuard guard(sigmas.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "volrend_render_forward_cuda", [&] {
    dispatch_channels(C, [&](auto channels) {
      constexpr int kC = decltype(channels)::value;
      render_forward_kernel<scalar_t, kC><<<nh::blocks_for(n_rays, kThreads), kThreads, 0, stream>>>(
          n_rays, C, packed_info.data_ptr<int64_t>(), sigmas.data_ptr<scalar_t>(), rgbs.data_ptr<scalar_t>(),
          t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
          rgb.data_ptr<scalar_t>(), opacity.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void render_backward_cuda(const at::Tensor& rgbs, const at::Tensor& t_starts, const at::Tensor& t_ends,
                          const at::Tensor& packed_info, const at::Tensor& weights, const at::Tensor& grad_rgb,
                          const at::Tensor& grad_opacity, const at::Tensor& grad_depth,
                          const at::Tensor& grad_weights, at::Tensor& grad_sigmas, at::Tensor& grad_rgbs) {
  const int64_t n_rays = packed_info.size(0), C = rgbs.size(1);
  if (n_rays == 0 || weights.numel() == 0) return;
  if (!grad_sigmas.defined() && !grad_rgbs.defined()) return;
  const c10::cuda::CUDAGuard guard(weights.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "volrend_render_backward_cuda", [&] {
    dispatch_channels(C, [&](auto channels) {
      constexpr int kC = decltype(channels)::value;
      render_backward_kernel<scalar_t, kC><<<nh::blocks_for(n_rays, kThreads), kThreads, 0, stream>>>(
          n_rays, C, packed_info.data_ptr<int64_t>(), rgbs.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
          t_ends.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(grad_rgb),
          ptr_or_null<scalar_t>(grad_opacity), ptr_or_null<scalar_t>(grad_depth),
          ptr_or_null<scalar_t>(grad_weights), mut_ptr_or_null<scalar_t>(grad_sigmas),
          mut_ptr_or_null<scalar_t>(grad_rgbs));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace volrend
}  // namespace nh
