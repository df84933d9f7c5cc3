"""The parity plot of an evaluation: predicted against true matrix elements, on-site and off-site, with the error
histogram and the error by neighbour distance (the truth in the prediction's energy zero)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .breakdowns import DISTANCE_BIN_ANGSTROM, EV_TO_MEV


def parity_figure(acc, png_path: str | os.PathLike, title: str = "") -> Path:
    from ..core.figures import pyplot

    plt = pyplot()

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    sample = acc.sample or {"true": np.zeros(0), "pred": np.zeros(0), "onsite": np.zeros(0, bool)}
    true, pred, onsite = sample["true"], sample["pred"], sample["onsite"].astype(bool)

    fig, (ax, hx, dx) = plt.subplots(1, 3, figsize=(12.6, 4.0), dpi=150,
                                     gridspec_kw={"width_ratios": [1.35, 1.0, 1.1]})
    # The truth is plotted in the prediction's energy zero (gauge), and the MAEs are gauge MAEs.
    for sel, colour, label, mae in ((~onsite, "tab:blue", "off-site", acc.gauge_offsite.mev()),
                                    (onsite, "tab:orange", "on-site", acc.gauge_onsite.mev())):
        text = f"{label} (MAE {mae:.2f} meV)" if mae is not None else label
        ax.plot(true[sel], pred[sel], ".", color=colour, ms=2.0, alpha=0.6, label=text, rasterized=True)
    if true.size:
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        pad = 0.03 * (hi - lo) if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = -1.0, 1.0
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--", label="y = x")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("true H element, prediction's zero (eV)")
    ax.set_ylabel("predicted H element (eV)")
    mae = acc.gauge.mev()
    ax.set_title(title or (f"gauge MAE {mae:.2f} meV over {acc.gauge.count} values" if mae is not None else "no values"),
                 fontsize=9)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9, markerscale=4)

    err = (pred - true) * EV_TO_MEV
    if err.size:
        # Symmetric range around 0 that drops the worst 0.5 % so one outlier does not squash the histogram.
        span = float(np.quantile(np.abs(err), 0.995)) or 1e-6
        hx.hist(np.clip(err, -span, span), bins=60, range=(-span, span), color="tab:blue", alpha=0.8)
    hx.axvline(0.0, color="0.3", lw=0.8, ls="--")
    hx.set_xlabel("predicted − true (meV)")
    hx.set_ylabel("count")
    hx.set_title(f"errors ({err.size} sampled values)", fontsize=9)
    _distance_panel(dx, acc.gauge_distances.rows())
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return png_path


def _distance_panel(ax, rows: list[dict]) -> None:
    """Gauge MAE per neighbour-distance bin (bars; on-site at 0 Å) and the cumulative share of the summed error
    (line): small errors on many far pairs can outweigh the near ones."""
    if not rows:
        ax.set_axis_off()
        return
    left = np.array([r["from_angstrom"] for r in rows])
    mae = np.array([r["mae_mev"] or 0.0 for r in rows])
    ax.bar(left, mae, width=DISTANCE_BIN_ANGSTROM * 0.9, align="edge", color="tab:blue", alpha=0.8)
    ax.set_xlabel("neighbour distance (Å; on-site at 0)")
    ax.set_ylabel("gauge MAE (meV)")
    share = np.cumsum([r["share_of_error"] or 0.0 for r in rows]) * 100.0
    tx = ax.twinx()
    tx.plot(left + DISTANCE_BIN_ANGSTROM, share, color="tab:red", lw=1.2, marker=".", ms=3)
    tx.set_ylim(0, 105)
    tx.set_ylabel("cumulative share of the error (%)", color="tab:red")
    ax.set_title("error by distance", fontsize=9)
