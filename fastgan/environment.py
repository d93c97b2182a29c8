"""The environment variables fastgan reads: one table, each with its parser, checked at the start of
every command (a bad value is one line naming the variable, exit 2, before anything runs).

Every module reads these through :func:`get`, so a value means the same everywhere (``FASTGAN_DEBUG=0``
is off, as ``FASTGAN_ALLOW_HUGE=no`` is). numba's own variables that fastgan relies on are checked
here too: numba reads them at import and would otherwise print a warning with a traceback
(``NUMBA_NUM_THREADS=abc``) or fail inside a parallel loop (``NUMBA_THREADING_LAYER=bogus``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple

from .errors import FastganError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def flag(value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(TRUE)} or {', '.join(v or repr(v) for v in FALSE)}")


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not (math.isfinite(s) and s > 0):
        raise ValueError("expected a finite number of seconds > 0")
    return s


def _choice(*names: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        v = value.strip().lower()
        if v not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return v
    return parse


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError("expected a whole number >= 1") from None
    if n < 1:
        raise ValueError("expected a whole number >= 1")
    return n


class Variable(NamedTuple):
    parse: Callable[[str], Any]
    default: Any
    doc: str


VARIABLES: dict[str, Variable] = {
    "FASTGAN_BACKEND": Variable(_choice("auto", "numpy", "numba", "cuda"), None,
                                "backend for every command, over the config's (not over --backend)"),
    "FASTGAN_PROGRESS": Variable(flag, None, "force the progress display on (1) or off (0)"),
    "FASTGAN_ALLOW_HUGE": Variable(flag, False, "run work or sweeps above the planned-work bound"),
    "FASTGAN_DEBUG": Variable(flag, False, "show the traceback of an internal error"),
    "FASTGAN_DASK_TIMEOUT": Variable(_seconds, 15.0, "seconds to wait for a Dask scheduler"),
    "NUMBA_NUM_THREADS": Variable(_positive_int, None, "numba's thread count"),
    "NUMBA_THREADING_LAYER": Variable(_choice("default", "safe", "threadsafe", "forksafe", "omp", "tbb",
                                              "workqueue"), None, "numba's threading layer"),
}


def get(name: str):
    """The parsed value of a variable (its default when unset)."""
    var = VARIABLES[name]
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return var.default
    try:
        return var.parse(raw)
    except ValueError as exc:
        raise FastganError(f"environment variable {name} = {raw!r}: {exc}") from None


def check() -> None:
    """Every variable of the table that is set, parsed once (raises the first bad one)."""
    for name in VARIABLES:
        get(name)
