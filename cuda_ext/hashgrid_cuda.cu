// Multiresolution hash encoding on the GPU: the same per-point functions (hashgrid.h) as the
// CPU loops. Inputs were checked and outputs allocated by hashgrid_cpu.cpp.
//
// forward and table backward: one thread per (point, unit); blockIdx.y is the unit, so a block
// reads one table slice (cache friendly) and the table gradient is accumulated with atomics.
// x backward: one thread per point, looping over the units and summing in registers.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "hashgrid.h"
#include "cuda_launch.h"

namespace nh {
namespace hashgrid {
namespace {

constexpr int kThreads = 256;

template <typename T, int D, int F>
__global__ void forward_kernel(Params p, int64_t n, const T* __restrict__ x, const T* __restrict__ table,
                               T* __restrict__ out) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  const int32_t u = blockIdx.y, g = u / p.levels, l = u % p.levels;
  encode_point<T, D, F>(x + i * p.in_dim, p.axes[g], p.res[l], p.dense[l] != 0, p.table_size - 1,
                        table + int64_t(u) * p.table_size * F, out + i * p.out_dim() + int64_t(u) * F);
}

template <typename T, int D, int F>
__global__ void backward_table_kernel(Params p, int64_t n, const T* __restrict__ x, const T* __restrict__ grad_out,
                                      T* __restrict__ grad_table) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  const int32_t u = blockIdx.y, g = u / p.levels, l = u % p.levels;
  encode_point_backward_table<T, D, F, true>(x + i * p.in_dim, p.axes[g], p.res[l], p.dense[l] != 0,
                                             p.table_size - 1, grad_out + i * p.out_dim() + int64_t(u) * F,
                                             grad_table + int64_t(u) * p.table_size * F);
}

template <typename T, int D, int F>
__global__ void backward_x_kernel(Params p, int64_t n, const T* __restrict__ x, const T* __restrict__ table,
                                  const T* __restrict__ grad_out, T* __restrict__ grad_x) {
  const int64_t i = nh::global_index();
  if (i >= n) return;
  T gx[kMaxInDim];  // in_dim <= kMaxInDim, checked on the host
#pragma unroll
  for (int a = 0; a < kMaxInDim; ++a) gx[a] = T(0);
  const T* xrow = x + i * p.in_dim;
  const T* go = grad_out + i * p.out_dim();
  for (int32_t u = 0; u < p.units(); ++u) {
    const int32_t g = u / p.levels, l = u % p.levels;
    encode_point_backward_x<T, D, F>(xrow, p.axes[g], p.res[l], p.dense[l] != 0, p.table_size - 1,
                                     table + int64_t(u) * p.table_size * F, go + int64_t(u) * F, gx);
  }
  for (int a = 0; a < p.in_dim; ++a) grad_x[i * p.in_dim + a] = gx[a];
}

dim3 unit_grid(const Params& p, int64_t n) { return dim3(nh::blocks_for(n, kThreads), static_cast<unsigned int>(p.units())); }

}  // namespace

void encode_forward_cuda(const Params& p, const at::Tensor& x, const at::Tensor& table, at::Tensor& out) {
  const int64_t n = x.size(0);
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hashgrid_forward_cuda", [&] {
    dispatch_dims(p, [&](auto d, auto f) {
      constexpr int D = decltype(d)::value, F = decltype(f)::value;
      forward_kernel<scalar_t, D, F><<<unit_grid(p, n), kThreads, 0, stream>>>(
          p, n, x.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), out.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void encode_backward_table_cuda(const Params& p, const at::Tensor& x, const at::Tensor& grad_out,
                                at::Tensor& grad_table) {
  const int64_t n = x.size(0);
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hashgrid_backward_table_cuda", [&] {
    dispatch_dims(p, [&](auto d, auto f) {
      constexpr int D = decltype(d)::value, F = decltype(f)::value;
      backward_table_kernel<scalar_t, D, F><<<unit_grid(p, n), kThreads, 0, stream>>>(
          p, n, x.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(), grad_table.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void encode_backward_x_cuda(const Params& p, const at::Tensor& x, const at::Tensor& table, const at::Tensor& grad_out,
                            at::Tensor& grad_x) {
  const int64_t n = x.size(0);
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hashgrid_backward_x_cuda", [&] {
    dispatch_dims(p, [&](auto d, auto f) {
      constexpr int D = decltype(d)::value, F = decltype(f)::value;
      backward_x_kernel<scalar_t, D, F><<<nh::blocks_for(n, kThreads), kThreads, 0, stream>>>(
          p, n, x.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
          grad_x.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace hashgrid
}  // namespace nh
