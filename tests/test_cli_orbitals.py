"""``tracegrad orbitals``: a molecule's levels and gap with its checks, as text, JSON and a level diagram."""

import json

from ase.build import bulk, molecule
from ase.io import write

from tracegrad_ase.cli import main


def _xyz(tmp_path, name):
    path = tmp_path / f"{name}.xyz"
    write(path, molecule(name))
    return path


def test_orbitals_prints_the_gap_and_its_checks_and_writes_json_and_a_diagram(tmp_path, capsys):
    xyz, out, js = _xyz(tmp_path, "H2O"), tmp_path / "levels.png", tmp_path / "levels.json"
    assert main(["orbitals", str(xyz), "--model", "molecules", "-o", str(out), "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "gap" in text and "one Fock build from the predicted density" in text
    r = json.loads(js.read_text())
    assert r["gap_ev"] == r["lumo_ev"] - r["homo_ev"] and r["n_electrons"] == 10
    assert abs(r["fock_gap_ev"] - r["gap_ev"] - r["scf_gap_residual_ev"]) < 1e-9
    assert len(r["fock_energies_ev"]) == 24 and sum(r["occupations"]) == 10  # def2-SVP water: every direction
    assert out.stat().st_size > 10_000


def test_orbitals_without_the_fock_build_and_refusals(tmp_path, capsys):
    js = tmp_path / "w.json"
    assert main(["orbitals", str(_xyz(tmp_path, "H2O")), "--model", "molecules", "--no-scf-check",
                 "--json", str(js)]) == 0
    assert json.loads(js.read_text())["scf_gap_residual_ev"] is None
    cif = tmp_path / "si.cif"
    write(cif, bulk("Si"))
    assert main(["orbitals", str(cif), "--model", "molecules"]) == 2
    assert "for molecules" in capsys.readouterr().err
    # methane's gap moves with the overlap cut and with F[rho] (its LUMO is a diffuse sigma* state): refused
    strict = tmp_path / "ch4.json"
    assert main(["orbitals", str(_xyz(tmp_path, "CH4")), "--model", "molecules", "--strict", "--json",
                 str(strict)]) == 2
    assert "refused: --strict" in capsys.readouterr().err and not strict.exists()
