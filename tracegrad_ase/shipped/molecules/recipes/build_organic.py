"""Build the structures of the organic H/C/N/O molecules data set (issue 18): run once; the outputs are committed.

Needs RDKit, which is not a dependency of tracegrad-ase: ``pip install "tracegrad-ase[build]"`` (in a checkout:
``pip install -e ".[build]"``, or just ``pip install "rdkit>=2024.3"``). Then, from anywhere::

    python calculators/molecules/recipes/build_organic.py

writes, next to this script,

- ``organic.extxyz``: training and validation molecules, two frames each: the base geometry (``{slug}-0``) and one
  copy with every Cartesian component displaced by N(0, 0.04 Å) (``{slug}-1``);
- ``organic_heldout.extxyz``: the held-out molecules, base geometry only (``{slug}-0``), for ``organic_heldout.yaml``
  (its own data folder: held-out molecules never enter the training folder);
- ``organic_split.json``: the fixed split (``TrainConfig.split_file``) of the file names the generator gives
  (``{name}.h5``), by molecule; ``heldout`` lists the held-out folder's files (the trainer ignores that key).

The molecules: closed-shell, neutral (nitro and azide groups as charge-separated Lewis structures), 1-9 heavy atoms,
at most ``MAX_ATOMS`` atoms with H, distinct by canonical SMILES (constitution; stereo ignored). First ASE's g2
collection made only of H, C, N, O (no radicals: zero magnetic moments in g2 and no radical electrons in the bonds
RDKit perceives), with g2's geometries; then SMILES enumerated below (chains and branches, rings of 3-7, aromatics
and heteroaromatics, functional groups on small scaffolds), embedded with RDKit's ETKDG (seeded, ``N_CONFS``
conformers) and MMFF94-optimised, the lowest MMFF energy kept. Every frame carries info ``name``, ``molecule`` (the
slug), ``smiles`` and ``source``. Slugs: g2's description ("benzene", "acetic-acid"), a name in ``NAMES``, else
``{formula}-{6 hex of the SHA-1 of the SMILES}`` (stable when molecules are added). Seeds are fixed; another RDKit
version may move MMFF geometries in the last digits or rename hashed slugs (its canonical SMILES may differ).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

HERE = Path(__file__).resolve().parent
SEED = 18
MAX_ATOMS = 20
MAX_HEAVY = 9
N_CONFS = 8
DISPLACEMENT = 0.04  # Å, per Cartesian component
HELDOUT_FRACTION = VAL_FRACTION = 0.10
MUST_HOLD_OUT = {"c1ccccc1": "benzene", "c1ccncc1": "pyridine", "CC(=O)O": "acetic acid"}
ELEMENTS = {"H", "C", "N", "O"}
NBF_SVP = {"H": 5, "C": 14, "N": 14, "O": 14}  # def2-SVP, spherical: H 2s1p, C/N/O 3s2p1d

NAMES = {"CC(C)=O": "acetone", "Oc1ccccc1": "phenol", "Nc1ccccc1": "aniline", "Cc1ccccc1": "toluene",
         "c1cc[nH]c1": "pyrrole", "c1ccoc1": "furan", "c1c[nH]cn1": "imidazole",
         "c1cncnc1": "pyrimidine", "c1cnccn1": "pyrazine", "c1ccnnc1": "pyridazine", "c1ncncn1": "triazine",
         "O=c1cc[nH]c(=O)[nH]1": "uracil", "c1ccc2[nH]ccc2c1": "indole", "O=C1CCCC1": "cyclopentanone",
         "C1CCOC1": "tetrahydrofuran", "C1CCNCC1": "piperidine", "C1COCCN1": "morpholine", "NC=O": "formamide",
         "O=Cc1ccccc1": "benzaldehyde", "O=C(O)c1ccccc1": "benzoic-acid",
         "N#Cc1ccccc1": "benzonitrile", "O=[N+]([O-])c1ccccc1": "nitrobenzene", "NC(N)=O": "urea",
         "NCC(=O)O": "glycine", "C1CCCCC1": "cyclohexane", "C=Cc1ccccc1": "styrene", "COc1ccccc1": "anisole"}

# -- the enumerated SMILES ---------------------------------------------------------------------------------
HYDROCARBONS = [
    # alkanes, all isomers up to C6
    "CCCC", "CCCCC", "CC(C)CC", "CC(C)(C)C", "CCCCCC", "CC(C)CCC", "CCC(C)CC", "CC(C)C(C)C", "CC(C)(C)CC",
    # alkenes, dienes, alkynes, enynes (chains and branches)
    "C=CC", "C=CCC", "CC=CC", "C=C(C)C", "C=CCCC", "CC=CCC", "C=C(C)CC", "CC=C(C)C", "C=CC(C)C", "C=CCCCC",
    "CC=CCCC", "CCC=CCC", "C=C(C)C(C)C", "CC(C)=C(C)C", "C=CC=C", "C=CC=CC", "C=CCC=C", "C=C(C)C=C",
    "C=CC=CC=C", "C=C=CC", "CC#C", "C#CCC", "CC#CC", "C#CCCC", "CC#CCC", "C#CC(C)C", "C#CCCCC", "CC#CCCC",
    "C#CC#C", "C#CC=C", "CC#CC#CC", "C=CC#CC", "C#CC(C)(C)C",
    # rings 3-7, bicycles, spiro
    "C1CC1", "CC1CC1", "CC1CC1C", "C1CCC1", "CC1CCC1", "C1CCCC1", "CC1CCCC1", "C1CCCCC1", "C1=CC1", "C1=CCC1",
    "C1=CCCC1", "C1=CC=CC1", "C1=CCCCC1", "C1=CCC=CC1", "C1=CC=CCC1", "C1=CCCCCC1", "C1=CC=CC=CC1",
    "C1CC2CC2C1", "C1CC2CCC1C2", "C1CC2CC1C2", "C1CCC2(C1)CC2", "C=C1CCC1", "C=C1CCCC1", "C#CC1CC1",
    # aromatic hydrocarbons
    "Cc1ccccc1", "CCc1ccccc1", "Cc1ccccc1C", "Cc1cccc(C)c1", "Cc1ccc(C)cc1", "C=Cc1ccccc1", "C#Cc1ccccc1",
    "CCCc1ccccc1", "CC(C)c1ccccc1", "Cc1cc(C)cc(C)c1", "c1ccc2c(c1)CC2", "c1ccc2c(c1)C=C2", "C1=Cc2ccccc2C1",
]

HETERO_RINGS = [
    # saturated and partly saturated heterocycles, 3-7 rings, lactones, lactams, cyclic ketones and ethers
    "C1CO1", "CC1CO1", "C1CN1", "CC1CN1", "C1COC1", "C1CNC1", "C1CCOC1", "C1CCNC1", "C1CCOCC1", "C1CCNCC1",
    "C1COCCO1", "C1CNCCN1", "C1COCCN1", "C1CCCOCC1", "C1CCCNCC1", "C1COCO1", "C1OCOCO1", "C1=COCC1",
    "C1=CCOC1", "C1=COCCC1", "C1=CNCC1", "O=C1CC1", "O=C1CCC1", "O=C1CCCC1", "O=C1CCCCC1", "O=C1CCCCCC1",
    "O=C1C=CCC1", "O=C1C=CC=C1", "O=C1C=CC(=O)C=C1", "O=C1CCO1", "O=C1CCCO1", "O=C1CCCCO1", "O=C1CCN1",
    "O=C1CCCN1", "O=C1CCCCN1", "O=C1CCCCCN1", "O=C1OCCO1", "O=C1NCCN1", "O=C1NCCO1", "O=C1CC(=O)O1",
    "O=C1CCC(=O)O1", "O=C1C=CC(=O)O1", "O=C1CCC(=O)N1", "O=C1NC(=O)NC1=O", "C1=NCCO1", "C1=NCCN1", "C1N=N1",
    "C1CC=NC1", "CN1CCCC1", "CN1CCOCC1", "CC1CCCO1", "CC1CCCCO1", "C1CC2CCC1O2", "C1CC2CC1O2", "OC1CCC1",
    "OC1CCCC1", "OC1CCCCC1", "NC1CCCC1", "NC1CCCCC1", "NC1CC1", "OC1CC1", "N#CC1CC1", "O=CC1CC1",
    "CC(=O)C1CC1", "OC(=O)C1CC1", "OCC1CCCO1", "OC1CCOC1", "C1OC2COC12",
    # aromatic and heteroaromatic rings: 5- and 6-membered, fused (9 heavy atoms at most)
    "c1ccncc1", "c1cc[nH]c1", "c1ccoc1", "c1c[nH]cn1", "c1cn[nH]c1", "c1cocn1", "c1conc1", "c1c[nH]nn1",
    "c1nc[nH]n1", "c1nn[nH]n1", "c1nnco1", "c1nonc1", "c1cnoc1", "c1ncncn1", "c1cncnc1", "c1cnccn1",
    "c1ccnnc1", "c1cnncn1", "O=c1cccc[nH]1", "O=c1cc[nH]cc1", "O=c1cccn[nH]1", "O=c1cc[nH]c(=O)[nH]1",
    "Cc1c[nH]c(=O)[nH]c1=O", "Nc1cc[nH]c(=O)n1", "O=c1[nH]cnc2[nH]cnc12", "c1ccc2[nH]ccc2c1",
    "c1ccc2occc2c1", "c1ccc2[nH]cnc2c1", "c1ccc2ocnc2c1", "c1ccc2[nH]ncc2c1", "c1ncc2[nH]cnc2n1",
    "c1ccc2ncoc2c1", "c1ccc2[nH]nnc2c1", "c1cnc2[nH]ccc2c1", "c1ccn2ccnc2c1", "c1ccn2cccc2c1",
    "Cc1ccccn1", "Cc1cccnc1", "Cc1ccncc1", "Cc1ccc[nH]1", "Cc1ccco1", "Cc1ncc[nH]1", "Cn1ccnc1", "Cn1cccc1",
    "Cc1cc(C)on1", "Cc1ccc(C)o1", "Cc1ccc(C)[nH]1", "Cc1cccc(C)n1", "Cc1ccncn1", "Cc1cnccn1", "Cc1ncccn1",
]

# Substituents on small scaffolds: the scaffold's `{}` is where the group goes. Every group sits on methyl and
# phenyl; the common ones on the other scaffolds, those bonded through N or O (enols, ynamines) not on vinyl or
# ethynyl.
GROUPS_C = ["C=O", "C(C)=O", "C(=O)O", "C(=O)OC", "C(N)=O", "C#N", "C=N"]
GROUPS_X = ["O", "OC", "N", "NC", "NC(C)=O", "[N+](=O)[O-]"]
GROUPS_RARE = ["C(=O)NC", "CO", "CN", "C=NO", "N(C)C", "NC=O", "OC=O", "OC(C)=O", "NN", "NC(N)=O", "N=C=O",
               "N=O", "ON", "OO", "N=[N+]=[N-]", "OC(N)=O"]
SCAFFOLDS_ALL = ["C{}", "c1ccccc1{}"]
SCAFFOLDS = ["CC{}", "CC(C){}", "C1CC1{}", "n1ccccc1{}", "c1ccncc1{}", "o1cccc1{}", "[nH]1cccc1{}"]
SCAFFOLDS_UNSAT = ["C=C{}", "C#C{}"]
DISUBSTITUTED = ["Oc1ccccc1O", "Oc1cccc(O)c1", "Oc1ccc(O)cc1", "Nc1ccccc1N", "Nc1ccc(N)cc1", "Nc1ccccc1O",
                 "Nc1ccc(O)cc1", "Cc1ccccc1O", "Cc1cccc(O)c1", "Cc1ccc(O)cc1", "Cc1ccccc1N", "Cc1ccc(N)cc1",
                 "Oc1ccccc1C=O", "Oc1ccc(C=O)cc1", "N#Cc1ccc(O)cc1", "Nc1ccc(C#N)cc1", "O=Cc1ccc(C=O)cc1",
                 "N#Cc1ccccc1C#N", "COc1ccc(O)cc1", "Nc1ccccn1", "Nc1ccncc1", "Oc1ccccn1", "Nc1ncccn1",
                 "Nc1ccncn1", "N#Cc1ccccn1", "O=Cc1ccco1", "O=Cc1ccc[nH]1", "OCc1ccco1", "NCc1ccccn1",
                 "Cc1ccc(N)nc1", "Nc1ncc[nH]1"]
SMALL_FUNCTIONAL = [
    # diols, amino alcohols, diamines, dicarbonyls, acids, esters, amides, nitriles, imines, N-O compounds
    "OCCO", "OCCCO", "CC(O)CO", "OCC(O)CO", "NCCO", "NCCN", "NCCCN", "CNCCO", "O=CC=O", "CC(=O)C=O",
    "CC(=O)C(C)=O", "CC(=O)CC(C)=O", "O=C(O)C(=O)O", "O=C(O)CC(=O)O", "CC(O)C(=O)O", "OCC(=O)O", "NCC(=O)O",
    "CC(N)C(=O)O", "NC(=O)C(N)=O", "NC(=O)CC(N)=O", "CC(=O)NC(C)=O", "O=CNC=O", "O=C(O)C=CC(=O)O",
    "C=CC(=O)O", "CC=CC(=O)O", "C=C(C)C(=O)O", "C=CC(=O)OC", "C=C(C)C(=O)OC", "C=CC(N)=O", "C=CC#N",
    "N#CCC#N", "N#CC#N", "N#CCO", "N#CCN", "CC(C)(O)C#N", "CC=O", "CCC=O", "CCCC=O", "CC(C)C=O", "CC(C)=NO",
    "CC=NO", "C=NC", "CC=NC", "CC(C)=NC", "CN=CN", "NC=N", "CC(N)=N", "NC(N)=N", "N=C(N)N", "CN(C)C=O",
    "CNC(C)=O", "CN(C)C(C)=O", "CNC(=O)NC", "COC(=O)OC", "COC(N)=O", "CCOC(=O)C", "COC=O", "CCOC=O",
    "CCOCC", "COCCOC", "COCOC", "COC(C)OC", "CCN(CC)C=O", "CCNCC", "CN(C)CCO", "CNN", "CN(C)N", "CNNC",
    "N=NC", "CN=NC", "CON", "CNO", "CN(C)O", "CC(=O)NO", "O=CNO", "CONC=O", "C[N+](C)([O-])C", "CC[N+](=O)[O-]",
    "CC(C)[N+](=O)[O-]", "O=[N+]([O-])C[N+](=O)[O-]", "CON=O", "CCON=O", "CO[N+](=O)[O-]", "N#CO", "CN=C=O",
    "O=C=NC=O", "CC(=O)OC(C)=O", "O=COC=O", "OO", "COO", "CC(C)(C)OO", "COOC", "C=C=O", "CC=C=O", "O=C=C=C=O",
    "C1=COC=C1", "C=COC", "C=CCO", "C=CCN", "C#CCO", "C#CCN", "OCC#CCO", "NC(=O)C=C", "O=C1NC=CC=C1",
]


def enumerated_smiles() -> list[str]:
    """The enumerated SMILES in a fixed order (duplicates allowed: they are dropped by canonical SMILES)."""
    subst = [s.format(g) for s in SCAFFOLDS_ALL for g in GROUPS_C + GROUPS_X + GROUPS_RARE]
    subst += [s.format(g) for s in SCAFFOLDS for g in GROUPS_C + GROUPS_X]
    subst += [s.format(g) for s in SCAFFOLDS_UNSAT for g in GROUPS_C + ["OC", "OC(C)=O"]]
    return HYDROCARBONS + HETERO_RINGS + DISUBSTITUTED + SMALL_FUNCTIONAL + subst


# -- molecules ---------------------------------------------------------------------------------------------
def canonical(mol) -> str:
    """Canonical SMILES without stereo and without explicit hydrogens: the identity of a molecule here."""
    from rdkit import Chem

    return Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=False)


def acceptable(mol) -> str | None:
    """Why a molecule is out of this data set, or None (closed shell, neutral, H/C/N/O, size)."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mol = Chem.AddHs(mol)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    heavy = sum(s != "H" for s in symbols)
    if not set(symbols) <= ELEMENTS:
        return "elements"
    if Descriptors.NumRadicalElectrons(mol) or sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return "radical"
    if Chem.GetFormalCharge(mol) != 0:
        return "charged"
    if not 1 <= heavy <= MAX_HEAVY or len(symbols) > MAX_ATOMS:
        return "size"
    return None


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def hashed_slug(smiles: str, formula: str) -> str:
    return f"{formula}-{hashlib.sha1(smiles.encode()).hexdigest()[:6]}"


def g2_molecules() -> list[dict]:
    """g2 members made of H, C, N, O that are closed-shell singlets, with g2's geometry."""
    from ase.build import molecule
    from ase.data import g2
    from rdkit.Chem import rdDetermineBonds

    out = []
    for key, entry in g2.data.items():
        atoms = molecule(key)
        if not set(atoms.get_chemical_symbols()) <= ELEMENTS or np.any(atoms.get_initial_magnetic_moments()):
            continue
        if sum(atoms.numbers) % 2:
            continue  # odd electron count: a radical whatever g2 says
        mol = xyz_mol(atoms)
        try:
            rdDetermineBonds.DetermineBonds(mol, charge=0)
        except (ValueError, RuntimeError):
            print(f"g2 {key}: RDKit perceives no closed-shell bonding; left out")
            continue
        if acceptable(mol) is not None:
            print(f"g2 {key}: left out ({acceptable(mol)})")
            continue
        atoms.info.clear()
        desc = re.split(r" \(|, |\. ", entry["description"])[0]
        out.append({"smiles": canonical(mol), "atoms": atoms, "source": f"g2:{key}", "slug": slugify(desc)})
    return out


def xyz_mol(atoms: Atoms):
    """An RDKit molecule of the atoms and positions only (no bonds yet)."""
    from rdkit import Chem

    lines = [f"{s} {x:.8f} {y:.8f} {z:.8f}" for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions)]
    return Chem.MolFromXYZBlock(f"{len(atoms)}\n\n" + "\n".join(lines))


def bonds(atoms: Atoms) -> set[tuple[int, int]]:
    """The bonded pairs RDKit perceives from the geometry alone."""
    from rdkit.Chem import rdDetermineBonds

    mol = xyz_mol(atoms)
    rdDetermineBonds.DetermineConnectivity(mol)
    return {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()}


def embed(smiles: str) -> Atoms | None:
    """ETKDG conformers (seeded) optimised with MMFF94 (UFF if MMFF lacks parameters); the lowest energy one."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = SEED
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=N_CONFS, params=params))
    if not ids:
        return None
    if AllChem.MMFFHasAllMoleculeParams(mol):
        results = AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=5000)
    else:
        results = AllChem.UFFOptimizeMoleculeConfs(mol, maxIters=5000)
    energies = [e if not_converged == 0 else np.inf for not_converged, e in results]
    best = ids[int(np.argmin(energies))]
    if not np.isfinite(min(energies)):
        return None
    pos = mol.GetConformer(best).GetPositions()
    atoms = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=pos)
    if bonds(atoms) != {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()}:
        return None  # the optimised geometry lost the bonding it was built with
    atoms.center()
    return atoms


def molecules() -> list[dict]:
    """Every molecule of the data set, deduplicated by canonical SMILES, g2 first."""
    from rdkit import Chem

    names = {canonical(Chem.MolFromSmiles(smi)): name for smi, name in NAMES.items()}
    seen: dict[str, dict] = {}
    for m in g2_molecules():
        seen.setdefault(m["smiles"], m)
    for smi in enumerated_smiles():
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            print(f"{smi}: not a valid SMILES; left out")
            continue
        key = canonical(mol)
        if key in seen:
            continue
        why = acceptable(mol)
        if why is not None:
            continue
        atoms = embed(key)
        if atoms is None:
            print(f"{key}: no converged conformer; left out")
            continue
        slug = names.get(key) or hashed_slug(key, atoms.get_chemical_formula())
        seen[key] = {"smiles": key, "atoms": atoms, "source": "rdkit", "slug": slug}
    slugs = [m["slug"] for m in seen.values()]
    dup = {s for s in slugs if slugs.count(s) > 1}
    for m in seen.values():  # two molecules given one name in NAMES or by g2: the hash tells them apart
        if m["slug"] in dup:
            m["slug"] = hashed_slug(m["smiles"], m["atoms"].get_chemical_formula())
    return list(seen.values())


# -- frames and split --------------------------------------------------------------------------------------
def displaced(atoms: Atoms, slug: str) -> Atoms:
    """A copy with N(0, DISPLACEMENT) on every component, seeded by the molecule (stable when others change)."""
    rng = np.random.default_rng([SEED, int(hashlib.sha1(slug.encode()).hexdigest()[:8], 16)])
    for _ in range(100):
        new = atoms.copy()
        new.positions += rng.normal(0.0, DISPLACEMENT, new.positions.shape)
        d = new.get_all_distances()[np.triu_indices(len(new), 1)]
        if len(new) == 1 or d.min() > 0.6:
            return new
    raise RuntimeError(f"{slug}: no displaced geometry without close atoms")


def frames(mol: dict, displaced_too: bool) -> list[Atoms]:
    out = [mol["atoms"].copy()] + ([displaced(mol["atoms"], mol["slug"])] if displaced_too else [])
    for k, a in enumerate(out):
        a.info.update(name=f"{mol['slug']}-{k}", molecule=mol["slug"], smiles=mol["smiles"], source=mol["source"])
    return out


def split(mols: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(train, val, heldout) by molecule: the named molecules plus a seeded random 10 % held out, 10 % val."""
    from rdkit import Chem

    must = {canonical(Chem.MolFromSmiles(smi)) for smi in MUST_HOLD_OUT}
    rng = np.random.default_rng(SEED)
    mols = sorted(mols, key=lambda m: m["smiles"])
    forced = [m for m in mols if m["smiles"] in must]
    missing = must - {m["smiles"] for m in forced}
    if missing:
        raise RuntimeError(f"molecules that must be held out are missing: {sorted(missing)}")
    rest = [m for m in mols if m["smiles"] not in must]
    order = rng.permutation(len(rest))
    n_held = max(0, round(HELDOUT_FRACTION * len(mols)) - len(forced))
    n_val = round(VAL_FRACTION * len(mols))
    held = forced + [rest[i] for i in order[:n_held]]
    val = [rest[i] for i in order[n_held:n_held + n_val]]
    train = [rest[i] for i in order[n_held + n_val:]]
    return train, val, held


def summary(mols: list[dict]) -> dict:
    atoms = [m["atoms"] for m in mols]
    nbf = [sum(NBF_SVP[s] for s in a.get_chemical_symbols()) for a in atoms]
    heavy = [sum(s != "H" for s in a.get_chemical_symbols()) for a in atoms]
    return {"molecules": len(mols), "mean_atoms": float(np.mean([len(a) for a in atoms])),
            "max_atoms": max(len(a) for a in atoms), "mean_basis_functions": float(np.mean(nbf)),
            "max_basis_functions": max(nbf), "heavy_atoms": {h: heavy.count(h) for h in sorted(set(heavy))}}


def require_rdkit(script: str) -> None:
    """Stop with how to install RDKit, which builds the committed structures but is no dependency of the package."""
    try:
        import rdkit  # noqa: F401
    except ImportError:
        raise SystemExit(f'{script} needs RDKit: pip install "tracegrad-ase[build]" (or "rdkit>=2024.3")')


def main() -> None:
    require_rdkit("build_organic.py")
    mols = molecules()
    train, val, held = split(mols)
    train_frames = [a for m in train + val for a in frames(m, displaced_too=True)]
    held_frames = [a for m in held for a in frames(m, displaced_too=False)]
    write(HERE / "organic.extxyz", train_frames, format="extxyz")
    write(HERE / "organic_heldout.extxyz", held_frames, format="extxyz")
    files = {part: [f"{a.info['name']}.h5" for m in ms for a in frames(m, displaced_too=True)]
             for part, ms in (("train", train), ("val", val))}
    files["test"] = []  # held-out molecules live in their own folder (organic_heldout.yaml), listed below
    files["heldout"] = [f"{a.info['name']}.h5" for a in held_frames]
    (HERE / "organic_split.json").write_text(json.dumps(files, indent=1) + "\n")
    print(json.dumps({"all": summary(mols), "train": len(train), "val": len(val), "heldout": len(held),
                      "structures": len(train_frames) + len(held_frames)}, indent=1))
    print("held out:", ", ".join(f"{m['slug']} ({m['smiles']})" for m in held))


if __name__ == "__main__":
    main()
