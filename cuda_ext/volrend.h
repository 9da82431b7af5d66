// Packed volume rendering: the per-ray work, written once for the CPU and the GPU.
//
// Samples of N rays lie in one flat array of S samples, sorted by ray then t; ray r owns the
// samples [offset_r, offset_r + count_r) (packed_info[r] = {offset_r, count_r}). For sample i
// of a ray, with optical depth tau_i = sigma_i * (t_end_i - t_start_i):
//   alpha_i = 1 - exp(-tau_i)                 (computed as -expm1(-tau_i): exact for tiny tau)
//   T_i     = prod_{j<i} (1 - alpha_j)        (transmittance before the sample, T_0 = 1)
//   w_i     = T_i alpha_i
// T is carried as T_{i+1} = T_i - w_i with w_i = T_i alpha_i: never negative (w_i <= T_i in
// float too), exactly 0 behind a sample whose alpha rounds to 1 (a huge tau), never inf or NaN;
// a long ray underflows to 0. The backward rebuilds the same T bit for bit from the weights
// the forward returned (T is not stored).
//
// Backward. Every upstream gradient reaches the samples through the weights: with
//   v_i = g_rgb . c_i + g_opacity + g_depth * mid_i + g_w_i     (mid_i = (t_start_i + t_end_i) / 2)
// the loss is L = sum_i w_i v_i (+ terms without sigma), so
//   dL/dc_i   = w_i g_rgb
//   dL/dtau_i = T_{i+1} v_i - R_i,     R_i = sum_{j>i} w_j v_j
// (raising tau_i raises w_i by T_{i+1} per unit and dims every later sample by w_j), and
// dL/dsigma_i = (t_end_i - t_start_i) dL/dtau_i. Per ray: one pass parks v_i in the grad_sigma
// output and sums total = sum_j w_j v_j; a second rebuilds T_{i+1} and gets R_i = total - prefix_i.
// Both sums run in double, so their difference is exact to ~1e-16 of the total, and exactly 0
// behind an opaque sample (the remaining w_j are exact zeros). Forward walks only: a reverse
// walk (the textbook suffix sum) defeats the CPU's prefetchers and was 3x slower at 64 samples
// per ray. No exp, and no storage beyond the forward's inputs and weights.
//
// Layout of the work: the forward ops first compute em_i = expm1(-tau_i) of their samples into
// an output array (ray_em: the only transcendental, in a loop without loop-carried state, which
// the CPU vectorises), then walk each ray carrying T (the *_scan functions, which read em from
// that array and overwrite it). The GPU does both per ray in one thread (ray_transmittance,
// ray_render_forward); the CPU runs ray_em over the samples of a block of rays at once, then
// the scans.
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.h"

namespace nh {
namespace volrend {

// exp(x) - 1 in float without a libm call, so that loops over samples vectorise on the CPU
// (glibc's expm1f is a scalar call of ~10 ns). Cody-Waite reduction x = k ln2 + r with
// |r| <= ln2/2, a degree-7 Taylor polynomial for expm1(r) (truncation < 2e-8 relative), and
// expm1(x) = 2^k expm1(r) + (2^k - 1): within 1.5 ulp of expm1 (measured), and for
// |x| < ln2/2 (k = 0) relative precision is kept, so tiny optical depths give exact alphas.
// x is clamped to [-87, 88] (expm1(-87) = -1 in float; 2^k stays a normal number); NaN stays NaN.
NH_HD float expm1_poly(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float kf = (x * 1.44269504088896341f + magic) - magic;
  const float r = (x - kf * 0.693359375f) - kf * -2.12194440e-4f;
  const float p =
      r + r * r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040))))));
  const int32_t bits = (static_cast<int32_t>(kf) + 127) << 23;
  float two_k;
  std::memcpy(&two_k, &bits, sizeof(float));
  return two_k * p + (two_k - 1.0f);
}

NH_HD float expm1_(float x) { return expm1_poly(x); }
NH_HD double expm1_(double x) { return ::expm1(x); }

// em = exp(-tau) - 1 of one interval, tau = sigma (t_end - t_start): alpha = -em, and the
// fraction of light the interval lets through is keep = 1 - alpha = 1 + em (both in [0, 1]
// for sigma, dt >= 0; keep is exactly 0 for a huge tau).
template <typename T>
NH_HD T interval_em(T sigma, T t_start, T t_end) {
  return expm1_(-sigma * (t_end - t_start));
}

// em of n consecutive samples into out.
template <typename T>
NH_HD void ray_em(int64_t n, const T* sigma, const T* t_start, const T* t_end, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = interval_em(sigma[i], t_start[i], t_end[i]);
}

// a * b rounded to T, never fused with a following add into an FMA, so that the forward and
// the backward, which rebuild T_{i+1} = T_i - w_i from the stored w_i, agree bit for bit. (On
// the host, volrend_cpu.cpp compiles with fp-contract=off.)
NH_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
NH_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// Channel count: kC > 0 is known at compile time (unrolled, accumulated in registers);
// kC == 0 takes the runtime count c_rt.
template <int kC>
NH_HD int64_t channels(int64_t c_rt) {
  return kC > 0 ? int64_t(kC) : c_rt;
}

// ---------------------------------------------------------------------------- transmittance
// One ray of n samples (pointers at its first sample). On entry alpha holds em (ray_em); on
// exit trans = T before each sample and alpha = alpha.
template <typename T>
NH_HD void transmittance_scan(int64_t n, T* trans, T* alpha) {
  T tr = T(1);
  for (int64_t i = 0; i < n; ++i) {
    const T a = T(0) - alpha[i];  // -em, but +0 rather than -0 for an empty interval
    trans[i] = tr;
    alpha[i] = a;
    tr -= mul_rn(tr, a);  // as in render_forward_scan, bit for bit
  }
}

template <typename T>
NH_HD void ray_transmittance(int64_t n, const T* sigma, const T* t_start, const T* t_end, T* trans, T* alpha) {
  ray_em(n, sigma, t_start, t_end, alpha);
  transmittance_scan(n, trans, alpha);
}

// ---------------------------------------------------------------------------- forward
// One ray: on entry weights holds em; on exit the weights, and the ray's rgb (C), opacity and depth.
template <typename T, int kC>
NH_HD void render_forward_scan(int64_t n, int64_t c_rt, const T* t_start, const T* t_end, const T* rgb, T* weights,
                               T* rgb_out, T* opacity_out, T* depth_out) {
  const int64_t C = channels<kC>(c_rt);
  T acc[kC > 0 ? kC : 1] = {};  // compile-time C: registers; runtime C: rgb_out itself
  if (kC == 0)
    for (int64_t c = 0; c < C; ++c) rgb_out[c] = T(0);
  T tr = T(1), opacity = T(0), depth = T(0);
  for (int64_t i = 0; i < n; ++i) {
    const T w = mul_rn(tr, T(0) - weights[i]);  // T_i alpha_i (alpha = -em, +0 rather than -0)
    weights[i] = w;
    opacity += w;
    depth += w * (T(0.5) * (t_start[i] + t_end[i]));
    const T* c_i = rgb + i * C;
    if (kC > 0) {
      for (int c = 0; c < kC; ++c) acc[c] += w * c_i[c];
    } else {
      for (int64_t c = 0; c < C; ++c) rgb_out[c] += w * c_i[c];
    }
    tr -= w;
  }
  if (kC > 0)
    for (int c = 0; c < kC; ++c) rgb_out[c] = acc[c];
  *opacity_out = opacity;
  *depth_out = depth;
}

template <typename T, int kC>
NH_HD void ray_render_forward(int64_t n, int64_t c_rt, const T* sigma, const T* t_start, const T* t_end,
                              const T* rgb, T* weights, T* rgb_out, T* opacity_out, T* depth_out) {
  ray_em(n, sigma, t_start, t_end, weights);
  render_forward_scan<T, kC>(n, c_rt, t_start, t_end, rgb, weights, rgb_out, opacity_out, depth_out);
}

// ---------------------------------------------------------------------------- backward
// Upstream gradients of one ray. Absent ones are nullptr (per-sample/channel arrays) or 0.
template <typename T>
struct RayGrads {
  const T* rgb;      // (C) dL/d rgb of the ray, or nullptr
  T opacity;         // dL/d opacity of the ray (0 when absent)
  T depth;           // dL/d depth of the ray (0 when absent)
  const T* weights;  // (n) dL/d w of the ray's samples, or nullptr
};

// v_i = g_rgb . c_i + g_opacity + g_depth * mid_i + g_w_i: the upstream gradient that reaches
// sample i through its weight (dL/dw_i in total).
template <typename T, int kC>
NH_HD T weight_grad(int64_t i, int64_t C, const RayGrads<T>& g, const T* rgb, const T* t_start, const T* t_end) {
  T v = g.opacity + g.depth * (T(0.5) * (t_start[i] + t_end[i]));
  if (g.rgb != nullptr) {
    const T* c_i = rgb + i * C;
    for (int64_t c = 0; c < channels<kC>(C); ++c) v += g.rgb[c] * c_i[c];
  }
  if (g.weights != nullptr) v += g.weights[i];
  return v;
}

// dL/d rgb_i = w_i g_rgb for one sample (zeros without an rgb gradient).
template <typename T, int kC>
NH_HD void rgb_grad(int64_t i, int64_t C, const RayGrads<T>& g, const T* weights, T* grad_rgb) {
  T* gc = grad_rgb + i * C;
  const T w = weights[i];
  for (int64_t c = 0; c < channels<kC>(C); ++c) gc[c] = g.rgb != nullptr ? w * g.rgb[c] : T(0);
}

// One ray. weights are those render_forward_scan wrote for the same inputs. grad_sigma (n)
// and grad_rgb (n * C) may be nullptr (not wanted).
template <typename T, int kC>
NH_HD void ray_render_backward(int64_t n, int64_t c_rt, const T* t_start, const T* t_end, const T* rgb,
                               const T* weights, const RayGrads<T>& g, T* grad_sigma, T* grad_rgb) {
  const int64_t C = channels<kC>(c_rt);
  if (grad_sigma == nullptr) {
    if (grad_rgb != nullptr)
      for (int64_t i = 0; i < n; ++i) rgb_grad<T, kC>(i, C, g, weights, grad_rgb);
    return;
  }
  // Pass 1: v_i, parked in grad_sigma[i], and the ray's total sum_j w_j v_j.
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const T v = weight_grad<T, kC>(i, C, g, rgb, t_start, t_end);
    grad_sigma[i] = v;
    total += double(weights[i]) * double(v);
  }
  // Pass 2: T_{i+1} = T_i - w_i as in the forward, and
  // dL/dsigma_i = dt_i (T_{i+1} v_i - R_i) with R_i = total - sum_{j<=i} w_j v_j.
  T tr = T(1);
  double prefix = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const T v = grad_sigma[i], w = weights[i];
    tr -= w;
    prefix += double(w) * double(v);
    grad_sigma[i] = (t_end[i] - t_start[i]) * (tr * v - T(total - prefix));
    if (grad_rgb != nullptr) rgb_grad<T, kC>(i, C, g, weights, grad_rgb);
  }
}

// Calls f(std::integral_constant<int, kC>{}) with the compile-time channel count used for C
// (0 = runtime count). Host only: picks the template instance to run.
template <typename F>
inline void dispatch_channels(int64_t C, F&& f) {
  switch (C) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    default: f(std::integral_constant<int, 0>{}); break;
  }
}

}  // namespace volrend
}  // namespace nh

#ifdef NERFHEAD_WITH_CUDA
#include <ATen/core/Tensor.h>

namespace nh {
namespace volrend {
// Defined in volrend_cuda.cu. Inputs are checked by the host entry points; outputs are
// allocated there (trans/alphas/weights (S), rgb (N, C), opacity/depth (N)). Optional
// tensors may be undefined (absent upstream gradient / gradient not wanted).
void transmittance_cuda(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,
                        const at::Tensor& packed_info, at::Tensor& trans, at::Tensor& alphas);
void render_forward_cuda(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& t_starts,
                         const at::Tensor& t_ends, const at::Tensor& packed_info, at::Tensor& rgb,
                         at::Tensor& opacity, at::Tensor& depth, at::Tensor& weights);
void render_backward_cuda(const at::Tensor& rgbs, const at::Tensor& t_starts, const at::Tensor& t_ends,
                          const at::Tensor& packed_info, const at::Tensor& weights,
                          const at::Tensor& grad_rgb, const at::Tensor& grad_opacity,
                          const at::Tensor& grad_depth, const at::Tensor& grad_weights, at::Tensor& grad_sigmas,
                          at::Tensor& grad_rgbs);
}  // namespace volrend
}  // namespace nh
#endif
