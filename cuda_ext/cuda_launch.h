// Launch helpers shared by the .cu files: one thread per element of a 1D range.
#pragma once

#include <cstdint>

namespace nh {

// Blocks of ``threads`` threads that cover ``n`` elements.
inline unsigned int blocks_for(int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

// This thread's element index in a 1D launch.
__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

}  // namespace nh
