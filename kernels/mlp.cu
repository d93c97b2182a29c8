// Raw CUDA C kernels of the one-hidden-layer MLP discriminator (reference: mlp_numpy.py).
//
//     D(x) = s sum_i a_i sigma(w_i . x + b_i),   s = sqrt(2 / W)
//
// This file is not compiled on its own: kernels/cuda_raw.py prepends a generated preamble that
// defines
//     real_t         float or double (typedef)
//     DIM            data dimension d (1, 2, 3, ...)
//     ACT            ACT_RELU or ACT_TANH
//     HAS_U          1 when the regulariser cotangent u (B, d, N) enters the step, else 0
//     OPT            1 when the step is the adaptive update (RMSProp / Adam, kernels/optim.py), else 0
//     MLP_BLOCK      threads (hidden units) per block of mlp_disc_step; launch with exactly this
//     MLP_TILE       samples per shared-memory tile of mlp_disc_step
//     GX_BLOCK       threads per block of mlp_grad_x; launch with exactly this
//     GX_SAMPLES     samples per block (per task) of mlp_grad_x
// The same text compiles as C++ on the CPU through tests/shim/cuda_shim.h (semantics tests), so
// it uses no CUDA headers, no atomics and one warp intrinsic (__shfl_down_sync, emulated by the
// shim); every thread of a block executes the same sequence of __syncthreads() and every lane of
// a warp the same sequence of shuffles (the task loops depend on blockIdx only).
//
// Layout (C order, run axis first, feature-major samples):
//     w (B, DIM, W)  b, a (B, W)  xg, u (B, DIM, N)  xt (B, DIM, M)  lr, l2 (B,)  x, out (B, DIM, n)
//     moments mw, vw like w, mb, ma, vb, va like b, coefficients oc (B, 4)

#define ACT_RELU 0
#define ACT_TANH 1

#ifndef ACT
#error "ACT must be defined (ACT_RELU or ACT_TANH)"
#endif
#if !defined(DIM) || !defined(HAS_U) || !defined(OPT) || !defined(MLP_BLOCK) || !defined(MLP_TILE) || !defined(GX_BLOCK) || !defined(GX_SAMPLES)
#error "the cuda_raw preamble (DIM, HAS_U, MLP_BLOCK, MLP_TILE, GX_BLOCK, GX_SAMPLES) is missing"
#endif

// Launch bounds only where they are needed to keep a block launchable (> 256 threads), and with
// a minimum of one block per SM: `.maxntid` alone makes ptxas (CUDA 12.9 / 13.0) aim at a
// 40-64-register budget and spill even at d = 2; with `.minnctapersm 1` the budget is
// 65536 / threads (128 registers at 512), which the router's d limit (cuda_raw.reg_dim: halved per
// doubling beyond 256 threads) respects. Without bounds (<= 256 threads) up to 255 registers.
// See kernels/CUDA_C.md.
#if MLP_BLOCK > 256
#define MLP_BOUNDS __launch_bounds__(MLP_BLOCK, 1)
#else
#define MLP_BOUNDS
#endif
#if GX_BLOCK > 256
#define GX_BOUNDS __launch_bounds__(GX_BLOCK, 1)
#else
#define GX_BOUNDS
#endif

__device__ __forceinline__ float fg_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double fg_tanh(double x) { return tanh(x); }

__device__ __forceinline__ int fg_min(int x, int y) { return x < y ? x : y; }

__device__ __forceinline__ float fg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double fg_sqrt(double x) { return sqrt(x); }
// subnormals to zero (float32 on the GPU does it anyway under -ftz=true; kernels/optim.py)
__device__ __forceinline__ float fg_flush(float x) { return fabsf(x) < 1.17549435e-38f ? 0.0f : x; }
__device__ __forceinline__ double fg_flush(double x) { return fabs(x) < 2.2250738585072014e-308 ? 0.0 : x; }

// The adaptive update (kernels/optim.py) of parameter p[k] = x with gradient g (L2 term included) and
// moments m[k], v[k]; oc = the run's (b1, b2, eps, r), rate its (bias-corrected) step.
__device__ __forceinline__ void fg_adapt(real_t* __restrict__ p, real_t* __restrict__ m, real_t* __restrict__ v,
                                         long long k, real_t x, real_t g, real_t rate, const real_t* __restrict__ oc)
{
    const real_t one = (real_t)1;
    const real_t mk = fg_flush(oc[0] * m[k] + (one - oc[0]) * g);
    const real_t vk = fg_flush(oc[1] * v[k] + (one - oc[1]) * (g * g));
    m[k] = mk;
    v[k] = vk;
    p[k] = fg_flush(x - rate * mk / (fg_sqrt(vk) * oc[3] + oc[2]));
}

// ---------------------------------------------------------------------------------------------
// mlp_disc_step: one gradient-descent step on L_D (+ R through its cotangent u), in place.
//
// Task = (run r, tile of MLP_BLOCK hidden units); grid-stride over the B * ceil(W / MLP_BLOCK)
// tasks. Thread t owns unit i = tile * MLP_BLOCK + t (inactive when i >= W, but it still helps
// to stage samples and reaches every barrier). The block streams the generated samples (and u),
// then the target samples, through shared memory in tiles of MLP_TILE samples; each thread keeps
// its unit's parameters and the handful of per-unit sums of the gradient in registers:
//   ReLU: counts and masked sample sums (sum sigma = w . sum(m x) + b count; sigma'' = 0),
//         plus masked sums of u when HAS_U;
//   tanh: sum sigma, sum sigma', sum sigma' x, plus (HAS_U) sum sigma' (u.w), sum sigma'' (u.w),
//         sum (sigma'' (u.w) x + sigma' u).
// Runs with lr == 0 are skipped (block-uniform branch). No (B, n, W) temporary exists.
// ---------------------------------------------------------------------------------------------
extern "C" __global__ void MLP_BOUNDS
mlp_disc_step(real_t* __restrict__ w, real_t* __restrict__ b, real_t* __restrict__ a,
              const real_t* __restrict__ xg, const real_t* __restrict__ xt,
              const real_t* __restrict__ lr, const real_t* __restrict__ l2,
              const real_t* __restrict__ u,
              real_t* __restrict__ mw, real_t* __restrict__ mb, real_t* __restrict__ ma,
              real_t* __restrict__ vw, real_t* __restrict__ vb, real_t* __restrict__ va,
              const real_t* __restrict__ oc, int B, int W, int N, int M, real_t s)
{
#if !OPT
    (void)mw; (void)mb; (void)ma; (void)vw; (void)vb; (void)va; (void)oc;
#endif
    __shared__ real_t xs[DIM][MLP_TILE];
#if HAS_U
    __shared__ real_t us[DIM][MLP_TILE];
#else
    (void)u;
#endif
    const int t = (int)threadIdx.x;
    const int ntile = (W + MLP_BLOCK - 1) / MLP_BLOCK;
    const int ntask = B * ntile;                        // host guarantees ntask + gridDim.x < 2^31
    const real_t zero = (real_t)0;

    for (int task = (int)blockIdx.x; task < ntask; task += (int)gridDim.x) {
        const int r = task / ntile;
        const real_t step = lr[r];
        if (step == zero) {
            continue;                                   // block-uniform: no barrier skipped
        }
        const int i = (task - r * ntile) * MLP_BLOCK + t;
        const bool active = i < W;
        const int iu = active ? i : 0;                  // in-bounds index for inactive threads
        const long long pr = (long long)r * W;

        real_t wi[DIM];
#pragma unroll
        for (int j = 0; j < DIM; ++j) {
            wi[j] = active ? w[(pr * DIM) + (long long)j * W + iu] : zero;
        }
        const real_t bi = active ? b[pr + iu] : zero;
        const real_t ai = active ? a[pr + iu] : zero;

#if ACT == ACT_RELU
        int cg = 0, ct = 0;                             // sigma' sums (counts)
        real_t sxg[DIM], sxt[DIM];                      // sum sigma' x
#if HAS_U
        real_t su[DIM];                                 // sum sigma' u
#endif
#pragma unroll
        for (int j = 0; j < DIM; ++j) {
            sxg[j] = zero;
            sxt[j] = zero;
#if HAS_U
            su[j] = zero;
#endif
        }
#else
        real_t sg = zero, st = zero;                    // sum sigma
        real_t d1g = zero, d1t = zero;                  // sum sigma'
        real_t sxg[DIM], sxt[DIM];                      // sum sigma' x
#if HAS_U
        real_t p1 = zero, p2 = zero;                    // sum sigma' (u.w), sum sigma'' (u.w)
        real_t q[DIM];                                  // sum sigma'' (u.w) x + sigma' u
#endif
#pragma unroll
        for (int j = 0; j < DIM; ++j) {
            sxg[j] = zero;
            sxt[j] = zero;
#if HAS_U
            q[j] = zero;
#endif
        }
#endif

        // side 0: generated samples (and u); side 1: target samples
        for (int side = 0; side < 2; ++side) {
            const int n = side == 0 ? N : M;
            const real_t* __restrict__ x = (side == 0 ? xg : xt) + (long long)r * DIM * n;
#if HAS_U
            const real_t* __restrict__ ur = u + (long long)r * DIM * N;
#endif
            for (int base = 0; base < n; base += MLP_TILE) {
                const int cnt = fg_min(MLP_TILE, n - base);
                __syncthreads();                        // previous tile fully consumed
                for (int e = t; e < DIM * MLP_TILE; e += MLP_BLOCK) {
                    const int j = e / MLP_TILE;
                    const int k = e - j * MLP_TILE;
                    if (k < cnt) {
                        xs[j][k] = x[(long long)j * n + base + k];
#if HAS_U
                        if (side == 0) {
                            us[j][k] = ur[(long long)j * N + base + k];
                        }
#endif
                    }
                }
                __syncthreads();                        // tile staged
                if (active) {
                    for (int k = 0; k < cnt; ++k) {
                        real_t xk[DIM];
#pragma unroll
                        for (int j = 0; j < DIM; ++j) {
                            xk[j] = xs[j][k];
                        }
                        real_t h = xk[0] * wi[0];
#pragma unroll
                        for (int j = 1; j < DIM; ++j) {
                            h += xk[j] * wi[j];
                        }
                        h += bi;
#if ACT == ACT_RELU
                        // mask as a 0/1 factor (not a branch): predicated, and NaN samples
                        // propagate like the reference's m * x
                        const bool on = h > zero;
                        const real_t m = on ? (real_t)1 : zero;
                        if (side == 0) {
                            cg += on ? 1 : 0;
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                sxg[j] += m * xk[j];
#if HAS_U
                                su[j] += m * us[j][k];
#endif
                            }
                        } else {
                            ct += on ? 1 : 0;
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                sxt[j] += m * xk[j];
                            }
                        }
#else
                        const real_t th = fg_tanh(h);
                        const real_t s1 = (real_t)1 - th * th;
                        if (side == 0) {
                            sg += th;
                            d1g += s1;
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                sxg[j] += s1 * xk[j];
                            }
#if HAS_U
                            const real_t s2 = (real_t)(-2) * th * s1;
                            real_t uk[DIM];
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                uk[j] = us[j][k];
                            }
                            real_t uw = uk[0] * wi[0];
#pragma unroll
                            for (int j = 1; j < DIM; ++j) {
                                uw += uk[j] * wi[j];
                            }
                            p1 += s1 * uw;
                            p2 += s2 * uw;
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                q[j] += s2 * uw * xk[j] + s1 * uk[j];
                            }
#endif
                        } else {
                            st += th;
                            d1t += s1;
#pragma unroll
                            for (int j = 0; j < DIM; ++j) {
                                sxt[j] += s1 * xk[j];
                            }
                        }
#endif
                    }
                }
            }
        }

        if (active) {
            const real_t rn = (real_t)N;
            const real_t rm = (real_t)M;
            const real_t sa = s * ai;
#if ACT == ACT_RELU
            const real_t k0 = (real_t)cg / rn - (real_t)ct / rm;     // <sigma'>_gen - <sigma'>_tgt
            real_t kx[DIM];                                          // <sigma' x>_gen - <sigma' x>_tgt
            real_t wk = zero;
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                kx[j] = sxg[j] / rn - sxt[j] / rm;
                wk += wi[j] * kx[j];
            }
            real_t ga = s * (wk + bi * k0);                          // s (<sigma>_gen - <sigma>_tgt)
            const real_t gb = sa * k0;
            real_t gw[DIM];
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                gw[j] = sa * kx[j];
            }
#if HAS_U
            real_t wu = zero;
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                wu += wi[j] * su[j];
                gw[j] += sa * su[j];
            }
            ga += s * wu;
#endif
#else
            real_t ga = s * (sg / rn - st / rm);
            real_t gb = sa * (d1g / rn - d1t / rm);
            real_t gw[DIM];
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                gw[j] = sa * (sxg[j] / rn - sxt[j] / rm);
            }
#if HAS_U
            ga += s * p1;
            gb += sa * p2;
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                gw[j] += sa * q[j];
            }
#endif
#endif
            const real_t c2 = (real_t)2 * l2[r];
#if OPT
            const real_t* ocr = oc + 4LL * r;
            fg_adapt(a, ma, va, pr + i, ai, ga + c2 * ai, step, ocr);
            fg_adapt(b, mb, vb, pr + i, bi, gb + c2 * bi, step, ocr);
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                fg_adapt(w, mw, vw, (pr * DIM) + (long long)j * W + i, wi[j], gw[j] + c2 * wi[j], step, ocr);
            }
#else
            a[pr + i] = ai - step * (ga + c2 * ai);
            b[pr + i] = bi - step * (gb + c2 * bi);
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                w[(pr * DIM) + (long long)j * W + i] = wi[j] - step * (gw[j] + c2 * wi[j]);
            }
#endif
        }
    }
}

// ---------------------------------------------------------------------------------------------
// mlp_grad_x: out (B, DIM, n) = s sum_i a_i sigma'(w_i . x + b_i) w_i at samples x (B, DIM, n).
//
// Task = (run r, chunk of GX_SAMPLES samples); grid-stride over B * ceil(n / GX_SAMPLES) tasks.
// The chunk's samples are staged in shared memory; thread t strides over hidden units
// i = t, t + GX_BLOCK, ..., reading each unit's parameters once for all GX_SAMPLES samples and
// accumulating DIM * GX_SAMPLES partial sums in registers (the host router, cuda_raw.route,
// picks GX_SAMPLES from DIM so that they stay in registers). The threads are combined in two
// fixed-order stages: a shuffle tree within each warp (__shfl_down_sync, offsets 16, 8, 4, 2, 1;
// a partial last warp masks its missing lanes), then warp 0's lanes ... the last warp's lanes in
// order through shared memory, red[DIM * GX_SAMPLES][GX_WARPS]: (GX_BLOCK / 32) values per
// output instead of GX_BLOCK. Deterministic: no atomics, the same order at every launch.
// ---------------------------------------------------------------------------------------------
#define GX_WARPS ((GX_BLOCK + 31) / 32)

extern "C" __global__ void GX_BOUNDS
mlp_grad_x(const real_t* __restrict__ w, const real_t* __restrict__ b,
           const real_t* __restrict__ a, const real_t* __restrict__ x,
           real_t* __restrict__ out, int B, int W, int n, real_t s)
{
    __shared__ real_t xs[DIM][GX_SAMPLES];
    __shared__ real_t red[DIM * GX_SAMPLES][GX_WARPS];
    const int t = (int)threadIdx.x;
    const int lane = t & 31;
    const int warp = t >> 5;
    const int nlane = fg_min(32, GX_BLOCK - warp * 32);           // lanes of this (maybe partial) warp
    const unsigned mask = nlane == 32 ? 0xffffffffu : ((1u << nlane) - 1u);
    const int nchunk = (n + GX_SAMPLES - 1) / GX_SAMPLES;
    const int ntask = B * nchunk;                       // host guarantees ntask + gridDim.x < 2^31
    const real_t zero = (real_t)0;

    for (int task = (int)blockIdx.x; task < ntask; task += (int)gridDim.x) {
        const int r = task / nchunk;
        const int k0 = (task - r * nchunk) * GX_SAMPLES;
        const int cnt = fg_min(GX_SAMPLES, n - k0);
        const real_t* __restrict__ xr = x + (long long)r * DIM * n;
        const long long pr = (long long)r * W;

        __syncthreads();                                // previous task's xs / red consumed
        for (int e = t; e < DIM * GX_SAMPLES; e += GX_BLOCK) {
            const int j = e / GX_SAMPLES;
            const int k = e - j * GX_SAMPLES;
            xs[j][k] = k < cnt ? xr[(long long)j * n + k0 + k] : zero;   // padded samples: x = 0
        }
        __syncthreads();

        real_t acc[DIM][GX_SAMPLES];
#pragma unroll
        for (int j = 0; j < DIM; ++j) {
#pragma unroll
            for (int k = 0; k < GX_SAMPLES; ++k) {
                acc[j][k] = zero;
            }
        }
        for (int i = t; i < W; i += GX_BLOCK) {
            real_t wi[DIM];
#pragma unroll
            for (int j = 0; j < DIM; ++j) {
                wi[j] = w[pr * DIM + (long long)j * W + i];
            }
            const real_t bi = b[pr + i];
            const real_t ai = a[pr + i];
#pragma unroll
            for (int k = 0; k < GX_SAMPLES; ++k) {
                real_t h = xs[0][k] * wi[0];
#pragma unroll
                for (int j = 1; j < DIM; ++j) {
                    h += xs[j][k] * wi[j];
                }
                h += bi;
#if ACT == ACT_RELU
                const real_t c = h > zero ? ai : zero;
#else
                const real_t th = fg_tanh(h);
                const real_t c = ai * ((real_t)1 - th * th);
#endif
#pragma unroll
                for (int j = 0; j < DIM; ++j) {
                    acc[j][k] += c * wi[j];
                }
            }
        }
        // stage 1: within each warp, lane 0 <- sum of the warp's lanes (every lane runs every shuffle)
#pragma unroll
        for (int j = 0; j < DIM; ++j) {
#pragma unroll
            for (int k = 0; k < GX_SAMPLES; ++k) {
                real_t v = acc[j][k];
#pragma unroll
                for (int off = 16; off > 0; off /= 2) {
                    const real_t o = __shfl_down_sync(mask, v, off);
                    if (lane + off < nlane) {
                        v += o;
                    }
                }
                if (lane == 0) {
                    red[j * GX_SAMPLES + k][warp] = v;
                }
            }
        }
        __syncthreads();
        // stage 2: the warps' sums in warp order
        for (int e = t; e < DIM * GX_SAMPLES; e += GX_BLOCK) {
            const int j = e / GX_SAMPLES;
            const int k = e - j * GX_SAMPLES;
            if (k < cnt) {
                real_t v = red[e][0];
#pragma unroll
                for (int q = 1; q < GX_WARPS; ++q) {
                    v += red[e][q];
                }
                out[(long long)r * DIM * n + (long long)j * n + k0 + k] = s * v;
            }
        }
    }
}
