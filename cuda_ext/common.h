// Shared helpers for nerfhead's kernels.
//
// Every op's per-element work is an NH_HD inline function in its family's header
// (hashgrid.h, raymarch.h, volrend.h). The family's *_cpu.cpp runs those functions over
// at::parallel_for (torch's intra-op OpenMP pool, so torch.set_num_threads applies) and its
// *_cuda.cu launches them on the GPU. This header holds what all families share.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define NH_HD __host__ __device__ __forceinline__
#else
#define NH_HD inline
#endif

namespace nh {

// Atomic add on a float/double in memory shared between threads (CPU) or blocks (GPU).
template <typename T>
NH_HD void atomic_add(T* addr, T value) {
#if defined(__CUDA_ARCH__)
  atomicAdd(addr, value);
#else
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomic_add: float or double");
  using Bits = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  Bits* bits = reinterpret_cast<Bits*>(addr);
  Bits expected = __atomic_load_n(bits, __ATOMIC_RELAXED);
  while (true) {
    T current;
    std::memcpy(&current, &expected, sizeof(T));
    T updated = current + value;
    Bits desired;
    std::memcpy(&desired, &updated, sizeof(T));
    if (__atomic_compare_exchange_n(bits, &expected, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return;
  }
#endif
}

// Whether this build of an extension has its CUDA kernels compiled in.
constexpr bool built_with_cuda() {
#ifdef NERFHEAD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

template <typename T>
NH_HD T clamp(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace nh

