"""Checkpoints of a running ensemble: its whole state (particles, discriminator parameters, liveness,
the observables and snapshots recorded so far, and whatever a family's bound ops or observer hold)
written atomically at a bounded interval of compute, so that an interruption loses at most one
interval and a resume continues bitwise where the checkpoint left off.

A checkpoint is a sealed HDF5 file (see ``h5io.seal``) of flat ``name -> array`` datasets plus the
identity of what wrote it (the ensemble's run ids in order, the backend, the fastgan version): a file
of another ensemble, backend or version is never resumed from (the trajectory is bitwise only on the
same ops), it is reported and left alone.

Interruptions: while an ensemble runs with checkpoints on, SIGINT / SIGTERM / SIGHUP are deferred to
the end of the current iteration (:func:`deferred_interrupts`): the state is saved there and the
interruption then proceeds as it would have; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

from . import h5io
from .errors import FastganError

DEFAULT_EVERY_S = 60.0          # seconds of compute between checkpoints (about a minute)
FORMAT = 1
KEPT: dict = {}                 # path -> (iteration, iterations, what): checkpoints this process left in place


class CheckpointError(FastganError):
    """A checkpoint that cannot be used where one is expected (one line)."""


def interval(value) -> float:
    """Seconds of compute between checkpoints from an option (None: the default; 0: never)."""
    if value is None:
        return DEFAULT_EVERY_S
    if not (value >= 0 and value < float("inf")):
        raise CheckpointError(f"--checkpoint-every = {value!r}: expected seconds >= 0 (0: no checkpoints)")
    return float(value)


class Checkpoint:
    """Where an ensemble's state is saved, how often, and whose it is.

    ``path``: the file; ``every_s``: seconds of compute between saves (> 0); ``identity``: a JSON-able
    dict that must match for a resume; ``what``: a few words for messages (e.g. "ensemble 3f2a...")."""

    def __init__(self, path: str, every_s: float, identity: dict, what: str = "the run"):
        if not every_s > 0:
            raise ValueError(f"checkpoint interval must be > 0 seconds, got {every_s!r}")
        self.path, self.every_s, self.what = path, float(every_s), what
        self.identity = json.dumps(dict(identity, format=FORMAT), sort_keys=True)
        self.rejected: str | None = None          # why an existing file was not resumed from
        self.resumed_at = 0
        self.saved_at = -1
        self.failed = False
        self._last = time.perf_counter()

    # ------------------------------------------------------------------ timing
    def start_clock(self) -> None:
        self._last = time.perf_counter()

    def due(self, iteration: int) -> bool:
        """Whether ``every_s`` of compute have passed since the loop started or the last save."""
        return time.perf_counter() - self._last >= self.every_s

    # ------------------------------------------------------------------ files
    def load(self) -> tuple[int, dict] | None:
        """(iteration, arrays) of the file at ``path`` when it is intact and this ensemble's; else None
        (``rejected`` says why, None when there is no file)."""
        self.rejected = None
        if not os.path.lexists(self.path):
            return None
        try:
            iteration, arrays, identity = read(self.path)
        except CheckpointError as exc:          # never trusted, never lost: moved aside, the work restarts
            aside = self.path + ".damaged"
            os.replace(self.path, aside)
            self.rejected = f"{exc}; moved to {aside}"
            warnings.warn(f"{self.rejected}; {self.what} starts from iteration 0", stacklevel=2)
            return None
        if identity != self.identity:
            self.rejected = "it was written for other runs, another backend or another fastgan version"
            warnings.warn(f"checkpoint {self.path!r}: {self.rejected}; {self.what} starts from iteration 0 and "
                          "replaces it", stacklevel=2)
            return None
        self.resumed_at = iteration
        logging.getLogger("fastgan").info(f"resuming {self.what} from its checkpoint at iteration {iteration}")
        return iteration, arrays

    def reject(self, why: str) -> None:
        """The file that :meth:`load` returned cannot be resumed from (``why``): moved aside, never lost; the
        work starts from iteration 0 and writes a new checkpoint."""
        aside = self.path + ".incompatible"
        os.replace(self.path, aside)
        self.rejected = f"{why}; moved to {aside}"
        self.resumed_at = 0
        warnings.warn(f"checkpoint {self.path!r}: {self.rejected}; {self.what} starts from iteration 0",
                      stacklevel=2)

    def save(self, iteration: int, iterations: int, arrays: dict) -> bool:
        """The state after ``iteration`` (of ``iterations``), written atomically. A write that fails (a full
        disk) is one warning and no more attempts: the computation goes on, the previous checkpoint (if
        any) stays as it was. Returns whether it was written."""
        if self.failed:
            return False
        try:
            write(self.path, iteration, arrays, self.identity)
        except OSError as exc:                  # StorageError too: the temporary file is already removed
            self.failed = True
            warnings.warn(f"{self.what}: its checkpoint could not be written ({exc}); it goes on without "
                          "checkpoints", stacklevel=2)
            return False
        KEPT[self.path] = (iteration, iterations, self.what)
        self.saved_at = iteration
        self._last = time.perf_counter()
        return True

    def remove(self) -> None:
        """The run's results are stored elsewhere now: the checkpoint is no longer needed."""
        KEPT.pop(self.path, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def write(path: str, iteration: int, arrays: dict, identity: str) -> None:
    """``arrays`` ({name: array}; unicode arrays stored as UTF-8) as a sealed HDF5 file, atomically; the
    path is not counted among the command's complete outputs (``h5io.WRITTEN``)."""
    stored = {k: np.asarray(v) for k, v in arrays.items()}
    text = {k for k, v in stored.items() if v.dtype.kind == "U"}
    stored.update({k: np.char.encode(stored[k], "utf-8") for k in text})

    def fill(f):
        for name, a in stored.items():
            f.create_dataset(name, data=a)
            if name in text:
                f[name].attrs["unicode"] = 1
        f.attrs["iteration"] = int(iteration)
        f.attrs["identity"] = identity
        f.attrs["checksum"] = h5io.digest(stored)
    n = len(h5io.WRITTEN)
    h5io.atomic_h5(path, fill)
    del h5io.WRITTEN[n:]


def read(path: str, arrays: bool = True) -> tuple[int, dict, str]:
    """(iteration, arrays, identity) of a checkpoint file; CheckpointError when it is damaged. With
    ``arrays`` False only the seal and the attributes are read (arrays: {})."""
    import h5py
    why = h5io.check_seal(path)
    if why is None:
        try:
            with h5py.File(path, "r") as f:
                if not arrays:
                    return int(f.attrs["iteration"]), {}, str(f.attrs["identity"])
                raw, attrs = h5io.contents(f)
                if attrs.get("checksum") != h5io.digest(raw):
                    why = "its checksum does not match its contents"
                else:
                    out = {k: (np.char.decode(v, "utf-8") if f[k].attrs.get("unicode") else v)
                           for k, v in raw.items()}
                    return int(attrs["iteration"]), out, str(attrs["identity"])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            why = f"it cannot be read ({type(exc).__name__}: {exc})"
    raise CheckpointError(f"checkpoint {path!r}: {why}")


def header(path: str) -> tuple[int, dict] | None:
    """(iteration, identity) a checkpoint file records, its arrays left unread (None when it cannot be
    read: load() will say why)."""
    try:
        it, _, identity = read(path, arrays=False)
        return it, json.loads(identity)
    except (CheckpointError, ValueError):
        return None


def identity_of(path: str) -> dict | None:
    """The identity a checkpoint file records (None when it cannot be read)."""
    got = header(path)
    return None if got is None else got[1]


def kept_lines() -> list[str]:
    """What an interruption left to resume from: one phrase per checkpoint still in place."""
    return [f"{what} at iteration {it}/{total} in {path}" for path, (it, total, what) in KEPT.items()
            if os.path.exists(path)]


class Pending:
    """A signal received while interruptions are deferred (``signum`` None if none)."""

    def __init__(self):
        self.signum = None
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def proceed(self) -> None:
        """Let the deferred interruption happen now, as its previous handler would have made it happen."""
        signum, self.signum = self.signum, None
        if signum is None:
            return
        _deliver(self._previous.get(signum, signal.SIG_DFL), signum)


def _deliver(handler, signum: int) -> None:
    if callable(handler):
        handler(signum, None)                   # e.g. KeyboardInterrupt, or the CLI's Terminated
        return
    if handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1)                           # pragma: no cover - the default action ends the process


@contextlib.contextmanager
def deferred_interrupts(enabled: bool = True):
    """Within the block, SIGINT / SIGTERM / SIGHUP only set ``pending`` (the yielded :class:`Pending`);
    the loop saves its state and calls ``pending.proceed()``. A second signal is delivered at once. A
    no-op off the main thread and for signals that are ignored."""
    pending = Pending()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield pending
        return
    saved = {}

    def handler(signum, frame):
        if pending.signum is not None:                  # asked twice: stop now
            _deliver(saved.get(signum, signal.SIG_DFL), signum)
            return
        pending.signum = signum
        print("fastgan: interrupted: saving a checkpoint at the end of this iteration (interrupt again to stop "
              "at once)", file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        old = signal.getsignal(sig)
        if old in (signal.SIG_IGN, None):
            continue
        saved[sig] = old
        signal.signal(sig, handler)
    pending._previous = saved
    try:
        yield pending
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
        if pending:                                     # the block ended before it could save: deliver now
            pending.proceed()
