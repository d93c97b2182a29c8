"""A small progress bar: count, rate and ETA on stderr; silent off a terminal, in CI, or when asked."""

from __future__ import annotations

import os
import sys
import time


def progress_enabled(stream=None) -> bool:
    """On only for an interactive terminal, outside CI, unless FASTGAN_PROGRESS forces it (1/0)."""
    from . import environment
    forced = environment.get("FASTGAN_PROGRESS")
    if forced is not None:
        return forced
    if os.environ.get("CI"):
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def _fmt_time(s: float) -> str:
    if s != s or s == float("inf"):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


MIN_INTERVAL = 0.2              # seconds between redraws


class Progress:
    """``Progress(total, unit="it", desc="run", scale=B)``; ``update(k)`` adds k steps.

    ``scale`` multiplies the rate shown as a second unit (e.g. run-steps/s for an ensemble of B runs).
    """

    def __init__(self, total: int, unit: str = "it", desc: str = "", scale: float = 1.0, scale_unit: str = "",
                 enabled: bool | None = None, stream=None, min_interval: float | None = None, initial: int = 0,
                 note=None):
        self.total, self.unit, self.desc = max(1, int(total)), unit, desc
        self.scale, self.scale_unit = scale, scale_unit
        self.stream = stream or sys.stderr
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.n = self.n0 = int(initial)         # work done before (a resume): not counted in the rate
        self.note = note                        # () -> str shown after the count (e.g. runs done), or None
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.min_interval = MIN_INTERVAL if min_interval is None else min_interval

    def update(self, k: int = 1) -> None:
        self.n += k
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= self.min_interval or self.n >= self.total:
            self._last = now
            self._draw(now)

    def credit(self, k: int) -> None:
        """k steps done earlier (restored from a checkpoint): counted as done, not in the rate."""
        self.n += k
        self.n0 += k

    def _draw(self, now: float) -> None:
        el = now - self.t0
        rate = (self.n - self.n0) / el if el > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("inf")
        frac = min(1.0, self.n / self.total)
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        extra = f", {rate * self.scale:,.0f} {self.scale_unit}/s" if self.scale_unit else ""
        note = f", {self.note()}" if self.note is not None else ""
        self.stream.write(f"\r{self.desc} [{bar}] {self.n:,}/{self.total:,} {self.unit}{note} "
                          f"({rate:,.1f} {self.unit}/s{extra}) elapsed {_fmt_time(el)} ETA {_fmt_time(eta)}  ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
