"""The DOS is summed in blocks of bounded size: the same numbers as the dense formula, memory independent of the
k-mesh (issue #14: 10.9 GB for graphene on a 200x200 mesh)."""

import tracemalloc

import numpy as np
import pytest

from tracegrad_ase import electronic
from tracegrad_ase.electronic import dos
from tracegrad_ase.electronic.dos import weighted_dos as _weighted_dos


def _dense(e, wk, amp, grid, width, kind):
    """The formula before blocking: one (grid x all levels) matrix."""
    x = grid[:, None] - e.ravel()[None, :]
    if kind == "gaussian":
        g = np.exp(-0.5 * (x / width) ** 2) / (width * np.sqrt(2 * np.pi))
    else:
        g = (width / np.pi) / (x**2 + width**2)
    return (2.0 * amp * wk[:, None]).reshape(amp.shape[:-2] + (-1,)) @ g.T


def _levels(rng, nk, nb):
    e = np.sort(rng.uniform(-12, 8, size=(nk, nb)), axis=1)
    wk = rng.uniform(0.5, 1.5, size=nk)
    return e, wk / wk.sum()


@pytest.mark.parametrize("kind", ["gaussian", "lorentzian"])
def test_equals_the_dense_formula(rng, kind):
    e, wk = _levels(rng, 37, 11)
    amp = rng.uniform(0, 1, size=(3, 37, 11))
    grid = np.linspace(-14, 10, 201)
    ref = _dense(e, wk, amp, grid, 0.15, kind)
    assert np.array_equal(_weighted_dos(e, wk, amp, grid, 0.15, kind), ref)  # one block: the same arithmetic
    for chunk in (5, 64, 200, 201, 202, 5000):  # blocks of levels, of grid points, and uneven tails
        got = _weighted_dos(e, wk, amp, grid, 0.15, kind, chunk=chunk)
        assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref)), chunk
    total = dos(e, wk, grid, 0.15, kind)
    assert np.max(np.abs(total - _dense(e, wk, np.ones_like(e), grid, 0.15, kind))) <= 1e-12 * total.max()


def test_many_levels_blocked_equal_unblocked(rng, monkeypatch):
    e, wk = _levels(rng, 1500, 26)  # 39,000 levels: 8 blocks at the default size on a 401-point grid
    grid = np.linspace(-14, 10, 401)
    ones = np.ones_like(e)
    whole = _weighted_dos(e, wk, ones, grid, 0.1, "gaussian", chunk=len(grid) * e.size)
    blocked = dos(e, wk, grid, 0.1)
    assert np.max(np.abs(blocked - whole)) <= 1e-12 * whole.max()
    # both spins, weights summing to 1: the DOS integrates to 2 x bands
    assert np.trapezoid(blocked, grid) == pytest.approx(2 * 26, rel=1e-3)


def test_memory_does_not_grow_with_the_mesh(rng):
    grid = np.linspace(-14, 10, 1001)
    peaks = []
    for nk in (300, 3000):  # 7,800 and 78,000 levels; dense: 62 and 620 MB per temporary
        e, wk = _levels(rng, nk, 26)
        tracemalloc.start()
        dos(e, wk, grid, 0.1)
        peaks.append(tracemalloc.get_traced_memory()[1] - 2 * e.nbytes)  # less the inputs' own size
        tracemalloc.stop()
    bound = 5 * electronic.DOS_CHUNK * 8  # a few line-shape temporaries of one block
    assert max(peaks) < bound, peaks
    assert peaks[1] < 1.5 * peaks[0] + 2**20, peaks


def test_bad_width_or_kind_still_refused_without_levels():
    with pytest.raises(ValueError, match="positive"):
        dos(np.zeros((1, 0)), None, np.linspace(0, 1, 3), width=0)
    with pytest.raises(ValueError, match="unknown broadening"):
        dos(np.zeros((1, 1)), [1.0], np.linspace(0, 1, 3), kind="box")
