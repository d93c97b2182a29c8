"""Training a wide generator against the paper's discriminator and tracking its NTK (Durr et al. App. G, Fig. 20).

Generator (one hidden layer, d = 2 outputs, the standard parametrisation of :mod:`fastgan.ntk`)::

    G^j(z) = sqrt(2/W) Σ_i a_ij σ(w_i·z + b_i),   w ~ N(0, .046), b = 0 (trained), a ~ N(0, 2.25),

on one fixed set of n seeds z uniform on the unit sphere in 256 dims, trained with RMSProp (lr 10⁻³)
to ascend ⟨D(G(z))⟩. Discriminator: the width-2048 ReLU MLP of eq. 23 with the paper's
initialisation (a, w ~ N(0, 1), b ~ N(0, 9)), n_disc plain gradient steps of rate α_D per generator
step on L_D = ⟨D⟩_gen − ⟨D⟩_target + (1/W_D) |φ|² (eq. 24), a fresh target batch each step (the
simulator's Algorithm 1 with the particles replaced by the network's outputs). Target: 8 Gaussians
on the ring of radius 2, std 0.02.

The NTK is measured exactly from the hidden features (no Jacobian), as a d×d block per pair::

    Θ^{jk}(z, z') = (2/W) [ δ_jk Σ_i σ_i(z)σ_i(z') + Σ_i a_ij a_ik σ'_i(z)σ'_i(z') (z·z' + 1) ].

torch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ntk import APPENDIX_G_RELU, NTKSetup, _torch_act, sample_sphere


@dataclass
class TrainingTrace:
    """NTK and outputs of a generator during training (T = number of measurement times, n seeds).

    iterations (T,); g1, g2, g1_std, g2_std (T,): mean and std of the diagonal / off-diagonal entries of
    the same-component blocks Θ^{jj}; cross (T,): mean |Θ^{jk}|, j ≠ k, over g1 (the NTK is ∝ the
    identity in the outputs when small); diag (T, d·n) and offdiag (T, d·n(n−1)/2) the entries
    themselves (histograms); outputs (T, n, 2); mode_collapse (T,) of eq. 22 at those times."""

    iterations: np.ndarray
    g1: np.ndarray
    g2: np.ndarray
    g1_std: np.ndarray
    g2_std: np.ndarray
    cross: np.ndarray
    diag: np.ndarray
    offdiag: np.ndarray
    outputs: np.ndarray
    mode_collapse: np.ndarray
    meta: dict = field(default_factory=dict)

    def drift(self, stat: str = "mean") -> tuple[float, float]:
        """Largest relative change of (g1, g2) from their values at the first measurement; ``stat``
        "median" uses the medians of the two peaks instead of their means (Durr et al. Fig. 20 marks
        the medians)."""
        if stat == "mean":
            g1, g2 = self.g1, self.g2
        elif stat == "median":
            g1, g2 = np.median(self.diag, axis=1), np.median(self.offdiag, axis=1)
        else:
            raise ValueError(f"stat must be 'mean' or 'median', got {stat!r}")
        return (float(np.max(np.abs(g1 / g1[0] - 1))), float(np.max(np.abs(g2 / g2[0] - 1))))


def ntk_blocks(Z, w, b, a, act: str, chunk: int = 8192):
    """(d, d, n, n) float64 NTK blocks of G(z) = sqrt(2/W) σ(z wᵀ + b) a (w (W, dim), b (W,), a (W, d))
    at the seeds Z (n, dim), over all of (w, b, a); hidden units ``chunk`` at a time."""
    import torch

    with torch.no_grad():
        W, d = a.shape
        n = Z.shape[0]
        A = torch.zeros(n, n, dtype=torch.float64, device=Z.device)
        B = torch.zeros(d, d, n, n, dtype=torch.float64, device=Z.device)
        for s in range(0, W, chunk):
            sig, dsig = _torch_act(act, torch, Z @ w[s:s + chunk].T + b[s:s + chunk])
            A += (sig @ sig.T).double()
            da = [dsig * a[s:s + chunk, j] for j in range(d)]
            for j in range(d):
                for k in range(j, d):
                    B[j, k] += (da[j] @ da[k].T).double()
                    if k != j:
                        B[k, j] = B[j, k].T
        dot = (Z @ Z.T).double() + 1.0
        theta = B * dot + torch.eye(d, dtype=torch.float64, device=Z.device)[:, :, None, None] * A
        return (theta * (2.0 / W)).cpu().numpy()


def _summarise(theta: np.ndarray):
    d, _, n, _ = theta.shape
    iu = np.triu_indices(n, 1)
    diag = np.concatenate([np.diag(theta[j, j]) for j in range(d)])
    off = np.concatenate([theta[j, j][iu] for j in range(d)])
    cross = np.mean([np.abs(theta[j, k]).mean() for j in range(d) for k in range(d) if j != k]) if d > 1 else 0.0
    return diag, off, float(cross) / float(diag.mean())


def _ring(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    ang = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def _mode_collapse(x: np.ndarray, modes: np.ndarray) -> float:
    from .observables import mode_collapse_metric
    nearest = np.argmin(((x[:, None, :] - modes[None]) ** 2).sum(-1), axis=1)
    return float(mode_collapse_metric(np.bincount(nearest, minlength=len(modes))))


def train_appendix_g(setup: NTKSetup = APPENDIX_G_RELU, width: int = 2 ** 16, n_seeds: int = 200, dim: int = 256,
                     n_iterations: int = 600, measure_at=None, lr: float = 1e-3, rms_alpha: float = 0.9,
                     n_disc: int = 5, lr_disc: float = 0.25, disc_width: int = 2048, target_std: float = 0.02,
                     seed: int = 0, device: str = "cpu", dtype=None, threads: int | None = None,
                     progress=None, optimiser: str = "rmsprop") -> TrainingTrace:
    """Train the Appendix G generator (``setup``: its activation and initialisation; the standard
    parametrisation with out_scale 2 and trained biases) and measure its NTK at the iterations
    ``measure_at`` (default 7 evenly spaced, incl. 0 and the end). RMSProp as in optax / Keras
    (decay ``rms_alpha`` = 0.9; torch's default 0.99 makes the first steps ~10 lr). ``threads``: torch
    CPU threads meanwhile (None: unchanged; 1 suits small widths, whose many small ops only pay for
    synchronisation). ``progress(i, total)`` is called after every generator step. ``optimiser``:
    "rmsprop" (the paper's) or "sgd" (plain gradient descent at rate ``lr``: the lazy regime of NTK
    theory, whose parameter steps shrink as W^-1/2 — the control for the drift)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _train(torch, setup, width, n_seeds, dim, n_iterations, measure_at, lr, rms_alpha, n_disc, lr_disc,
                      disc_width, target_std, seed, device, dtype, progress, optimiser)
    finally:
        torch.set_num_threads(before)


def _train(torch, setup, width, n_seeds, dim, n_iterations, measure_at, lr, rms_alpha, n_disc, lr_disc,
           disc_width, target_std, seed, device, dtype, progress, optimiser) -> TrainingTrace:

    if setup.param != "standard" or setup.out_scale != 2.0 or not setup.train_bias:
        raise ValueError("the Appendix G generator is G = sqrt(2/W) a σ(w z + b) with trained biases")
    if optimiser not in ("rmsprop", "sgd"):
        raise ValueError(f"optimiser must be 'rmsprop' or 'sgd', got {optimiser!r}")
    dtype = torch.float32 if dtype is None else dtype
    dev = torch.device(device)
    measure_at = sorted(set(int(i) for i in (np.linspace(0, n_iterations, 7) if measure_at is None else measure_at)))
    if measure_at[0] < 0 or measure_at[-1] > n_iterations:
        raise ValueError("measure_at must lie in [0, n_iterations]")
    gen = torch.Generator().manual_seed(int(seed))

    def randn(*shape, std=1.0):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * float(std)).to(dev)

    Z = torch.as_tensor(sample_sphere(n_seeds, dim, 1.0, seed), dtype=dtype, device=dev)
    w = randn(width, dim, std=np.sqrt(setup.sw2)).requires_grad_()
    b = randn(width, std=np.sqrt(setup.sb2)).requires_grad_()
    a = randn(width, 2, std=np.sqrt(setup.sa2)).requires_grad_()
    gscale = float(np.sqrt(2.0 / width))
    # the paper's discriminator (Durr et al. eq. 23): a, w ~ N(0, 1), b ~ N(0, 9), ReLU
    dw, db, da = randn(disc_width, 2), randn(disc_width, std=3.0), randn(disc_width)
    dscale, l2 = float(np.sqrt(2.0 / disc_width)), 1.0 / disc_width
    modes = torch.as_tensor(_ring(), dtype=dtype, device=dev)
    opt = (torch.optim.RMSprop([w, b, a], lr=lr, alpha=rms_alpha) if optimiser == "rmsprop"
           else torch.optim.SGD([w, b, a], lr=lr))

    def generate():
        return gscale * _torch_act(setup.act, torch, Z @ w.T + b)[0] @ a

    def disc(x, p):
        return dscale * torch.relu(x @ p[0].T + p[1]) @ p[2]

    rows, snaps = [], []

    def measure(it):
        with torch.no_grad():
            theta = ntk_blocks(Z, w, b, a, setup.act)
            x = generate().double().cpu().numpy()
        diag, off, cross = _summarise(theta)
        rows.append((it, diag, off, cross))
        snaps.append(x)

    if measure_at[0] == 0:
        measure(0)
    for it in range(1, n_iterations + 1):
        with torch.no_grad():
            x_gen = generate()
        phi = [dw.requires_grad_(), db.requires_grad_(), da.requires_grad_()]
        for _ in range(n_disc):
            comp = torch.randint(0, 8, (n_seeds,), generator=gen).to(dev)
            x_true = modes[comp] + target_std * randn(n_seeds, 2)
            loss = disc(x_gen, phi).mean() - disc(x_true, phi).mean() + l2 * sum((p * p).sum() for p in phi)
            grads = torch.autograd.grad(loss, phi)
            with torch.no_grad():
                for p, g in zip(phi, grads):
                    p -= lr_disc * g
        frozen = [p.detach() for p in phi]
        opt.zero_grad()
        (-disc(generate(), frozen).mean()).backward()
        opt.step()
        if it in measure_at:
            measure(it)
        if progress is not None:
            progress(it, n_iterations)

    its = np.array([r[0] for r in rows])
    diag = np.stack([r[1] for r in rows])
    off = np.stack([r[2] for r in rows])
    ring = _ring()
    outputs = np.stack(snaps)
    return TrainingTrace(its, diag.mean(1), off.mean(1), diag.std(1), off.std(1), np.array([r[3] for r in rows]),
                         diag, off, outputs, np.array([_mode_collapse(x, ring) for x in outputs]),
                         {"act": setup.act, "width": width, "n_seeds": n_seeds, "dim": dim, "optimiser": optimiser,
                          "lr": lr, "rms_alpha": rms_alpha, "n_disc": n_disc, "lr_disc": lr_disc,
                          "disc_width": disc_width, "seed": seed})
