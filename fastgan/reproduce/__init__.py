"""``fastgan reproduce``: the figures of the source papers as named, runnable experiments.

    fastgan reproduce --list
    fastgan reproduce NAME [--tiny | --quick | --full] --out DIR

Each experiment writes into DIR its data (HDF5), its figure(s) (PNG, and GIF animations where the
paper shows dynamics) and ``report.txt`` / ``report.json``: the quantities compared with the paper and
our verdict. The outputs are written to a work folder beside DIR (``.DIR-NAME-SCALE.partial``) and moved
into place when the experiment has finished, so a crash never leaves a half-written DIR and an existing
DIR is only replaced with --force. An interrupted reproduction (Ctrl-C, SIGTERM, a killed process) leaves
its work folder: the same command resumes its sweeps from their completed parts and checkpoints. Modules
(one per paper and theme) register themselves on import.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import logging
import shutil
import time

from ..errors import FastganError
from .common import citation
from .common import REGISTRY, SCALES, Context, Experiment, allow_nonfinite, experiment, figure  # noqa: F401

log = logging.getLogger("fastgan")

MODULES = ("egan_dynamics", "egan_phase", "egan_regularisation", "egan_fourier", "egan_digits", "ipm", "kgan",
           "gradfields", "ntk_figs")

_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        for m in MODULES:
            importlib.import_module(f"{__name__}.{m}")
        _loaded = True


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name, in paper and figure order."""
    _load()
    return dict(sorted(REGISTRY.items(), key=lambda kv: (kv[1].paper, _fig_key(kv[1].figures), kv[0])))


def _fig_key(figures: str) -> int:
    digits = "".join(ch if ch.isdigit() else " " for ch in figures).split()
    return int(digits[0]) if digits else 10 ** 6


def get(name: str) -> Experiment:
    exps = experiments()
    if name not in exps:
        import difflib
        close = difflib.get_close_matches(name, list(exps), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (fastgan reproduce --list shows them)"
        raise FastganError(f"reproduce NAME = {name!r}: no such experiment{hint}")
    return exps[name]


EXTRAS = {"torch": ("torch", "ntk"), "sklearn": ("scikit-learn", "reproduce")}   # module: (package, extra)


def _install_hint(modules) -> str:
    """``torch (pip install 'fastgan[ntk]')``, per missing module, with the extra that installs it."""
    return ", ".join(f"{EXTRAS.get(m, (m, None))[0]} (pip install "
                     + (f"'fastgan[{EXTRAS[m][1]}]')" if m in EXTRAS else f"{m})") for m in modules)


# Wall time of each experiment at --quick scale, measured when the README's gallery was made (2 CPU cores,
# numba backend, reports in docs/gallery/NAME/report.txt); shown by --list as a guide.
QUICK_SECONDS = {
    "egan-digits-phase": 80, "egan-fig10-11": 113, "egan-fig13": 78, "egan-fig14": 110, "egan-fig15": 89,
    "egan-fig16-17": 45, "egan-fig18": 4, "egan-fig19": 172, "egan-fig2": 19, "egan-fig20": 110, "egan-fig21": 188,
    "egan-fig3-4": 183, "egan-fig5-6": 277, "egan-fig8-9": 89, "egan-gram-vs-coarse": 319,
    "grad-cone": 202, "grad-earlystop": 191, "grad-fields": 11, "ipm-fig1": 3, "ipm-fig2": 27,
    "ipm-fig3": 152, "ipm-fig4": 464, "kgan-digits": 98, "kgan-mog": 6,
}


def _duration(name: str) -> str:
    s = QUICK_SECONDS.get(name)
    if s is None:
        return "?"
    return f"{s} s" if s < 90 else f"{s / 60:.0f} min"


def listing() -> str:
    from ..runconfig import columns
    rows = [(e.name, citation(e.paper), e.figures, ", ".join(EXTRAS.get(m, (m,))[0] for m in e.needs) or "-",
             _duration(e.name), e.title) for e in experiments().values()]
    return columns(rows, ("name", "paper", "figures", "needs", "quick", "title"))    # quick: QUICK_SECONDS


MARKER = ".fastgan-reproduction"      # in every folder reproduce wrote: the files it wrote there


def _written_by_fastgan(out_dir: str) -> str | None:
    """None if every entry of ``out_dir`` is one a reproduction wrote there (its marker lists its files;
    a folder is its own when it holds some of them), else the first that is not (a file, a folder, a
    link), or the reason there is no marker."""
    try:
        with open(os.path.join(out_dir, MARKER)) as fh:
            mine = set(json.load(fh)["files"]) | {MARKER}
    except (OSError, ValueError, KeyError, TypeError):
        return "it has no reproduction marker (fastgan did not write it)"
    for dirpath, dirnames, files in os.walk(out_dir):
        for name in dirnames + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, out_dir)
            if os.path.islink(path) or not (rel in mine or (name in dirnames and _holds(rel, mine))):
                return f"{rel!r} was not written by fastgan reproduce"
    return None


def _holds(folder: str, files: set) -> bool:
    prefix = folder + os.sep
    return any(f.startswith(prefix) for f in files)


def check_out_dir(out_dir: str, force: bool, work: str = "experiment-quick.partial") -> None:
    """Refuse, before any work: an existing non-empty DIR unless forced, and even with --force a folder
    holding anything a reproduction did not write there; a link (say which folder to use); the current
    folder or one holding it; a missing or unwritable parent."""
    from ..h5io import check_folder_writable, check_name_length
    if not out_dir or not out_dir.strip(os.sep):
        raise FastganError(f"--out = {out_dir!r}: expected a folder name")
    if os.path.islink(out_dir.rstrip(os.sep)):
        raise FastganError(f"--out = {out_dir!r}: is a symbolic link; give the folder itself "
                           f"({os.path.realpath(out_dir)!r})")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FastganError(f"--out = {out_dir!r}: exists and is not a folder")
    here, real = os.path.realpath(os.getcwd()), os.path.realpath(out_dir)
    if here == real or here.startswith(real.rstrip(os.sep) + os.sep):
        raise FastganError(f"--out = {out_dir!r}: is the current folder or holds it; a reproduction replaces its "
                           "folder as a whole, so choose another one")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not force:
            raise FastganError(f"--out = {out_dir!r}: folder exists and is not empty (use --force to replace it)")
        foreign = _written_by_fastgan(out_dir)
        if foreign:
            raise FastganError(f"--out = {out_dir!r}: --force replaces only a reproduction's own folder, and {foreign}; "
                               "choose another folder")
    parent = os.path.dirname(os.path.abspath(out_dir.rstrip(os.sep)))
    if not os.path.isdir(parent):
        raise FastganError(f"--out = {out_dir!r}: folder {parent!r} does not exist")
    base = os.path.basename(os.path.abspath(out_dir))
    check_name_length(parent, f"{base}.old-.{base}-{work}", "--out", out_dir)
    check_folder_writable(parent, "--out", out_dir)


def work_folder(parent: str, base: str, name: str, scale: str) -> str:
    """The work folder of reproducing ``name`` at ``scale`` into ``parent/base``: a stable name, so that an
    interrupted reproduction (Ctrl-C, a killed process, the end of a session) leaves its completed sweep parts
    and checkpoints where the same command finds them and resumes."""
    return os.path.join(parent, f".{base}-{name}-{scale}.partial")


def _stale_partials(parent: str, base: str) -> None:
    """Remove the temporary folders of reproductions into ``base`` that ended without cleaning up, except the
    work folders of every experiment and scale (interrupted reproductions that their own command resumes): each live one holds a lock on its folder, so a folder whose lock can be taken is
    stale; and the previous version of ``base`` set aside by a replacement that did not finish."""
    import fcntl
    import glob
    resumable = {os.path.basename(work_folder(parent, base, e, s)) for e in experiments() for s in SCALES}
    for tmp in glob.glob(os.path.join(parent, glob.escape(f".{base}-") + "*.partial")):
        if os.path.basename(tmp) in resumable:
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue                                   # a reproduction running now
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            os.close(fd)
    if os.path.isdir(os.path.join(parent, base)):      # the replacement finished: the old copy is superseded
        for old in glob.glob(os.path.join(parent, glob.escape(f"{base}.old-.{base}-") + "*.partial")):
            if not os.path.islink(old):
                shutil.rmtree(old, ignore_errors=True)


def run(name: str, scale: str, out_dir: str, backend: str | None = None, force: bool = False,
        progress: bool | None = None) -> Context:
    """Run one experiment at ``scale`` into ``out_dir``; returns its finished Context."""
    import fcntl

    from .. import backend as backend_mod
    from ..h5io import atomic_text, permissions
    from ..store import git_commit, package_version
    exp = get(name)
    if scale not in SCALES:
        raise FastganError(f"scale = {scale!r}: expected one of {', '.join(SCALES)}")
    if exp.needs:
        missing = [m for m in exp.needs if importlib.util.find_spec(m) is None]
        if missing:
            raise FastganError(f"reproduce {name}: needs {_install_hint(missing)}")
    used = backend_mod.resolve(backend, announce=False)      # an unavailable backend: refused before any work
    out_dir = out_dir.rstrip(os.sep) or out_dir
    check_out_dir(out_dir, force, f"{exp.name}-{scale}.partial")
    parent = os.path.dirname(os.path.abspath(out_dir))
    base = os.path.basename(os.path.abspath(out_dir))
    tmp = work_folder(parent, base, exp.name, scale)
    _stale_partials(parent, base)
    resumed = os.path.isdir(tmp)
    os.makedirs(tmp, mode=0o700, exist_ok=True)
    lock = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)       # this folder is in use (see _stale_partials)
    except OSError:
        os.close(lock)
        raise FastganError(f"--out {out_dir}: a reproduction of {exp.name} --{scale} into it is running now "
                           f"(its work folder {tmp} is locked)") from None
    try:
        if resumed:
            log.info("resuming the interrupted reproduction in %s (its completed sweep parts and checkpoints)", tmp)
        ctx = Context(exp, scale, tmp, backend=backend, progress=progress)
        commit = git_commit()                   # the code that runs (imported now), not the checkout at the end
        t0 = time.perf_counter()
        exp.func(ctx)
        elapsed = time.perf_counter() - t0
        meta = {"experiment": exp.name, "paper": exp.paper, "figures": exp.figures, "title": exp.title,
                "scale": scale, "backend": used, "seconds": round(elapsed, 2), "resumed": resumed,
                "fastgan_version": package_version(), "git_commit": commit,
                "outputs": sorted(os.path.relpath(p, tmp) for p in ctx.outputs)}
        moved = git_commit()
        if moved != commit:                     # the checkout changed while it ran: both, so nobody is misled
            meta["git_commit_at_end"] = moved
        header = (f"fastgan reproduce {exp.name} --{scale}: {citation(exp.paper)} {exp.figures} -- {exp.title}\n"
                  f"({elapsed:.1f} s{' after resuming an interrupted run' if resumed else ''}, backend {used}, "
                  f"fastgan {meta['fastgan_version']} {commit}"
                  + (f"; the checkout was at {moved} when it ended" if moved != commit else "") + ")")
        atomic_text(os.path.join(tmp, "report.txt"), ctx.report.text(header))
        atomic_text(os.path.join(tmp, "report.json"), ctx.report.as_json(meta))
        written = sorted(os.path.relpath(os.path.join(d, f), tmp) for d, _, fs in os.walk(tmp) for f in fs)
        atomic_text(os.path.join(tmp, MARKER), json.dumps({"experiment": exp.name, "files": written}))
        for d, _, _ in os.walk(tmp):
            permissions(d, folder=True)                # mkdtemp made it private; an ordinary folder is not
        if os.path.isdir(out_dir):
            old = os.path.join(parent, f"{base}.old-{os.path.basename(tmp)}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
        ctx.out_dir = out_dir
        ctx.outputs = [os.path.join(out_dir, os.path.relpath(p, tmp)) for p in ctx.outputs]
        return ctx
    except KeyboardInterrupt:                          # Ctrl-C, SIGTERM, SIGHUP: the work stays for a resume
        log.warning("the work so far stays in %s: the same command resumes it", tmp)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(lock)
