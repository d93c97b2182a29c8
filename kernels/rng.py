"""Counter-based random numbers, identical in every backend.

Every random number is a pure function of (run seed, stream, iteration, sub-step, index):

    base  = derive(seed, stream)                       # once per run and purpose (host)
    key   = step_key(base, iteration, sub_step)        # per step (device code)
    bits  = mix64(key + (index + 1) * GOLDEN)          # 64 random bits for one index

``mix64`` is the SplitMix64 finaliser (Steele, Lea & Flood 2014); ``key + k * GOLDEN`` is exactly
the SplitMix64 sequence, so for a fixed key the indices enumerate a well-tested generator.
Uniforms take the top 53 bits; normals use Box-Muller on the index pair (2j, 2j + 1) (cosine
for even, sine for odd indices), evaluated in float64 and rounded to the state precision.

The scalar functions below are written once in plain Python on ``numpy.uint64`` values: NumPy
runs them on arrays (the reference), and the very same source is compiled by ``numba.njit``
(CPU) and ``numba.cuda.jit(device=True)`` (GPU). ``rng.cuh`` mirrors them for CUDA C.
Nothing depends on how runs are packed into ensembles or on the backend, which is what makes
trajectory-level cross-backend tests possible.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np

U64 = np.uint64
GOLDEN = U64(0x9E3779B97F4A7C15)
MIX1 = U64(0xBF58476D1CE4E5B9)
MIX2 = U64(0x94D049BB133111EB)
SEED0 = U64(0x243F6A8885A308D3)
S30 = U64(30)
S27 = U64(27)
S31 = U64(31)
S11 = U64(11)
ONE = U64(1)
TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
TWO_PI = 2.0 * math.pi

# Streams: one per purpose, so adding a new consumer never shifts existing ones.
STREAM_DISC_INIT = 1
STREAM_GEN_INIT = 2
STREAM_TARGET_COMPONENT = 3
STREAM_TARGET_NOISE = 4
STREAM_FEATURES = 5      # random features / frequencies of linear discriminators
STREAM_MISC = 6
STREAM_TARGET_GEOMETRY = 7  # random target geometry (points on a sphere)

_MASK = (1 << 64) - 1


# ----------------------------------------------------------------- scalar/array functions

def _wrapping_ok(f):
    """Plain-Python build: uint64 arithmetic wraps by design, so silence NumPy's scalar overflow warnings."""
    @functools.wraps(f)
    def g(*args):
        with np.errstate(over="ignore"):
            return f(*args)
    return g


def build(jit=None):
    """The scalar generator functions compiled by ``jit`` (numba.njit, a numba.cuda device
    decorator, ...) or left as plain Python (``jit=None``, then they also work on NumPy uint64
    arrays). One source for every backend; returns a namespace."""
    jit = jit or _wrapping_ok

    @jit
    def mix64(z):
        """SplitMix64 finaliser: a bijective avalanche of 64 bits."""
        z = (z ^ (z >> S30)) * MIX1
        z = (z ^ (z >> S27)) * MIX2
        return z ^ (z >> S31)

    @jit
    def step_key(base, iteration, sub_step):
        """Key of one (iteration, sub-step) from a run's stream base key."""
        k = mix64((base ^ U64(iteration)) + GOLDEN)
        return mix64((k ^ U64(sub_step)) + GOLDEN)

    @jit
    def bits_at(key, index):
        """64 random bits for ``index`` under ``key``."""
        return mix64(key + (U64(index) + ONE) * GOLDEN)

    @jit
    def uniform_at(key, index):
        """Uniform in [0, 1) with 53 random bits (float64)."""
        return float(bits_at(key, index) >> S11) * TWO_M53

    @jit
    def normal_at(key, index):
        """Standard normal (float64): Box-Muller on the index pair (2j, 2j+1)."""
        j = index >> 1
        u1 = 1.0 - float(bits_at(key, 2 * j) >> S11) * TWO_M53  # (0, 1]
        u2 = float(bits_at(key, 2 * j + 1) >> S11) * TWO_M53
        r = math.sqrt(-2.0 * math.log(u1))
        if index & 1:
            return r * math.sin(TWO_PI * u2)
        return r * math.cos(TWO_PI * u2)

    @jit
    def normal_pair_at(key, pair):
        """Both normals of the Box-Muller pair ``pair``: (index 2 pair, index 2 pair + 1)."""
        u1 = 1.0 - float(bits_at(key, 2 * pair) >> S11) * TWO_M53
        u2 = float(bits_at(key, 2 * pair + 1) >> S11) * TWO_M53
        r = math.sqrt(-2.0 * math.log(u1))
        return r * math.cos(TWO_PI * u2), r * math.sin(TWO_PI * u2)

    return SimpleNamespace(mix64=mix64, step_key=step_key, bits_at=bits_at,
                           uniform_at=uniform_at, normal_at=normal_at, normal_pair_at=normal_pair_at)


_py = build()
mix64 = _py.mix64
step_key = _py.step_key
bits_at = _py.bits_at
uniform_at = _py.uniform_at
normal_at = _py.normal_at
normal_pair_at = _py.normal_pair_at


# ----------------------------------------------------------------- host-side helpers

def _mix64_int(z: int) -> int:
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def derive(seed: int, stream: int) -> int:
    """Base key of (seed, stream) as a Python int (host side, once per run and purpose)."""
    h = _mix64_int((int(SEED0) ^ (seed & _MASK)) + int(GOLDEN))
    return _mix64_int((h ^ stream) + int(GOLDEN))


def base_keys(seeds, stream: int) -> np.ndarray:
    """(B,) uint64 base keys for a vector of run seeds."""
    return np.array([derive(int(s), stream) for s in np.atleast_1d(seeds)], dtype=np.uint64)


# ----------------------------------------------------------------- NumPy vector forms

def np_bits(keys, index):
    """Broadcast ``bits_at`` over uint64 arrays: keys (..., 1), index (n,) -> (..., n)."""
    keys = np.asarray(keys, dtype=np.uint64)
    index = np.asarray(index, dtype=np.uint64)
    return mix64(keys + (index + ONE) * GOLDEN)


def np_uniform(keys, n: int) -> np.ndarray:
    """(B, n) float64 uniforms in [0, 1) for (B,) keys."""
    b = np_bits(np.asarray(keys, dtype=np.uint64)[:, None], np.arange(n, dtype=np.uint64))
    return (b >> S11).astype(np.float64) * TWO_M53


def np_normal(keys, n: int) -> np.ndarray:
    """(B, n) float64 standard normals for (B,) keys, identical to ``normal_at``."""
    keys = np.asarray(keys, dtype=np.uint64)[:, None]
    pairs = (n + 1) // 2
    j = np.arange(pairs, dtype=np.uint64)
    u1 = 1.0 - (np_bits(keys, 2 * j) >> S11).astype(np.float64) * TWO_M53
    u2 = (np_bits(keys, 2 * j + ONE) >> S11).astype(np.float64) * TWO_M53
    r = np.sqrt(-2.0 * np.log(u1))
    out = np.empty((keys.shape[0], 2 * pairs))
    out[:, 0::2] = r * np.cos(TWO_PI * u2)
    out[:, 1::2] = r * np.sin(TWO_PI * u2)
    return out[:, :n]


def np_step_keys(base, iteration: int, sub_step: int) -> np.ndarray:
    """(B,) step keys from (B,) base keys."""
    return step_key(np.asarray(base, dtype=np.uint64), iteration, sub_step)
