// Packed volume rendering: host entry points (Python binding) and the CPU loops.
//
// The per-ray work lives in volrend.h; here the CPU runs it over rays with at::parallel_for
// (torch's intra-op pool), and CUDA tensors go to volrend_cuda.cu. nerfhead/ops/volrend.py
// validates every input (dtype, device, shape, contiguity, packed_info consistency) before
// calling in; the checks below only guard against direct misuse.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

// The rest of this file, volrend.h included, is compiled (all of it alike, so that the
// per-sample functions inline into the loops) without two GCC defaults:
// - -ftrapping-math keeps float compares (the clamp in expm1_poly) out of vectorised loops;
//   nothing here reads FP exception flags.
// - FMA contraction (-ffp-contract=fast, where the target has FMA) would let the forward fuse
//   T_i - T_i alpha_i while the backward subtracts the stored w_i: they must agree bit for bit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "volrend.h"

// The loops over a block of rays are compiled twice on x86-64 Linux/GCC, for AVX2 and for the
// baseline, and the loader picks one for the CPU at hand (ifunc): ray_em runs 8 floats at once
// instead of 4 (about 2x faster). GCC's clones cannot pass exceptions on: nothing in them throws.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NH_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NH_CPU_CLONES
#endif

namespace {

using nh::volrend::RayGrads;

// The checks below throw std::invalid_argument (Python: ValueError) rather than c10::Error
// (TORCH_CHECK): on one CUDA image we ran on (torch 2.11, GCC 13) any c10::Error thrown by an
// extension crashed the interpreter, while standard exceptions passed through.
template <typename... Args>
void require(bool ok, const Args&... message) {
  if (!ok) throw std::invalid_argument(c10::str("volrend: ", message...));
}

// Every ray's samples within [0, S), so that a malformed packed_info (Python checks it fully)
// can never make a kernel read or write out of range. Runs before the loops: they may not throw.
void check_ray_ranges(const at::Tensor& packed_info, int64_t n_samples) {
  const int64_t* info = packed_info.data_ptr<int64_t>();
  for (int64_t r = 0; r < packed_info.size(0); ++r) {
    const int64_t offset = info[2 * r], count = info[2 * r + 1];
    require(count >= 0 && (count == 0 || (offset >= 0 && offset + count <= n_samples)),
            "packed_info row ", r, " = [", offset, ", ", count, "] is out of range for ", n_samples, " samples");
  }
}

// like: the (S,) float tensor that sets dtype and device (sigmas, or the weights in backward).
void check_float(const at::Tensor& t, const at::Tensor& like, const char* name, int64_t dim) {
  require(t.defined(), name, " is undefined");
  require(t.dim() == dim, name, " must have ", dim, " dimension(s)");
  require(t.scalar_type() == like.scalar_type(), name, " has another dtype than the samples");
  require(t.device() == like.device(), name, " is on another device than the samples");
  require(t.is_contiguous(), name, " must be contiguous");
}

void check_samples(const at::Tensor& like, const char* name, const at::Tensor& t_starts, const at::Tensor& t_ends,
                   const at::Tensor& packed_info) {
  require(like.dim() == 1 && like.is_contiguous(), name, " must be a contiguous (S,) tensor");
  require(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble, name, " must be float32 or float64");
  check_float(t_starts, like, "t_starts", 1);
  check_float(t_ends, like, "t_ends", 1);
  require(t_starts.size(0) == like.size(0) && t_ends.size(0) == like.size(0),
          "t_starts and t_ends must have S entries like ", name);
  require(packed_info.dim() == 2 && packed_info.size(1) == 2 && packed_info.is_contiguous() &&
              packed_info.scalar_type() == at::kLong && packed_info.device() == like.device(),
          "packed_info must be a contiguous int64 (N, 2) tensor on the samples' device");
  if (like.is_cpu()) check_ray_ranges(packed_info, like.size(0));
}

void check_rgbs(const at::Tensor& rgbs, const at::Tensor& like) {
  check_float(rgbs, like, "rgbs", 2);
  require(rgbs.size(0) == like.size(0) && rgbs.size(1) >= 1, "rgbs must be (S, C) with C >= 1");
}

// A defined, contiguous gradient of the given shape and dtype, or an undefined tensor.
at::Tensor optional_grad(const c10::optional<at::Tensor>& g, const at::Tensor& like, at::IntArrayRef shape,
                         const char* name) {
  if (!g.has_value() || !g->defined()) return at::Tensor();
  require(g->sizes() == shape, name, " has shape ", g->sizes(), ", expected ", shape);
  require(g->device() == like.device(), name, " is on another device than the samples");
  return g->to(like.scalar_type()).contiguous();
}

[[noreturn]] void no_cuda() {
  throw std::runtime_error("volrend: these kernels were built without CUDA; use the PyTorch reference "
                           "(NERFHEAD_OPS=ref) or rebuild with a CUDA build of torch and nvcc");
}

// Rays per parallel_for task: enough samples per task (~4k) to amortise the scheduling.
int64_t grain_size(int64_t n_rays, int64_t n_samples) {
  const int64_t per_ray = n_rays > 0 ? n_samples / n_rays + 1 : 1;
  return std::max<int64_t>(1, 4096 / per_ray);
}

struct Ray {
  int64_t offset, count;
};

inline Ray ray_at(const int64_t* info, int64_t r) {
  const Ray ray{info[2 * r], info[2 * r + 1]};
  return ray.count > 0 ? ray : Ray{0, 0};  // an empty ray's offset is never used
}

// The samples [first, end) of rays [begin, end): contiguous in the packed layout (checked in
// Python); with a layout that is not, em is computed for samples in between as well (harmless).
struct SampleRange {
  int64_t first, end;
};

inline SampleRange block_samples(const int64_t* info, int64_t begin, int64_t end) {
  SampleRange range{INT64_MAX, 0};
  for (int64_t r = begin; r < end; ++r) {
    const Ray ray = ray_at(info, r);
    if (ray.count == 0) continue;
    range.first = std::min(range.first, ray.offset);
    range.end = std::max(range.end, ray.offset + ray.count);
  }
  return range.first < range.end ? range : SampleRange{0, 0};
}

// em of the block's samples in one long, vectorised loop (faster than runs of ~4k samples that
// stay in cache: measured, 262k rays x 16).
template <typename T>
void block_em(const SampleRange& s, const T* sigma, const T* t0, const T* t1, T* out) {
  nh::volrend::ray_em<T>(s.end - s.first, sigma + s.first, t0 + s.first, t1 + s.first, out + s.first);
}

template <typename T>
NH_CPU_CLONES void transmittance_block(int64_t begin, int64_t end, const int64_t* info,
                                       const T* sigma, const T* t0, const T* t1, T* trans, T* alpha) {
  block_em(block_samples(info, begin, end), sigma, t0, t1, alpha);
  for (int64_t r = begin; r < end; ++r) {
    const Ray ray = ray_at(info, r);
    nh::volrend::transmittance_scan<T>(ray.count, trans + ray.offset, alpha + ray.offset);
  }
}

template <typename T, int kC>
NH_CPU_CLONES void forward_block(int64_t begin, int64_t end, int64_t C, const int64_t* info,
                                 const T* sigma, const T* rgb, const T* t0, const T* t1, T* weights, T* out_rgb,
                                 T* out_opacity, T* out_depth) {
  block_em(block_samples(info, begin, end), sigma, t0, t1, weights);
  for (int64_t r = begin; r < end; ++r) {
    const Ray ray = ray_at(info, r);
    const int64_t o = ray.offset;
    nh::volrend::render_forward_scan<T, kC>(ray.count, C, t0 + o, t1 + o, rgb + o * C, weights + o, out_rgb + r * C,
                                            out_opacity + r, out_depth + r);
  }
}

// Upstream gradients of the whole batch; absent ones are nullptr.
template <typename T>
struct Grads {
  const T* rgb;
  const T* opacity;
  const T* depth;
  const T* weights;
};

template <typename T, int kC>
NH_CPU_CLONES void backward_block(int64_t begin, int64_t end, int64_t C, const int64_t* info, const T* rgb,
                                  const T* t0, const T* t1, const T* weights, Grads<T> g, T* grad_sigma,
                                  T* grad_rgb) {
  for (int64_t r = begin; r < end; ++r) {
    const Ray ray = ray_at(info, r);
    const int64_t o = ray.offset;
    const RayGrads<T> ray_grads{g.rgb ? g.rgb + r * C : nullptr, g.opacity ? g.opacity[r] : T(0),
                                g.depth ? g.depth[r] : T(0), g.weights ? g.weights + o : nullptr};
    nh::volrend::ray_render_backward<T, kC>(ray.count, C, t0 + o, t1 + o, rgb + o * C, weights + o, ray_grads,
                                            grad_sigma ? grad_sigma + o : nullptr,
                                            grad_rgb ? grad_rgb + o * C : nullptr);
  }
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
void transmittance_cpu(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,
                       const at::Tensor& packed_info, at::Tensor& trans, at::Tensor& alphas) {
  const int64_t n_rays = packed_info.size(0), n_samples = sigmas.size(0);
  const int64_t* info = packed_info.data_ptr<int64_t>();
  const T* sigma = sigmas.data_ptr<T>();
  const T* t0 = t_starts.data_ptr<T>();
  const T* t1 = t_ends.data_ptr<T>();
  T* tr = trans.data_ptr<T>();
  T* al = alphas.data_ptr<T>();
  at::parallel_for(0, n_rays, grain_size(n_rays, n_samples), [&](int64_t begin, int64_t end) {
    transmittance_block<T>(begin, end, info, sigma, t0, t1, tr, al);
  });
}

template <typename T, int kC>
void render_forward_cpu(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& t_starts,
                        const at::Tensor& t_ends, const at::Tensor& packed_info, at::Tensor& rgb,
                        at::Tensor& opacity, at::Tensor& depth, at::Tensor& weights) {
  const int64_t n_rays = packed_info.size(0), n_samples = sigmas.size(0), C = rgbs.size(1);
  const int64_t* info = packed_info.data_ptr<int64_t>();
  const T* sigma = sigmas.data_ptr<T>();
  const T* color = rgbs.data_ptr<T>();
  const T* t0 = t_starts.data_ptr<T>();
  const T* t1 = t_ends.data_ptr<T>();
  T* w = weights.data_ptr<T>();
  T* out_rgb = rgb.data_ptr<T>();
  T* out_opacity = opacity.data_ptr<T>();
  T* out_depth = depth.data_ptr<T>();
  at::parallel_for(0, n_rays, grain_size(n_rays, n_samples), [&](int64_t begin, int64_t end) {
    forward_block<T, kC>(begin, end, C, info, sigma, color, t0, t1, w, out_rgb, out_opacity, out_depth);
  });
}

template <typename T, int kC>
void render_backward_cpu(const at::Tensor& rgbs, const at::Tensor& t_starts, const at::Tensor& t_ends,
                         const at::Tensor& packed_info, const at::Tensor& weights, const at::Tensor& grad_rgb,
                         const at::Tensor& grad_opacity, const at::Tensor& grad_depth, const at::Tensor& grad_weights,
                         at::Tensor& grad_sigmas, at::Tensor& grad_rgbs) {
  const int64_t n_rays = packed_info.size(0), n_samples = weights.size(0), C = rgbs.size(1);
  const int64_t* info = packed_info.data_ptr<int64_t>();
  const T* color = rgbs.data_ptr<T>();
  const T* t0 = t_starts.data_ptr<T>();
  const T* t1 = t_ends.data_ptr<T>();
  const T* w = weights.data_ptr<T>();
  const Grads<T> g{ptr_or_null<T>(grad_rgb), ptr_or_null<T>(grad_opacity), ptr_or_null<T>(grad_depth),
                   ptr_or_null<T>(grad_weights)};
  T* out_sigma = grad_sigmas.defined() ? grad_sigmas.data_ptr<T>() : nullptr;
  T* out_rgb = grad_rgbs.defined() ? grad_rgbs.data_ptr<T>() : nullptr;
  at::parallel_for(0, n_rays, grain_size(n_rays, n_samples), [&](int64_t begin, int64_t end) {
    backward_block<T, kC>(begin, end, C, info, color, t0, t1, w, g, out_sigma, out_rgb);
  });
}

}  // namespace

// (trans, alphas), each (S,): transmittance before each sample and its alpha. No autograd.
std::vector<at::Tensor> transmittance(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,
                                      const at::Tensor& packed_info) {
  check_samples(sigmas, "sigmas", t_starts, t_ends, packed_info);
  at::Tensor trans = at::empty_like(sigmas);
  at::Tensor alphas = at::empty_like(sigmas);
  if (sigmas.is_cuda()) {
#ifdef NERFHEAD_WITH_CUDA
    nh::volrend::transmittance_cuda(sigmas, t_starts, t_ends, packed_info, trans, alphas);
    return {trans, alphas};
#else
    no_cuda();
#endif
  }
  require(sigmas.is_cpu(), "unsupported device ", sigmas.device());
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "volrend_transmittance", [&] {
    transmittance_cpu<scalar_t>(sigmas, t_starts, t_ends, packed_info, trans, alphas);
  });
  return {trans, alphas};
}

// (rgb (N, C), opacity (N,), depth (N,), weights (S,)).
std::vector<at::Tensor> render_forward(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& t_starts,
                                       const at::Tensor& t_ends, const at::Tensor& packed_info) {
  check_samples(sigmas, "sigmas", t_starts, t_ends, packed_info);
  check_rgbs(rgbs, sigmas);
  const int64_t n_rays = packed_info.size(0), C = rgbs.size(1);
  at::Tensor rgb = at::empty({n_rays, C}, sigmas.options());
  at::Tensor opacity = at::empty({n_rays}, sigmas.options());
  at::Tensor depth = at::empty({n_rays}, sigmas.options());
  at::Tensor weights = at::empty_like(sigmas);
  if (sigmas.is_cuda()) {
#ifdef NERFHEAD_WITH_CUDA
    nh::volrend::render_forward_cuda(sigmas, rgbs, t_starts, t_ends, packed_info, rgb, opacity, depth, weights);
    return {rgb, opacity, depth, weights};
#else
    no_cuda();
#endif
  }
  require(sigmas.is_cpu(), "unsupported device ", sigmas.device());
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "volrend_render_forward", [&] {
    nh::volrend::dispatch_channels(C, [&](auto channels) {
      render_forward_cpu<scalar_t, decltype(channels)::value>(sigmas, rgbs, t_starts, t_ends, packed_info, rgb,
                                                              opacity, depth, weights);
    });
  });
  return {rgb, opacity, depth, weights};
}

// (grad_sigmas (S,) or None, grad_rgbs (S, C) or None) from the forward's inputs and weights.
// Absent upstream gradients are None. The sigmas themselves are not needed.
std::vector<at::Tensor> render_backward(const at::Tensor& rgbs, const at::Tensor& t_starts, const at::Tensor& t_ends,
                                        const at::Tensor& packed_info, const at::Tensor& weights,
                                        const c10::optional<at::Tensor>& grad_rgb,
                                        const c10::optional<at::Tensor>& grad_opacity,
                                        const c10::optional<at::Tensor>& grad_depth,
                                        const c10::optional<at::Tensor>& grad_weights, bool need_sigmas,
                                        bool need_rgbs) {
  check_samples(weights, "weights", t_starts, t_ends, packed_info);
  check_rgbs(rgbs, weights);
  const int64_t n_rays = packed_info.size(0), n_samples = weights.size(0), C = rgbs.size(1);
  const at::Tensor g_rgb = optional_grad(grad_rgb, weights, {n_rays, C}, "grad_rgb");
  const at::Tensor g_opacity = optional_grad(grad_opacity, weights, {n_rays}, "grad_opacity");
  const at::Tensor g_depth = optional_grad(grad_depth, weights, {n_rays}, "grad_depth");
  const at::Tensor g_weights = optional_grad(grad_weights, weights, {n_samples}, "grad_weights");
  at::Tensor grad_sigmas = need_sigmas ? at::empty_like(weights) : at::Tensor();
  at::Tensor grad_rgbs = need_rgbs ? at::empty_like(rgbs) : at::Tensor();
  if (weights.is_cuda()) {
#ifdef NERFHEAD_WITH_CUDA
    nh::volrend::render_backward_cuda(rgbs, t_starts, t_ends, packed_info, weights, g_rgb, g_opacity, g_depth,
                                      g_weights, grad_sigmas, grad_rgbs);
    return {grad_sigmas, grad_rgbs};
#else
    no_cuda();
#endif
  }
  require(weights.is_cpu(), "unsupported device ", weights.device());
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "volrend_render_backward", [&] {
    nh::volrend::dispatch_channels(C, [&](auto channels) {
      render_backward_cpu<scalar_t, decltype(channels)::value>(rgbs, t_starts, t_ends, packed_info, weights, g_rgb,
                                                               g_opacity, g_depth, g_weights, grad_sigmas, grad_rgbs);
    });
  });
  return {grad_sigmas, grad_rgbs};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nerfhead packed volume rendering kernels (see nerfhead/ops/volrend.py)";
  m.attr("with_cuda") = pybind11::bool_(nh::built_with_cuda());
  m.def("transmittance", &transmittance, "(trans, alphas) of packed samples",
        pybind11::arg("sigmas"), pybind11::arg("t_starts"), pybind11::arg("t_ends"), pybind11::arg("packed_info"));
  m.def("render_forward", &render_forward, "(rgb, opacity, depth, weights) of packed samples",
        pybind11::arg("sigmas"), pybind11::arg("rgbs"), pybind11::arg("t_starts"), pybind11::arg("t_ends"),
        pybind11::arg("packed_info"));
  m.def("render_backward", &render_backward, "(grad_sigmas, grad_rgbs) of packed volume rendering",
        pybind11::arg("rgbs"), pybind11::arg("t_starts"), pybind11::arg("t_ends"),
        pybind11::arg("packed_info"), pybind11::arg("weights"), pybind11::arg("grad_rgb"),
        pybind11::arg("grad_opacity"), pybind11::arg("grad_depth"), pybind11::arg("grad_weights"),
        pybind11::arg("need_sigmas"), pybind11::arg("need_rgbs"));
}
