// Host-side construction of the occupancy grid view (rm::Grid) that the marching kernels read;
// shared by raymarch_cpu.cpp and raymarch_cuda.cu.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "raymarch.h"

namespace nh {
namespace raymarch {

template <typename T>
Grid<T> make_grid(const at::Tensor& bitfield, const at::Tensor& blocks, int64_t res,
                  const std::vector<double>& geometry) {
  TORCH_CHECK(geometry.size() == 6, "grid geometry: expected 6 values (lo, scale)");
  Grid<T> g;
  g.bits = bitfield.data_ptr<uint8_t>();
  g.blocks = blocks.defined() ? blocks.data_ptr<uint8_t>() : nullptr;
  g.res = static_cast<int32_t>(res);
  for (int c = 0; c < 3; ++c) {
    g.lo[c] = static_cast<T>(geometry[c]);
    g.scale[c] = static_cast<T>(geometry[c + 3]);
    g.inv_scale[c] = 1.0 / static_cast<double>(g.scale[c]);
  }
  return g;
}

}  // namespace raymarch
}  // namespace nh
