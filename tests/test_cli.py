"""The command line through a subprocess, as a script would use it."""

import json
import subprocess
import sys

import pytest
from ase.build import molecule
from ase.io import write

from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.io.deeph import read_deeph


def tracegrad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tracegrad_ase.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_lists_commands():
    r = tracegrad("--help")
    assert r.returncode == 0
    for cmd in ("demo", "truth", "generate"):
        assert cmd in r.stdout


def test_truth_molecule_writes_hdf5_and_deeph(tmp_path):
    xyz = tmp_path / "water.xyz"
    water = molecule("H2O")
    water.cell = [8.0, 8.0, 8.0]  # a box for the DeepH files; pbc stays False, so it is a molecule
    write(xyz, water, format="extxyz")
    r = tracegrad("truth", xyz, "--basis", "sto-3g", "--deeph", tmp_path / "deeph", "--init-guess", "atom")
    assert r.returncode == 0, r.stderr
    assert "SCF converged in" in r.stdout and "initial guess: atom" in r.stdout
    bad = tracegrad("truth", xyz, "--basis", "sto-3g", "--init-guess", "no-such-model")
    assert bad.returncode == 2 and "no shipped model" in bad.stderr
    ham = load_h5(tmp_path / "water.h5")
    assert ham.atoms.get_chemical_formula() == "H2O" and ham.norb == 7
    back = read_deeph(tmp_path / "deeph")
    assert back.norb == 7


@pytest.mark.parametrize("content,code,message", [
    (None, 2, "no such file"),
    ("O 0 0 0\n", 2, "cannot read a structure"),
    ("2\n\nH 0 0 0\nH 0 0 0.2\n", 2, "closer than the minimum"),
    ("2\n\nOg 0 0 0\nOg 0 0 3\n", 2, "'Og' is not in basis"),
])
def test_truth_bad_input_exit_codes(tmp_path, content, code, message):
    f = tmp_path / "in.xyz"
    if content is not None:
        f.write_text(content)
    r = tracegrad("truth", f)
    assert r.returncode == code
    assert message in r.stderr and "Traceback" not in r.stderr


def test_unconverged_scf_exit_code(tmp_path):
    xyz = tmp_path / "water.xyz"
    write(xyz, molecule("H2O"))
    # the CLI has no max_cycle option; an absurd smearing-free molecule cannot fail, so use the API's setting
    r = subprocess.run([sys.executable, "-c", (
        "import sys; from tracegrad_ase import cli; from tracegrad_ase.engines.pyscf import scf as p;"
        "orig = p.GroundTruthSettings.for_atoms;"
        "p.GroundTruthSettings.for_atoms = lambda s, a: __import__('dataclasses').replace(orig(s, a), max_cycle=1, conv_tol=1e-14);"
        f"sys.exit(cli.main(['truth', r'{xyz}', '--basis', 'sto-3g']))")], capture_output=True, text=True)
    assert r.returncode == 3 and "did not converge" in r.stderr


def test_generate_recipe_resumes(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "out_dir: ds\nworkers: 1\nsettings: {basis: sto-3g}\nstructures:\n"
        "  - base: {build: molecule, args: [H2]}\n    perturb: {n: 2, displacement: 0.02, seed: 1}\n"
        "  - base: {build: molecule, args: [H2O]}\n"
    )
    r = tracegrad("generate", recipe)
    assert r.returncode == 0, r.stderr
    assert "done 3, skipped 0, failed 0" in r.stdout
    r = tracegrad("generate", recipe)
    assert "done 0, skipped 3, failed 0" in r.stdout
    assert json.loads((tmp_path / "ds" / "settings.json").read_text())["basis"] == "sto-3g"


def test_generate_out_overrides_and_installed_recipes_refuse(tmp_path):
    """--out puts the data set elsewhere; a recipe whose out_dir lands in site-packages (a shipped recipe of an
    installed package) is refused with the remedy, before any SCF."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("out_dir: ds\nsettings: {basis: sto-3g}\nstructures:\n  - base: {build: molecule, args: [H2]}\n")
    r = tracegrad("generate", recipe, "--out", tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "elsewhere" / "settings.json").is_file() and not (tmp_path / "ds").exists()
    installed = tmp_path / "lib" / "site-packages" / "pkg"
    installed.mkdir(parents=True)
    (installed / "recipe.yaml").write_text(recipe.read_text().replace("out_dir: ds", "out_dir: ../data"))
    r = tracegrad("generate", installed / "recipe.yaml")
    assert r.returncode == 2 and "--out DIR" in r.stderr and not (tmp_path / "lib" / "site-packages" / "data").exists()


def test_generate_bad_recipe(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("out_dir: ds\nsettings: {basiss: sto-3g}\nstructures: []\n")
    r = tracegrad("generate", recipe)
    assert r.returncode == 2 and "unknown settings ['basiss']" in r.stderr


def test_predict_and_models(tmp_path):
    import torch

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.model import ModelConfig, build_model
    from tracegrad_ase.model.checkpoint import save_model

    basis = OrbitalBasis.from_pyscf("sto-3g", ["H", "O"])
    torch.manual_seed(0)
    cfg = ModelConfig(elements=["H", "O"], basis=basis.to_dict(), cutoff=4.0, num_layers=1, muls=[4, 2, 2], lmax_sh=2,
                      tg_hidden=8, tg_z=4)
    save_model(build_model(cfg), tmp_path / "model")
    xyz = tmp_path / "water.xyz"
    write(xyz, molecule("H2O"))
    r = tracegrad("predict", xyz, "--model", tmp_path / "model")
    assert r.returncode == 0, r.stderr
    assert load_h5(tmp_path / "water.pred.h5").meta["source"] == "model"
    r = tracegrad("predict", xyz, "--model", "no-such-model")
    assert r.returncode == 2 and "no shipped model of that name" in r.stderr
    r = tracegrad("models")
    assert r.returncode == 0 and ("no shipped models yet" in r.stdout or "elements" in r.stdout)


def test_bands_dos_optics_and_transport_commands(tmp_path):
    import sys as _sys

    _sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from ase.build import graphene
    from test_calculator import _model

    model = _model(tmp_path, "gth-szv", ["C"], "gth-pbe")
    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    f = tmp_path / "graphene.xyz"
    write(f, sheet, format="extxyz")
    r = tracegrad("bands", f, "--model", model, "-o", tmp_path / "bands.png", "--json", tmp_path / "bands.json",
                  "--mesh", "6x6x1", "--density", "8")
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "bands.json").read_text())
    assert (tmp_path / "bands.png").stat().st_size > 1000 and data["energies_ev"]
    assert {"\\Gamma", "M", "K"} <= set(data["labels"])
    # the toy sheet is a metal or not; either way the record is there (None: no gap to move)
    assert "gap_cut_sensitivity_ev" in data
    r = tracegrad("dos", f, "--model", model, "--mesh", "6x6x1", "-o", tmp_path / "dos.png", "--json",
                  tmp_path / "dos.json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads((tmp_path / "dos.json").read_text())["by_orbital"]) == {"s", "p"}
    r = tracegrad("optics", f, "--model", model, "--mesh", "6x6x1", "--emax", "6", "--points", "25", "--drude", "0.1",
                  "-o", tmp_path / "optics.png", "--json", tmp_path / "optics.json")
    assert r.returncode == 0, r.stderr
    optics = json.loads((tmp_path / "optics.json").read_text())
    assert optics["unit"] == "S" and optics["mesh"] == [6, 6, 1] and len(optics["sigma"]) == 25
    assert optics["drude_ev"] == 0.1
    assert min(row[0][0] for row in optics["sigma"]) >= 0 and max(optics["sigma_over_sigma0_xx"]) > 0
    assert (tmp_path / "optics.png").stat().st_size > 1000 and "Re σ_xx peaks at" in r.stdout
    r = tracegrad("optics", f, "--model", model, "--mesh", "6x6x3")
    assert r.returncode == 2 and "non-periodic" in r.stderr
    r = tracegrad("transport", f, "--model", model, "--mesh", "8x8x1", "--temperature", "600", "--points", "5",
                  "-o", tmp_path / "transport.png", "--json", tmp_path / "transport.json")
    assert r.returncode == 0, r.stderr
    transport = json.loads((tmp_path / "transport.json").read_text())
    assert transport["units"]["seebeck"] == "V/K" and len(transport["seebeck_v_per_k"]) == 5
    assert transport["doping"][0] < 0 < transport["doping"][-1]  # μ from -1 to +1 eV: holes, then electrons
    assert "CoarseMeshWarning" in r.stderr and (tmp_path / "transport.png").stat().st_size > 1000
    r = tracegrad("transport", f, "--model", model, "--temperature", "0")
    assert r.returncode == 2 and "--temperature" in r.stderr
    r = tracegrad("bands", tmp_path / "water.xyz", "--model", model)
    assert r.returncode == 2
    write(tmp_path / "water.xyz", molecule("H2O"))
    r = tracegrad("bands", tmp_path / "water.xyz", "--model", model)
    assert r.returncode == 2 and "need a periodic structure" in r.stderr
    r = tracegrad("optics", tmp_path / "water.xyz", "--model", model)
    assert r.returncode == 2 and "no periodic direction" in r.stderr
    r = tracegrad("transport", tmp_path / "water.xyz", "--model", model)
    assert r.returncode == 2 and "no periodic direction" in r.stderr


def test_cif_read_through_ase_or_pymatgen(tmp_path):
    from pymatgen.core import Lattice, Structure

    from tracegrad_ase.cli import read_structure

    f = tmp_path / "graphene.cif"
    Structure(Lattice.hexagonal(2.46, 15.0), ["C", "C"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]]).to(filename=str(f))
    atoms = read_structure(str(f))
    assert atoms.get_chemical_formula() == "C2" and abs(atoms.cell.cellpar()[0] - 2.46) < 1e-6
    bad = tmp_path / "garbage.cif"
    bad.write_text("data_x\n_cell_length_a oops\n")
    from tracegrad_ase.core.errors import TraceGradError

    with pytest.raises(TraceGradError, match="cannot read a structure"):
        read_structure(str(bad))


def test_digest_per_split_part_and_bad_splits(tmp_path):
    import numpy as np
    from test_deeph_format import make_ham

    from tracegrad_ase.io.h5 import data_digest, save_h5

    rng = np.random.default_rng(0)
    files = [save_h5(make_ham(rng), tmp_path / "d" / "structures" / f"s{k}.h5") for k in range(3)]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["s0.h5", "s2.h5"], "test": ["s1.h5"]}))
    r = tracegrad("digest", tmp_path / "d", "--split", split)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()}
    assert lines["train"][1] == "2" and lines["train"][-1] == data_digest([files[0], files[2]])["sha256"]
    assert lines["test"][-1] == data_digest([files[1]])["sha256"]
    split.write_text(json.dumps({"train": ["s0.h5", "nope.h5"]}))
    r = tracegrad("digest", tmp_path / "d", "--split", split)
    assert r.returncode == 2 and "1 train structure(s) are not in" in r.stderr and "nope.h5" in r.stderr


def test_digest_against_a_card(tmp_path, capsys):
    """--card: bit-identical data, the same structures with numbers changed in the last bits (regenerated
    elsewhere: accepted, said so), other structures (refused), an older card without geometry digests (refused,
    the figures to compare named). In-process (cli.main) after one subprocess run: five runs cost 30 s as scripts."""
    import numpy as np
    import yaml
    from test_deeph_format import make_ham

    from tracegrad_ase.cli import main
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
    from tracegrad_ase.io.h5 import data_digest, save_h5

    rng = np.random.default_rng(1)
    hams = [make_ham(rng) for _ in range(2)]
    original = [save_h5(h, tmp_path / "orig" / "held" / "structures" / f"s{k}.h5") for k, h in enumerate(hams)]
    model = tmp_path / "model"
    model.mkdir()

    def card(digest: dict) -> None:
        (model / "card.yaml").write_text(yaml.safe_dump({"name": "x", "data": {"digests": {"heldout:held": digest}}}))

    def digest(folder) -> tuple[int, str, str]:
        code = main(["digest", str(folder), "--card", str(model)])
        out = capsys.readouterr()
        return code, out.out, out.err

    card(data_digest(original))
    r = tracegrad("digest", tmp_path / "orig" / "held", "--card", model)
    assert r.returncode == 0 and "bit for bit" in r.stdout, r.stdout + r.stderr
    noisy = [RealSpaceHamiltonian(atoms=h.atoms, basis=h.basis, edges=h.edges, overlap=h.overlap, meta=h.meta,
                                  hamiltonian=[b * (1 + 1e-13) for b in h.hamiltonian]) for h in hams]
    for k, h in enumerate(noisy):
        save_h5(h, tmp_path / "again" / "held" / "structures" / f"s{k}.h5")
    code, out, _ = digest(tmp_path / "again" / "held")
    assert code == 0 and "the card's structures; numbers differ in the last bits" in out, out
    moved = hams[0].atoms.copy()
    moved.positions[0, 0] += 0.01
    save_h5(RealSpaceHamiltonian(atoms=moved, basis=hams[0].basis, edges=hams[0].edges, overlap=hams[0].overlap,
                                 hamiltonian=hams[0].hamiltonian, meta=hams[0].meta),
            tmp_path / "again" / "held" / "structures" / "s0.h5")
    code, out, err = digest(tmp_path / "again" / "held")
    assert code == 1 and "other structures than the card's" in out and "do not match" in err
    old = data_digest(original)
    del old["geometry_sha256"]
    card(old)
    code, out, _ = digest(tmp_path / "again" / "held")
    assert code == 1 and "older card" in out and "tracegrad evaluate" in out
    (model / "card.yaml").write_text("name: x\n")
    code, _, err = digest(tmp_path / "again" / "held")
    assert code != 0 and "records no data digests" in err


def test_evaluate_per_structure_table():
    """One line per structure in the JSON's order; what a record lacks (a crystal's gap; ghost levels not counted,
    --ghost-kpoints 0) is a dash, not a zero that reads as perfect."""
    from tracegrad_ase.cli_evaluate import per_structure_lines

    res = {"per_structure": [
        {"name": "graphene-00018", "gauge_mae_mev": 1.234, "band_mae_ef_mev": 24.26, "band_alignment": "fermi",
         "ghost_levels": 0},
        {"name": "benzene", "gauge_mae_mev": 20.5, "band_mae_ef_mev": 150.0, "band_alignment": "vbm",
         "homo_lumo_gap_error_mev": 62.0}]}
    header, crystal, mol = per_structure_lines(res)
    assert header.split()[:3] == ["structure", "gauge", "meV"]
    assert crystal.split() == ["graphene-00018", "1.23", "24.3", "fermi", "-", "0"]
    assert mol.split() == ["benzene", "20.50", "150.0", "vbm", "62.0", "-"]
