// CPU shim: compile a (restricted) CUDA C kernel source as C++20 with g++, for semantics tests
// without a GPU.
//
// A launch runs the grid's blocks one after another; each block's threads are real std::threads,
// so __syncthreads() is a real barrier (std::barrier) and __shared__ (a function-local static)
// is shared by the block's threads exactly as on the device. What is checked beyond the results:
// every thread of a block must execute the same number of __syncthreads() (a thread that leaves
// early drops out of the barrier instead of deadlocking the others, and the launch reports the
// mismatch). Warps: the block's threads form warps of 32 consecutive threads (the last one maybe
// partial) and __shfl_down_sync(mask, v, delta) is a real exchange among them (a slot per lane and
// a barrier of the warp's threads, twice per shuffle). Checked: the mask must name exactly the
// warp's existing lanes, every lane must run the same number of shuffles, and a value read from a
// lane that does not exist (undefined on the device) is poisoned (NaN, or 0x5a5a... for integers)
// so that a kernel using it fails its comparison. Not emulated: other warp intrinsics, atomics,
// dynamic shared memory, memory fences, y/z dimensions of the launch, uninitialised shared memory
// (statics persist between blocks; kernels must not rely on either).
//
// Usage: #include "cuda_shim.h", then the kernel source, then a launcher:
//     cuda_shim::launch(grid, block, [&] { kernel(args...); })   -> 0, or 1 on non-uniform syncs
#pragma once

#include <math.h>

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};
using uint3 = dim3;

namespace cuda_shim {

inline thread_local dim3 thread_idx{0, 0, 0};
inline thread_local dim3 block_idx{0, 0, 0};
inline thread_local dim3 block_dim{1, 1, 1};
inline thread_local dim3 grid_dim{1, 1, 1};
inline thread_local std::barrier<>* block_barrier = nullptr;
inline thread_local long sync_count = 0;

inline void syncthreads()
{
    ++sync_count;
    block_barrier->arrive_and_wait();
}

// One warp of a block: its lane count, an exchange slot per lane and a barrier of its threads.
struct Warp {
    explicit Warp(unsigned n) : lanes(n), bar(static_cast<std::ptrdiff_t>(n)) {}
    unsigned lanes;
    std::barrier<> bar;
    unsigned char slot[32][8] = {};
    std::atomic<int> bad_mask{0};
};

inline thread_local Warp* warp = nullptr;
inline thread_local long shfl_count = 0;

template <class T>
T shfl_down_sync(unsigned mask, T v, unsigned delta)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a value wider than 8 bytes");
    const unsigned lane = thread_idx.x % 32;
    const unsigned want = warp->lanes == 32 ? 0xffffffffu : ((1u << warp->lanes) - 1u);
    if (mask != want) {
        warp->bad_mask = 1;
    }
    ++shfl_count;
    std::memcpy(warp->slot[lane], &v, sizeof(T));
    warp->bar.arrive_and_wait();                // every lane has published its value
    T out = v;                                  // source lane >= 32: the caller's own value
    const unsigned src = lane + delta;
    if (src < 32) {
        if (src < warp->lanes) {
            std::memcpy(&out, warp->slot[src], sizeof(T));
        } else if constexpr (std::is_floating_point_v<T>) {
            out = std::numeric_limits<T>::quiet_NaN();     // undefined on the device
        } else {
            std::memset(&out, 0x5a, sizeof(T));
        }
    }
    warp->bar.arrive_and_wait();                // every lane has read before the slots are reused
    return out;
}

// Run `body` (which calls the kernel) as a grid of `grid` blocks of `block` threads.
// Returns 0, or 1 when some block's threads executed different numbers of __syncthreads().
template <class F>
int launch(unsigned grid, unsigned block, F&& body)
{
    int status = 0;
    for (unsigned bx = 0; bx < grid; ++bx) {
        std::barrier<> bar(static_cast<std::ptrdiff_t>(block));
        std::vector<long> counts(block, -1), shfls(block, -1);
        std::vector<std::unique_ptr<Warp>> warps;
        for (unsigned w0 = 0; w0 < block; w0 += 32) {
            warps.push_back(std::make_unique<Warp>(block - w0 < 32 ? block - w0 : 32));
        }
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned t = 0; t < block; ++t) {
            threads.emplace_back([&, t] {
                thread_idx = dim3{t, 0, 0};
                block_idx = dim3{bx, 0, 0};
                block_dim = dim3{block, 1, 1};
                grid_dim = dim3{grid, 1, 1};
                block_barrier = &bar;
                warp = warps[t / 32].get();
                sync_count = 0;
                shfl_count = 0;
                body();
                counts[t] = sync_count;
                shfls[t] = shfl_count;
                bar.arrive_and_drop();          // leaving early must not deadlock the others
                warp->bar.arrive_and_drop();
            });
        }
        for (auto& th : threads) {
            th.join();
        }
        for (unsigned t = 1; t < block; ++t) {
            if (counts[t] != counts[0]) {
                std::fprintf(stderr, "cuda_shim: block %u: thread %u ran %ld __syncthreads(), thread 0 ran %ld\n",
                             bx, t, counts[t], counts[0]);
                status = 1;
            }
            if (shfls[t] != shfls[t - t % 32]) {
                std::fprintf(stderr, "cuda_shim: block %u: lane %u ran %ld shuffles, its warp's lane 0 ran %ld\n",
                             bx, t, shfls[t], shfls[t - t % 32]);
                status = 1;
            }
        }
        for (auto& w : warps) {
            if (w->bad_mask) {
                std::fprintf(stderr, "cuda_shim: block %u: a shuffle mask does not name exactly its warp's %u lanes\n",
                             bx, w->lanes);
                status = 1;
            }
        }
    }
    return status;
}

}  // namespace cuda_shim

#define threadIdx cuda_shim::thread_idx
#define blockIdx cuda_shim::block_idx
#define blockDim cuda_shim::block_dim
#define gridDim cuda_shim::grid_dim
#define __syncthreads() cuda_shim::syncthreads()
#define __shfl_down_sync(mask, v, delta) cuda_shim::shfl_down_sync((mask), (v), (unsigned)(delta))
// round-to-nearest products that the device never contracts into an FMA; the host build has no FMA
// contraction either (x86-64 without -mfma)
#define __fmul_rn(x, y) ((float)(x) * (float)(y))
#define __dmul_rn(x, y) ((double)(x) * (double)(y))

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
