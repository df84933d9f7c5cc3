"""Warnings about a user's structure name the user's line (core/stacklevel.py), whichever route reached the check:
a hand-counted stacklevel is right for one route only."""

from __future__ import annotations

import inspect
import warnings

from ase.build import molecule

from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.core.errors import OutOfDomainWarning, UncertaintyWarning
from tracegrad_ase.core.stacklevel import user_stacklevel


def _here() -> int:
    return inspect.currentframe().f_back.f_lineno


def _recorded(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, (UncertaintyWarning, OutOfDomainWarning))]


def test_calculator_warnings_point_at_the_caller_by_every_route():
    """Ethylamine's gap moves with the overlap cut (test_cut_sensitivity.py), and compressed by 15 % its bonds are
    shorter than any in training; each route below reaches those checks through a different number of frames."""
    ethylamine = molecule("CH3CH2NH2")
    ethylamine.positions *= 0.85
    routes = {
        "calculate": lambda: (_here(), TraceGradCalculator("molecules").calculate(ethylamine.copy())),
        "get_property": lambda: (_here(), TraceGradCalculator("molecules").get_property("band_gap",
                                                                                          ethylamine.copy())),
    }
    for name, route in routes.items():
        line = []
        caught = _recorded(lambda: line.append(route()[0]))
        kinds = {w.category for w in caught}
        assert kinds == {UncertaintyWarning, OutOfDomainWarning}, name
        for w in caught:
            assert (w.filename, w.lineno) == (__file__, line[0]), (name, w.category.__name__, w.filename, w.lineno)


def test_attached_calculator_warns_at_the_users_getter():
    atoms = molecule("CH3CH2NH2")
    atoms.calc = TraceGradCalculator("molecules")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _here() + 1
        atoms.calc.get_eigenvalues()
    cut = [w for w in caught if issubclass(w.category, UncertaintyWarning)]
    assert cut and all((w.filename, w.lineno) == (__file__, line) for w in cut)


def test_outside_the_package_the_level_is_one():
    # called from a test file: this frame is already outside the package
    assert user_stacklevel() == 1
