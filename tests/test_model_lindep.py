"""A model's own overlap threshold (metadata.lindep, calibrated on its validation set) is what its predictions are
solved with, unless the user passes lindep; a corrupt value is refused."""

import json
import shutil

import numpy as np
import pytest
from ase.build import molecule

from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.core.errors import ParameterError
from tracegrad_ase.electronic.solve import PREDICTED_LINDEP, model_lindep
from tracegrad_ase.models import resolve
from tracegrad_ase.parameters import effective_lindep


def _copy_with_lindep(tmp_path, value):
    folder = tmp_path / "ethanol-calibrated"
    shutil.copytree(resolve("ethanol"), folder)
    card = json.loads((folder / "model.json").read_text())
    card["metadata"]["lindep"] = value
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def test_model_lindep_reads_metadata_and_refuses_nonsense():
    assert model_lindep(None) == PREDICTED_LINDEP
    assert model_lindep({"metadata": {}}) == PREDICTED_LINDEP
    assert model_lindep({"metadata": {"lindep": 0.07}}) == 0.07
    for bad in (1.5, -0.1, "0.1", True):
        with pytest.raises(ParameterError, match="metadata.lindep"):
            model_lindep({"metadata": {"lindep": bad}})
    # the user's value wins over the model's
    assert effective_lindep({"lindep": 0.02}, {"metadata": {"lindep": 0.07}}) == 0.02
    assert effective_lindep({"lindep": None}, {"metadata": {"lindep": 0.07}}) == 0.07


def test_calculator_solves_with_the_models_lindep(tmp_path):
    atoms = molecule("CH3CH2OH")
    folder = _copy_with_lindep(tmp_path, 0.2)
    atoms.calc = TraceGradCalculator(folder)
    own = atoms.calc.get_molecular_orbitals()
    atoms2 = atoms.copy()
    atoms2.calc = TraceGradCalculator("ethanol", lindep=PREDICTED_LINDEP)  # the shipped weights, at the default
    default = atoms2.calc.get_molecular_orbitals()
    atoms3 = atoms.copy()
    atoms3.calc = TraceGradCalculator(folder, lindep=PREDICTED_LINDEP)
    overridden = atoms3.calc.get_molecular_orbitals()
    # ethanol in def2-SVP has overlap eigenvalues between 1e-2 and 0.2: the model's 0.2 drops them
    assert len(own["energies"]) < len(default["energies"])
    assert len(overridden["energies"]) == len(default["energies"])
    np.testing.assert_allclose(overridden["energies"], default["energies"], atol=1e-8)
