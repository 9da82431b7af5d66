// Multiresolution hash encoding: host entry points (Python binding) and the CPU loops.
//
// The per-point work lives in hashgrid.h; here the CPU runs it with at::parallel_for (torch's
// intra-op pool) and CUDA tensors go to hashgrid_cuda.cu. nerfhead/ops/hashgrid.py validates
// every input before calling in; the checks below only guard against direct misuse, so that a
// malformed call raises instead of reading outside a tensor.
//
// Work split over threads: the forward and the x gradient by points, the table gradient by
// units (grid x level: each thread owns whole table slices, so it needs no atomics).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "hashgrid.h"

namespace {

using nh::hashgrid::Params;

[[noreturn]] void no_cuda() {
  TORCH_CHECK(false, "hashgrid: these kernels were built without CUDA; use the PyTorch reference "
                     "(NERFHEAD_OPS=ref) or rebuild with a CUDA build of torch and nvcc");
}

Params make_params(const at::Tensor& x, const at::Tensor& table, int64_t grids, int64_t dim,
                   const std::vector<int64_t>& axes, const std::vector<int64_t>& resolutions,
                   const std::vector<int64_t>& dense) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "hashgrid: x must be a contiguous (N, in_dim) tensor");
  TORCH_CHECK(x.size(1) >= 1 && x.size(1) <= nh::hashgrid::kMaxInDim, "hashgrid: x must have 1..3 columns");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "hashgrid: x must be float32/64");
  TORCH_CHECK(table.dim() == 4 && table.is_contiguous(), "hashgrid: table must be a contiguous (G, L, T, F) tensor");
  TORCH_CHECK(table.scalar_type() == x.scalar_type(), "hashgrid: table and x must share a dtype");
  TORCH_CHECK(table.device() == x.device(), "hashgrid: table and x must be on one device");
  TORCH_CHECK(grids >= 1 && grids <= nh::hashgrid::kMaxGrids && table.size(0) == grids,
              "hashgrid: grids must be 1..3 and match table.size(0)");
  TORCH_CHECK(dim == 2 || dim == 3, "hashgrid: dim must be 2 or 3");
  const int64_t levels = table.size(1), t_size = table.size(2), features = table.size(3);
  TORCH_CHECK(levels >= 1 && levels <= nh::hashgrid::kMaxLevels, "hashgrid: 1..32 levels");
  TORCH_CHECK(features == 1 || features == 2 || features == 4 || features == 8, "hashgrid: F must be 1, 2, 4 or 8");
  TORCH_CHECK(t_size >= 1 && t_size <= (int64_t(1) << 30) && (t_size & (t_size - 1)) == 0,
              "hashgrid: the table size must be a power of two");
  TORCH_CHECK(int64_t(axes.size()) == grids * dim, "hashgrid: axes must hold grids * dim entries");
  TORCH_CHECK(int64_t(resolutions.size()) == levels && int64_t(dense.size()) == levels,
              "hashgrid: one resolution and one dense flag per level");
  Params p{};
  p.grids = int32_t(grids);
  p.dim = int32_t(dim);
  p.levels = int32_t(levels);
  p.features = int32_t(features);
  p.in_dim = int32_t(x.size(1));
  p.table_size = uint32_t(t_size);
  for (int64_t g = 0; g < grids; ++g) {
    for (int64_t d = 0; d < dim; ++d) {
      const int64_t a = axes[g * dim + d];
      TORCH_CHECK(a >= 0 && a < x.size(1), "hashgrid: axis ", a, " is not a column of x");
      p.axes[g][d] = int32_t(a);
    }
  }
  for (int64_t l = 0; l < levels; ++l) {
    const int64_t r = resolutions[l];
    TORCH_CHECK(r >= 1 && r <= nh::hashgrid::kMaxResolution, "hashgrid: resolution ", r, " out of range");
    int64_t vertices = 1;
    for (int64_t d = 0; d < dim; ++d) vertices *= r + 1;
    TORCH_CHECK(!dense[l] || vertices <= t_size, "hashgrid: level ", l, " is marked dense but does not fit the table");
    p.res[l] = int32_t(r);
    p.dense[l] = dense[l] ? 1 : 0;
  }
  return p;
}

// ---- CPU loops --------------------------------------------------------------------------
//
// The loops run one unit (grid x level) at a time over a chunk of points, so that only one
// unit's table slice is in use, and write/read the chunk's values unit-major into a buffer
// ((units, chunk, F), contiguous) that is then copied to/from the point-major rows of the
// output / upstream gradient. When all tables fit the caches (the tri-plane: 2.3 MB) a chunk is
// a few thousand points and its buffer stays in L2; with large tables (2^19 rows x 16 levels =
// 64 MB) a chunk is a thread's whole range, so each level's table is streamed through the
// caches once instead of once per chunk. A level whose rows span more than L2 is latency
// bound: there the loop prefetches the rows of the point kAhead places further on.

constexpr int64_t kSmallChunk = 4096;
constexpr int64_t kCachedTableBytes = int64_t(8) << 20;
constexpr int64_t kPrefetchBytes = int64_t(768) << 10;
constexpr int64_t kAhead = 16;

int64_t chunk_points(const Params& p, size_t elem_size, int64_t range) {
  const int64_t table_bytes = int64_t(p.units()) * p.table_size * p.features * int64_t(elem_size);
  return std::max<int64_t>(1, table_bytes <= kCachedTableBytes ? std::min(range, kSmallChunk) : range);
}

// Bytes of table rows that level l can touch: the dense grid's vertices, or the whole table.
bool level_needs_prefetch(const Params& p, int32_t l, size_t elem_size) {
  int64_t rows = p.table_size;
  if (p.dense[l]) {
    rows = 1;
    for (int d = 0; d < p.dim; ++d) rows *= int64_t(p.res[l]) + 1;
  }
  return rows * p.features * int64_t(elem_size) > kPrefetchBytes;
}

// Per-thread scratch, kept between calls: a fresh multi-MB buffer per call would cost thousands
// of page faults. It grows to the largest request seen (about one output's worth per thread
// with large tables, a few hundred KB with cached ones).
template <typename T>
T* scratch(int64_t count) {
  thread_local std::unique_ptr<char[]> memory;
  thread_local size_t capacity = 0;
  const size_t bytes = sizeof(T) * size_t(std::max<int64_t>(count, 1));
  if (bytes > capacity) {
    memory.reset();
    memory.reset(new char[bytes]);
    capacity = bytes;
  }
  return reinterpret_cast<T*>(memory.get());
}

// A fresh output of many MB is first touched by our loops: ask the kernel for transparent huge
// pages (a hint; ignored where unsupported). A 64 MB table gradient otherwise takes 16k page
// faults, ~30 ms on a VM, more than the kernel's own work.
void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t start = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t begin = (start + kHuge - 1) & ~(kHuge - 1), end = (start + t.nbytes()) & ~(kHuge - 1);
  if (end >= begin + 2 * kHuge) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

// One unit over points 0..m of a chunk: fn(i, dense) for each point (dense as a compile-time
// constant); with Prefetch, first touches the table rows of point i + kAhead.
template <typename T, int D, int F, bool Write, typename Fn>
void unit_loop(const Params& p, int32_t u, const T* xc, int64_t m, const T* rows, Fn&& fn) {
  const int32_t g = u / p.levels, l = u % p.levels, res = p.res[l];
  const int32_t* axes = p.axes[g];
  const uint32_t mask = p.table_size - 1;
  auto run = [&](auto dense_c, auto prefetch_c) {
    constexpr bool kDense = decltype(dense_c)::value, kPrefetch = decltype(prefetch_c)::value;
    for (int64_t i = 0; i < m; ++i) {
      if (kPrefetch && i + kAhead < m) {
        const auto c = nh::hashgrid::locate<T, D>(xc + (i + kAhead) * p.in_dim, axes, res, kDense);
        for (int k = 0; k < (1 << D); k += 2)  // corners k and k + 1 share a cache line (mostly)
          __builtin_prefetch(rows + size_t(nh::hashgrid::corner_row<T, D>(c, k, kDense, mask)) * F, Write ? 1 : 0);
      }
      fn(i, axes, res, mask, dense_c);
    }
  };
  using True = std::true_type;
  using False = std::false_type;
  const bool dense = p.dense[l] != 0, prefetch = level_needs_prefetch(p, l, sizeof(T));
  if (dense) {
    prefetch ? run(True{}, True{}) : run(True{}, False{});
  } else {
    prefetch ? run(False{}, True{}) : run(False{}, False{});
  }
}

// buf (U, m, F) -> rows (m, U * F) (blocked so that both sides stay in L1).
template <typename T, int F>
void units_to_rows(const T* buf, int64_t m, int64_t units, T* rows) {
  constexpr int64_t kBlock = 64;
  const int64_t C = units * F;
  for (int64_t i0 = 0; i0 < m; i0 += kBlock) {
    const int64_t i1 = std::min(m, i0 + kBlock);
    for (int64_t u = 0; u < units; ++u) {
      const T* src = buf + u * m * F;
      T* dst = rows + u * F;
      for (int64_t i = i0; i < i1; ++i)
        for (int f = 0; f < F; ++f) dst[i * C + f] = src[i * F + f];
    }
  }
}

// The units u0, u0 + du, ... (count of them) of rows i0..i0+m of the upstream gradient g
// (element strides s0, s1: an expanded gradient is read in place) -> buf (count, m, F).
template <typename T, int F>
void rows_to_units(const T* g, int64_t s0, int64_t s1, int64_t i0, int64_t m, int64_t u0, int64_t du, int64_t count,
                   T* buf) {
  constexpr int64_t kBlock = 64;
  for (int64_t j0 = 0; j0 < m; j0 += kBlock) {
    const int64_t j1 = std::min(m, j0 + kBlock);
    for (int64_t c = 0; c < count; ++c) {
      T* dst = buf + c * m * F;
      const int64_t col = (u0 + c * du) * F * s1;
      for (int64_t j = j0; j < j1; ++j) {
        const T* src = g + (i0 + j) * s0 + col;
        for (int f = 0; f < F; ++f) dst[j * F + f] = src[f * s1];
      }
    }
  }
}

// The upstream gradient of a chunk for some units, unit-major (see rows_to_units). Returns the
// point stride in buf: F, or 0 when grad_out is the same for every row (s0 == 0, e.g. the
// gradient of .sum()): then buf holds one row per unit.
template <typename T, int F>
int64_t gather_grad(const T* g, int64_t s0, int64_t s1, int64_t i0, int64_t m, int64_t u0, int64_t du, int64_t count,
                    T* buf) {
  if (s0 == 0) {
    rows_to_units<T, F>(g, s0, s1, 0, 1, u0, du, count, buf);
    return 0;
  }
  rows_to_units<T, F>(g, s0, s1, i0, m, u0, du, count, buf);
  return F;
}

template <typename T, int D, int F>
void forward_cpu(const Params& p, const T* x, const T* table, T* out, int64_t n) {
  const int64_t C = p.out_dim(), slice = int64_t(p.table_size) * F, units = p.units();
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    const int64_t chunk = chunk_points(p, sizeof(T), end - begin);
    T* buf = scratch<T>(units * chunk * F);
    for (int64_t c0 = begin; c0 < end; c0 += chunk) {
      const int64_t m = std::min(end - c0, chunk);
      const T* xc = x + c0 * p.in_dim;
      for (int32_t u = 0; u < units; ++u) {
        const T* tab = table + u * slice;
        T* o = buf + u * m * F;
        unit_loop<T, D, F, false>(p, u, xc, m, tab, [&](int64_t i, const int32_t* axes, int32_t res, uint32_t mask,
                                                        auto dense) {
          nh::hashgrid::encode_point<T, D, F>(xc + i * p.in_dim, axes, res, decltype(dense)::value, mask, tab,
                                              o + i * F);
        });
      }
      units_to_rows<T, F>(buf, m, units, out + c0 * C);
    }
  });
}

// Each task owns whole units (table slices): it zeroes them and accumulates without atomics.
// Task t of nt takes the units t, t + nt, ...: the costly fine levels are spread over tasks.
template <typename T, int D, int F>
void backward_table_cpu(const Params& p, const T* x, const T* grad_out, int64_t s0, int64_t s1, T* grad_table,
                        int64_t n) {
  const int64_t slice = int64_t(p.table_size) * F, units = p.units();
  const int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), units));
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      const int64_t count = (units - t + tasks - 1) / tasks;  // units t, t + tasks, ...
      for (int64_t c = 0; c < count; ++c) std::memset(grad_table + (t + c * tasks) * slice, 0, sizeof(T) * slice);
      const int64_t chunk = chunk_points(p, sizeof(T), n);
      T* buf = scratch<T>(count * (s0 == 0 ? 1 : chunk) * F);
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t m = std::min(n - c0, chunk);
        const T* xc = x + c0 * p.in_dim;
        const int64_t gs = gather_grad<T, F>(grad_out, s0, s1, c0, m, t, tasks, count, buf);
        for (int64_t c = 0; c < count; ++c) {
          const int32_t u = int32_t(t + c * tasks);
          T* gt = grad_table + u * slice;
          const T* go = buf + c * (gs == 0 ? 1 : m) * F;
          unit_loop<T, D, F, true>(p, u, xc, m, gt, [&](int64_t i, const int32_t* axes, int32_t res, uint32_t mask,
                                                        auto dense) {
            nh::hashgrid::encode_point_backward_table<T, D, F, false>(xc + i * p.in_dim, axes, res,
                                                                      decltype(dense)::value, mask, go + i * gs, gt);
          });
        }
      }
    }
  });
}

// Each thread owns a range of points (rows of grad_x).
template <typename T, int D, int F>
void backward_x_cpu(const Params& p, const T* x, const T* table, const T* grad_out, int64_t s0, int64_t s1,
                    T* grad_x, int64_t n) {
  const int64_t slice = int64_t(p.table_size) * F, units = p.units();
  at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
    const int64_t chunk = chunk_points(p, sizeof(T), end - begin);
    T* buf = scratch<T>(units * (s0 == 0 ? 1 : chunk) * F);
    for (int64_t c0 = begin; c0 < end; c0 += chunk) {
      const int64_t m = std::min(end - c0, chunk);
      const T* xc = x + c0 * p.in_dim;
      T* gx = grad_x + c0 * p.in_dim;
      const int64_t gs = gather_grad<T, F>(grad_out, s0, s1, c0, m, 0, 1, units, buf);
      std::memset(gx, 0, sizeof(T) * size_t(m * p.in_dim));
      for (int32_t u = 0; u < units; ++u) {
        const T* tab = table + u * slice;
        const T* go = buf + u * (gs == 0 ? 1 : m) * F;
        unit_loop<T, D, F, false>(p, u, xc, m, tab, [&](int64_t i, const int32_t* axes, int32_t res, uint32_t mask,
                                                        auto dense) {
          nh::hashgrid::encode_point_backward_x<T, D, F>(xc + i * p.in_dim, axes, res, decltype(dense)::value, mask,
                                                         tab, go + i * gs, gx + i * p.in_dim);
        });
      }
    }
  });
}

// ---- entry points -----------------------------------------------------------------------

// x (N, in_dim), table (G, L, T, F) -> (N, G * L * F).
at::Tensor encode_forward(const at::Tensor& x, const at::Tensor& table, int64_t grids, int64_t dim,
                          std::vector<int64_t> axes, std::vector<int64_t> resolutions, std::vector<int64_t> dense) {
  const Params p = make_params(x, table, grids, dim, axes, resolutions, dense);
  at::Tensor out = at::empty({x.size(0), p.out_dim()}, x.options());
  if (x.size(0) == 0) return out;
  if (x.is_cuda()) {
#ifdef NERFHEAD_WITH_CUDA
    nh::hashgrid::encode_forward_cuda(p, x, table, out);
    return out;
#else
    no_cuda();
#endif
  }
  TORCH_CHECK(x.is_cpu(), "hashgrid: tensors must be on the CPU or a CUDA device");
  advise_huge_pages(out);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hashgrid_forward", [&] {
    nh::hashgrid::dispatch_dims(p, [&](auto d, auto f) {
      forward_cpu<scalar_t, decltype(d)::value, decltype(f)::value>(p, x.data_ptr<scalar_t>(),
                                                                   table.data_ptr<scalar_t>(),
                                                                   out.data_ptr<scalar_t>(), x.size(0));
    });
  });
  return out;
}

// Gradients w.r.t. x and/or the table (an undefined tensor -> None for the one not asked for).
std::vector<at::Tensor> encode_backward(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& table,
                                        int64_t grids, int64_t dim, std::vector<int64_t> axes,
                                        std::vector<int64_t> resolutions, std::vector<int64_t> dense, bool need_x,
                                        bool need_table) {
  const Params p = make_params(x, table, grids, dim, axes, resolutions, dense);
  TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == x.size(0) && grad_out.size(1) == p.out_dim() &&
                  grad_out.scalar_type() == x.scalar_type() && grad_out.device() == x.device(),
              "hashgrid: grad_out must be an (N, G*L*F) tensor like the output");
  const int64_t n = x.size(0);
  at::Tensor grad_x, grad_table;
  if (x.is_cuda()) {
#ifdef NERFHEAD_WITH_CUDA
    const at::Tensor g = grad_out.contiguous();
    if (need_table) {
      grad_table = at::zeros_like(table);
      if (n > 0) nh::hashgrid::encode_backward_table_cuda(p, x, g, grad_table);
    }
    if (need_x) {
      grad_x = at::zeros_like(x);
      if (n > 0) nh::hashgrid::encode_backward_x_cuda(p, x, table, g, grad_x);
    }
    return {grad_x, grad_table};
#else
    no_cuda();
#endif
  }
  TORCH_CHECK(x.is_cpu(), "hashgrid: tensors must be on the CPU or a CUDA device");
  if (need_table) {
    grad_table = at::empty_like(table);  // zeroed by the thread that owns each slice
    advise_huge_pages(grad_table);
  }
  if (need_x) grad_x = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "hashgrid_backward", [&] {
    nh::hashgrid::dispatch_dims(p, [&](auto d, auto f) {
      constexpr int D = decltype(d)::value, F = decltype(f)::value;
      const scalar_t* g = grad_out.data_ptr<scalar_t>();
      const int64_t s0 = grad_out.stride(0), s1 = grad_out.stride(1);
      if (need_table) backward_table_cpu<scalar_t, D, F>(p, x.data_ptr<scalar_t>(), g, s0, s1,
                                                         grad_table.data_ptr<scalar_t>(), n);
      if (need_x) backward_x_cpu<scalar_t, D, F>(p, x.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), g, s0, s1,
                                                 grad_x.data_ptr<scalar_t>(), n);
    });
  });
  return {grad_x, grad_table};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nerfhead multiresolution hash encoding kernels (CPU; CUDA when built with it)";
  m.def("encode_forward", &encode_forward, "hash encoding forward: x (N, in_dim), table (G, L, T, F) -> (N, G*L*F)",
        py::arg("x"), py::arg("table"), py::arg("grids"), py::arg("dim"), py::arg("axes"), py::arg("resolutions"),
        py::arg("dense"));
  m.def("encode_backward", &encode_backward, "hash encoding backward -> [grad_x or None, grad_table or None]",
        py::arg("grad_out"), py::arg("x"), py::arg("table"), py::arg("grids"), py::arg("dim"), py::arg("axes"),
        py::arg("resolutions"), py::arg("dense"), py::arg("need_x"), py::arg("need_table"));
  m.attr("with_cuda") = pybind11::bool_(nh::built_with_cuda());
}
