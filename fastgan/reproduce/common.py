"""The pieces every reproduction shares: the registry, the run context and the report.

An experiment is a function ``f(ctx)`` registered with :func:`experiment`. It reads its scale from
``ctx.scale`` ("tiny" for CI smoke tests, "quick" for seconds to minutes on 2 CPU cores (measured times in
``QUICK_SECONDS``), "full" for the paper's scale; :meth:`Context.pick` chooses among three values), runs the simulator, and leaves in
``ctx.out_dir`` its data (:meth:`Context.save_h5`), its figure(s) (:meth:`Context.save_figure`) and its
comparisons with the paper in ``ctx.report`` (written as ``report.txt`` and ``report.json``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..h5io import atomic_figure, atomic_h5

SCALES = ("tiny", "quick", "full")


@dataclass(frozen=True)
class Experiment:
    """A named, runnable reproduction of figures of one paper."""

    name: str
    paper: str          # "001": the paper's key in PAPERS (its short citation)
    figures: str        # "Figs. 5, 6"
    title: str          # one line: what is reproduced
    func: Callable
    needs: tuple = ()   # optional modules it imports (e.g. ("torch",)); missing ones skip the smoke test


REGISTRY: dict[str, Experiment] = {}

# The source papers by key (Experiment.paper): the short citation shown in listings, reports and figures.
# The full references are in README.md ("References").
PAPERS = {
    "000": "Becker et al. (NeurIPS 2022)",          # Instability and Local Minima in GAN Training with Kernel
                                                    # Discriminators: the isolated points model
    "001": "Durr et al. (2022)",                    # Effective Dynamics of Generative Adversarial Networks
    "002": "Sinn & Rawat (AISTATS 2018)",           # Non-parametric estimation of Jensen-Shannon Divergence in
                                                    # GAN training: the Kernel GAN
    "004": "Fitting to Collapse (under review)",    # Evolution of Discriminator and Generator Gradients in GAN
                                                    # Training: From Fitting to Collapse (anonymous)
}


def citation(paper: str) -> str:
    """The short citation of the paper with key ``paper`` (the key itself if it is unknown)."""
    return PAPERS.get(paper, paper)


def experiment(name: str, paper: str, figures: str, title: str, needs: tuple = ()):
    """Register ``f(ctx)`` as the reproduction ``name``."""
    def deco(func):
        if name in REGISTRY:
            raise ValueError(f"experiment {name!r} registered twice")
        REGISTRY[name] = Experiment(name, paper, figures, title, func, tuple(needs))
        return func
    return deco


def _finite_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


# Verdicts of a comparison with the paper (``Report.compare``'s ``agree``): True / False / None, or one of
# these words where neither "agrees" nor "disagrees" says what was found.
VERDICTS = {True: "agrees", False: "DISAGREES", None: "no verdict",
            "qualitative": "agrees qualitatively",      # the paper's words, not a number, and they hold
            "not comparable": "not comparable",         # the number depends on a parameter the paper leaves open
            "calibrated": "calibrated to it"}           # fastgan chose a parameter to match it: not a check


@dataclass
class Comparison:
    quantity: str
    ours: str
    paper: str
    agree: bool | str | None    # a key of VERDICTS (None: no verdict, e.g. the paper states no number)
    note: str = ""

    @property
    def verdict(self) -> str:
        return VERDICTS[self.agree]


@dataclass
class Scan:
    """How a compared number moves with a parameter the paper leaves open: ``results[i]`` at ``values[i]``
    (NaN: not measured there, e.g. every run diverged), the paper's number if it states one."""

    quantity: str
    parameter: str
    values: list
    results: list
    paper: float | None = None
    note: str = ""

    def finite(self) -> list:
        return [float(x) for x in self.results if x is not None and math.isfinite(float(x))]

    def span(self) -> str:
        f = self.finite()
        return f"{min(f):.3g} to {max(f):.3g}" if f else "not measured"

    def covers_paper(self) -> bool | None:
        f = self.finite()
        if self.paper is None or not f:
            return None
        return min(f) <= self.paper <= max(f)


@dataclass
class Report:
    """What an experiment measured and how it compares with the paper; the paper's parameters (stated, and
    left open with fastgan's choice and why) and scans of the open ones (:meth:`scan`)."""

    summary: str = ""                                   # one sentence for the gallery
    lines: list = field(default_factory=list)           # free text, in order
    values: dict = field(default_factory=dict)          # name -> finite number (checked by the smoke tests)
    comparisons: list = field(default_factory=list)
    stated: dict = field(default_factory=dict)          # parameter -> the paper's value (and where it says so)
    open: dict = field(default_factory=dict)            # parameter -> fastgan's choice and why
    scans: list = field(default_factory=list)           # Scan

    def parameters(self, stated: dict, open: dict) -> None:
        """The parameters behind the compared numbers: ``stated`` {name: the paper's value}, ``open`` {name:
        fastgan's choice and why} (the paper does not give them)."""
        self.stated.update({k: str(v) for k, v in stated.items()})
        self.open.update({k: str(v) for k, v in open.items()})

    def scan(self, quantity: str, parameter: str, values, results, paper: float | None = None,
             note: str = "") -> Scan:
        """Record how ``quantity`` moves over ``values`` of ``parameter`` (raw numbers in report.json): one the
        paper leaves open, or one it states that a reduced scale departs from (declared either way)."""
        if parameter not in self.open and parameter not in self.stated:
            raise ValueError(f"scan over {parameter!r}: not among the declared parameters "
                             f"({', '.join([*self.stated, *self.open])})")
        if len(values) != len(results):
            raise ValueError(f"scan of {quantity!r}: {len(values)} values, {len(results)} results")
        sc = Scan(quantity, parameter, [float(v) if _finite_number(v) else str(v) for v in values],
                  [float(x) if x is not None else float("nan") for x in results],
                  None if paper is None else float(paper), note)
        self.scans.append(sc)
        return sc

    def compare_scanned(self, quantity: str, ours, paper, sc: Scan, note: str = "") -> None:
        """A comparison whose number depends on an open parameter: 'not comparable', with the range over the
        scan and whether the paper's number lies inside it."""
        inside = sc.covers_paper()
        where = ("" if inside is None else
                 f"; the paper's {sc.paper:.3g} lies {'inside' if inside else 'outside'} that range")
        self.compare(quantity, ours, paper, "not comparable",
                     f"depends on the unstated {sc.parameter}: {sc.span()} over the scan{where}"
                     + (f"; {note}" if note else ""))

    def line(self, text: str = "") -> None:
        self.lines.append(str(text))

    def value(self, name: str, value, fmt: str = ".4g", unit: str = "") -> float:
        """Record a number (it must be finite: a NaN here is a bug or a blow-up to report as text)."""
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"report value {name!r} = {v}: not finite")
        self.values[name] = v
        self.lines.append(f"{name} = {v:{fmt}}{(' ' + unit) if unit else ''}")
        return v

    def compare(self, quantity: str, ours, paper, agree: bool | str | None, note: str = "") -> None:
        """One comparison with the paper; ``agree`` is our verdict: True / False, None (nothing to judge
        against), or a word of :data:`VERDICTS` ("qualitative", "not comparable", "calibrated")."""
        if isinstance(agree, str):
            if agree not in VERDICTS:
                raise ValueError(f"verdict {agree!r}: expected a bool, None or one of "
                                 f"{', '.join(k for k in VERDICTS if isinstance(k, str))}")
        elif agree is not None:
            agree = bool(agree)
        self.comparisons.append(Comparison(quantity, str(ours), str(paper), agree, note))

    def text(self, header: str) -> str:
        out = [header, ""]
        if self.summary:
            out += [self.summary, ""]
        if self.comparisons:
            out.append("Comparison with the paper:")
            for c in self.comparisons:
                out.append(f"  - {c.quantity}: ours {c.ours}; paper {c.paper} [{c.verdict}]"
                           + (f" -- {c.note}" if c.note else ""))
            out.append("")
        if self.stated or self.open:
            out.append("Parameters the paper states:")
            out += [f"  - {k}: {v}" for k, v in self.stated.items()] or ["  (none of those compared)"]
            out.append("Parameters it leaves open (fastgan's choice, why):")
            out += [f"  - {k}: {v}" for k, v in self.open.items()] or ["  (none)"]
            out.append("")
        if self.scans:
            out.append("Sensitivity (how each compared number moves with an open parameter; raw numbers in "
                       "report.json):")
            for sc in self.scans:
                inside = sc.covers_paper()
                out.append(f"  - {sc.quantity} against {sc.parameter}: {sc.span()}"
                           + ("" if sc.paper is None else f" (paper {sc.paper:.3g}"
                              + ("" if inside is None else f": {'inside' if inside else 'outside'} the range") + ")")
                           + (f" -- {sc.note}" if sc.note else ""))
                out.append("      " + "  ".join(f"{v:>9}" if isinstance(v, str) else f"{v:>9.3g}" for v in sc.values))
                out.append("      " + "  ".join(f"{x:>9.3g}" for x in sc.results))
            out.append("")
        if self.lines:
            out.append("Measured:")
            out += [f"  {ln}" if ln else "" for ln in self.lines]
        return "\n".join(out) + "\n"

    def as_json(self, meta: dict) -> str:
        scans = [{**sc.__dict__, "results": [x if math.isfinite(x) else None for x in sc.results],
                  "paper_inside": sc.covers_paper()} for sc in self.scans]
        return json.dumps({**meta, "summary": self.summary, "values": self.values, "lines": self.lines,
                           "comparisons": [{**c.__dict__, "verdict": c.verdict} for c in self.comparisons],
                           "parameters": {"stated": self.stated, "open": self.open}, "sensitivity": scans},
                          indent=2, sort_keys=True)


class Context:
    """Where and at what scale one experiment runs; collects its outputs."""

    def __init__(self, experiment: Experiment, scale: str, out_dir: str, backend: str | None = None,
                 progress: bool | None = None):
        if scale not in SCALES:
            raise ValueError(f"scale {scale!r}: expected one of {SCALES}")
        self.experiment, self.scale, self.out_dir = experiment, scale, out_dir
        self.backend, self.progress = backend, progress
        self.report = Report()
        self.outputs: list[str] = []

    # -- scale
    def pick(self, tiny, quick, full):
        """The value for this scale."""
        return {"tiny": tiny, "quick": quick, "full": full}[self.scale]

    @property
    def tiny(self) -> bool:
        return self.scale == "tiny"

    # -- outputs
    def path(self, filename: str) -> str:
        return os.path.join(self.out_dir, filename)

    def save_h5(self, data: dict, filename: str = "data.h5", attrs: dict | None = None) -> str:
        """Write nested dicts of arrays / numbers / strings as HDF5 groups and datasets.

        A float dataset that may legitimately hold NaN or Inf (e.g. a diverged run's trace, kept as
        evidence) must say so: wrap it as ``allow_nonfinite(array)``; every other float dataset is
        checked finite by the smoke tests.
        """
        def put(group, d):
            for k, v in d.items():
                if isinstance(v, dict):
                    put(group.create_group(str(k)), v)
                elif isinstance(v, _NonFinite):
                    ds = group.create_dataset(str(k), data=np.asarray(v.array))
                    ds.attrs["allow_nonfinite"] = True
                elif isinstance(v, str):
                    group.attrs[str(k)] = v
                else:
                    group.create_dataset(str(k), data=np.asarray(v))

        def fill(f):
            f.attrs["experiment"] = self.experiment.name
            f.attrs["scale"] = self.scale
            for k, v in (attrs or {}).items():
                f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list, tuple)) else v
            put(f, data)

        path = self.path(filename)
        atomic_h5(path, fill)                     # built in memory: a full disk is one error, no HDF5 crash
        self.outputs.append(path)
        return path

    def save_figure(self, fig, filename: str = "figure.png", dpi: int = 90) -> str:
        """Save a matplotlib figure (PNG) and close it."""
        import matplotlib.pyplot as plt
        path = self.path(filename)
        try:
            atomic_figure(path, fig, dpi=dpi, bbox_inches="tight")
        finally:
            plt.close(fig)
        self.outputs.append(path)
        return path

    def add_output(self, path: str) -> str:
        """Declare a file written some other way (an animation, a sweep folder)."""
        self.outputs.append(path)
        return path


@dataclass
class _NonFinite:
    array: object


def allow_nonfinite(array) -> _NonFinite:
    """Mark a dataset for :meth:`Context.save_h5` that may hold NaN/Inf on purpose."""
    return _NonFinite(array)


def figure(ncols: int = 1, nrows: int = 1, size: tuple = (4.2, 3.6), **kw):
    """A headless (Agg) figure with ncols x nrows panels of ``size`` inches each."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw)
    return fig, axes
