"""Figures people would rather look at than read. matplotlib only (Agg backend: works without a display)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def plot_bands(
    x: np.ndarray,
    bands: np.ndarray,
    path: str | os.PathLike,
    special_x: Sequence[float] = (),
    special_labels: Sequence[str] = (),
    fermi_level: float = 0.0,
    reference: np.ndarray | None = None,
    title: str = "",
    window: tuple[float, float] = (-10.0, 6.0),
    label: str = "from H(R), S(R)",
) -> None:
    """Band structure (eV, relative to ``fermi_level``) along a path; ``reference`` bands drawn as dots."""
    from ..core.figures import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.0, 4.2), dpi=150)
    for n in range(bands.shape[1]):
        ax.plot(x, bands[:, n] - fermi_level, color="tab:blue", lw=1.4, label=label if n == 0 else None)
    if reference is not None:
        for n in range(reference.shape[1]):
            ax.plot(x, reference[:, n] - fermi_level, ".", color="black", ms=2.5,
                    label="PySCF at each k" if n == 0 else None)
    for sx in special_x:
        ax.axvline(sx, color="0.7", lw=0.6)
    ax.axhline(0.0, color="tab:red", lw=0.8, ls="--")
    ax.set_xticks(list(special_x), [("Γ" if s == "G" else s) for s in special_labels])
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(*window)
    ax.set_ylabel("E − E_F (eV)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_uncertainty(x: np.ndarray, energies: np.ndarray, std: np.ndarray, fermi: float, labels: list[str],
                     title: str = "", emin: float = -8.0, emax: float = 6.0, ax=None):
    """Bands (ε − E_F) with ±2σ shaded, on ``ax`` (default: a new figure); returns the matplotlib Axes."""
    if ax is None:
        from ..core.figures import pyplot

        _, ax = pyplot().subplots(figsize=(6, 5))
    rel = energies - fermi
    for n in range(rel.shape[1]):
        if rel[:, n].max() < emin - 1 or rel[:, n].min() > emax + 1:
            continue
        band_std = np.nan_to_num(std[:, n])
        ax.fill_between(x, rel[:, n] - 2 * band_std, rel[:, n] + 2 * band_std, color="tab:orange", alpha=0.35, lw=0)
        ax.plot(x, rel[:, n], color="k", lw=1)
    ticks = [(xi, lab) for xi, lab in zip(x, labels) if lab]
    for xi, _ in ticks:
        ax.axvline(xi, color="0.7", lw=0.6)
    ax.set_xticks([t[0] for t in ticks], [r"$\Gamma$" if t[1] in ("G", "\\Gamma", "Γ") else t[1] for t in ticks])
    ax.axhline(0.0, color="tab:blue", ls="--", lw=0.8)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(emin, emax)
    ax.set_ylabel(r"$E - E_F$ (eV)")
    ax.set_title(title + ("\n" if title else "") + "shaded: ±2σ over the committee", fontsize=9)
    ax.figure.tight_layout()
    return ax


#: Atoms drawn as dots over an STM image up to this many (a large cell's would cover it).
MAX_STM_DOTS = 1500


def plot_stm(atoms, image: np.ndarray, repeat: Sequence[int] = (3, 3), title: str = "", label: str = "", ax=None):
    """A sheet's constant-height or constant-current image on its grid's in-plane points (n1, n2), tiled
    ``repeat`` times over its lattice (a1, a2 in the xy plane), the top layer's atoms (within 0.5 Å of the
    topmost) as dots while there are at most :data:`MAX_STM_DOTS` of them. Draws into ``ax`` (default: a new
    figure); returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5.4))
    n1, n2 = image.shape
    cell = np.asarray(atoms.cell[:2, :2], dtype=float)
    f1 = np.arange(n1 * repeat[0] + 1) / n1
    f2 = np.arange(n2 * repeat[1] + 1) / n2
    xy = (np.stack(np.meshgrid(f1, f2, indexing="ij"), axis=-1) - 0.5 / np.array([n1, n2])) @ cell  # voxel corners
    mesh = ax.pcolormesh(xy[..., 0], xy[..., 1], np.tile(image, tuple(repeat)), cmap="afmhot", shading="flat")
    ax.figure.colorbar(mesh, ax=ax, fraction=0.046, label=label)
    shifts = np.array([[i, j] for i in range(repeat[0]) for j in range(repeat[1])]) @ cell
    top = atoms.positions[atoms.positions[:, 2] > atoms.positions[:, 2].max() - 0.5]
    dots = (top[:, None, :2] + shifts[None]).reshape(-1, 2)
    if len(dots) <= MAX_STM_DOTS:  # more would hide the image they mark
        ax.scatter(dots[:, 0], dots[:, 1], s=6, c="cyan", alpha=0.6, linewidths=0)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(title, fontsize=9)
    return ax
