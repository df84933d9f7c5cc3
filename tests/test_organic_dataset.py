"""The committed organic molecules data set (issue 18): recipes, structures and the split by molecule agree.

No PySCF and no RDKit: the structures are read from the committed extxyz files through the recipes.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from ase.build import molecule

from tracegrad_ase.datasets.recipes import load_recipe, recipe_settings, recipe_structures
from tracegrad_ase.models import SHIPPED_MODELS

RECIPES = SHIPPED_MODELS / "molecules" / "recipes"
NAMED_HELDOUT = {"c1ccccc1": "benzene", "c1ccncc1": "pyridine", "CC(=O)O": "acetic acid"}  # canonical SMILES


@pytest.fixture(scope="module")
def data():
    train_recipe = load_recipe(RECIPES / "organic.yaml")
    held_recipe = load_recipe(RECIPES / "organic_heldout.yaml")
    return {"recipe": train_recipe, "held_recipe": held_recipe,
            "structures": recipe_structures(train_recipe), "heldout": recipe_structures(held_recipe),
            "split": json.loads((RECIPES / "organic_split.json").read_text())}


def _by_file(structures):
    return {f"{a.info['name']}.h5": a for a in structures}


def test_split_names_are_the_recipes_structures(data):
    files, held = _by_file(data["structures"]), _by_file(data["heldout"])
    split = data["split"]
    assert split["test"] == []  # held-out molecules live in their own folder
    assert sorted(split["train"] + split["val"]) == sorted(files)  # every structure once, nothing else
    assert sorted(split["heldout"]) == sorted(held)
    assert 0.08 < len(split["val"]) / len(files) < 0.15
    assert data["recipe"]["out_dir"].endswith("data/molecules-organic")
    assert data["held_recipe"]["out_dir"].endswith("data/molecules-organic-heldout")
    for recipe in (data["recipe"], data["held_recipe"]):
        s = recipe_settings(recipe)
        assert (s.basis, s.xc) == ("def2-svp", "pbe")


def test_split_is_by_molecule_and_holds_out_the_named_ones(data):
    files = _by_file(data["structures"])
    mols = {part: {files[f].info["smiles"] for f in data["split"][part]} for part in ("train", "val")}
    held = {a.info["smiles"] for a in data["heldout"]}
    assert not mols["train"] & mols["val"] and not (mols["train"] | mols["val"]) & held
    assert set(NAMED_HELDOUT) <= held
    assert 0.08 < len(held) / (len(held) + len(mols["train"]) + len(mols["val"])) < 0.15
    benzene = next(a for a in data["heldout"] if a.info["smiles"] == "c1ccccc1")
    assert np.allclose(benzene.positions, molecule("C6H6").positions, atol=1e-6)  # the geometry


def test_structures_are_closed_shell_hcno_molecules_of_the_stated_size(data):
    structures = data["structures"] + data["heldout"]
    assert len({a.info["smiles"] for a in structures}) >= 350
    for a in structures:
        symbols = a.get_chemical_symbols()
        heavy = sum(s != "H" for s in symbols)
        assert set(symbols) <= {"H", "C", "N", "O"} and 1 <= heavy <= 9 and len(a) <= 20, a.info["name"]
        assert sum(a.numbers) % 2 == 0 and not a.pbc.any(), a.info["name"]
        d = a.get_all_distances()[np.triu_indices(len(a), 1)]
        assert len(a) == 1 or d.min() > 0.6, a.info["name"]


def test_each_training_molecule_has_its_base_and_one_displaced_frame(data):
    by_mol: dict[str, list] = {}
    for a in data["structures"]:
        by_mol.setdefault(a.info["molecule"], []).append(a)
    assert Counter(len(v) for v in by_mol.values()) == Counter({2: len(by_mol)})
    shifts = []
    for mol, (base, moved) in by_mol.items():
        assert (base.info["name"], moved.info["name"]) == (f"{mol}-0", f"{mol}-1")
        assert np.array_equal(base.numbers, moved.numbers)
        shifts.append((moved.positions - base.positions).ravel())
    shifts = np.concatenate(shifts)
    assert abs(shifts.std() - 0.04) < 0.004 and abs(shifts.mean()) < 0.004  # N(0, 0.04 Å) per component


def test_second_wave_is_new_molecules_only_one_frame_each_smallest_first(data):
    # The second wave (organic_more.yaml) is all for training: it must hold no molecule of the first wave, and above
    # all no held-out one, compared by RDKit's canonical SMILES as build_organic_more.py wrote them (and by slug).
    recipe = load_recipe(RECIPES / "organic_more.yaml")
    more = recipe_structures(recipe)
    assert recipe["out_dir"].endswith("data/molecules-organic-more")
    s = recipe_settings(recipe)
    assert (s.basis, s.xc) == ("def2-svp", "pbe")
    first = data["structures"] + data["heldout"]
    smiles = [a.info["smiles"] for a in more]
    assert len(more) >= 1000 and len(set(smiles)) == len(more)
    assert not set(smiles) & {a.info["smiles"] for a in first}
    assert not {a.info["molecule"] for a in more} & {a.info["molecule"] for a in first}
    assert set(NAMED_HELDOUT).isdisjoint(smiles)
    assert all(a.info["name"] == f"{a.info['molecule']}-0" for a in more)
    sizes = [len(a) for a in more]
    assert sizes == sorted(sizes)
    for a in more:
        symbols = a.get_chemical_symbols()
        assert set(symbols) <= {"H", "C", "N", "O"} and sum(x != "H" for x in symbols) <= 9 and len(a) <= 20
        assert sum(a.numbers) % 2 == 0
        assert a.get_all_distances()[np.triu_indices(len(a), 1)].min() > 0.9, a.info["name"]


def _functional_groups():
    import importlib.util

    pytest.importorskip("rdkit")  # the [build] extra; CI's [test] install skips this
    spec = importlib.util.spec_from_file_location("functional_groups", RECIPES / "functional_groups.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_functional_groups_name_what_a_chemist_would():
    from rdkit import Chem

    fg = _functional_groups()
    expect = {"CC(=O)O": {"carboxylic acid"}, "CC(=O)OC": {"ester"}, "CCOCC": {"ether"}, "CCO": {"alcohol"},
              "CN": {"amine (N bonded to C and H only)"}, "CCCCCC": {"saturated hydrocarbon"},
              "c1ccncc1": {"aromatic N ring (pyridine, pyrrole, azoles)"}, "Nc1ccccc1":
              {"benzene ring", "aromatic amine (aniline-like)"}, "CC(N)=O": {"amide"}, "CC=O": {"aldehyde"},
              "CC(C)=O": {"ketone"}, "C[N+](=O)[O-]": {"nitro"}, "CC#N": {"nitrile"}, "C1CC1": {"small ring (3 or 4 atoms)",
                                                                                            "saturated hydrocarbon"}}
    for smiles, groups in expect.items():
        assert set(fg.groups_of(Chem.MolFromSmiles(smiles))) == groups, smiles


def test_functional_group_census_counts_molecules_once_per_part():
    fg = _functional_groups()
    smiles = fg.recipe_smiles()
    assert smiles["acetic-acid"] == "CC(=O)O" and smiles["pyridine"] == "c1ccncc1"
    split = {"train": ["C3H6O2-103f26-0.h5", "C3H6O2-103f26-1.h5"], "val": [], "test": []}  # propanoic acid twice
    table = fg.census(split, ["acetic-acid-0.h5", "benzene-0.h5"], smiles, {})
    acid = table["carboxylic acid"]
    assert acid["train"] == ["C3H6O2-103f26"] and acid["heldout"] == ["acetic-acid"]
    assert table["benzene ring"]["heldout"] == ["benzene"] and not table["benzene ring"]["train"]
