// CPU shim: compile a (restricted) CUDA C kernel source as C++20 with g++, for semantics tests
// without a GPU.
//
// A launch runs the grid's blocks one after another; each block's threads are real std::threads,
// so __syncthreads() is a real barrier (std::barrier) and __shared__ (a function-local static)
// is shared by the block's threads exactly as on the device. What is checked beyond the results:
// every thread of a block must execute the same number of __syncthreads() (a thread that leaves
// early drops out of the barrier instead of deadlocking the others, and the launch reports the
// mismatch). Not emulated: warps and warp intrinsics, atomics, dynamic shared memory, memory
// fences, y/z dimensions of the launch, uninitialised shared memory (statics persist between
// blocks; kernels must not rely on either).
//
// Usage: #include "cuda_shim.h", then the kernel source, then a launcher:
//     cuda_shim::launch(grid, block, [&] { kernel(args...); })   -> 0, or 1 on non-uniform syncs
#pragma once

#include <math.h>

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdio>
#include <thread>
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

// Run `body` (which calls the kernel) as a grid of `grid` blocks of `block` threads.
// Returns 0, or 1 when some block's threads executed different numbers of __syncthreads().
template <class F>
int launch(unsigned grid, unsigned block, F&& body)
{
    int status = 0;
    for (unsigned bx = 0; bx < grid; ++bx) {
        std::barrier<> bar(static_cast<std::ptrdiff_t>(block));
        std::vector<long> counts(block, -1);
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned t = 0; t < block; ++t) {
            threads.emplace_back([&, t] {
                thread_idx = dim3{t, 0, 0};
                block_idx = dim3{bx, 0, 0};
                block_dim = dim3{block, 1, 1};
                grid_dim = dim3{grid, 1, 1};
                block_barrier = &bar;
                sync_count = 0;
                body();
                counts[t] = sync_count;
                bar.arrive_and_drop();          // leaving early must not deadlock the others
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

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
