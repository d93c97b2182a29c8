"""Animations of a run: the particles moving over the discriminator heat-map (the look of Durr et al.
Figs. 3, 4 and 8, in motion). Headless (Agg); GIFs through matplotlib's PillowWriter.

A run needs particle snapshots with the discriminator stored at each (``record.snapshots`` a count,
``record.discriminator = true``); every snapshot is one frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plots import _extent, disc_grid


@dataclass(frozen=True)
class Frames:
    """What the frames of a run show: particles (F, N, 2) at iterations time (F,), the discriminator
    on a grid x grid lattice values (F, grid, grid) (NaN where no parameters were stored), the
    lattice's extent (x0, x1, y0, y1) and the target's modes (K, 2) or None."""

    time: np.ndarray
    particles: np.ndarray
    values: np.ndarray
    extent: tuple
    modes: np.ndarray | None


def as_run_dict(run) -> dict:
    """A run as the dict of :func:`fastgan.store.read_run` (a RunResult is converted; a dict passes)."""
    if isinstance(run, dict):
        return run
    return {"config": run.config, "time": run.time, "observables": run.observables, "particles": run.particles,
            "particles_time": run.particles_time, "discriminator_snapshots": run.disc_snapshots,
            "modes": run.modes, "diverged": run.diverged, "diverged_at": run.diverged_at}


def frame_indices(n_snapshots: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` snapshot indices, evenly spread, first and last included."""
    if n_snapshots <= 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.round(np.linspace(0, n_snapshots - 1, min(n_snapshots, max_frames))).astype(int))


def run_frames(run, max_frames: int = 60, grid: int | None = None, indices=None) -> Frames:
    """Evaluate D on a grid x grid lattice at (at most ``max_frames``) snapshots of a 2-D run; ``grid``
    None: the side :func:`fastgan.plots.overlay_grid` picks for that many frames (48 to 80)."""
    run = as_run_dict(run)
    P = np.asarray(run["particles"])
    if P.ndim != 3 or P.shape[-1] != 2:
        raise ValueError(f"particles of shape {P.shape}: animations need 2-D snapshots (S, N, 2)")
    idx = frame_indices(P.shape[0], max_frames) if indices is None else np.asarray(indices, dtype=int)
    extent = _extent(run)
    values = disc_grid(run, idx, extent, grid)
    modes = None if run.get("modes") is None else np.asarray(run["modes"])[:, :2]
    return Frames(np.asarray(run["particles_time"])[idx], P[idx], values, extent, modes)


def _limits(v: np.ndarray) -> tuple[float, float]:
    """Colour limits of one heat-map: its 2nd-98th percentiles (D's scale drifts during training)."""
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(ok, [2, 98])
    return float(lo), float(max(hi, lo + 1e-12))


def draw_frame(ax, frames: Frames, j: int, point_size: float = 2.0):
    """Draw frame ``j`` on ``ax``: the heat-map of D (brighter = higher), modes in black, particles in
    white. Returns the (image, particle scatter) artists for updating."""
    x0, x1, y0, y1 = frames.extent
    lo, hi = _limits(frames.values[j])
    img = ax.imshow(np.nan_to_num(frames.values[j], nan=lo), origin="lower", extent=frames.extent, cmap="viridis",
                    aspect="equal", vmin=lo, vmax=hi, interpolation="bilinear")
    if frames.modes is not None:
        ax.scatter(frames.modes[:, 0], frames.modes[:, 1], c="k", s=14, zorder=3)
    dots = ax.scatter(frames.particles[j][:, 0], frames.particles[j][:, 1], c="w", s=point_size,
                      edgecolors="none", zorder=4)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_facecolor("#222")
    ax.set_xticks([])
    ax.set_yticks([])
    return img, dots


def animate_frames(frames: Frames, out_gif: str, title: str = "", fps: int = 8, size: float = 3.4,
                   dpi: int = 72, point_size: float = 2.0) -> str:
    """Write the frames as a GIF (one frame per snapshot, ``fps`` per second) to ``out_gif``."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(size, size + 0.35))
    img, dots = draw_frame(ax, frames, 0, point_size)
    head = ax.set_title("", fontsize=8)

    def update(j):
        img.set_data(np.nan_to_num(frames.values[j], nan=_limits(frames.values[j])[0]))
        img.set_clim(*_limits(frames.values[j]))
        dots.set_offsets(frames.particles[j][:, :2])
        head.set_text(f"{title}{chr(10) if title else ''}step {int(frames.time[j])}")
        return img, dots, head

    update(0)
    fig.tight_layout()
    anim = FuncAnimation(fig, update, frames=len(frames.time), blit=False)
    anim.save(out_gif, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return out_gif


def animate_run(run, out_gif: str, max_frames: int = 60, grid: int | None = None, title: str = "", **kw) -> str:
    """GIF of a run (a RunResult or a :func:`fastgan.store.read_run` dict): particles over the
    discriminator heat-map at each snapshot (at most ``max_frames`` of them). Returns ``out_gif``."""
    return animate_frames(run_frames(run, max_frames, grid), out_gif, title=title, **kw)
