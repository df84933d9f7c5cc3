"""The conventional surface (issue 16, items 1 and 2): ``from tracegrad_ase import TraceGradCalculator`` without
an eager torch import, the models API (``available``, ``info``, ``card``, ``choose``), dtype strings, and the
commands' default model (through subprocesses, as a script would use them)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk, graphene
from ase.io import write

from tracegrad_ase import models
from tracegrad_ase.core.errors import ModelNotFoundError, ParameterError


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def tracegrad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tracegrad_ase.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


# -- the package root ---------------------------------------------------------------------------------------------
def test_import_needs_no_torch_and_loads_no_calculator():
    # vesin (loaded on import, before PySCF: core.graphs.vesin_safe) imports torch itself when it is installed,
    # so torch is made unimportable here: the package's own import must not need it.
    r = _python("import sys; sys.modules['torch'] = None\n"
                "import tracegrad_ase\n"
                "loaded = sorted(m for m in sys.modules if m.startswith(('tracegrad_ase.calculator', "
                "'tracegrad_ase.predict', 'tracegrad_ase.model.', 'e3nn')) or m == 'tracegrad_ase.model')\n"
                "assert sys.modules['torch'] is None and loaded == [], loaded\n"
                "print(tracegrad_ase.models.available())")
    assert r.returncode == 0, r.stderr
    assert "'carbon'" in r.stdout and "'molecules'" in r.stdout


def test_calculator_is_an_attribute_loaded_on_first_use():
    r = _python("import sys, tracegrad_ase\n"
                "assert 'tracegrad_ase.calculator' not in sys.modules\n"
                "assert 'TraceGradCalculator' in tracegrad_ase.__all__\n"
                "assert 'TraceGradCalculator' in dir(tracegrad_ase)\n"
                "from tracegrad_ase import TraceGradCalculator\n"
                "from tracegrad_ase.calculator import TraceGradCalculator as same\n"
                "assert TraceGradCalculator is same and 'tracegrad_ase.calculator' in sys.modules\n"
                "try:\n    tracegrad_ase.no_such_name\nexcept AttributeError as e:\n    print('ok', e)")
    assert r.returncode == 0, r.stderr
    assert "ok module 'tracegrad_ase' has no attribute 'no_such_name'" in r.stdout


# -- the models API -----------------------------------------------------------------------------------------------
def test_available_info_and_card():
    names = models.available()
    assert names == models.names() and {"carbon", "graphene-szv", "molecules", "ethanol"} <= set(names)
    carbon = models.info("carbon")
    assert carbon["elements"] == ["C"] and carbon["periodic"] == [True] and carbon["basis"] == "gth-dzvp"
    assert carbon["default"] == "general" and carbon["cutoff"] == pytest.approx(9.5) and "carbon" in carbon["summary"]
    mol = models.info("molecules")
    assert mol["elements"] == ["C", "H", "N", "O"] and mol["periodic"] == [False]
    assert models.info("ethanol")["default"] == "never" and models.info("graphene-szv")["default"] == "special"
    card = models.card("carbon")
    assert isinstance(card, dict) and card["name"] == "carbon" and card["test"]["model"]["mae_mev"] > 0


def test_info_of_a_model_folder_without_card_or_domain(carbon):
    i = models.info(carbon)
    assert i["elements"] == ["C"] and i["periodic"] == [] and i["default"] is None and i["summary"] is None
    assert models.card(carbon) is None
    assert not models.covers(carbon, ["C"], True)  # no recorded periodicity: covers neither kind
    with pytest.raises(ModelNotFoundError, match="no shipped model of that name"):
        models.info("no-such-model")


def test_info_survives_an_unreadable_card(carbon, tmp_path):
    import shutil

    folder = shutil.copytree(carbon, tmp_path / "badcard")
    (folder / "card.yaml").write_text("summary: [oops\n")
    i = models.info(folder)
    assert i["summary"] is None and i["elements"] == ["C"] and models.domain(folder) == (["C"], [])


@pytest.mark.parametrize("elements,periodic,expected", [
    (["C"], True, "carbon"),  # carbon and graphene-szv cover it: the general one wins
    (["C", "H", "O"], False, "molecules"),  # ethanol covers it too, but is never chosen by default
    (["H"], False, "molecules"),
    (["C"], False, "molecules"),
])
def test_choose(elements, periodic, expected):
    assert models.choose(elements, periodic) == expected


@pytest.mark.parametrize("elements,periodic,kind", [(["Si"], True, "periodic Si"), (["C", "H"], True, "periodic C, H"),
                                                    (["N", "Si"], False, "non-periodic N, Si")])
def test_choose_refuses_where_no_model_fits_and_lists_them(elements, periodic, kind):
    with pytest.raises(ModelNotFoundError) as err:
        models.choose(elements, periodic)
    msg = str(err.value)
    assert f"no shipped model covers {kind}" in msg
    assert "carbon (C, periodic)" in msg and "molecules (C, H, N, O, non-periodic)" in msg and "--model" in msg


def test_choose_ambiguous_or_lone_candidates(monkeypatch):
    monkeypatch.setitem(models.DEFAULT_ROLE, "graphene-szv", "general")
    with pytest.raises(ModelNotFoundError, match="several shipped models cover periodic C: carbon, graphene-szv"):
        models.choose(["C"], True)
    monkeypatch.setitem(models.DEFAULT_ROLE, "graphene-szv", "special")
    monkeypatch.setitem(models.DEFAULT_ROLE, "carbon", "never")
    assert models.choose(["C"], True) == "graphene-szv"  # the lone candidate
    monkeypatch.setitem(models.DEFAULT_ROLE, "molecules", "special")
    monkeypatch.setitem(models.DEFAULT_ROLE, "ethanol", "special")
    with pytest.raises(ModelNotFoundError, match="several shipped models cover non-periodic C, H: ethanol, molecules"):
        models.choose(["H", "C", "H"], False)


# -- dtype and device strings ---------------------------------------------------------------------------------------
def test_bad_dtype_names_the_choices(carbon):
    from tracegrad_ase import TraceGradCalculator

    for bad in ("double", "float16", 64):
        with pytest.raises(ParameterError, match=r"dtype must be None, 'float32', 'float64'"):
            TraceGradCalculator(carbon, dtype=bad)


def test_float64_auto_device_and_rotation_invariance():
    import torch

    from tracegrad_ase import TraceGradCalculator

    k = [[0, 0, 0], [0.13, 0.27, 0.0]]
    calc = TraceGradCalculator("carbon", dtype="float64", device="auto", kpts=k)
    p = next(calc.model.parameters())
    assert p.dtype == torch.float64 and p.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    sheet.rattle(0.03, seed=1)
    turned = sheet.copy()
    c, s = np.cos(0.6), np.sin(0.6)
    turned.set_cell(sheet.cell[:] @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T, scale_atoms=True)
    e0, e1 = (np.asarray(calc.get_property("eigenvalues", a))[0] for a in (sheet, turned))
    low = e0 < 30.0  # the valence and low conduction bands
    assert np.abs(e1 - e0)[low].max() < 1e-5  # eV: ~1e-3 meV in float64 (float32: ~0.03-0.3 meV)
    assert np.abs(e1 - e0)[low].max() < np.abs(e0[:, 1:] - e0[:, :-1]).max()  # not vacuous: distinct levels


# -- the commands' default model ------------------------------------------------------------------------------------
def test_commands_without_model_pick_the_covering_one(tmp_path):
    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    write(tmp_path / "graphene.xyz", sheet, format="extxyz")
    r = tracegrad("bands", tmp_path / "graphene.xyz", "-o", tmp_path / "b.png", "--json", tmp_path / "b.json",
                  "--mesh", "3x3x1", "--density", "3")
    assert r.returncode == 0, r.stderr
    assert "model: carbon (chosen: covers C, periodic" in r.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    energies = np.asarray(data["energies_ev"])  # (nk, nbands): at most 13 per atom (gth-dzvp), fewer after lindep
    assert 8 <= energies.shape[1] <= 26 and {"\\Gamma", "M", "K"} <= set(data["labels"])
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_commands_without_model_refuse_an_uncovered_structure(tmp_path, capsys):
    write(tmp_path / "si.xyz", bulk("Si"), format="extxyz")
    r = tracegrad("bands", tmp_path / "si.xyz", "-o", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no shipped model covers periodic Si" in r.stderr and "carbon (C, periodic)" in r.stderr
    assert "molecules (C, H, N, O, non-periodic)" in r.stderr and not (tmp_path / "out").exists()
    from tracegrad_ase.cli import main  # predict and dos share the choice; in process, to keep this test fast

    for command in ("predict", "dos"):
        assert main([command, str(tmp_path / "si.xyz"), "-o", str(tmp_path / "out")]) == 2
        assert "no shipped model covers periodic Si" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
