"""fastgan: a high-performance particle simulator of GAN training dynamics.

    >>> import fastgan
    >>> cfg = fastgan.load_config("examples/quickstart.toml", ["training.n_iterations=200"])
    >>> result = fastgan.simulate(cfg)            # a RunResult: observables, snapshots, parameters
    >>> result.observables["mode_collapse"][-1]

Importing fastgan imports neither cupy nor torch; backends are probed on first use.
"""

from __future__ import annotations


def _source_checkout_kernels() -> None:
    """Make ``fastgan.kernels`` importable when this package is imported straight from a source
    checkout (e.g. ``python -m fastgan`` in the repository root shadowing a regular install): the
    kernels live in the sibling folder ``kernels/``, which installs map to ``fastgan.kernels``."""
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec(__name__ + ".kernels") is not None:
        return
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
    init = os.path.join(folder, "__init__.py")
    if os.path.isfile(init):
        spec = importlib.util.spec_from_file_location(__name__ + ".kernels", init, submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)


_source_checkout_kernels()

from .errors import BackendError, ConfigError, FastganError  # noqa: E402

_FROM_RUNCONFIG = ("Config", "default_config", "from_dict", "load_config")


def __getattr__(name: str):
    """The configuration API, imported on first use: ``import fastgan`` (and so the ``fastgan`` command
    before it has set up its signal and error handling) stays cheap."""
    if name in _FROM_RUNCONFIG:
        from . import runconfig
        return getattr(runconfig, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "BackendError", "FastganError", "default_config", "from_dict", "load_config",
           "simulate", "simulate_ensemble", "open_run", "open_sweep", "__version__"]


def _as_config(config):
    from .runconfig import Config, from_dict, load_config
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return from_dict(config)
    return load_config(config)


def simulate(config, backend: str | None = None, progress: bool | None = None):
    """Run one configuration (a Config, a nested dict, or a TOML path); returns a RunResult."""
    from .engine import simulate as _simulate
    return _simulate(_as_config(config), backend=backend, progress=progress)


def simulate_ensemble(configs, backend: str | None = None, progress: bool | None = None):
    """Run several same-shape configurations as one ensemble; returns a list of RunResult."""
    from .engine import simulate_ensemble as _sim
    return _sim([_as_config(c) for c in configs], backend=backend, progress=progress)


def open_run(path: str):
    """The run file at ``path`` (written by ``fastgan run``) as an xarray Dataset: observables over ``time``,
    particles over (snapshot, particle, coord), each with long_name / units / description; the same Dataset
    as ``RunResult.to_xarray()`` of the run."""
    from .store import open_run as _open
    return _open(path)


def open_sweep(out_dir: str):
    """The sweep in ``out_dir`` (written by ``fastgan sweep``) as an xarray Dataset: the swept axes as
    dimensions with short names (``n_disc``; the config key as their ``config_key`` attribute) and their
    values as coordinates, ``replicate`` and ``time``."""
    from .sweep_store import open_sweep as _open
    return _open(out_dir)
