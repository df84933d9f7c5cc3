"""A phonopy file is data: reading one (directly or through a recipe) never runs code in it (issue #14)."""

import lzma

import numpy as np
import pytest
from ase.build import graphene
from ase.calculators.emt import EMT

pytest.importorskip("phonopy")

from tracegrad_ase.core.errors import DataFormatError  # noqa: E402
from tracegrad_ase.interop.phonopy import force_constants_from_calculator, load_phonopy, thermal_structures  # noqa: E402


def _payload(marker):
    return ("phonopy:\n  version: '2.20.0'\n"
            f"unit_cell: !!python/object/apply:os.system [\"touch {marker}\"]\n"
            "supercell_matrix: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n")


@pytest.fixture(scope="module")
def phonon():
    cell = graphene(a=2.46, vacuum=5.0)
    cell.pbc = True
    return force_constants_from_calculator(cell, [[2, 0, 0], [0, 2, 0], [0, 0, 1]], EMT(), distance=0.01)


@pytest.mark.parametrize("suffix", [".yaml", ".yaml.xz"])
def test_a_python_tag_in_a_phonopy_file_runs_nothing(tmp_path, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"phonopy_params{suffix}"
    data = _payload(marker).encode()
    path.write_bytes(lzma.compress(data) if suffix.endswith(".xz") else data)
    with pytest.raises(DataFormatError, match=str(path).replace(".", r"\.")) as err:
        load_phonopy(path)
    assert "python/object/apply" in str(err.value)
    assert not marker.exists()


def test_a_recipe_with_such_a_file_fails_clearly_and_runs_nothing(tmp_path):
    from tracegrad_ase.datasets.recipes import load_recipe, recipe_structures

    marker = tmp_path / "ran"
    (tmp_path / "evil.yaml").write_text(_payload(marker))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("out_dir: ds\nstructures:\n  - thermal: {phonopy: evil.yaml, temperature: 300, n: 2}\n")
    with pytest.raises(DataFormatError, match="evil.yaml"):
        recipe_structures(load_recipe(recipe))
    assert not marker.exists()


@pytest.mark.parametrize("text, why", [("- just\n- a list\n", "not a mapping"),
                                        ("phonopy: {version: '2.20'}\n", "not a usable phonopy file"),
                                        ("a: [unclosed\n", "not a plain-YAML")])
def test_other_bad_phonopy_files_are_named(tmp_path, text, why):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=why) as err:
        load_phonopy(path)
    assert str(path) in str(err.value)


def test_saved_files_load_the_same_as_before(phonon, tmp_path):
    path = tmp_path / "phonopy_params.yaml"
    phonon.save(path)
    import phonopy

    loaded, reference = load_phonopy(path), phonopy.load(path)  # the (unsafe) reader on a trusted file
    assert np.array_equal(loaded.force_constants, reference.force_constants)
    assert np.array_equal(loaded.supercell_matrix, reference.supercell_matrix)
    assert np.array_equal(loaded.primitive_matrix, reference.primitive_matrix)
    assert np.array_equal(loaded.unitcell.positions, reference.unitcell.positions)
    assert len(thermal_structures(loaded, 300, 2)) == 2


def test_force_sets_next_to_the_file_are_found_from_any_folder(phonon, tmp_path, monkeypatch):
    from phonopy.file_IO import write_FORCE_SETS

    folder = tmp_path / "calc"
    folder.mkdir()
    phonon.save(folder / "phonopy_disp.yaml", settings={"force_sets": False, "force_constants": False})
    write_FORCE_SETS(phonon.dataset, filename=str(folder / "FORCE_SETS"))
    import phonopy

    monkeypatch.chdir(folder)
    reference = phonopy.load(folder / "phonopy_disp.yaml")  # phonopy finds ./FORCE_SETS only from its folder
    monkeypatch.chdir(tmp_path)
    assert phonopy.load(folder / "phonopy_disp.yaml").force_constants is None
    loaded = load_phonopy(folder / "phonopy_disp.yaml")
    assert reference.force_constants is not None
    assert np.array_equal(loaded.force_constants, reference.force_constants)
