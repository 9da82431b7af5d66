// Host entry points of the 'raymarch' family: ray/box intersection, occupancy grid update and
// lookup, occupancy-guided ray marching. CPU tensors run the NH_HD functions of raymarch.h over
// at::parallel_for; CUDA tensors go to raymarch_cuda.cu (built with -DNERFHEAD_WITH_CUDA).
// Inputs are validated in Python (nerfhead/ops/raymarch.py, occupancy.py) before they get here;
// the TORCH_CHECKs below only guard against a caller that bypasses it.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "raymarch.h"
#include "raymarch_grid.h"

namespace rm = nh::raymarch;

#ifdef NERFHEAD_WITH_CUDA
namespace nh {
namespace raymarch {
std::vector<at::Tensor> ray_aabb_cuda(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& aabb,
                                      double near);
std::vector<at::Tensor> march_rays_cuda(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& t_near,
                                        const at::Tensor& t_far, const at::Tensor& jitter, const at::Tensor& bitfield,
                                        int64_t res, const std::vector<double>& geometry, double step,
                                        int64_t max_samples);
at::Tensor grid_update_cuda(at::Tensor density, at::Tensor bitfield, const at::Tensor& indices,
                            const at::Tensor& values, double decay, double threshold);
at::Tensor occupied_cuda(const at::Tensor& points, const at::Tensor& bitfield, int64_t res,
                         const std::vector<double>& geometry);
}  // namespace raymarch
}  // namespace nh
#endif

namespace {

void check_cpu_or_cuda(const at::Tensor& t, const char* op) {
#ifdef NERFHEAD_WITH_CUDA
  TORCH_CHECK(t.device().is_cpu() || t.device().is_cuda(), op, ": tensors must be on the CPU or a CUDA device");
#else
  TORCH_CHECK(t.device().is_cpu(), op, ": this build of the nerfhead 'raymarch' kernels has no CUDA support; got a ",
              t.device().str(), " tensor (move it to the CPU, or use a CUDA build of torch with nvcc)");
#endif
}

// Block flags of the grid (undefined when R is not a multiple of the block size): the same flags
// as rm::block_flag, computed in one sequential pass over the bitfield, 8 bytes at a time. A row
// of cells (ix, iy, all z) is R / 8 = nb bytes, byte bz covering block bz along z, and the
// kBlock rows iy = by * kBlock ... of one ix are contiguous: OR-ing them, over the kBlock ix of
// block row bx, gives the nb block bytes of (bx, by).
at::Tensor block_flags(const at::Tensor& bitfield, int64_t res) {
  if (res % rm::kBlock != 0) return at::Tensor();
  const int64_t nb = res / rm::kBlock;
  at::Tensor blocks = at::empty({nb * nb * nb}, bitfield.options());
  const uint8_t* bits = bitfield.data_ptr<uint8_t>();
  uint8_t* out = blocks.data_ptr<uint8_t>();
  constexpr int64_t kMaxBytes = 1024 / rm::kBlock;  // nb for R = 1024, the largest resolution
  TORCH_CHECK(nb <= kMaxBytes, "block_flags: resolution above 1024");
  at::parallel_for(0, nb, 1, [&](int64_t begin, int64_t end) {
    uint8_t acc[kMaxBytes];
    for (int64_t bx = begin; bx < end; ++bx) {
      for (int64_t by = 0; by < nb; ++by) {
        std::memset(acc, 0, sizeof(acc));
        for (int64_t ix = bx * rm::kBlock; ix < (bx + 1) * rm::kBlock; ++ix) {
          const uint8_t* rows = bits + (ix * res + by * rm::kBlock) * nb;  // kBlock rows of nb bytes
          for (int y = 0; y < rm::kBlock; ++y) {
            const uint8_t* row = rows + y * nb;
            int64_t i = 0;
            for (; i + 8 <= nb; i += 8) {
              uint64_t a, b;
              std::memcpy(&a, acc + i, 8);
              std::memcpy(&b, row + i, 8);
              a |= b;
              std::memcpy(acc + i, &a, 8);
            }
            for (; i < nb; ++i) acc[i] |= row[i];
          }
        }
        uint8_t* flags = out + (bx * nb + by) * nb;
        for (int64_t bz = 0; bz < nb; ++bz) flags[bz] = acc[bz] != 0;
      }
    }
  });
  return blocks;
}

constexpr int64_t kRayGrain = 64;
constexpr int64_t kCellGrain = 4096;

// ------------------------------------------------------------------ ray / box

std::vector<at::Tensor> ray_aabb(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& aabb,
                                 double near) {
  check_cpu_or_cuda(origins, "ray_aabb");
#ifdef NERFHEAD_WITH_CUDA
  if (origins.is_cuda()) return rm::ray_aabb_cuda(origins, dirs, aabb, near);
#endif
  const int64_t n = origins.size(0);
  at::Tensor t_near = at::empty({n}, origins.options());
  at::Tensor t_far = at::empty({n}, origins.options());
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ray_aabb", [&] {
    const scalar_t* o = origins.data_ptr<scalar_t>();
    const scalar_t* d = dirs.data_ptr<scalar_t>();
    const scalar_t* box = aabb.data_ptr<scalar_t>();
    scalar_t* tn = t_near.data_ptr<scalar_t>();
    scalar_t* tf = t_far.data_ptr<scalar_t>();
    const scalar_t nr = static_cast<scalar_t>(near);
    at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) rm::ray_aabb(o + 3 * i, d + 3 * i, box, nr, tn + i, tf + i);
    });
  });
  return {t_near, t_far};
}

// ------------------------------------------------------------------ ray marching

// Returns ray_indices (S,), t_starts (S,), t_ends (S,), packed_info (N, 2).
std::vector<at::Tensor> march_rays(const at::Tensor& origins, const at::Tensor& dirs, const at::Tensor& t_near,
                                   const at::Tensor& t_far, const c10::optional<at::Tensor>& jitter,
                                   const at::Tensor& bitfield, int64_t res, const std::vector<double>& geometry,
                                   double step, int64_t max_samples) {
  check_cpu_or_cuda(origins, "march_rays");
  const at::Tensor jit = jitter.has_value() ? *jitter : at::Tensor();
#ifdef NERFHEAD_WITH_CUDA
  if (origins.is_cuda()) {
    return rm::march_rays_cuda(origins, dirs, t_near, t_far, jit, bitfield, res, geometry, step, max_samples);
  }
#endif
  const int64_t n = origins.size(0);
  at::Tensor packed_info = at::empty({n, 2}, origins.options().dtype(at::kLong));
  at::Tensor k_first = at::zeros({n}, origins.options().dtype(at::kLong));
  at::Tensor ray_indices, t_starts, t_ends;
  const at::Tensor blocks = block_flags(bitfield, res);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_rays", [&] {
    const scalar_t* o = origins.data_ptr<scalar_t>();
    const scalar_t* d = dirs.data_ptr<scalar_t>();
    const scalar_t* tn = t_near.data_ptr<scalar_t>();
    const scalar_t* tf = t_far.data_ptr<scalar_t>();
    const scalar_t* jp = jit.defined() ? jit.data_ptr<scalar_t>() : nullptr;
    const scalar_t dt = static_cast<scalar_t>(step);
    const rm::Grid<scalar_t> g = rm::make_grid<scalar_t>(bitfield, blocks, res, geometry);
    int64_t* info = packed_info.data_ptr<int64_t>();
    int64_t* kf = k_first.data_ptr<int64_t>();
    // Pass 1: samples per ray (into packed_info[:, 1]) and each ray's first sampled candidate.
    at::parallel_for(0, n, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const rm::Ray<scalar_t> r = rm::load_ray(o, d, tn, tf, jp, dt, i);
        info[2 * i + 1] = rm::march_ray<scalar_t>(r, g, 0, max_samples, i, kf + i, nullptr, nullptr, nullptr);
      }
    });
    // Exclusive scan (serial: N additions).
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
      info[2 * i] = total;
      total += info[2 * i + 1];
    }
    ray_indices = at::empty({total}, origins.options().dtype(at::kLong));
    t_starts = at::empty({total}, origins.options());
    t_ends = at::empty({total}, origins.options());
    int64_t* ri = ray_indices.data_ptr<int64_t>();
    scalar_t* ts = t_starts.data_ptr<scalar_t>();
    scalar_t* te = t_ends.data_ptr<scalar_t>();
    // Pass 2: the same march from each ray's first sample, writing its samples.
    at::parallel_for(0, n, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t count = info[2 * i + 1];
        if (count == 0) continue;
        const int64_t off = info[2 * i];
        const rm::Ray<scalar_t> r = rm::load_ray(o, d, tn, tf, jp, dt, i);
        rm::march_ray<scalar_t>(r, g, kf[i], count, i, nullptr, ts + off, te + off, ri + off);
      }
    });
  });
  return {ray_indices, t_starts, t_ends, packed_info};
}

// ------------------------------------------------------------------ occupancy grid

// Fused grid update: density[idx] = max(density[idx] * decay, values), threshold =
// min(mean(density), cap), bitfield = density > threshold. In place; returns the threshold
// (0-dim float32).
at::Tensor grid_update(at::Tensor density, at::Tensor bitfield, const at::Tensor& indices, const at::Tensor& values,
                       double decay, double threshold) {
  check_cpu_or_cuda(density, "grid_update");
#ifdef NERFHEAD_WITH_CUDA
  if (density.is_cuda()) return rm::grid_update_cuda(density, bitfield, indices, values, decay, threshold);
#endif
  float* grid = density.data_ptr<float>();
  uint8_t* bits = bitfield.data_ptr<uint8_t>();
  const int64_t* idx = indices.data_ptr<int64_t>();
  const float* val = values.data_ptr<float>();
  const int64_t m = indices.numel();
  const int64_t n_cells = density.numel();
  const int64_t n_bytes = bitfield.numel();
  const float dec = static_cast<float>(decay);
  at::parallel_for(0, m, kCellGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) rm::update_cell(grid, idx[i], val[i], dec);
  });
  const double sum = at::parallel_reduce(
      0, n_cells, 1 << 16, 0.0,
      [&](int64_t begin, int64_t end, double acc) {
        // Eight independent double accumulators (vectorisable, no reassociation needed).
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = begin;
        for (; i + 8 <= end; i += 8) {
          for (int l = 0; l < 8; ++l) lanes[l] += static_cast<double>(grid[i + l]);
        }
        for (; i < end; ++i) acc += static_cast<double>(grid[i]);
        for (int l = 0; l < 8; ++l) acc += lanes[l];
        return acc;
      },
      [](double a, double b) { return a + b; });
  const float thr = rm::grid_threshold(sum, n_cells, static_cast<float>(threshold));
  at::parallel_for(0, n_bytes, kCellGrain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) bits[b] = rm::pack_byte(grid, b, thr);
  });
  return at::full({}, thr, density.options());
}

at::Tensor occupied(const at::Tensor& points, const at::Tensor& bitfield, int64_t res,
                    const std::vector<double>& geometry) {
  check_cpu_or_cuda(points, "occupied");
#ifdef NERFHEAD_WITH_CUDA
  if (points.is_cuda()) return rm::occupied_cuda(points, bitfield, res, geometry);
#endif
  const int64_t n = points.size(0);
  at::Tensor out = at::empty({n}, points.options().dtype(at::kBool));
  bool* o = out.data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "occupied", [&] {
    const scalar_t* p = points.data_ptr<scalar_t>();
    const rm::Grid<scalar_t> g = rm::make_grid<scalar_t>(bitfield, at::Tensor(), res, geometry);
    at::parallel_for(0, n, 2048, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = rm::occupied_at(g, p + 3 * i);
    });
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nerfhead raymarch kernels: ray/box intersection, occupancy grid update/lookup, ray marching";
  m.attr("with_cuda") = pybind11::bool_(nh::built_with_cuda());
  m.def("ray_aabb", &ray_aabb, "slab intersection -> (t_near, t_far); misses get +inf, +inf");
  m.def("march_rays", &march_rays, "occupancy-guided ray marching -> (ray_indices, t_starts, t_ends, packed_info)");
  m.def("grid_update", &grid_update, "fused occupancy grid update + bit packing (in place) -> threshold");
  m.def("occupied", &occupied, "occupancy lookup of world points -> bool");
}
