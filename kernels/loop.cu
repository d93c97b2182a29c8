// Raw CUDA C kernels of the engine's per-iteration path (references: sampling_numpy, coupling_numpy,
// update_numpy): on a GPU they replace the Numba-CUDA twins, whose dispatch from Python costs several
// times a CuPy raw launch.
//
// This file is not compiled on its own: kernels/cuda_raw_loop.py prepends a generated preamble that
// defines
//     real_t         float or double (typedef): the state dtype
//     LOOP_BLOCK     threads per block of every kernel here (launch with exactly this)
// The same text compiles as C++ on the CPU through tests/shim/cuda_shim.h (semantics tests): no CUDA
// headers, no atomics; every thread of a block executes the same sequence of __syncthreads() (the row
// loop of `coarse` depends on blockIdx only).
//
// Layout (C order, run axis first): comp_base, noise_base (B,) uint64; means (B, K, d), cum, stds (B, K)
// float64; samples out (S, B, d, m); G, V, X, out (B, d, N) (the update sees them as (B, n));
// g1, g2 (B,) float64; lr (B,) real_t; alive (B,) bool (one byte); diverged (B,) int64; bad (B,) uint8.

typedef unsigned long long fg_u64;

// ---------------------------------------------------------------------------------------------
// The counter-based generator of kernels/rng.py (the same arithmetic: SplitMix64 finaliser, keys
// per (iteration, sub-step), 53-bit uniforms, Box-Muller normals on index pairs in float64).

#define FG_GOLDEN 0x9E3779B97F4A7C15ull
#define FG_TWO_M53 (1.0 / 9007199254740992.0)
#define FG_TWO_PI 6.283185307179586

__device__ __forceinline__ fg_u64 fg_mix64(fg_u64 z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ fg_u64 fg_step_key(fg_u64 base, long long iteration, long long sub_step)
{
    const fg_u64 k = fg_mix64((base ^ (fg_u64)iteration) + FG_GOLDEN);
    return fg_mix64((k ^ (fg_u64)sub_step) + FG_GOLDEN);
}

__device__ __forceinline__ fg_u64 fg_bits(fg_u64 key, fg_u64 index)
{
    return fg_mix64(key + (index + 1ull) * FG_GOLDEN);
}

__device__ __forceinline__ double fg_uniform(fg_u64 key, fg_u64 index)
{
    return (double)(fg_bits(key, index) >> 11) * FG_TWO_M53;
}

__device__ __forceinline__ double fg_normal(fg_u64 key, fg_u64 index)
{
    const fg_u64 j = index >> 1;
    const double u1 = 1.0 - (double)(fg_bits(key, 2 * j) >> 11) * FG_TWO_M53;     // (0, 1]
    const double u2 = (double)(fg_bits(key, 2 * j + 1) >> 11) * FG_TWO_M53;
    const double r = sqrt(-2.0 * log(u1));
    return (index & 1ull) ? r * sin(FG_TWO_PI * u2) : r * cos(FG_TWO_PI * u2);
}

__device__ __forceinline__ float fg_mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double fg_mul_rn(double x, double y) { return __dmul_rn(x, y); }

// ---------------------------------------------------------------------------------------------
// sample_steps: the target batches of sub-steps first .. first + S - 1 of one iteration, one thread
// per (sub-step, run, sample), grid-stride. mean + std * normal in float64 with the product not
// contracted into an FMA (as the reference), rounded once to real_t.

extern "C" __global__ void sample_steps(const fg_u64* comp_base, const fg_u64* noise_base, long long iteration,
                                        long long first, const double* means, const double* cum, const double* stds,
                                        real_t* out, int S, int B, int K, int d, int m)
{
    const long long total = (long long)S * B * m;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long s = t / ((long long)B * m);
        const int r = (int)((t / m) % B);
        const int k = (int)(t % m);
        const fg_u64 kc = fg_step_key(comp_base[r], iteration, first + s);
        const fg_u64 kn = fg_step_key(noise_base[r], iteration, first + s);
        const double u = fg_uniform(kc, (fg_u64)k);
        int c = 0;
        for (int q = 0; q < K; ++q) {                // the count of cum <= u, as the reference
            if (cum[(long long)r * K + q] <= u) {
                ++c;
            }
        }
        if (c > K - 1) {
            c = K - 1;
        }
        const double sd = stds[(long long)r * K + c];
        const double* mu = means + ((long long)r * K + c) * d;
        real_t* o = out + ((s * B + r) * d) * (long long)m + k;
        for (int j = 0; j < d; ++j) {
            o[(long long)j * m] = (real_t)(mu[j] + __dmul_rn(sd, fg_normal(kn, (fg_u64)k * d + j)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// coarse: V = kappa G + g2 <G> with kappa = (g1 - g2) / N, one block per (run, coordinate) row
// (grid-stride over rows): the row mean by a fixed pairwise tree in shared memory (deterministic for
// a given LOOP_BLOCK), float64 throughout, rounded once to real_t.

extern "C" __global__ void coarse(const real_t* G, const double* g1, const double* g2, real_t* out, int B, int d,
                                  int N)
{
    __shared__ double part[LOOP_BLOCK];
    const int tid = threadIdx.x;
    for (long long row = blockIdx.x; row < (long long)B * d; row += gridDim.x) {
        const int r = (int)(row / d);
        const real_t* g = G + row * N;
        double acc = 0.0;
        for (int c = tid; c < N; c += LOOP_BLOCK) {
            acc += (double)g[c];
        }
        __syncthreads();                             // earlier readers of part are done
        part[tid] = acc;
        for (int stride = 1; stride < LOOP_BLOCK; stride *= 2) {
            __syncthreads();
            if (tid % (2 * stride) == 0 && tid + stride < LOOP_BLOCK) {
                part[tid] += part[tid + stride];
            }
        }
        __syncthreads();
        const double mean = part[0] / N;
        const double kappa = (g1[r] - g2[r]) / N;
        for (int c = tid; c < N; c += LOOP_BLOCK) {
            out[row * N + c] = (real_t)(kappa * (double)g[c] + g2[r] * mean);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generator's update and the per-run blow-up check, X (B, n):
//   update_advance   out = X + lr V for a live run (the product not contracted: bitwise the
//                    reference), X for a dead one; bad[r] = 1 for a dead run or a non-finite entry;
//   flag_nonfinite_* bad[r] = 1 where a parameter array (B, n_p) of float / double has a non-finite
//                    entry (one launch per parameter array);
//   update_settle    a bad run takes X back; the first thread of each run turns a live bad run dead
//                    (alive 0, diverged = iteration); only that thread touches alive / diverged.
// Every writer of bad stores the same value, so the order of the writes does not matter.

extern "C" __global__ void update_advance(const real_t* X, const real_t* V, const real_t* lr,
                                          const unsigned char* alive, unsigned char* bad, real_t* out, int B,
                                          long long n)
{
    const long long total = (long long)B * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int r = (int)(t / n);
        if (alive[r]) {
            const real_t y = X[t] + fg_mul_rn(lr[r], V[t]);
            out[t] = y;
            if (!isfinite(y)) {
                bad[r] = 1;
            }
        } else {
            out[t] = X[t];
            bad[r] = 1;
        }
    }
}

extern "C" __global__ void flag_nonfinite_f32(const float* p, int B, long long n, unsigned char* bad)
{
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (long long)B * n; t += step) {
        if (!isfinite(p[t])) {
            bad[t / n] = 1;
        }
    }
}

extern "C" __global__ void flag_nonfinite_f64(const double* p, int B, long long n, unsigned char* bad)
{
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (long long)B * n; t += step) {
        if (!isfinite(p[t])) {
            bad[t / n] = 1;
        }
    }
}

extern "C" __global__ void update_settle(const real_t* X, const unsigned char* bad, unsigned char* alive,
                                         long long* diverged, long long iteration, real_t* out, int B, long long n)
{
    const long long total = (long long)B * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int r = (int)(t / n);
        if (bad[r]) {
            out[t] = X[t];
            if (t % n == 0 && alive[r]) {
                alive[r] = 0;
                diverged[r] = iteration;
            }
        }
    }
}
