"""What the molecules model has seen, in a chemist's words: functional groups per part of its split.

    python calculators/molecules/recipes/functional_groups.py calculators/molecules/split.json \
        --gaps benchmarks/results/heldout_gaps.json --yaml census.yaml

Each molecule of the split (structure files "<molecule>-<k>.h5"; a molecule counts once however many conformers it
has) is matched against :data:`GROUPS`. Its SMILES comes from the recipes' extxyz files; the ten small molecules of
``molecules_svp.yaml`` / ``extra.yaml`` have none there and get their bonds from their geometry (RDKit's
DetermineBonds on a stored structure, ``--data``). Prints, per group, the training / validation / test / held-out
molecule counts and, with ``--gaps`` (``benchmarks/heldout_gaps.py``'s JSON), the held-out molecules' gap errors
(mean absolute, eV); ``--yaml`` writes the block the card carries (``domain_census``). Needs RDKit
(``pip install -e ".[build]"``).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from pathlib import Path

HERE = Path(__file__).parent
EXTXYZ = ("organic.extxyz", "organic_more.extxyz", "organic_heldout.extxyz")
DATA = ("data/molecules-svp", "data/molecules-svp-extra")

#: Group name -> SMARTS; a molecule is in every group it matches. "saturated hydrocarbon" is tested apart.
GROUPS = {
    "C=C (alkene)": "[CX3]=[CX3]",
    "C#C (alkyne)": "[CX2]#[CX2]",
    "benzene ring": "c1ccccc1",
    "aromatic N ring (pyridine, pyrrole, azoles)": "[n]",
    "aromatic O ring (furan, oxazole)": "[o]",
    "small ring (3 or 4 atoms)": "[r3,r4]",
    "alcohol": "[OX2H][CX4]",
    "phenol": "[OX2H]c",
    "ether": "[OD2]([#6;!$(C=O)])[#6;!$(C=O)]",
    "aldehyde": "[CX3;H1,H2]=[OX1]",
    "ketone": "[#6][CX3](=[OX1])[#6]",
    "carboxylic acid": "[CX3](=O)[OX2H1]",
    "ester": "[#6,#1][CX3](=O)[OX2H0][#6]",
    "amide": "[NX3][CX3]=[OX1]",
    "amine (N bonded to C and H only)": "[NX3;!$(N-[!#6;!#1]);!$(N-C=[O,N]);!$(N-a)]",
    "aromatic amine (aniline-like)": "[NX3;!$(N-C=O)]-a",
    "imine (C=N)": "[CX3]=[NX2]",
    "nitrile": "[CX2]#[NX1]",
    "nitro": "[N+](=O)[O-]",
    "nitroso (N=O)": "[NX2]=[OX1]",
    "N-N or N-O single bond": "[#7;+0]-[#7,#8;+0]",
    "azide or diazo": "[$([N-]=[N+]=N),$([N+]=[N-]),$(N=[N+]=[N-])]",
}
SATURATED = "saturated hydrocarbon"
PARTS = ("train", "val", "test", "heldout")


def molecule_of(file_name: str) -> str:
    """``C3H6O2-103f26-1.h5`` -> ``C3H6O2-103f26``."""
    return Path(file_name).stem.rsplit("-", 1)[0]


def recipe_smiles(folder: Path = HERE) -> dict[str, str]:
    """Molecule name -> SMILES, from the recipes' extxyz comment lines."""
    out = {}
    for name in EXTXYZ:
        for line in (folder / name).read_text().splitlines():
            m = re.search(r"molecule=(\S+) smiles=(\"[^\"]+\"|\S+)", line)
            if m:
                out[m.group(1)] = m.group(2).strip('"')
    return out


def geometry_mol(path: Path):
    """An RDKit molecule with bonds perceived from a stored structure's geometry (neutral, closed shell)."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    from tracegrad_ase.io.h5 import load_h5

    atoms = load_h5(path).atoms
    xyz = f"{len(atoms)}\n\n" + "".join(f"{s} {x:.6f} {y:.6f} {z:.6f}\n" for s, (x, y, z) in
                                          zip(atoms.get_chemical_symbols(), atoms.positions))
    mol = Chem.MolFromXYZBlock(xyz)
    rdDetermineBonds.DetermineBonds(mol, charge=0)
    return Chem.RemoveHs(mol)


@functools.cache
def _patterns() -> dict:
    """:data:`GROUPS` compiled once (a census matches every molecule against every group)."""
    from rdkit import Chem

    return {name: Chem.MolFromSmarts(smarts) for name, smarts in GROUPS.items()}


def groups_of(mol) -> list[str]:
    """The :data:`GROUPS` (and "saturated hydrocarbon") an RDKit molecule has."""
    from rdkit import Chem

    found = [name for name, pattern in _patterns().items() if mol.HasSubstructMatch(pattern)]
    carbon_only = all(a.GetSymbol() in ("C", "H") for a in mol.GetAtoms())
    if carbon_only and all(b.GetBondType() == Chem.BondType.SINGLE for b in mol.GetBonds()):
        found.append(SATURATED)
    return found


def census(split: dict[str, list[str]], heldout: list[str], smiles: dict[str, str],
           geometry: dict[str, Path]) -> dict[str, dict[str, list[str]]]:
    """Group -> part -> molecule names. ``heldout``: held-out structure file names."""
    from rdkit import Chem

    parts = {p: sorted({molecule_of(f) for f in split.get(p, [])}) for p in PARTS[:3]}
    parts["heldout"] = sorted({molecule_of(f) for f in heldout})
    out: dict[str, dict[str, list[str]]] = {g: {p: [] for p in PARTS} for g in [*GROUPS, SATURATED]}
    for part, names in parts.items():
        for name in names:
            if name in smiles:
                mol = Chem.MolFromSmiles(smiles[name])
            elif name in geometry:
                mol = geometry_mol(geometry[name])
            else:
                raise SystemExit(f"{name}: no SMILES in {', '.join(EXTXYZ)} and no stored structure in --data")
            for g in groups_of(mol):
                out[g][part].append(name)
    return out


def gap_errors(path: Path) -> dict[str, float]:
    """Molecule name -> |gap error| (eV) from benchmarks/heldout_gaps.py's JSON (first key)."""
    results = json.loads(path.read_text())
    rows = next(iter(results.values()))["structures"]
    return {molecule_of(Path(r["file"]).name): abs(r["gap_error_ev"]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split", type=Path, help="the training run's split.json")
    ap.add_argument("--heldout", type=Path, default=Path("data/molecules-organic-heldout"))
    ap.add_argument("--data", nargs="*", type=Path, default=[Path(d) for d in DATA],
                    help="folders whose molecules have no SMILES in the recipes")
    ap.add_argument("--gaps", type=Path, help="benchmarks/heldout_gaps.py's JSON for the held-out molecules")
    ap.add_argument("--yaml", type=Path, help="write the card's domain_census block here")
    args = ap.parse_args()
    split = json.loads(args.split.read_text())
    heldout = [p.name for p in (args.heldout / "structures").glob("*.h5")]
    geometry = {molecule_of(p.name): p for d in args.data for p in sorted((d / "structures").glob("*.h5"))}
    table = census(split, heldout, recipe_smiles(), geometry)
    errors = gap_errors(args.gaps) if args.gaps else {}
    rows = {}
    print(f"{'group':45s} {'train':>6s} {'val':>5s} {'test':>5s} {'held-out':>8s} {'held-out gap MAE (eV)':>22s}")
    for group, parts in table.items():
        row = {p: len(parts[p]) for p in PARTS}
        known = [errors[m] for m in parts["heldout"] if m in errors]
        if known:
            row["heldout_gap_mae_ev"] = round(sum(known) / len(known), 3)
        rows[group] = row
        mae = f"{row['heldout_gap_mae_ev']:.3f}" if known else "-"
        print(f"{group:45s} {row['train']:6d} {row['val']:5d} {row['test']:5d} {row['heldout']:8d} {mae:>22s}")
    if args.yaml:
        import yaml

        block = {"domain_census": {
            "what": "molecules per functional group (a molecule counts once per group it has) in each part of the "
                    "split, and the held-out molecules' mean absolute HOMO-LUMO gap error against PBE",
            "command": f"python calculators/molecules/recipes/functional_groups.py {args.split}"
                       + (f" --gaps {args.gaps}" if args.gaps else ""),
            "groups": rows}}
        args.yaml.write_text(yaml.safe_dump(block, sort_keys=False, width=110))
        print(f"-> {args.yaml}")


if __name__ == "__main__":
    main()
