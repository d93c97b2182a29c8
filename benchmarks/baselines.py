"""Baselines the ensemble ops are compared with (written the way a researcher would write them).

naive_numpy_disc_step   one run at a time, NumPy matmuls over (n, W) hidden matrices
torch_algorithm1        one run at a time, PyTorch autograd + SGD (CPU), Algorithm 1 of Durr et al.
"""

from __future__ import annotations

import numpy as np


def naive_numpy_disc_step(W_in, b, a, xg, xt, lr, c, act="relu"):
    """One discriminator step for ONE run. W_in (W, d), b (W,), a (W,), xg (N, d), xt (M, d); in place."""
    s = np.sqrt(2.0 / W_in.shape[0])
    grads = [np.zeros_like(W_in), np.zeros_like(b), np.zeros_like(a)]
    for x, sign in ((xg, 1.0), (xt, -1.0)):
        h = x @ W_in.T + b                                    # (n, W)
        if act == "relu":
            sig, d1 = np.maximum(h, 0), (h > 0).astype(h.dtype)
        else:
            sig = np.tanh(h)
            d1 = 1 - sig ** 2
        coef = sign / x.shape[0]
        grads[2] += coef * s * sig.sum(0)
        back = coef * s * d1 * a                              # (n, W)
        grads[1] += back.sum(0)
        grads[0] += back.T @ x
    W_in -= lr * (grads[0] + 2 * c * W_in)
    b -= lr * (grads[1] + 2 * c * b)
    a -= lr * (grads[2] + 2 * c * a)


def torch_algorithm1_runner(W: int, N: int, d: int, dtype="float32", act="relu", threads=None):
    """A closure doing one Algorithm-1 discriminator step for one run with torch autograd + SGD."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    tdt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(W, d, generator=g, dtype=tdt, requires_grad=True)
    b = (3 * torch.randn(W, generator=g, dtype=tdt)).requires_grad_()
    a = torch.randn(W, generator=g, dtype=tdt, requires_grad=True)
    opt = torch.optim.SGD([w, b, a], lr=0.25)
    xg = torch.randn(N, d, generator=g, dtype=tdt)
    xt = torch.randn(N, d, generator=g, dtype=tdt)
    s = (2.0 / W) ** 0.5
    sig = torch.relu if act == "relu" else torch.tanh

    def D(x):
        return s * (sig(x @ w.T + b) * a).sum(-1)

    def step():
        opt.zero_grad()
        loss = D(xg).mean() - D(xt).mean() + (1.0 / W) * ((w ** 2).sum() + (b ** 2).sum() + (a ** 2).sum())
        loss.backward()
        opt.step()

    return step
