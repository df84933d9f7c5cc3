"""Issue #14: no silent wrong answer, and errors users can read. Each test fails on the behaviour it guards
against (a wrong number with exit code 0, or a traceback)."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase.build import graphene, molecule
from ase.calculators.calculator import kpts2kpts
from ase.io import write

sys.path.insert(0, str(Path(__file__).parent))
from conftest import toy_model as _model  # noqa: E402  (the toy-model factory)

from tracegrad_ase import cli  # noqa: E402
from tracegrad_ase.calculator import TraceGradCalculator  # noqa: E402
from tracegrad_ase.core.errors import (CalculatorUsageError, ConfigError, DataFormatError, MismatchError,  # noqa: E402
                                  OutputPathError, ParameterError, PredictionError, StructureError,
                                  UnknownParameterError)

DISORDERED_CIF = """data_cn
_cell_length_a 2.46
_cell_length_b 2.46
_cell_length_c 10.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
C1 C 0.0 0.0 0.5 0.5
N1 N 0.0 0.0 0.5 0.5
C2 C 0.33333 0.66667 0.5 1.0
"""


def _sheet(a=2.46, pbc=(True, True, False)):
    atoms = graphene(a=a, vacuum=5.0)
    atoms.pbc = pbc
    return atoms


def _run(argv, capsys):
    """``tracegrad ARGV`` in this process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("tracegrad: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- calculator parameters --------------------------------------------------------------------------------
def test_float_mesh_sizes_are_the_mesh_not_one_kpoint(carbon):
    sheet = _sheet()
    assert kpts2kpts((6.0, 6.0, 1.0)).kpts.tolist() == [6.0, 6.0, 1.0]  # what ASE makes of it: one k-point
    floats = TraceGradCalculator(carbon, kpts=(6.0, 6.0, 1.0), symmetry=False)
    ints = TraceGradCalculator(carbon, kpts=(6, 6, 1), symmetry=False)
    ef = ints.get_property("fermi_level", sheet)
    assert floats.get_property("fermi_level", sheet) == pytest.approx(ef, abs=1e-12)
    assert floats.get_ibz_k_points().shape == (36, 3)
    for bad, match in [((6.5, 6, 1), "3 positive integers"), ("GMK", "got the string"), ((True, True, False), "kpts"),
                       ([[0, 0, 0], [1, 2]], "kpts"), ([[np.nan, 0, 0]], "NaN"), ((0, 6, 1), "positive integers"),
                       ({"densty": 5}, "unknown key"), ({"size": (4, 4, 1), "density": 3}, "one of them")]:
        with pytest.raises(ParameterError, match=match):
            TraceGradCalculator(carbon, kpts=bad)
    with pytest.raises(ParameterError, match="not a band path"):
        TraceGradCalculator(carbon, fermi_kpts=sheet.cell.bandpath("GMK", npoints=5, pbc=sheet.pbc))


def test_unknown_keywords_and_bad_values_are_refused(carbon):
    with pytest.raises(UnknownParameterError, match=r"unknown keyword\(s\) \['kpoints'\].*kpts, fermi_kpts"):
        TraceGradCalculator(carbon, kpoints=(4, 4, 1))  # used to vanish into ASE's Calculator
    with pytest.raises(UnknownParameterError, match=r"\['smear'\]"):
        TraceGradCalculator(carbon).set(smear=0.1)
    for kwargs, match in [({"width": 0}, "width"), ({"width": float("nan")}, "width"),
                          ({"symmetry": "yes"}, "symmetry"), ({"lindep": 2.0}, "lindep"),
                          ({"lindep": -1e-3}, "lindep"), ({"n_bands": 0}, "n_bands"),
                          ({"sigma": "E_F"}, "sigma"), ({"smearing": "cold"}, "smearing must be one of"),
                          ({"dtype": "float16"}, "dtype"), ({"device": "gpu"}, "device")]:
        with pytest.raises(ParameterError, match=match):
            TraceGradCalculator(carbon, **kwargs)
    with pytest.raises(ParameterError, match="model must be"):
        TraceGradCalculator(123)
    calc = TraceGradCalculator(carbon, dtype="float64", device="auto", n_bands=8.0)  # strings and integral floats
    assert next(calc.model.parameters()).dtype == torch.float64 and calc.parameters.n_bands == 8
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(calc.model.parameters()).device.type == expected


def test_set_discards_results_of_the_old_parameters(carbon):
    sheet = _sheet()
    sheet.calc = TraceGradCalculator(carbon, kpts=(2, 2, 1))
    coarse = sheet.calc.get_fermi_level()
    sheet.calc.set(kpts=(6, 6, 1))
    fine = sheet.calc.get_fermi_level()
    assert fine == pytest.approx(TraceGradCalculator(carbon, kpts=(6, 6, 1)).get_property("fermi_level", sheet))
    assert fine != pytest.approx(coarse, abs=1e-6)


# -- results belong to their atoms -------------------------------------------------------------------------
def test_one_calculator_on_two_atoms_never_answers_for_the_wrong_one(carbon):
    a1, a2 = _sheet(2.46), _sheet(2.60)
    own = [TraceGradCalculator(carbon, kpts=(3, 3, 1)).get_property("fermi_level", a) for a in (a1, a2)]
    assert abs(own[0] - own[1]) > 1e-3
    calc = TraceGradCalculator(carbon, kpts=(3, 3, 1))
    a1.calc = calc
    assert a1.calc.get_fermi_level() == pytest.approx(own[0])
    a2.calc = calc
    with pytest.raises(CalculatorUsageError, match="attached to 2 Atoms"):
        a1.calc.get_fermi_level()  # used to give a2's
    assert calc.get_property("fermi_level", a1) == pytest.approx(own[0])  # with the atoms: always right
    assert calc.get_property("fermi_level", a2) == pytest.approx(own[1])
    a2.calc = None
    assert a1.calc.get_fermi_level() == pytest.approx(own[0])  # unambiguous again, and recomputed for a1
    a1.positions[0, 0] += 0.05
    assert a1.calc.get_fermi_level() != pytest.approx(own[0], abs=1e-6)


def test_shared_calculator_is_thread_safe(carbon):
    structures = [_sheet(2.46), _sheet(2.60)]
    ref = [TraceGradCalculator(carbon, kpts=(3, 3, 1)).get_property("fermi_level", s) for s in structures]
    calc = TraceGradCalculator(carbon, kpts=(3, 3, 1))
    wrong, errors = [], []

    def work(t):
        for n in range(6):
            k = (t + n) % 2
            try:
                ef = calc.get_property("fermi_level", structures[k])
                weights = calc.get_k_point_weights()  # a read after the calculation: same state
                if abs(ef - ref[k]) > 1e-9 or not np.isclose(weights.sum(), 1.0):
                    wrong.append((t, n))
            except Exception as exc:  # noqa: BLE001 - any exception is a failure here
                errors.append(repr(exc))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # force thread switches inside calculate; without the lock ~10 of 48 are wrong
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors and not wrong, (errors[:3], wrong[:3])


# -- periodic directions come from pbc ---------------------------------------------------------------------
def test_nonperiodic_directions_take_no_k(carbon):
    tft = _sheet(pbc=(True, False, True))  # b (in-plane) not periodic, c (vacuum) periodic
    with pytest.raises(ParameterError, match="1 along the non-periodic direction"):
        TraceGradCalculator(carbon, kpts=(4, 4, 2)).get_property("fermi_level", tft)
    with pytest.raises(ParameterError, match="1 along the non-periodic direction"):
        TraceGradCalculator(carbon, kpts=(4, 4, 2), symmetry=False).get_property("fermi_level", tft)
    with pytest.raises(ParameterError, match="non-zero components along the non-periodic direction"):
        TraceGradCalculator(carbon, kpts=[[0, 0.25, 0]]).get_property("fermi_level", tft)
    ok = TraceGradCalculator(carbon, kpts=(4, 1, 2))
    ok.get_property("fermi_level", tft)
    assert np.all(ok.get_ibz_k_points()[:, 1] == 0)
    # the default Fermi mesh follows pbc too: 1 along b
    default = TraceGradCalculator(carbon, kpts=[[0.1, 0, 0.2], [0.2, 1.0, 0.0]])  # a whole number is the same point
    default.get_property("fermi_level", tft)
    path = tft.cell.bandpath(npoints=20, pbc=tft.pbc)
    assert set(path.path.replace(",", "")) >= {"X", "Y"}  # ASE's path of the (a, c) lattice, both directions
    TraceGradCalculator(carbon, kpts=path, fermi_kpts=(4, 1, 2)).get_property("eigenvalues", tft)
    water = molecule("CH4")[:1]  # one carbon atom: a molecule of the carbon model
    with pytest.raises(ParameterError, match="molecule"):
        TraceGradCalculator(carbon, kpts=path).get_property("eigenvalues", water)


def test_bands_command_follows_pbc_on_any_axis(carbon, tmp_path, capsys):
    """pbc (True, False, True): pymatgen's path keeps only Γ-A along the vacuum (flat bands, a fake 'gap'); the
    command must sample both periodic directions."""
    f = tmp_path / "tft.xyz"
    write(f, _sheet(pbc=(True, False, True)), format="extxyz")
    code, out, err = _run(["bands", f, "--model", carbon, "-o", tmp_path / "b.png", "--json", tmp_path / "b.json",
                           "--density", "5"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "b.json").read_text())
    k = np.array(data["kpoints_frac"])
    assert data["path"] == "ase" and "using ASE's path" in err
    assert np.ptp(k[:, 0]) > 0.4 and np.ptp(k[:, 2]) > 0.4 and np.abs(k[:, 1]).max() < 1e-9
    code, _, err = _run(["bands", f, "--model", carbon, "--mesh", "6x6x6", "-o", tmp_path / "c.png"], capsys)
    _one_line_error(code, err, "non-periodic direction")


# -- inputs that belong to another structure or model -------------------------------------------------------
def test_bandpath_of_another_cell_is_refused(carbon):
    sheet, other = _sheet(2.46), _sheet(2.60)
    with pytest.raises(MismatchError, match="BandPath of another cell"):
        TraceGradCalculator(carbon, kpts=other.cell.bandpath("GMK", npoints=10, pbc=other.pbc)
                            ).get_property("eigenvalues", sheet)
    sheet.calc = TraceGradCalculator(carbon, kpts=sheet.cell.bandpath("GMK", npoints=10, pbc=sheet.pbc))
    sheet.calc.get_fermi_level()
    sheet.set_cell(sheet.cell[:] * 1.02, scale_atoms=True)  # the path no longer fits
    with pytest.raises(MismatchError):
        sheet.calc.get_fermi_level()
    rotated = sheet.copy()
    rotated.rotate(30, "z", rotate_cell=True)  # the same lattice in another orientation: its path fits
    TraceGradCalculator(carbon, kpts=rotated.cell.bandpath("GMK", npoints=10, pbc=rotated.pbc)
                        ).get_property("eigenvalues", sheet)


def test_model_file_without_its_cutoff_is_refused(carbon, tmp_path):
    import shutil

    from tracegrad_ase.predict import load

    broken = tmp_path / "broken"
    shutil.copytree(carbon, broken)
    card = json.loads((broken / "model.json").read_text())
    del card["config"]["cutoff"]  # used to default to 8.0 silently
    (broken / "model.json").write_text(json.dumps(card))
    with pytest.raises(DataFormatError, match=r"missing required field\(s\) \['cutoff'\]"):
        load(broken)


# -- NaN where data enter ----------------------------------------------------------------------------------
def test_nan_in_data_weights_and_predictions_is_an_error(carbon, tmp_path):
    from safetensors.torch import load_file, save_file

    from tracegrad_ase.io.h5 import load_h5, save_h5
    from tracegrad_ase.predict import load, predict_hamiltonian

    model = load(carbon)
    ham = predict_hamiltonian(_sheet(), model)
    ham.hamiltonian[3][0, 0] = np.nan
    save_h5(ham, tmp_path / "nan.h5")
    with pytest.raises(DataFormatError, match=r"nan\.h5: 1 NaN or infinite value\(s\) in 'hamiltonian'.*edge 3"):
        load_h5(tmp_path / "nan.h5")
    import shutil

    bad = tmp_path / "nan-model"
    shutil.copytree(carbon, bad)
    weights = load_file(str(bad / "model.safetensors"))
    name = sorted(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)[0]
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, str(bad / "model.safetensors"), metadata={"format": "tracegrad-ase/model"})
    with pytest.raises(DataFormatError, match=f"NaN or infinite values .*{name}"):
        load(bad)
    with torch.no_grad():  # a model that goes NaN at run time: refused, never returned
        next(p for p in model.parameters() if p.numel() > 1).view(-1)[0] = float("nan")
    with pytest.raises(PredictionError, match="NaN or infinite blocks"):
        predict_hamiltonian(_sheet(), model)


# -- structures read from files -----------------------------------------------------------------------------
def test_disordered_sites_are_refused_where_structures_are_read(tmp_path):
    from tracegrad_ase.cli import read_structure
    from tracegrad_ase.datasets.recipes import recipe_structures

    f = tmp_path / "cn.cif"
    f.write_text(DISORDERED_CIF)
    with pytest.raises(StructureError, match="partially occupied"):
        read_structure(str(f))  # ASE used to make the C0.5/N0.5 site one element without a word
    with pytest.raises(StructureError, match="partially occupied"):
        cli._read_with_pymatgen(str(f), ValueError("ASE failed"))  # the pymatgen fallback
    with pytest.raises(StructureError, match="partially occupied"):
        recipe_structures({"structures": [{"base": {"file": str(f)}}], "_root": tmp_path})


def test_random_bytes_are_not_a_structure(tmp_path):
    for name in ("noise.xyz", "noise.cif", "noise.bin"):
        f = tmp_path / name
        f.write_bytes(np.random.default_rng(0).bytes(3000))
        r = subprocess.run([sys.executable, "-m", "tracegrad_ase.cli", "predict", str(f), "--model", "carbon"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and f"cannot read structure {f}" in r.stderr
        if name == "noise.xyz":
            break  # one subprocess proves the exit path; the others go through main() below
    for name in ("noise.cif", "noise.bin"):
        f = tmp_path / name
        f.write_bytes(np.random.default_rng(1).bytes(3000))
        with pytest.raises(StructureError, match=f"cannot read structure {f}"):
            cli.read_structure(str(f))


# -- outputs checked before the work -----------------------------------------------------------------------
def test_truth_checks_outputs_and_settings_before_the_scf(tmp_path, capsys, monkeypatch):
    import tracegrad_ase.engines.pyscf.scf as truth

    xyz = tmp_path / "h2.xyz"
    write(xyz, molecule("H2"))
    monkeypatch.setattr(truth, "run_scf", lambda *a, **k: pytest.fail("the SCF ran before the inputs were checked"))
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "-o", tmp_path / "afile" / "h2.h5"], capsys)
    _one_line_error(code, err, "cannot create folder", "afile is a file")
    (tmp_path / "adir").mkdir()
    code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "-o", tmp_path / "adir"], capsys)
    _one_line_error(code, err, "is a folder")
    code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "--xc", "pbee"], capsys)
    _one_line_error(code, err, "unknown exchange-correlation functional 'pbee'")
    code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "--smearing", "-1"], capsys)
    _one_line_error(code, err, "smearing=-1.0")
    og = tmp_path / "og.xyz"
    og.write_text("2\n\nOg 0 0 0\nOg 0 0 3\n")
    code, _, err = _run(["truth", og], capsys)
    _one_line_error(code, err, "'Og' is not in basis")
    slab = tmp_path / "slab.xyz"
    write(slab, _sheet(), format="extxyz")
    code, _, err = _run(["truth", slab, "--basis", "gth-szv", "--kmesh", "3x3x3"], capsys)
    _one_line_error(code, err, "kmesh=(3, 3, 3)", "non-periodic direction(s) c")
    if os.geteuid() != 0:  # root writes into read-only folders, so the real check needs another user
        ro = tmp_path / "readonly"
        ro.mkdir(mode=0o555)
        code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "-o", ro / "h2.h5"], capsys)
        _one_line_error(code, err, "cannot write in")
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    code, _, err = _run(["truth", xyz, "--basis", "sto-3g", "-o", tmp_path / "ro" / "h2.h5"], capsys)
    _one_line_error(code, err, "cannot write in", "Permission denied")


def test_predict_never_overwrites_its_input_and_needs_force(carbon, tmp_path, capsys):
    cif = tmp_path / "self.cif"
    write(cif, _sheet(), format="cif")
    before = cif.read_bytes()
    code, _, err = _run(["predict", cif, "--model", carbon, "-o", cif], capsys)
    _one_line_error(code, err, "is an input of this command")
    code, _, err = _run(["predict", cif, "--model", carbon, "-o", cif, "--force"], capsys)
    _one_line_error(code, err, "is an input of this command")
    assert cif.read_bytes() == before
    out = tmp_path / "pred.h5"
    assert _run(["predict", cif, "--model", carbon, "-o", out], capsys)[0] == 0
    code, _, err = _run(["predict", cif, "--model", carbon, "-o", out], capsys)
    _one_line_error(code, err, "exists; pass --force")
    assert _run(["predict", cif, "--model", carbon, "-o", out, "--force"], capsys)[0] == 0
    (tmp_path / "deeph").mkdir()
    (tmp_path / "deeph" / "x").write_text("x")
    code, _, err = _run(["predict", cif, "--model", carbon, "-o", tmp_path / "p2.h5", "--deeph", tmp_path / "deeph"],
                        capsys)
    _one_line_error(code, err, "not empty")
    code, _, err = _run(["bands", cif, "--model", carbon, "-o", tmp_path / "x.png", "--json", tmp_path / "x.png"],
                        capsys)
    _one_line_error(code, err, "given as two outputs")


# -- models, recipes, training configs ---------------------------------------------------------------------
def test_models_lists_the_good_ones_and_marks_the_bad(carbon, tmp_path, capsys, monkeypatch):
    import shutil

    from tracegrad_ase import models

    root = tmp_path / "calculators"
    for name in ("good", "nocutoff", "badcard"):
        shutil.copytree(carbon, root / name)
    card = json.loads((root / "nocutoff" / "model.json").read_text())
    del card["config"]["cutoff"]
    (root / "nocutoff" / "model.json").write_text(json.dumps(card))
    (root / "badcard" / "card.yaml").write_text("test: {model: {mae_mev: [oops\n")
    (root / "good" / "card.yaml").write_text("test: {model: {n_structures: 3, mae_mev: 21.3}}\n")  # raw figure only
    monkeypatch.setattr(models, "SHIPPED_MODELS", root)
    code, out, err = _run(["models"], capsys)
    assert code == 0
    assert "good: elements C" in out and "badcard: elements C" in out and "card.yaml unreadable" in out
    assert "nocutoff: BROKEN" in out and "cutoff" in out and "nocutoff" in err
    # the card's gauge and E_F-aligned band figures, not the raw block MAE that depends on the energy zero
    assert "test H MAE 21.3 meV" in out and "energy zero removed" not in out
    (root / "good" / "card.yaml").write_text(yaml.safe_dump({"test": {"model": {
        "n_structures": 3, "mae_mev": 21.3, "gauge_mae_mev": 1.337, "band_mae_ef_mev": 37.62, "ghost_levels": 0}}}))
    code, out, _ = _run(["models"], capsys)
    assert "test: H MAE 1.34 meV (energy zero removed), levels within ±2 eV of E_F off by 37.6 meV, ghost levels 0" \
        in out and "21.3" not in out


def test_recipe_typos_are_listed_with_the_valid_keys(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("out_dir: ds\nworkrs: 2\nsettings: {basis: sto-3g}\nstructures:\n"
                      "  - base: {build: molecule, arg: [H2]}\n    perturb: {n: 2, displacment: 0.02}\n"
                      "  - bse: {build: molecule, args: [H2O]}\n")
    code, _, err = _run(["generate", recipe], capsys)
    _one_line_error(code, err, "unknown key(s) ['workrs']", "'threads_per_worker'", "structure 0 base: unknown key(s) "
                    "['arg']", "'args'", "structure 0 perturb: unknown key(s) ['displacment']", "'displacement'",
                    "structure 1: unknown key(s) ['bse']")
    recipe.write_text("out_dir: ds\nsettings: {basis: sto-3g, xc: pbee, kspacing: 0}\nstructures:\n"
                      "  - base: {build: molecule, args: [H2]}\n")
    code, _, err = _run(["generate", recipe], capsys)
    _one_line_error(code, err, "unknown exchange-correlation functional 'pbee'")
    assert not (tmp_path / "ds").exists()


def test_training_config_values_are_validated(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("data: [ds]\nout: run\nbatch_size: 0\nepochs: -3\nsplit: [0.8, 0.3, 0.1]\nlr: 1e-3\n")
    code, _, err = _run(["train", cfg], capsys)
    _one_line_error(code, err, "batch_size=0", "epochs=-3", "split=[0.8, 0.3, 0.1]", "lr='1e-3'")
    cfg.write_text("data: [ds]\nepochs: 3\n")
    code, _, err = _run(["train", cfg], capsys)
    _one_line_error(code, err, "out")
    from tracegrad_ase.model.train import TrainConfig

    with pytest.raises(ConfigError, match="lr_factor"):
        TrainConfig(data=[], out="x", lr_factor=1.5)


def test_output_checks_refuse_nothing_that_is_fine(tmp_path):
    class Args:
        force = False

    cli._check_outputs(Args(), [(tmp_path / "new" / "deeper" / "x.h5", "file"), (tmp_path / "d", "dir"),
                                (tmp_path, "resume"), (None, "file")], inputs=[tmp_path / "in.xyz"])
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        (tmp_path / "f").write_text("x")
        cli._check_outputs(Args(), [(tmp_path / "f", "resume")])


def test_pymatgen_json_structures_run_no_code(tmp_path, monkeypatch):
    """pymatgen decodes site properties with MontyDecoder, which imports the module an ``@module`` key names."""
    from pymatgen.core import Lattice, Structure

    (tmp_path / "tracegrad_payload_probe.py").write_text(
        f"open(r'{tmp_path / 'RAN'}', 'w').write('x')\nclass X:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = Structure(Lattice.hexagonal(2.46, 10.0), ["C", "C"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]]).as_dict()
    data["sites"][0]["properties"] = {"x": {"@module": "tracegrad_payload_probe", "@class": "X"}}
    data["properties"] = {"pbc": [True, True, False]}
    f = tmp_path / "sheet.json"
    f.write_text(json.dumps(data))
    atoms = cli.read_structure(str(f))
    assert not (tmp_path / "RAN").exists()
    assert atoms.get_chemical_formula() == "C2" and list(atoms.pbc) == [True, True, False]
