"""Atomic file writes: the one way fastgan puts a file in place.

Every output (run files, Gram files, sweep parts, the consolidated sweep file, sweep.json) is
written to a temporary name in the destination folder (``.tmp-*``) and renamed into place, so a
crash never leaves a half-written file under the final name, and the temporary file is removed on
any failure. Folders that hold such writes remove stale ``.tmp-*`` files of a crashed process
(``stale_temporaries``).
"""

from __future__ import annotations

import glob
import os
import tempfile
from typing import Callable

from .errors import OutputExistsError

PREFIX = ".tmp-"


def atomic_write(path: str, write: Callable[[str], None], *, replace: bool = True) -> str:
    """``write(tmp)`` to a temporary name beside ``path``, then rename into place. With
    ``replace = False`` an existing ``path`` (one that appeared meanwhile, too) is not overwritten:
    :class:`OutputExistsError`. Returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=PREFIX, suffix=os.path.splitext(path)[1] + ".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        if not replace and os.path.exists(path):
            raise OutputExistsError(f"--out = {path!r}: file exists (use --force to overwrite)")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def check_writable(path: str, force: bool) -> None:
    """Refuse an existing output (unless forced), a folder, and a missing folder, before any work is done."""
    if os.path.isdir(path):
        raise OutputExistsError(f"--out = {path!r}: is a directory, expected a file name")
    if os.path.exists(path) and not force:
        raise OutputExistsError(f"--out = {path!r}: file exists (use --force to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputExistsError(f"--out = {path!r}: folder {folder!r} does not exist")


def atomic_h5(path: str, fill: Callable, *, replace: bool = True) -> str:
    """An HDF5 file written by ``fill(h5file)`` (see :func:`atomic_write`)."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            fill(f)
    return atomic_write(path, write, replace=replace)


def atomic_text(path: str, text: str) -> str:
    def write(tmp):
        with open(tmp, "w") as fh:
            fh.write(text)
    return atomic_write(path, write)


def stale_temporaries(folder: str) -> list[str]:
    """Temporary files of unfinished writes in ``folder`` (a crash's leftovers)."""
    return glob.glob(os.path.join(folder, PREFIX + "*"))
