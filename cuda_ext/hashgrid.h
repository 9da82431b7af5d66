// Multiresolution hash encoding (instant-ngp style): the per-point work, written once for the
// CPU and the GPU.
//
// An encoding is G grids (G = 1 for a 2D/3D hash grid, G = 3 for the tri-plane) of dimension D
// (2 or 3), each with L levels of a table of T = 2^k entries x F features. Table layout
// (G, L, T, F), contiguous; a "unit" u = g * L + l is one (grid, level) pair and owns the
// T x F slice at u * T * F. Grid g reads the coordinates x[:, axes[g][0..D)] (tri-plane:
// (x, y), (y, z), (x, z)). Output (N, G * L * F): unit-major, column u * F + f.
//
// Level l has res_l cells per axis, (res_l + 1) vertices per axis. A point's coordinate v is
// clamped to [0, 1] (NaN -> 0), pos = v * res_l, lo = min(floor(pos), res_l - 1) (so v = 1 lies
// in the last cell with frac = 1), frac = pos - lo. The 2^D cell corners are blended with the
// usual bi/trilinear weights prod_d (hi_d ? frac_d : 1 - frac_d). A corner's table row is
//   dense level ((res_l + 1)^D <= T, chosen by the caller): sum_d v_d * (res_l + 1)^d
//   hashed level: (v_0 * 1 ^ v_1 * 2654435761 ^ v_2 * 805459861) mod 2^32, & (T - 1).
//
// Gradients: d out / d table is the same weights scattered back; d out / d x_a for a coordinate
// inside [0, 1] (both ends included, as torch.clamp's gradient) is res_l * sum_corners
// (g . table_row) * d w / d frac_a, and 0 outside.
#pragma once

#include <cstdint>
#include <type_traits>

#include "common.h"

// Loops below have compile-time trip counts (D, F, 2^D): unrolled by nvcc on request and by
// the host compiler's -O3 on its own.
#if defined(__CUDACC__)
#define NH_HG_UNROLL _Pragma("unroll")
#else
#define NH_HG_UNROLL
#endif

namespace nh {
namespace hashgrid {

constexpr int kMaxLevels = 32;
constexpr int kMaxGrids = 3;
constexpr int kMaxInDim = 3;  // columns of x
constexpr int32_t kMaxResolution = 1 << 20;  // vertex coordinates stay far below 2^32

// Everything a kernel needs besides the tensors; small and passed by value (also to CUDA).
struct Params {
  int32_t grids;        // G: 1, or 3 for the tri-plane
  int32_t dim;          // D: 2 or 3, dimension of each grid
  int32_t levels;       // L
  int32_t features;     // F: 1, 2, 4 or 8
  int32_t in_dim;       // columns of x
  uint32_t table_size;  // T, a power of two
  int32_t axes[kMaxGrids][3];
  int32_t res[kMaxLevels];
  int32_t dense[kMaxLevels];

  NH_HD int32_t units() const { return grids * levels; }
  NH_HD int64_t out_dim() const { return int64_t(grids) * levels * features; }
};

NH_HD uint32_t hash_prime(int d) { return d == 0 ? 1u : (d == 1 ? 2654435761u : 805459861u); }

// Clamp to [0, 1]; NaN goes to 0 so that it can never index outside the table.
template <typename T>
NH_HD T unit_clamp(T v) {
  const T a = v > T(0) ? v : T(0);  // a NaN fails the test: 0 (branch-free max/min on the CPU)
  return a < T(1) ? a : T(1);
}

// A point's cell at one level, kept as per-axis parts of the corner rows and weights. Corner k
// (bit d of k set = upper side along axis d) has
//   row    = term[0][b_0] + term[1][b_1] + ...      dense level: v_d * (res + 1)^d summed
//          = (term[0][b_0] ^ term[1][b_1] ^ ...) & mask   hashed level: v_d * prime_d xored
//   weight = w[0][b_0] * w[1][b_1] * ...             w[d] = {1 - frac_d, frac_d}
template <typename T, int D>
struct Cell {
  uint32_t term[D][2];
  T w[D][2];
};

template <typename T, int D>
NH_HD Cell<T, D> locate(const T* xrow, const int32_t* axes, int32_t res, bool dense) {
  Cell<T, D> c;
  uint32_t stride = 1;
NH_HG_UNROLL
  for (int d = 0; d < D; ++d) {
    const T pos = unit_clamp(xrow[axes[d]]) * T(res);
    int32_t i = static_cast<int32_t>(pos);  // pos >= 0: truncation is floor
    i = i < res ? i : res - 1;
    const T frac = pos - T(i);
    c.w[d][0] = T(1) - frac;
    c.w[d][1] = frac;
    const uint32_t mult = dense ? stride : hash_prime(d);
    c.term[d][0] = static_cast<uint32_t>(i) * mult;
    c.term[d][1] = c.term[d][0] + mult;  // (i + 1) * mult, mod 2^32 like the hash
    stride *= static_cast<uint32_t>(res) + 1u;
  }
  return c;
}

template <typename T, int D>
NH_HD uint32_t corner_row(const Cell<T, D>& c, int k, bool dense, uint32_t mask) {
  uint32_t row = c.term[0][k & 1];
NH_HG_UNROLL
  for (int d = 1; d < D; ++d) {
    const uint32_t t = c.term[d][(k >> d) & 1];
    row = dense ? row + t : row ^ t;
  }
  return dense ? row : row & mask;
}

template <typename T, int D>
NH_HD T corner_weight(const Cell<T, D>& c, int k) {
  T w = c.w[0][k & 1];
NH_HG_UNROLL
  for (int d = 1; d < D; ++d) w *= c.w[d][(k >> d) & 1];
  return w;
}

// One point at one unit: out[0..F) = interpolated features. `table` points at the unit's slice.
template <typename T, int D, int F>
NH_HD void encode_point(const T* xrow, const int32_t* axes, int32_t res, bool dense, uint32_t mask,
                        const T* table, T* out) {
  const Cell<T, D> c = locate<T, D>(xrow, axes, res, dense);
  T acc[F];
NH_HG_UNROLL
  for (int f = 0; f < F; ++f) acc[f] = T(0);
NH_HG_UNROLL
  for (int k = 0; k < (1 << D); ++k) {
    const T w = corner_weight<T, D>(c, k);
    const T* e = table + size_t(corner_row<T, D>(c, k, dense, mask)) * F;
NH_HG_UNROLL
    for (int f = 0; f < F; ++f) acc[f] += w * e[f];
  }
NH_HG_UNROLL
  for (int f = 0; f < F; ++f) out[f] = acc[f];
}

// Scatter one point's upstream gradient grad_out[0..F) into the unit's table-gradient slice.
// Atomic: several threads may write the same row (GPU); the CPU partitions units instead.
template <typename T, int D, int F, bool Atomic>
NH_HD void encode_point_backward_table(const T* xrow, const int32_t* axes, int32_t res, bool dense, uint32_t mask,
                                       const T* grad_out, T* grad_table) {
  T g[F];
NH_HG_UNROLL
  for (int f = 0; f < F; ++f) g[f] = grad_out[f];
  const Cell<T, D> c = locate<T, D>(xrow, axes, res, dense);
NH_HG_UNROLL
  for (int k = 0; k < (1 << D); ++k) {
    const T w = corner_weight<T, D>(c, k);
    T* e = grad_table + size_t(corner_row<T, D>(c, k, dense, mask)) * F;
NH_HG_UNROLL
    for (int f = 0; f < F; ++f) {
      if (Atomic) {
        atomic_add(e + f, w * g[f]);
      } else {
        e[f] += w * g[f];
      }
    }
  }
}

// Add one unit's contribution to the gradient of the point's coordinates, grad_x[0..in_dim).
template <typename T, int D, int F>
NH_HD void encode_point_backward_x(const T* xrow, const int32_t* axes, int32_t res, bool dense, uint32_t mask,
                                   const T* table, const T* grad_out, T* grad_x) {
  const Cell<T, D> c = locate<T, D>(xrow, axes, res, dense);
  T gpos[D];
NH_HG_UNROLL
  for (int d = 0; d < D; ++d) gpos[d] = T(0);
NH_HG_UNROLL
  for (int k = 0; k < (1 << D); ++k) {
    const T* e = table + size_t(corner_row<T, D>(c, k, dense, mask)) * F;
    T s = T(0);
NH_HG_UNROLL
    for (int f = 0; f < F; ++f) s += grad_out[f] * e[f];
NH_HG_UNROLL
    for (int d = 0; d < D; ++d) {
      T dw = ((k >> d) & 1) ? s : -s;  // d w[d][b] / d frac_d = +-1
NH_HG_UNROLL
      for (int o = 0; o < D; ++o) {
        if (o != d) dw *= c.w[o][(k >> o) & 1];
      }
      gpos[d] += dw;
    }
  }
NH_HG_UNROLL
  for (int d = 0; d < D; ++d) {
    const T v = xrow[axes[d]];
    if (v >= T(0) && v <= T(1)) grad_x[axes[d]] += gpos[d] * T(res);
  }
}

// Host side: calls fn(std::integral_constant<int, D>, std::integral_constant<int, F>) with the
// params' D and F as compile-time constants (the per-point functions are templated on them).
template <typename Fn>
inline void dispatch_dims(const Params& p, Fn&& fn) {
  using I1 = std::integral_constant<int, 1>;
  using I2 = std::integral_constant<int, 2>;
  using I3 = std::integral_constant<int, 3>;
  using I4 = std::integral_constant<int, 4>;
  using I8 = std::integral_constant<int, 8>;
  if (p.dim == 2) {
    switch (p.features) {
      case 1: return fn(I2{}, I1{});
      case 2: return fn(I2{}, I2{});
      case 4: return fn(I2{}, I4{});
      default: return fn(I2{}, I8{});
    }
  }
  switch (p.features) {
    case 1: return fn(I3{}, I1{});
    case 2: return fn(I3{}, I2{});
    case 4: return fn(I3{}, I4{});
    default: return fn(I3{}, I8{});
  }
}

}  // namespace hashgrid
}  // namespace nh

#ifdef NERFHEAD_WITH_CUDA
#include <ATen/core/Tensor.h>

namespace nh {
namespace hashgrid {
// Defined in hashgrid_cuda.cu. Inputs were checked and outputs allocated by the host entry
// points in hashgrid_cpu.cpp: x (N, in_dim), table (G, L, T, F), out / grad_out (N, G*L*F),
// grad_table zero-filled like table, grad_x zero-filled like x; all contiguous, one dtype.
void encode_forward_cuda(const Params& p, const at::Tensor& x, const at::Tensor& table, at::Tensor& out);
void encode_backward_table_cuda(const Params& p, const at::Tensor& x, const at::Tensor& grad_out,
                                at::Tensor& grad_table);
void encode_backward_x_cuda(const Params& p, const at::Tensor& x, const at::Tensor& table, const at::Tensor& grad_out,
                            at::Tensor& grad_x);
}  // namespace hashgrid
}  // namespace nh
#endif
