"""Resuming a long SCF across a kill: PySCF's chkfile holds the orbitals of the last finished cycle.

A 72-atom graphene cell takes hours on one core, longer than a session lasts; without this a kill restarts it
from the minao guess. With a checkpoint path, PySCF rewrites the file after every cycle, and a rerun starts
from its density. A checkpoint is only a starting density: the SCF still converges to the same tolerance, so a
stale one costs cycles, never accuracy. It is used only if it belongs to the same geometry, basis size and
k-points; an unreadable one (a kill during PySCF's write) is set aside as ``*.corrupt`` and the run starts over.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Atom positions and lattice vectors (Bohr) must agree this closely for a checkpoint to be used.
GEOMETRY_TOLERANCE_BOHR = 1e-6


#: Suffix of the file PySCF writes during a cycle, before it replaces the checkpoint.
SCRATCH_SUFFIX = ".writing"


def scratch_path(path: str | os.PathLike) -> Path:
    """Where PySCF writes the cycle that will replace the checkpoint ``path``."""
    path = Path(path)
    return path.with_name(path.name + SCRATCH_SUFFIX)


def attach(mf: Any, path: str | os.PathLike) -> None:
    """Make ``mf``'s orbitals replace the checkpoint ``path`` whole after every SCF cycle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_path(path)
    # A kill mid-write leaves a broken scratch file, which PySCF's first write (append mode) would fail on.
    scratch.unlink(missing_ok=True)
    mf.chkfile = str(scratch)
    previous = mf.callback

    def publish(envs: dict) -> None:
        # PySCF's kernel calls the callback after the cycle's chkfile write: the scratch file is complete.
        if scratch.exists():
            os.replace(scratch, path)
        if previous:
            previous(envs)

    mf.callback = publish


def resume_density(mf: Any, path: str | os.PathLike) -> np.ndarray | None:
    """The density matrix stored in the checkpoint ``path`` for ``mf``'s system, or None when there is none
    that fits (missing, another structure or mesh, or unreadable: then renamed ``*.corrupt``)."""
    path = Path(path)
    if not path.exists():
        return None
    if not _holds_a_cycle(path):
        # Written before this module published whole cycles only: the structure, no orbitals yet.
        logger.info("SCF checkpoint %s holds no finished cycle; starting over", path)
        path.unlink()
        return None
    periodic = hasattr(mf, "kpts")
    try:
        if periodic:
            from pyscf.pbc.scf.chkfile import load_scf
        else:
            from pyscf.scf.chkfile import load_scf
        stored_mol, scf = load_scf(str(path))
        mismatch = _mismatch(mf, stored_mol, scf, periodic)
    except Exception as exc:  # noqa: BLE001 - h5py/PySCF raise many types for a half-written file
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        logger.warning("SCF checkpoint %s is unreadable (%s: %s); set aside as %s, starting over", path,
                       type(exc).__name__, exc, bad.name)
        return None
    if mismatch:
        logger.warning("SCF checkpoint %s not used: %s", path, mismatch)
        return None
    logger.info("resuming the SCF from checkpoint %s", path)
    return np.asarray(mf.make_rdm1(scf["mo_coeff"], scf["mo_occ"]))


def _holds_a_cycle(path: Path) -> bool:
    """False only for a readable HDF5 file without PySCF's ``scf`` group; anything unreadable is left to
    ``load_scf`` (and set aside as corrupt)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "scf" in f
    except Exception:  # noqa: BLE001 - not HDF5 at all: the caller's load reports it
        return True


def _mismatch(mf: Any, stored_mol: Any, scf: dict, periodic: bool) -> str | None:
    mol = mf.mol
    if stored_mol.natm != mol.natm or list(stored_mol.atom_charges()) != list(mol.atom_charges()):
        return "other atoms"
    if np.abs(stored_mol.atom_coords() - mol.atom_coords()).max() > GEOMETRY_TOLERANCE_BOHR:
        return "other atom positions"
    if stored_mol.nao_nr() != mol.nao_nr():
        return f"another basis ({stored_mol.nao_nr()} orbitals, this run {mol.nao_nr()})"
    if periodic:
        if np.abs(np.asarray(stored_mol.lattice_vectors()) - np.asarray(mol.lattice_vectors())).max() > \
                GEOMETRY_TOLERANCE_BOHR:
            return "another cell"
        kpts = np.asarray(scf.get("kpts", np.zeros((0, 3))))
        if kpts.shape != np.asarray(mf.kpts).shape or np.abs(kpts - mf.kpts).max() > 1e-8:
            return "another k-mesh"
    return None


def discard(path: str | os.PathLike | None) -> None:
    """Remove a checkpoint (and its scratch file) once its structure's result is stored (or its SCF has failed
    for good)."""
    if path is not None:
        Path(path).unlink(missing_ok=True)
        scratch_path(path).unlink(missing_ok=True)
