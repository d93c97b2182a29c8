"""Launch parameters of every kernel, in one place so tests can patch them small.

CPU (numba): tile sizes of the parallel task decomposition. GPU: threads per block and the
grid-stride caps. Every kernel is correct for any value here (grid-stride / tiled loops), which
is what the simulator tests exercise with deliberately small, odd sizes.
"""

CPU_TILE = {
    "mlp_units": 128,        # hidden units per (run, tile) task of the MLP step
    "grad_x_samples": 16,    # samples per (run, chunk) task of grad_x D
    "pair_rows": 32,         # rows per task of O(N^2) pair reductions (spatial coupling)
    "samples": 256,          # samples per task of target sampling
    "trig_features": 256,    # features per (run, tile) task of the trig-feature discriminator step
    "trig_chunk": 64,        # samples per state-dtype partial sum of that step (totals in float64)
    "trig_x_samples": 8,      # samples per (run, tile) task of trig grad_x / forward
    "kernel_rows": 4,        # query points per (run, tile) task of kernel_sum / kernel_sum_grad
    "kernel_cols": 512,      # centres per block of the kernel sums' per-task (L1-sized) buffers
    "fgrid_chunk": 128,      # samples per state-dtype partial of the separable Fourier step (totals in float64)
    "fgrid_samples": 8,      # samples per (run, tile) task of the separable Fourier grad_x / forward
    "kde_rows": 8,           # query points per (run, tile) task of kde_log_density / kde_grad_sum (centre blocks reused)
    "kde_cols": 512,         # centres per block of the KDE ops' per-task (L1-sized) buffers and online log-sum-exp
    "cosine_rows": 16,       # particles per (run, tile) task of the cosine observables (cosine_stats)
}

# Threads per block: any value in [1, 1024] is correct, but a block must fit the register file: the CUDA C
# kernels are compiled with launch bounds for their block (cuda_raw.reg_dim narrows the d they serve: d = 1
# at 1024 threads); the Numba-CUDA kernels are not, and use up to 255 registers (benchmarks/README.md lists
# them): their blocks are capped at 256 threads (cuda_numba_common.block).
GPU_BLOCK = {
    "mlp_units": 128,        # threads (hidden units) per block of the MLP step
    "grad_x": 128,           # threads per block of grad_x D (one warp-group per sample)
    "elementwise": 256,      # generic 1-D kernels (sampling, coarse coupling, observables)
    "pair_rows": 128,        # spatial coupling rows per block
    "trig": 128,             # threads (features) per block of the trig-feature discriminator step
    "trig_x": 128,           # threads (samples) per block of trig grad_x / forward
    "kernel_sum": 128,       # threads (query points) per block of kernel_sum / kernel_sum_grad
    "kde": 128,              # threads (query points) per block of kde_log_density / kde_grad_sum
}

GPU_TILE = {
    "mlp_samples": 128,      # samples per shared-memory tile of the MLP step (<= SAMPLE_TILE of cuda_numba_mlp)
    "grad_x_units": 128,     # hidden units per shared-memory tile of grad_x / forward (Numba-CUDA)
    "grad_x_samples": 4,     # samples per block of the CUDA C grad_x (each thread reads a unit once per chunk)
    "pair_cols": 128,        # partner particles per shared-memory tile of the spatial coupling
    "trig_samples": 128,     # samples per shared-memory tile of the trig step (<= SAMPLE_TILE of cuda_numba_linear)
    "trig_features": 128,    # features per shared-memory tile of trig grad_x / forward (<= FEATURE_TILE)
    "kernel_cols": 128,      # centres per shared-memory tile of the kernel sums (<= CENTRE_TILE)
    "kde_cols": 128,         # centres per shared-memory tile of the KDE ops (<= cuda_numba_kde.centre_tile(d))
}

GPU_MAX_BLOCKS = 65535       # grid-stride loops cover anything beyond this
