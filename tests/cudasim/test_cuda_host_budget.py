"""The engine's host path on the cuda backend (under the simulator, a counting wrapper around the op
table and the device-to-host copies): liveness stays on the device between syncs, so a non-recording
iteration makes no blocking copy and no upload, and calls a documented number of ops; a run that blows
up is flagged with the same iteration and frozen at the same particles as on the NumPy reference."""

import numpy as np

import fastgan
from fastgan import engine
from fastgan.kernels import registry


def _cfg(**kw):
    base = {"discriminator.width": 8, "generator.n_particles": 8, "training.n_iterations": 12,
            "record.every": 6, "record.snapshots": 2, "precision": "float64", "training.n_disc": 2,
            "training.beta": 0.0, "coupling.ratio": 0.1, "training.seed": 3}
    base.update(kw)
    return fastgan.default_config(**base)


def test_a_non_recording_iteration_copies_nothing_to_the_host_and_keeps_its_launch_budget(monkeypatch, tiny_launch):
    """Budget per non-recording iteration (MLP discriminator, beta = 0): op calls: one sampling call for
    every sub-step's batch, n_disc steps, grad_x, the coupling and the generator's update; kernel launches:
    n_disc + 5 (the update is two: advance with the finite checks of X and the parameters, settle); no
    device-to-host copy, no upload; liveness is copied to the host every CHECK_EVERY_GPU iterations and at
    the records. (On a GPU the sub-steps' learning rates add three small CuPy element-wise kernels per
    iteration, and the update one memset.)"""
    from numba.cuda.simulator import kernel as fake
    tiny_launch(block=8, max_blocks=4, sample_tile=8, unit_tile=8, pair_tile=8)
    monkeypatch.setattr(engine._LoopState, "CHECK_EVERY_GPU", 6)      # fewer simulated iterations
    n_disc = 3
    cfgs = [_cfg(**{"training.n_iterations": 40, "training.n_disc": n_disc}),
            _cfg(**{"training.seed": 4, "training.n_iterations": 40, "training.n_disc": n_disc})]
    ens = engine.Ensemble(cfgs, "cuda")
    ops = ens.ops
    calls, copies, syncs, launches = [], [], [], []
    for op in registry.OPS:
        real = getattr(ops, op.name, None)
        if callable(real):
            monkeypatch.setattr(ops, op.name, lambda *a, _r=real, _n=op.name, **k: (calls.append(_n), _r(*a, **k))[1])
    real_host = ops.to_host
    monkeypatch.setattr(ops, "to_host", lambda x: (copies.append(1), real_host(x))[1])
    real_sync = engine._LoopState.sync
    monkeypatch.setattr(engine._LoopState, "sync", lambda self: (syncs.append(1), real_sync(self))[1])
    real_call = fake.FakeCUDAKernel.__call__
    monkeypatch.setattr(fake.FakeCUDAKernel, "__call__",
                        lambda self, *a: (None if self._device else launches.append(self.fn.__name__),
                                          real_call(self, *a))[1])
    st = engine._LoopState(ens)
    uploads = []
    for it in range(1, 5):                         # iterations 1..4: no record, no sync (every 6)
        calls.clear()
        copies.clear()
        launches.clear()
        before = st._lr_gen_d
        ens.advance(st, it)
        assert copies == [] and syncs == [], (it, copies, syncs)
        assert sorted(calls) == sorted(["sample_mixture_steps"] + ["mlp_disc_step"] * n_disc +
                                       ["mlp_grad_x", "coupled_velocity_coarse", "generator_update"]), calls
        assert len(launches) == n_disc + 5, launches
        uploads.append(before is not None and st._lr_gen_d is not before)
    assert not any(uploads)                        # the generator's rates are uploaded once
    ens.advance(st, 5)                             # the 6th iteration since the start: one sync
    assert len(syncs) == 1 and len(copies) == 2


def _blow_up_at(monkeypatch, backend, call):
    """The coupling returns a NaN velocity for run 1 at its ``call``-th call (the simulator's kernels raise on
    the NaN arithmetic a real blow-up would do on hardware, so the blow-up is injected after them)."""
    from fastgan.backend import get_ops
    ops = get_ops(backend)
    real = ops.coupled_velocity_coarse
    n = [0]

    def velocity(*a, **k):
        V = real(*a, **k)
        n[0] += 1
        if n[0] == call:
            V = V.copy()
            V[1] = np.nan
        return V
    monkeypatch.setattr(ops, "coupled_velocity_coarse", velocity)


def test_a_blow_up_on_the_device_is_flagged_and_frozen_as_on_the_reference(monkeypatch, tiny_launch):
    """The same iteration in diverged_at and the same frozen particles as the reference, which checks
    after every iteration, though the cuda loop copies liveness to the host only every 16 (the run dies
    at iteration 7, between two copies)."""
    tiny_launch(block=8, max_blocks=4, sample_tile=8, unit_tile=8, pair_tile=8)
    assert engine._LoopState.CHECK_EVERY_GPU == 16
    cfgs = [_cfg(), _cfg(**{"training.seed": 5})]
    _blow_up_at(monkeypatch, "numpy", 7)
    _blow_up_at(monkeypatch, "cuda", 7)
    ref = fastgan.simulate_ensemble(cfgs, backend="numpy", progress=False)
    got = fastgan.simulate_ensemble(cfgs, backend="cuda", progress=False)
    assert [r.diverged_at for r in ref] == [-1, 7]
    assert [r.diverged_at for r in got] == [-1, 7]
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a.particles, b.particles, rtol=0, atol=1e-9)
        for k in b.observables:
            np.testing.assert_array_equal(np.isnan(a.observables[k]), np.isnan(b.observables[k]))
    assert np.all(np.isfinite(got[1].particles))       # frozen at its last finite positions


