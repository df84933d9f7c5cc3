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
