"""Command line: ``fastgan run | sweep | status | plot | reproduce | ntk measure | config | info | dirac``.

Every user error (bad config key or value, existing output, unavailable backend) ends with one
line ``fastgan: error: ...`` on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys

from . import environment
from .errors import FastganError, StorageError


class PictureError(FastganError):
    """The run was written but its picture failed (exit 1: not bad input)."""


def _parser() -> argparse.ArgumentParser:
    from .store import package_version
    p = _Parser(prog="fastgan", description="Particle simulator of GAN training dynamics.")
    p.add_argument("--version", action="version", version=f"fastgan {package_version()}")
    sub = p.add_subparsers(dest="cmd")

    r = sub.add_parser("run", help="run one configuration and write an HDF5 file (and a PNG)")
    r.add_argument("config", help="TOML configuration file")
    r.add_argument("--out", required=True, help="output HDF5 file (RUN.h5)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set training.n_disc=6 (repeatable)")
    r.add_argument("--backend", choices=("auto", "numpy", "numba", "cuda"), default=None,
                   help="execution backend (default: FASTGAN_BACKEND, else the config's, else auto)")
    r.add_argument("--force", action="store_true", help="overwrite existing output files")
    r.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    r.add_argument("--plot", dest="png", default=None, help="PNG path (default: the output with .png)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    r.add_argument("--checkpoint-every", type=float, default=None, metavar="SECONDS",
                   help="save the run's state to OUT.checkpoint every SECONDS of compute (default 60; 0: never) and "
                        "on Ctrl-C; the same command resumes from it")

    sw = sub.add_parser("sweep", help="run a phase-diagram sweep into a resumable output folder")
    sw.add_argument("spec", help="sweep spec (TOML with a [sweep] table)")
    sw.add_argument("--out", required=True, help="output folder (DIR/sweep.h5 is the consolidated file)")
    sw.add_argument("--backend", choices=("auto", "numpy", "numba", "cuda"), default=None,
                    help="execution backend (default: FASTGAN_BACKEND, else the base config's, else auto)")
    sw.add_argument("--dask", default=None, metavar="ADDRESS|local:N|jobqueue",
                    help="run ensembles on Dask workers: a scheduler address, a local cluster of N worker "
                         "processes, or the spec's [sweep.dask] jobqueue cluster (SLURM, SGE, PBS)")
    sw.add_argument("--refine", action="store_true",
                    help="locate the phase boundary by bisection along [sweep.refine].axis (default: the first "
                         "axis) for every point of the others, instead of computing the full grid")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the spec's base config (repeatable); a changed base is another sweep")
    sw.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sw.add_argument("--dry-run", action="store_true",
                    help="print the plan (runs stored and to compute, ensembles, memory, a time estimated from a "
                         "short calibration) and write nothing")
    sw.add_argument("--checkpoint-every", type=float, default=None, metavar="SECONDS",
                    help="save each ensemble's state to DIR/checkpoints every SECONDS of compute (default 60; 0: "
                         "never) and on Ctrl-C; the same command resumes from it (inline execution)")

    st = sub.add_parser("status", help="print the progress of a sweep folder")
    st.add_argument("dir", help="sweep output folder")

    nt = sub.add_parser("ntk", help="neural tangent kernels of real generators")
    ntsub = nt.add_subparsers(dest="ntk_cmd", required=True)
    me = ntsub.add_parser("measure", help="write the NTK Gram matrix of N latent seeds (for coupling.kind = gram)")
    me.add_argument("--setting", choices=("appendix-g", "fig2", "deep"), default="appendix-g",
                    help="one hidden layer initialised as in Durr et al. Appendix G (default) or Fig. 2, or the "
                         "deep mu-parametrised network of Fig. 21 (--depth, --mu)")
    me.add_argument("--act", choices=("relu", "erf"), default="relu")
    me.add_argument("--n", type=int, required=True, help="number of seeds (= generator.n_particles)")
    me.add_argument("--dim", type=int, default=256, help="latent dimension (default 256)")
    me.add_argument("--radius", type=float, default=None,
                    help="radius of the latent sphere (default 1; sqrt(dim) for --setting deep)")
    me.add_argument("--depth", type=int, default=None, help="hidden layers of --setting deep (default 6)")
    me.add_argument("--mu", type=float, default=None,
                    help="mu of --setting deep: pre-activations mu b + sqrt((1 - mu^2)/n) W alpha (default 0.5)")
    me.add_argument("--width", type=int, default=None,
                    help="hidden width of the measured network (torch); omit for the analytic infinite-width NTK")
    me.add_argument("--seed", type=int, default=0)
    me.add_argument("--out", required=True, help="output Gram file (GRAM.h5)")
    me.add_argument("--force", action="store_true", help="overwrite an existing output file")

    pl = sub.add_parser("plot", help="draw a run file (snapshots over the discriminator, observables) or a "
                                     "sweep folder (phase diagram with its fitted boundary)")
    pl.add_argument("run", help="run file written by 'fastgan run', or a folder written by 'fastgan sweep'")
    pl.add_argument("--out", default=None, help="PNG path (default: RUN.png)")
    pl.add_argument("--force", action="store_true", help="overwrite an existing PNG")
    pl.add_argument("--metric", action="append", default=None, metavar="NAME",
                    help="observable to draw (repeat for several; default: the family's for a run; mode collapse, "
                         "log-likelihood and nearest-mode distance for a sweep)")
    pl.add_argument("--log", action="store_true",
                    help="log scale: the observables' axes of a run, the colour scale of a sweep")
    pl.add_argument("--aggregate", choices=("mean", "median", "min", "max"), default=None,
                    help="sweep: how replicates are combined after the time average (default mean)")
    pl.add_argument("--label", action="append", default=[], metavar="KEY=TEXT",
                    help="sweep: text for a dimension, config key or observable (repeatable; $mathtext$ allowed)")
    pl.add_argument("--grid", type=int, default=None,
                    help="run: side of the heat-map lattice (default: automatic, 48-80 by the discriminator's size)")
    pl.add_argument("--image-grid", type=int, default=None, metavar="SIDE",
                    help="run of an image target: images per side of its grids of particles and target images "
                         "(default 10: up to 100 images)")

    c = sub.add_parser("config", help="validate a configuration and print its resolved form and run id")
    c.add_argument("config", nargs="?", default=None, help="TOML file (default: the built-in defaults)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--keys", action="store_true", help="list every configuration key with its default")

    sub.add_parser("info", help="backends, devices, versions and cache paths")

    rp = sub.add_parser("reproduce", help="reproduce a figure of the source papers (data, figure, report)")
    rp.add_argument("name", nargs="?", default=None, help="experiment name (see --list)")
    rp.add_argument("--list", action="store_true", help="list the experiments")
    scale = rp.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="scale", action="store_const", const="quick",
                       help="reduced scale, seconds to about 9 minutes on 2 CPU cores (the default; --list shows each)")
    scale.add_argument("--full", dest="scale", action="store_const", const="full", help="the paper's scale")
    scale.add_argument("--tiny", dest="scale", action="store_const", const="tiny",
                       help="smoke-test scale (seconds; numbers not meaningful)")
    rp.add_argument("--out", default=None, help="output folder (default: NAME)")
    rp.add_argument("--backend", choices=("auto", "numpy", "numba", "cuda"), default=None)
    rp.add_argument("--force", action="store_true", help="replace an existing output folder")
    rp.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    d = sub.add_parser("dirac", help="Dirac-GAN: |theta(T)| against the regulariser beta (Fig. 18)")
    d.add_argument("--beta-min", type=float, default=0.1)
    d.add_argument("--beta-max", type=float, default=10.0)
    d.add_argument("--n", type=int, default=41, help="number of log-spaced beta values")
    d.add_argument("--t-end", type=float, default=10.0)
    return p


def _png_for(h5: str) -> str:
    root, _ = os.path.splitext(h5)
    return root + ".png"


def cmd_run(args) -> int:
    from .engine import simulate
    from .h5io import check_distinct, check_writable
    from .runconfig import load_config
    from .store import read_run, write_run

    from .resources import check_run
    cfg = load_config(args.config, args.overrides)
    check_writable(args.out, args.force, "--out", picture=False)
    png = None if args.no_plot else (args.png or _png_for(args.out))
    if png is not None:
        check_writable(png, args.force, "--plot", picture=True)
        check_distinct(args.out, png, "--plot")
    inputs = {"the config file": args.config, **{f"the file of {k}": v for k, v in cfg.resolved.input_files().items()}}
    for option, path in (("--out", args.out), ("--plot", png)):
        for what, source in inputs.items():
            if path is not None:
                check_distinct(source, path, option, what)
    from .backend import resolve
    chosen = resolve(args.backend, cfg.backend, announce=False)
    check_run(cfg.resolved, backend=chosen)
    ckpt = _run_checkpoint(args, cfg, chosen)
    backend = resolve(args.backend, cfg.backend)                   # announced once the run is accepted
    result = simulate(cfg, backend=backend, progress=None if not args.quiet else False, checkpoint=ckpt)
    write_run(args.out, result, force=args.force)
    if ckpt is not None:
        ckpt.remove()                                              # the run file holds the results now
    if png is not None:
        from .plots import plot_run
        try:
            plot_run(read_run(args.out), png)
        except Exception as exc:  # noqa: BLE001 - the run file is complete: keep it and say so
            raise PictureError(f"--plot = {png!r}: the picture failed ({type(exc).__name__}: {exc}); the run file "
                               f"{args.out!r} is complete") from exc
    if not args.quiet:
        obs = result.observables
        resumed = result.provenance.get("resumed_at")
        summary = [f"run {cfg.run_id} [{backend}, {cfg.precision}] {cfg.training.n_iterations} iterations in "
                   f"{result.provenance['loop_s']:.1f} s" + (f" (resumed at iteration {resumed})" if resumed else "")]
        if "w2" in obs:
            summary.append(f"w2 = {obs['w2'][0]:.4g} -> {obs['w2'][-1]:.4g}  "
                           f"escaped_fraction = {obs['escaped_fraction'][-1]:.3f}  "
                           f"mode_collapse(final) = {obs['mode_collapse'][-1]:.4f}")
        elif "mode_collapse" in obs:
            modes = f"/{len(result.modes)}" if result.modes is not None else ""
            summary.append(f"mode_collapse(final) = {obs['mode_collapse'][-1]:.4f}  "
                           f"modes_covered = {obs['modes_covered'][-1]:.0f}{modes}  "
                           f"log_likelihood = {obs['log_likelihood'][-1]:.3f}")
        elif "cosine_mode_collapse" in obs:                        # e.g. a target of images (no modes)
            summary.append(f"cosine_mode_collapse(final) = {obs['cosine_mode_collapse'][-1]:.4f}  "
                           f"cosine_distance = {obs['cosine_distance'][-1]:.4f}  "
                           f"particle_cosine = {obs['particle_cosine'][-1]:.4f}"
                           + ("  RUNAWAY" if obs["runaway"][-1] == 1 else ""))
        summary.append(f"wrote {args.out}" + (f" and {png}" if png else ""))
        print("\n".join(summary))
    if result.diverged:
        print(f"fastgan: warning: run {cfg.run_id} diverged (NaN/Inf) at iteration {result.diverged_at}; "
              "its particles were frozen there", file=sys.stderr)
    return 0


def _run_checkpoint(args, cfg, backend: str):
    """The Checkpoint of ``fastgan run`` (OUT.checkpoint; None with --checkpoint-every 0). A checkpoint there
    of another run, backend or version is refused (its work is not thrown away) unless --force."""
    from .checkpoint import Checkpoint, identity_of, interval
    from .h5io import check_name_length
    from .store import package_version
    every = interval(args.checkpoint_every)
    if not every:
        return None
    path = args.out + ".checkpoint"
    folder = os.path.dirname(os.path.abspath(path))
    check_name_length(folder, os.path.basename(path), "--out", args.out)
    if os.path.lexists(path) and not os.path.isfile(path):
        raise FastganError(f"--out = {args.out!r}: {path!r} (its checkpoint's name) exists and is not a file")
    ckpt = Checkpoint(path, every, {"runs": [cfg.run_id], "backend": backend, "fastgan": package_version()},
                      what=f"run {cfg.run_id}")
    found = identity_of(path) if os.path.exists(path) else None
    if found is not None and json.loads(ckpt.identity) != found:
        if not args.force:
            raise FastganError(f"--out = {args.out!r}: {path!r} holds the checkpoint of run "
                               f"{','.join(found.get('runs') or ['?'])} ({found.get('backend')}, fastgan "
                               f"{found.get('fastgan')}), not of this one; resume it with its own config, or "
                               "use --force to start afresh")
        os.unlink(path)
    return ckpt


IMAGE_GRID_MAX = 64             # fastgan plot --image-grid: at most 64 x 64 images per grid


def cmd_plot(args) -> int:
    from .h5io import check_distinct, check_writable
    from .plots import image_shape_of, plot_run
    from .store import read_run

    if os.path.isdir(args.run):                        # a sweep folder: the phase diagram
        from .sweep_plots import plot_sweep
        from .sweep_store import open_sweep
        for given, option in ((args.grid, "--grid"), (args.image_grid, "--image-grid")):
            if given is not None:
                raise FastganError(f"{option} applies to a run file, not to a sweep folder")
        labels = {}
        for item in args.label:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise FastganError(f"--label = {item!r}: expected KEY=TEXT")
            labels[key.strip()] = text
        png = args.out or os.path.join(args.run, "phase.png")
        check_writable(png, args.force, "--out", picture=True, redraw=True)
        plot_sweep(open_sweep(args.run), png, metric=args.metric, log=args.log, aggregate=args.aggregate or "mean",
                   labels=labels)
        print(f"wrote {png}")
        return 0
    if not os.path.isfile(args.run):
        raise FastganError(f"run = {args.run!r}: file not found")
    for given, option in ((args.aggregate, "--aggregate"), (args.label, "--label")):
        if given:
            raise FastganError(f"{option} applies to a sweep folder, not to a run file")
    if args.grid is not None and not 2 <= args.grid <= 1024:
        raise FastganError(f"--grid = {args.grid}: choose 2 to 1024")
    if args.image_grid is not None and not 1 <= args.image_grid <= IMAGE_GRID_MAX:
        raise FastganError(f"--image-grid = {args.image_grid}: choose 1 to {IMAGE_GRID_MAX}")
    png = args.out or _png_for(args.run)
    check_writable(png, args.force, "--out", picture=True, redraw=True)
    check_distinct(args.run, png, "--out")
    run = read_run(args.run)
    if args.image_grid is not None and image_shape_of(run) is None:
        raise FastganError(f"--image-grid = {args.image_grid}: {args.run!r} is not a run of an image target (no "
                           "recorded image shape matching its particles, or no snapshots)")
    plot_run(run, png, metric=args.metric, log=args.log, grid=args.grid, image_grid=args.image_grid)
    print(f"wrote {png}")
    return 0


def cmd_config(args) -> int:
    from .runconfig import describe_keys, load_config

    if args.keys:
        print(describe_keys())
        return 0
    cfg = load_config(args.config, args.overrides)
    print(json.dumps(cfg.resolved.as_dict(), indent=2, sort_keys=True))
    print(f"run_id = {cfg.run_id}")
    return 0


def cmd_info(args) -> int:
    from .backend import info
    print(info())
    return 0


def cmd_dirac(args) -> int:
    import numpy as np

    from .dirac import dirac_eigenvalues, dirac_sweep

    if not (0 < args.beta_min < args.beta_max < float("inf")):
        raise FastganError(f"--beta-min/--beta-max = {args.beta_min}/{args.beta_max}: need 0 < min < max, finite")
    if not 1 <= args.n <= 100_000:
        raise FastganError(f"--n = {args.n}: the number of beta values must lie in [1, 100000]")
    if not 0 < args.t_end < float("inf"):
        raise FastganError(f"--t-end = {args.t_end}: must be a finite number > 0")
    betas = np.geomspace(args.beta_min, args.beta_max, args.n)
    vals = dirac_sweep(betas, args.t_end)
    dist = dirac_sweep(betas, args.t_end, measure="distance")
    print(f"{'beta':>10s} {'|theta(T)|':>12s} {'distance':>12s}  eigenvalues")
    for b, v, dd in zip(betas, vals, dist):
        ev = dirac_eigenvalues(b)
        print(f"{b:10.4g} {v:12.4e} {dd:12.4e}  {ev[0]:.4g}, {ev[1]:.4g}")
    print(f"minimum of |theta(T)| at beta = {betas[np.argmin(vals)]:.4g}, of the distance at beta = "
          f"{betas[np.argmin(dist)]:.4g} (critical damping at beta = 2)")
    return 0


REFINE_STATUS = {"above": "{metric} >= {threshold:.4g} already at the low end (the boundary lies below)",
                 "below": "{metric} < {threshold:.4g} still at the high end (the boundary lies above)",
                 "nan": "a run diverged or its {metric} is NaN (line given up)"}


def cmd_sweep(args) -> int:
    from .sweep import execute, load_spec, refine
    sw = load_spec(args.spec, args.overrides)
    if args.dry_run:
        if args.refine:
            raise FastganError("--dry-run with --refine: the runs of a bisection depend on its results; plan the "
                               "grid without --refine")
        from .sweep_report import dry_run
        print(dry_run(sw, args.out, args.backend))
        return 0
    if args.refine:
        doc = refine(sw, args.out, backend=args.backend, progress=False if args.quiet else None, dask=args.dask,
                     checkpoint_every=args.checkpoint_every)
        if not args.quiet:
            lo, hi = doc["range"]
            for ln in doc["lines"]:
                where = ", ".join(f"{k} = {v}" for k, v in ln["coords"].items())
                if ln["status"] == "bracketed":
                    print(f"{where}: {doc['axis']} boundary {ln['boundary']:.4g} in [{ln['bracket'][0]:.4g}, "
                          f"{ln['bracket'][1]:.4g}]{'' if ln['converged'] else ' (not converged)'}")
                else:
                    print(f"{where}: no boundary in {doc['axis']} = [{lo:.4g}, {hi:.4g}]: "
                          + REFINE_STATUS[ln["status"]].format(metric=doc["metric"], threshold=doc["threshold"]))
            print(f"{doc['runs']} runs evaluated ({doc['runs_computed']} computed now) against {doc['grid_runs']} "
                  f"for the full grid; wrote {os.path.join(args.out, 'boundary.json')}")
        return 0
    out = execute(sw, args.out, backend=args.backend, progress=False if args.quiet else None, dask=args.dask,
                  checkpoint_every=args.checkpoint_every)
    if not args.quiet:
        print(f"sweep {sw.name!r}: {out['runs_computed']} of {out['runs_total']} runs computed now in "
              f"{out['ensembles']} ensembles [{out['backend']}, {out['executor']}] ({out['compute_s']:.1f} s compute, "
              f"{out['plan_s'] + out['write_s'] + out['consolidate_s']:.2f} s planning and writing); "
              f"{out['runs_diverged']} of the {out['runs_total']} runs diverged")
        for line in out["outside"]:
            print(line)
        print(f"wrote {os.path.join(args.out, 'sweep.h5')}")
    return 0


def cmd_reproduce(args) -> int:
    from . import reproduce
    if args.list:
        print(reproduce.listing())
        return 0
    if not args.name:
        raise FastganError("reproduce: give an experiment NAME or --list")
    scale = args.scale or "quick"
    out = args.name if args.out is None else args.out
    ctx = reproduce.run(args.name, scale, out, backend=args.backend, force=args.force,
                        progress=False if args.quiet else None)
    if not args.quiet:
        print(ctx.report.text(f"{args.name} --{scale}").rstrip())
        print(f"wrote {out}/ ({', '.join(sorted(os.path.basename(p) for p in ctx.outputs))}, report.txt, report.json)")
    return 0


def cmd_status(args) -> int:
    from .sweep_store import status
    print(status(args.dir))
    return 0


def cmd_ntk(args) -> int:
    from .h5io import check_writable
    from .ntk_gram import MAX_DEPTH, measure_cost, measure_gram, write_gram
    for name in ("n", "dim", "width", "depth"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise FastganError(f"--{name} = {v}: must be >= 1")
    if args.n < 2:
        raise FastganError(f"--n = {args.n}: a Gram matrix needs at least 2 seeds")
    if args.radius is not None and not 0 < args.radius < float("inf"):
        raise FastganError(f"--radius = {args.radius}: must be a finite number > 0")
    if not 0 <= args.seed < 2 ** 63:
        raise FastganError(f"--seed = {args.seed}: must lie in [0, 2**63 - 1]")
    for name, default in (("depth", 6), ("mu", 0.5)):
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.setting != "deep":
            raise FastganError(f"--{name} applies to --setting deep only (got --setting {args.setting})")
    if not 0.0 <= args.mu <= 1.0:
        raise FastganError(f"--mu = {args.mu}: must lie in [0, 1]")
    if args.depth > MAX_DEPTH:
        raise FastganError(f"--depth = {args.depth}: at most {MAX_DEPTH} layers (deeper NTKs are numerically "
                           "a constant matrix)")
    from .resources import GiB, WORK_LIMIT, ResourceError, allow_huge, available_memory
    need, work = measure_cost(args.setting, args.n, args.dim, args.width, args.depth)
    blame = f"--width = {args.width}" if args.width and args.width * args.width > args.n else f"--n = {args.n}"
    if need > available_memory():
        raise ResourceError(f"{blame}: measuring the {args.n} x {args.n} Gram matrix needs about {need / GiB:.3g} GiB "
                            f"of memory, {available_memory() / GiB:.3g} GiB are available")
    if work > WORK_LIMIT and not allow_huge():
        raise ResourceError(f"{blame}: measuring the Gram matrix would take about {work:.2g} multiply-adds (more "
                            f"than {WORK_LIMIT:.0e}); set FASTGAN_ALLOW_HUGE=1 to run it anyway")
    check_writable(args.out, args.force, picture=False)
    if args.width is not None:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise FastganError("--width: measuring a network's NTK needs torch (pip install 'fastgan[ntk]'); "
                               "omit --width for the analytic kernel") from None
    gram, meta = measure_gram(args.setting, args.act, args.n, args.dim, args.radius, args.width, args.seed,
                              args.depth, args.mu)
    write_gram(args.out, gram, meta, force=args.force)
    kind = f"width {args.width}" if args.width else "infinite width"
    if args.setting == "deep":
        kind += f", depth {args.depth}, mu {args.mu:g}"
    print(f"NTK Gram matrix {args.n} x {args.n} ({args.setting}, {args.act}, {kind}): g1 = {meta['g1']:.4g} "
          f"(std {meta['g1_std']:.2g}), g2 = {meta['g2']:.4g} (std {meta['g2_std']:.2g}); wrote {args.out}")
    return 0


COMMANDS = {"run": cmd_run, "ntk": cmd_ntk, "plot": cmd_plot, "config": cmd_config, "info": cmd_info, "dirac": cmd_dirac,
            "sweep": cmd_sweep, "status": cmd_status, "reproduce": cmd_reproduce}


def main(argv=None) -> int:
    _streams()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(exc, 2)
    if args.cmd is None:                            # a bare `fastgan`: what it can do
        parser.print_help()
        return 0
    log = logging.getLogger("fastgan")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("fastgan: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    from . import checkpoint, h5io
    h5io.WRITTEN.clear()
    checkpoint.KEPT.clear()
    try:
        with _warnings_as_lines(), _termination_as_interrupt():
            environment.check()
            return COMMANDS[args.cmd](args)
    except (PictureError, StorageError) as exc:      # not bad input: what was complete is kept
        return _fail(exc, 1)
    except FastganError as exc:                     # bad input, refused before any work or write
        return _fail(exc, 2)
    except KeyboardInterrupt as exc:                # Ctrl-C, SIGTERM, SIGHUP: temporaries are removed on the way
        print(f"fastgan: interrupted; {_kept()}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except BrokenPipeError:                         # e.g. `fastgan config --keys | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:                          # a full disk, an I/O error: what was complete stays
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return _fail(f"cannot write or read {where}{exc.strerror or exc}", 1)
    except MemoryError:
        return _fail("out of memory (a size in the config is too large for this machine)", 1)
    except RecursionError:
        return _fail("input nested too deeply (a value of the config or a file it names)", 2)
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user; FASTGAN_DEBUG=1 shows it
        if _debug():
            raise
        return _fail(f"internal error ({type(exc).__name__}: {exc}); FASTGAN_DEBUG=1 shows the traceback", 1)


def _kept() -> str:
    """What an interruption leaves: the complete outputs written, and the checkpoints to resume from."""
    from . import checkpoint, h5io
    kept = h5io.WRITTEN
    said = []
    if kept:
        said.append(f"complete outputs were kept: {', '.join(kept[:3])}"
                    f"{f' and {len(kept) - 3} more' if len(kept) > 3 else ''}")
    states = checkpoint.kept_lines()
    if states:
        said.append(f"checkpoint of {'; '.join(states)} (the same command resumes from it)")
    return "; ".join(said) if said else "no output was written"


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when they are written (main() may run many times in one
    process, each with its own stderr)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class UsageError(Exception):
    """A command line argparse cannot read (one line, exit 2, like every other bad input)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _streams() -> None:
    """Paths and values in messages are printed whatever the terminal's encoding can show."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def _debug() -> bool:
    try:
        return environment.get("FASTGAN_DEBUG")
    except FastganError:
        return False


@contextlib.contextmanager
def _warnings_as_lines():
    """Warnings (fastgan's own, numpy's) as one line each, ``fastgan: warning: ...``, not Python's two
    lines with the source line."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fastgan: warning: {_one_line(message)}", file=file or sys.stderr)
    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that every temporary file and folder is removed
    on the way out exactly as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _termination_as_interrupt():
    def handler(signum, frame):
        raise Terminated(signum)
    saved = {}
    try:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                saved[sig] = signal.signal(sig, handler)
    except ValueError:                              # not the main thread (main() called from a thread)
        pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _one_line(message) -> str:
    """A message as one line (newlines in it shown escaped)."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def _fail(message, code: int) -> int:
    """One line on stderr."""
    print(f"fastgan: error: {_one_line(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
