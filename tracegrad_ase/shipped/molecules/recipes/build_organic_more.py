"""Build the second wave of organic H/C/N/O molecules (issue 18): more distinct molecules, one geometry each.

The learning curve of the molecules model by number of molecules (benchmarks/results/learning_curve.json) puts a
gauge MAE of 5 meV at ~3,000 training molecules and the 0.1 eV gap goal at ~550; organic.yaml holds 419. Its
second frame per molecule (a displaced copy) helped less than new molecules, so this wave has one frame each:
the lowest-MMFF ETKDG conformer. Run once (needs RDKit, as build_organic.py); the outputs are committed::

    python calculators/molecules/recipes/build_organic_more.py

writes ``organic_more.extxyz`` (sorted by size, smallest first, so a generator stopped at a session's end has the
most molecules for its time) for ``organic_more.yaml``. The molecules, all new against organic.extxyz and
organic_heldout.extxyz by canonical SMILES (so no held-out molecule enters, whatever its slug):

- disubstituted benzenes (ortho, meta, para) and pyridines (every pair of ring positions) with two of the common
  groups below;
- chains X-(CH2)n-Y (n = 1-3) and branched X-CH(CH3)-Y with two groups;
- monosubstituted rings (cyclopropane to cyclohexane, the saturated and aromatic heterocycles) with one group.

Every molecule goes to training: validation and test stay organic.yaml's molecules, so earlier models and new
ones are selected and tested on the same molecules, and the 46 held-out molecules stay out. Frame names are
``{slug}-0`` with the same slugs as build_organic.py (``{formula}-{6 hex of the SMILES' SHA-1}``).
"""

from __future__ import annotations

import json
import sys
from itertools import combinations_with_replacement, product
from pathlib import Path

from ase.io import read, write

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_organic import acceptable, canonical, embed, frames, hashed_slug, require_rdkit, summary  # noqa: E402

# Groups written to bond through their first atom; "C" (methyl) and "O" / "N" (hydroxy, amino) included.
GROUPS = ["C", "O", "N", "C=O", "C#N", "OC", "NC", "C(=O)O", "C(N)=O", "C(C)=O", "N(C)C", "C=C", "C#C",
          "[N+](=O)[O-]", "CO", "CN", "NC=O", "OC=O", "C(=O)OC", "N=O"]
BENZENE = {"ortho": "c1ccc({a})c({b})c1", "meta": "c1cc({a})cc({b})c1", "para": "c1cc({a})ccc1{b}"}
CHAINS = ["C({a}){b}", "C({a})C{b}", "C({a})CC{b}", "CC({a}){b}"]  # both groups bond through their first atom
RINGS = ["C1CC1{a}", "C1CCC1{a}", "C1CCCC1{a}", "C1CCCCC1{a}", "C1CCOC1{a}", "C1CCNC1{a}", "C1CCOCC1{a}",
         "c1ccoc1{a}", "c1cocc1{a}", "c1cc[nH]c1{a}", "c1c[nH]cc1{a}", "c1nc({a})c[nH]1", "c1ncccn1{a}",
         "c1cnccn1{a}", "c1ccnnc1{a}", "c1cc({a})no1", "c1cnco1{a}", "N1CCCC1{a}", "N1CCOCC1{a}", "N1CCCCC1{a}"]


def _pyridines(a: str, b: str) -> list[str]:
    """Pyridines with ``a`` and ``b`` on two different ring carbons (all 2-6 position pairs)."""
    out = []
    for i, j in product(range(2, 7), repeat=2):
        if i != j:
            ring = ["n1"] + [f"c({a})" if k == i else f"c({b})" if k == j else "c" for k in range(2, 7)]
            out.append(ring[0] + "".join(ring[1:]) + "1")
    return out


def enumerated_more() -> list[str]:
    """The wave's SMILES in a fixed order (duplicates allowed: dropped by canonical SMILES)."""
    smiles = []
    for a, b in combinations_with_replacement(GROUPS, 2):
        smiles += [t.format(a=a, b=b) for t in BENZENE.values()]
        smiles += _pyridines(a, b)
        smiles += [t.format(a=a, b=b) for t in CHAINS]
    smiles += [t.format(a=a) for t in RINGS for a in GROUPS]
    return smiles


def known_smiles() -> set[str]:
    """Canonical SMILES of every molecule of the first wave, held-out ones included."""
    from rdkit import Chem

    known = set()
    for name in ("organic.extxyz", "organic_heldout.extxyz"):
        for a in read(HERE / name, ":"):
            known.add(canonical(Chem.MolFromSmiles(a.info["smiles"])))
    return known


def molecules_more() -> list[dict]:
    """New molecules of the wave, deduplicated by canonical SMILES, each with its lowest-MMFF conformer."""
    from rdkit import Chem
    from tqdm import tqdm

    seen, known, out = set(), known_smiles(), []
    for smi in tqdm(enumerated_more(), desc="embedding", unit="SMILES"):
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            continue
        key = canonical(mol)
        if key in seen or key in known or acceptable(mol) is not None:
            continue
        seen.add(key)
        atoms = embed(key)
        if atoms is None:
            print(f"{key}: no converged conformer; left out")
            continue
        out.append({"smiles": key, "atoms": atoms, "source": "rdkit:wave2",
                    "slug": hashed_slug(key, atoms.get_chemical_formula())})
    return out


def main() -> None:
    require_rdkit("build_organic_more.py")
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # the invalid combinations (a group on a ring atom with no free valence) are skipped
    mols = molecules_more()
    slugs = [m["slug"] for m in mols]
    if len(set(slugs)) != len(slugs):
        raise SystemExit("two molecules share a slug: extend hashed_slug")
    mols.sort(key=lambda m: (len(m["atoms"]), m["slug"]))
    out = [a for m in mols for a in frames(m, displaced_too=False)]
    write(HERE / "organic_more.extxyz", out, format="extxyz")
    print(json.dumps({"all": summary(mols), "structures": len(out)}, indent=1))


if __name__ == "__main__":
    main()
