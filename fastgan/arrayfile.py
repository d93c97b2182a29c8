"""Arrays from the files a config names (target samples or mixtures, Gram matrices): .npy, .npz, .h5 /
.hdf5 (datasets at the top level) or text (.csv comma-separated, anything else whitespace-separated).
Every problem is one ConfigError naming the key and the path."""

from __future__ import annotations

import os

import numpy as np

from .errors import ConfigError


def read_arrays(path: str, key: str, default: str = "samples") -> dict:
    """{name: real float64 array} of the file at ``path``; a single-array format (.npy, text) gives
    ``{default: array}``. Non-numeric (string, object) and complex arrays are refused."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            raw = {default: np.load(path, allow_pickle=False)}
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        elif ext in (".h5", ".hdf5"):
            import h5py
            with h5py.File(path, "r") as f:
                raw = {}
                for k in f.keys():
                    node = f[k]
                    if not isinstance(node, h5py.Dataset):
                        raise ConfigError(key, path, f"'{k}' is an HDF5 group, expected a dataset (array)")
                    raw[k] = node[()]
        else:
            raw = {default: np.loadtxt(path, delimiter="," if ext == ".csv" else None, ndmin=2)}
    except ConfigError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(key, path, f"cannot read the array file: {str(exc).splitlines()[0] if str(exc) else exc}") \
            from None
    out = {}
    for name, a in raw.items():
        a = np.asarray(a)
        if a.dtype.kind == "c":
            raise ConfigError(key, path, f"'{name}' holds complex numbers, expected real ones")
        if a.dtype.kind not in "biuf":
            raise ConfigError(key, path, f"'{name}' holds {a.dtype} values, expected numbers")
        out[name] = a.astype(np.float64)
    return out
