"""Arrays from the files a config names (target samples or mixtures, Gram matrices): .npy, .npz, .h5 /
.hdf5 (datasets at the top level) or text (.csv comma-separated, anything else whitespace-separated).
Every problem is one ConfigError naming the key and the path."""

from __future__ import annotations

import os

import numpy as np

from .errors import ConfigError
from .memory import GiB, ResourceError, available_memory


def array_shapes(path: str, key: str, default: str = "samples") -> dict:
    """{name: shape} of the arrays in the file at ``path``, read from its headers only (no data); a text
    file's shape is not known before it is parsed: {default: None}."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise ConfigError(key, path, "file not found" if not os.path.exists(path) else "is not a regular file")
    try:
        if ext == ".npy":
            with open(path, "rb") as fh:
                return {default: _npy_shape(fh)}
        if ext == ".npz":
            import zipfile
            with zipfile.ZipFile(path) as z:
                out = {}
                for info in z.infolist():
                    if info.filename.endswith(".npy"):
                        with z.open(info) as fh:
                            out[info.filename[:-4]] = _npy_shape(fh)
                return out
        if ext in (".h5", ".hdf5"):
            import h5py
            _check_seal(path, key)
            with h5py.File(path, "r") as f:
                return {k: f[k].shape for k in f.keys() if isinstance(f[k], h5py.Dataset)}   # groups: the reader names them
        return {default: _text_shape(path, ext)}
    except Exception as exc:  # noqa: BLE001 - as in read_arrays
        raise ConfigError(key, path, f"cannot read the array file: {_first_line(exc)}") from None


def _check_seal(path: str, key: str) -> None:
    """A file fastgan wrote (a Gram file) is verified before HDF5 reads it (see :func:`fastgan.h5io.seal`)."""
    from .h5io import check_seal
    why = check_seal(path)
    if why is not None:
        raise ConfigError(key, path, why)


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _text_shape(path: str, ext: str) -> tuple | None:
    """(rows, columns) of a text array file as :func:`read_arrays` parses it (rows: lines that are not
    blank or comments; columns: fields of the first of them); None for a file too large to count."""
    if os.path.getsize(path) > 1 << 30:
        return None
    rows, cols = 0, 1
    with open(path, "rb") as fh:
        for line in fh:
            line = line.split(b"#", 1)[0].strip()
            if line:
                if rows == 0:
                    cols = len(line.split(b",") if ext == ".csv" else line.split())
                rows += 1
    return (rows, cols)


def _npy_shape(fh) -> tuple:
    version = np.lib.format.read_magic(fh)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return tuple(reader(fh)[0])


def check_size(path: str, key: str, default: str = "samples") -> dict:
    """:func:`array_shapes`, and a ResourceError naming the key and path before a file is read whose
    arrays (as float64, with a copy) do not fit in the memory available. A text file is bounded by its
    size (a number takes at least two characters with its separator)."""
    shapes = array_shapes(path, key, default)
    elements = 0.0
    for shape in shapes.values():
        if shape is None:
            try:
                elements += os.path.getsize(path) / 2.0
            except OSError:
                pass
        else:
            elements += float(np.prod(shape, dtype=np.float64))
    need, avail = 16.0 * elements, available_memory()
    if need > avail:
        raise ResourceError(f"{key} = {path!r}: its arrays would need about {need / GiB:.3g} GiB of memory, "
                            f"{avail / GiB:.3g} GiB are available")
    return shapes


def read_arrays(path: str, key: str, default: str = "samples") -> dict:
    """{name: real float64 array} of the file at ``path``; a single-array format (.npy, text) gives
    ``{default: array}``. Non-numeric (string, object) and complex arrays are refused. The size is
    checked against the memory available before anything is read (:func:`check_size`)."""
    ext = os.path.splitext(path)[1].lower()
    check_size(path, key, default)
    try:
        if ext == ".npy":
            raw = {default: np.load(path, allow_pickle=False)}
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        elif ext in (".h5", ".hdf5"):
            import h5py
            _check_seal(path, key)
            with h5py.File(path, "r") as f:
                raw = {}
                for k in f.keys():
                    node = f[k]
                    if not isinstance(node, h5py.Dataset):
                        raise ConfigError(key, path, f"'{k}' is an HDF5 group, expected a dataset (array)")
                    raw[k] = node[()]
        else:
            raw = {default: np.loadtxt(path, delimiter="," if ext == ".csv" else None, ndmin=2)}
    except (ConfigError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file makes numpy / h5py raise many types: all one reason
        raise ConfigError(key, path, f"cannot read the array file: {_first_line(exc)}") from None
    out = {}
    for name, a in raw.items():
        a = np.asarray(a)
        if a.dtype.kind == "c":
            raise ConfigError(key, path, f"'{name}' holds complex numbers, expected real ones")
        if a.dtype.kind not in "biuf":
            raise ConfigError(key, path, f"'{name}' holds {a.dtype} values, expected numbers")
        out[name] = a.astype(np.float64)
    return out
