// Occupancy grid, ray/box intersection and occupancy-guided ray marching: per-element work.
//
// Everything here is an NH_HD inline function, shared by raymarch_cpu.cpp (at::parallel_for
// loops) and raymarch_cuda.cu (kernels). The PyTorch reference in nerfhead/ops/raymarch.py and
// nerfhead/ops/occupancy.py does the same arithmetic in the same order, so that the kernels and
// the reference produce bit-identical samples: every add/mul/div below goes through *_rn, which
// on the GPU are the IEEE round-to-nearest intrinsics (never fused into an FMA, never
// approximated by --use_fast_math) and on the host plain operators (products kept rounded where
// the host compiler could contract them into FMAs).
//
// Layouts (shared with the Python side):
// - occupancy bitfield: cell (ix, iy, iz) of an R^3 grid has the linear index (ix * R + iy) * R + iz;
//   its bit is bit (index & 7) of byte (index >> 3).
// - grid coordinates of a world point p: x_c = (p_c - lo_c) * scale_c with scale_c = R / (hi_c - lo_c);
//   the point lies in cell floor(x) when 0 <= x_c < R for all c, else outside the grid.
#pragma once

#include <cmath>
#include <cstdint>

#include "common.h"

namespace nh {
namespace raymarch {

// ------------------------------------------------------------------ exact arithmetic

#if !defined(__CUDA_ARCH__)
// Host: keeps a rounded product from being fused into an FMA with the next addition, on
// targets where the compiler would contract (aarch64; x86-64 built with FMA enabled).
template <typename T>
inline T keep_rounded(T v) {
#if defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#elif defined(__GNUC__) && defined(__FMA__)
  __asm__("" : "+x"(v));
#endif
  return v;
}
#endif

NH_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
NH_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
NH_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
NH_HD double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
NH_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return keep_rounded(a * b);
#endif
}
NH_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return keep_rounded(a * b);
#endif
}
NH_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
NH_HD double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

template <typename T>
NH_HD T infinity() { return static_cast<T>(INFINITY); }

// False for +-inf and NaN.
template <typename T>
NH_HD bool is_finite(T v) { return v > -infinity<T>() && v < infinity<T>(); }

template <typename T>
NH_HD T min2(T a, T b) { return b < a ? b : a; }

template <typename T>
NH_HD T max2(T a, T b) { return b > a ? b : a; }

// ------------------------------------------------------------------ ray / box

// Slab intersection of the ray o + t d with the box [lo, hi] = box[0..2], box[3..5].
// Hit: t_near = max(entry, near) <= t_far = exit (a ray grazing an edge or a corner hits with
// t_near == t_far). Miss (including a box behind `near`): t_near = t_far = +inf. A direction
// component of exactly 0 constrains nothing when the origin lies in that slab (borders
// included) and is a miss otherwise.
template <typename T>
NH_HD void ray_aabb(const T* o, const T* d, const T* box, T near, T* t_near, T* t_far) {
  T entry = -infinity<T>();
  T exit = infinity<T>();
  bool miss = false;
  for (int c = 0; c < 3; ++c) {
    if (d[c] == T(0)) {
      miss = miss || o[c] < box[c] || o[c] > box[c + 3];
      continue;
    }
    const T a = div_rn(sub_rn(box[c], o[c]), d[c]);
    const T b = div_rn(sub_rn(box[c + 3], o[c]), d[c]);
    entry = max2(entry, min2(a, b));
    exit = min2(exit, max2(a, b));
  }
  const T tn = max2(entry, near);
  if (miss || !(exit >= tn)) {
    *t_near = infinity<T>();
    *t_far = infinity<T>();
    return;
  }
  *t_near = tn;
  *t_far = exit;
}

// ------------------------------------------------------------------ occupancy grid

// Cells are also grouped in blocks of kBlock^3 (when R % kBlock == 0): a block flag tells whether
// any of its cells is occupied, so that the marcher can jump over empty blocks at once.
constexpr int kBlock = 8;

template <typename T>
struct Grid {
  const uint8_t* bits;    // R^3 / 8 bytes
  const uint8_t* blocks;  // (R / kBlock)^3 block flags (block_flag), or nullptr: no block skipping
  int32_t res;            // R
  T lo[3];                // box corner
  T scale[3];             // R / (hi - lo)
  double inv_scale[3];    // 1 / scale (jump estimates only)
};

NH_HD bool bit_is_set(const uint8_t* bits, int64_t cell) { return (bits[cell >> 3] >> (cell & 7)) & 1; }

// 1 when any cell of block (bx, by, bz) = block index (bx * nb + by) * nb + bz is occupied
// (nb = R / kBlock). With R % 8 == 0 the kBlock z-cells of an (x, y) row are one byte.
NH_HD uint8_t block_flag(const uint8_t* bits, int32_t res, int64_t block) {
  const int64_t nb = res / kBlock;
  const int64_t bx = block / (nb * nb), by = (block / nb) % nb, bz = block % nb;
  const int64_t row_bytes = res / 8;
  uint8_t acc = 0;
  for (int x = 0; x < kBlock; ++x) {
    for (int y = 0; y < kBlock; ++y) acc |= bits[((bx * kBlock + x) * res + by * kBlock + y) * row_bytes + bz];
  }
  return acc != 0;
}

template <typename T>
NH_HD void grid_coords(const Grid<T>& g, const T* p, T* x) {
  for (int c = 0; c < 3; ++c) x[c] = mul_rn(sub_rn(p[c], g.lo[c]), g.scale[c]);
}

template <typename T>
NH_HD bool in_grid(const Grid<T>& g, const T* x) {
  const T r = static_cast<T>(g.res);
  return x[0] >= T(0) && x[0] < r && x[1] >= T(0) && x[1] < r && x[2] >= T(0) && x[2] < r;
}

// Linear cell index of grid coordinates that are in_grid.
template <typename T>
NH_HD int64_t cell_of(const Grid<T>& g, const T* x) {
  const int64_t r = g.res;
  return (static_cast<int64_t>(x[0]) * r + static_cast<int64_t>(x[1])) * r + static_cast<int64_t>(x[2]);
}

// Is the world point p in an occupied cell? (Points outside the grid are not.)
template <typename T>
NH_HD bool occupied_at(const Grid<T>& g, const T* p) {
  T x[3];
  grid_coords(g, p, x);
  return in_grid(g, x) && bit_is_set(g.bits, cell_of(g, x));
}

// Grid update for one listed cell: density = max(density * decay, value), a NaN value counting as 0.
NH_HD void update_cell(float* density, int64_t cell, float value, float decay) {
  density[cell] = max2(mul_rn(density[cell], decay), value == value ? value : 0.0f);
}

// One byte of the bitfield: bit b is set when density[8 * byte + b] > threshold.
NH_HD uint8_t pack_byte(const float* density, int64_t byte, float threshold) {
  const float* v = density + 8 * byte;
  uint8_t out = 0;
  for (int b = 0; b < 8; ++b) out |= static_cast<uint8_t>(v[b] > threshold) << b;
  return out;
}

// Threshold of the occupied cells: min(mean density, cap).
NH_HD float grid_threshold(double density_sum, int64_t n_cells, float cap) {
  return min2(static_cast<float>(density_sum / static_cast<double>(n_cells)), cap);
}

// ------------------------------------------------------------------ ray marching

template <typename T>
struct Ray {
  T o[3];
  T d[3];
  T t_near, t_far, jitter, step;
};

// Ray ``i`` of the packed input arrays (origins and directions (N, 3); jitter may be null).
template <typename T>
NH_HD Ray<T> load_ray(const T* o, const T* d, const T* tn, const T* tf, const T* jitter, T step, int64_t i) {
  Ray<T> r;
  for (int c = 0; c < 3; ++c) {
    r.o[c] = o[3 * i + c];
    r.d[c] = d[3 * i + c];
  }
  r.t_near = tn[i];
  r.t_far = tf[i];
  r.jitter = jitter != nullptr ? jitter[i] : T(0);
  r.step = step;
  return r;
}

// Candidate k covers [t_near + (k + j) step, t_near + (k + 1 + j) step], its end clipped to t_far.
template <typename T>
NH_HD void candidate(const Ray<T>& r, int64_t k, T* t0, T* t1) {
  const T kf = static_cast<T>(k);
  *t0 = add_rn(r.t_near, mul_rn(add_rn(kf, r.jitter), r.step));
  *t1 = min2(add_rn(r.t_near, mul_rn(add_rn(add_rn(kf, T(1)), r.jitter), r.step)), r.t_far);
}

// Candidate k: false when it does not exist (starts at or beyond t_far), else its interval and
// the grid coordinates of its midpoint.
template <typename T>
NH_HD bool eval_candidate(const Ray<T>& r, const Grid<T>& g, int64_t k, T* t0, T* t1, T* x) {
  candidate(r, k, t0, t1);
  if (!(*t0 < r.t_far)) return false;
  const T tm = mul_rn(add_rn(*t0, *t1), T(0.5));
  T p[3];
  for (int c = 0; c < 3; ++c) p[c] = add_rn(r.o[c], mul_rn(r.d[c], tm));
  grid_coords(g, p, x);
  return true;
}

// ceil() for the jump estimates (plain conversions on the host, where ceil is a library call).
NH_HD double ceil_est(double v) {
#if defined(__CUDA_ARCH__)
  return ceil(v);
#else
  if (!(v > -4.0e18 && v < 4.0e18)) return v;
  const double f = static_cast<double>(static_cast<int64_t>(v));
  return f < v ? f + 1.0 : f;
#endif
}

// Jump estimates work in candidate space: the midpoint of candidate k lies near
// t = t_near + (k + j + 0.5) step, so its grid coordinate c reaches the value b near
// k = b * ka[c] + kb[c]. Doubles, estimates only: they never decide a sample.
struct RayAux {
  double ka[3];   // 1 / (scale_c d_c step); unused where d_c == 0 (that axis bounds nothing)
  double kb[3];
  double k_last;  // estimate of the last existing candidate
};

template <typename T>
NH_HD RayAux ray_aux(const Ray<T>& r, const Grid<T>& g) {
  RayAux a;
  const double inv_step = 1.0 / static_cast<double>(r.step);
  const double k0 = -static_cast<double>(r.t_near) * inv_step - static_cast<double>(r.jitter) - 0.5;
  for (int c = 0; c < 3; ++c) {
    const double d = static_cast<double>(r.d[c]);
    a.ka[c] = d != 0.0 ? g.inv_scale[c] / d * inv_step : 0.0;
    a.kb[c] = d != 0.0 ? (static_cast<double>(g.lo[c]) - static_cast<double>(r.o[c])) / d * inv_step + k0 : 0.0;
  }
  a.k_last = ceil_est((static_cast<double>(r.t_far) - static_cast<double>(r.t_near)) * inv_step -
                      static_cast<double>(r.jitter)) - 1.0;
  return a;
}

// A box [lo, hi) of grid coordinates (bounds may be infinite) that holds no occupied cell:
// an empty cell, an empty block of cells, or one side of the outside of the grid.
template <typename T>
struct Region {
  T lo[3];
  T hi[3];
};

template <typename T>
NH_HD bool in_region(const Region<T>& reg, const T* x) {
  return x[0] >= reg.lo[0] && x[0] < reg.hi[0] && x[1] >= reg.lo[1] && x[1] < reg.hi[1] && x[2] >= reg.lo[2] &&
         x[2] < reg.hi[2];
}

// Candidate-space position where the ray's midpoints leave the region (+inf: never).
template <typename T>
NH_HD double leave_k(const Ray<T>& r, const RayAux& a, const Region<T>& reg) {
  double q = INFINITY;
  for (int c = 0; c < 3; ++c) {
    if (r.d[c] == T(0)) continue;
    const T bound = r.d[c] > T(0) ? reg.hi[c] : reg.lo[c];
    if (!is_finite(bound)) continue;
    q = min2(q, static_cast<double>(bound) * a.ka[c] + a.kb[c]);
  }
  return q;
}

// Skip-ahead: candidate k lies in `reg`, which holds no occupied cell. Returns the next
// candidate worth testing. The grid coordinates of the midpoints are monotone in k per
// component (every rounding step is monotone), so when a later candidate k2 is verified to lie
// in the same box, all candidates in between do too: skipping them yields exactly the samples of
// testing every k. The jump target is an estimate, verified (and lowered a few times if needed);
// without a verified target the march simply steps to k + 1.
template <typename T>
NH_HD int64_t skip_region(const Ray<T>& r, const Grid<T>& g, const RayAux& a, const Region<T>& reg, int64_t k) {
  // Last candidate with its midpoint before the region's exit, at most the last existing one.
  double est = min2(ceil_est(leave_k(r, a, reg)) - 1.0, a.k_last);
  if (!(est > static_cast<double>(k) + 1.0)) return k + 1;
  if (est > 4.0e18) est = 4.0e18;
  int64_t k2 = static_cast<int64_t>(est);
  T t0, t1, x[3];
  for (int tries = 0; tries < 4 && k2 > k + 1; ++tries, --k2) {
    if (eval_candidate(r, g, k2, &t0, &t1, x) && in_region(reg, x)) return k2 + 1;
  }
  return k + 1;
}

// The empty region of an unoccupied cell: its block when the whole block is empty, else the cell.
template <typename T>
NH_HD void cell_region(const Grid<T>& g, const int64_t* cell, Region<T>* reg) {
  int64_t size = 1;
  int64_t corner[3] = {cell[0], cell[1], cell[2]};
  if (g.blocks != nullptr) {
    const int64_t nb = g.res / kBlock;
    if (!g.blocks[((cell[0] / kBlock) * nb + cell[1] / kBlock) * nb + cell[2] / kBlock]) {
      size = kBlock;
      for (int c = 0; c < 3; ++c) corner[c] = cell[c] - cell[c] % kBlock;
    }
  }
  for (int c = 0; c < 3; ++c) {
    reg->lo[c] = static_cast<T>(corner[c]);
    reg->hi[c] = static_cast<T>(corner[c] + size);
  }
}

// The region outside the grid that a midpoint x (not in_grid) lies in: one component beyond
// the grid, the one the ray stays beyond the longest (forever when it moves away or parallel).
// Returns false only for NaN coordinates (then no candidate of the ray can be occupied either).
template <typename T>
NH_HD bool outside_region(const Ray<T>& r, const Grid<T>& g, const RayAux& a, const T* x, Region<T>* reg) {
  const T res = static_cast<T>(g.res);
  int best = -1;
  double best_q = -INFINITY;
  for (int c = 0; c < 3; ++c) {
    const bool below = x[c] < T(0);
    const bool above = x[c] >= res;
    if (!below && !above) continue;
    double q = INFINITY;
    if (below && r.d[c] > T(0)) q = a.kb[c];  // coordinate 0
    if (above && r.d[c] < T(0)) q = static_cast<double>(g.res) * a.ka[c] + a.kb[c];
    if (best < 0 || q > best_q) {
      best = c;
      best_q = q;
    }
  }
  if (best < 0) return false;
  for (int c = 0; c < 3; ++c) {
    reg->lo[c] = -infinity<T>();
    reg->hi[c] = infinity<T>();
  }
  if (x[best] < T(0)) {
    reg->hi[best] = T(0);
  } else {
    reg->lo[best] = res;
  }
  return true;
}

// March one ray from candidate k_begin, emitting at most max_samples samples (the first ones).
// Counting pass: t_starts == nullptr (k_first, if given, receives the first emitted candidate).
// Writing pass: the intervals go to t_starts/t_ends and ray_id to ray_indices (pointers at this
// ray's offset). Returns the number of samples emitted.
template <typename T>
NH_HD int64_t march_ray(const Ray<T>& r, const Grid<T>& g, int64_t k_begin, int64_t max_samples, int64_t ray_id,
                        int64_t* k_first, T* t_starts, T* t_ends, int64_t* ray_indices) {
  if (!is_finite(r.t_near) || !is_finite(r.t_far) || max_samples <= 0) return 0;
  const RayAux a = ray_aux(r, g);
  const int64_t res = g.res;
  int64_t count = 0;
  int64_t k = k_begin;
  T t0, t1, x[3];
  Region<T> reg;
  while (count < max_samples) {
    if (!eval_candidate(r, g, k, &t0, &t1, x)) break;
    if (in_grid(g, x)) {
      const int64_t cell[3] = {static_cast<int64_t>(x[0]), static_cast<int64_t>(x[1]), static_cast<int64_t>(x[2])};
      if (bit_is_set(g.bits, (cell[0] * res + cell[1]) * res + cell[2])) {
        if (t_starts != nullptr) {
          t_starts[count] = t0;
          t_ends[count] = t1;
          ray_indices[count] = ray_id;
        } else if (count == 0 && k_first != nullptr) {
          *k_first = k;
        }
        ++count;
        ++k;
        continue;
      }
      cell_region(g, cell, &reg);
    } else if (!outside_region(r, g, a, x, &reg)) {
      break;
    }
    k = skip_region(r, g, a, reg, k);
  }
  return count;
}

}  // namespace raymarch
}  // namespace nh
