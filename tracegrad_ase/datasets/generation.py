"""Training data sets: parallel, resumable ground-truth generation on Dask.

A data set is a folder::

    out_dir/
        settings.json        the GroundTruthSettings every file was made with
        structures.extxyz    the input structures of the last run, named
        structures/{name}.h5 one RealSpaceHamiltonian per structure (io.h5.save_h5)
        failures.jsonl       one JSON line per failed structure and attempt (append-only)
        .lock                held by the generator writing the folder (io.exclusive): one at a time
        scf-checkpoints/     {name}.chk: the last SCF cycle's orbitals of a structure still running

Generation is resumable: a rerun skips every structure whose file loads and was made from the same geometry
and settings, and recomputes missing or corrupt ones. A structure killed mid-SCF resumes from its last cycle
(local clusters; removed once its file is written).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ..io.atomic import append_line, atomic_path, atomic_write_json
from ..io.exclusive import exclusive
from ..io.h5 import STRUCTURES_DIR, load_dataset, load_h5, save_h5, split_dataset  # noqa: F401 (re-exported)
from ..core.errors import DataFormatError, SettingsMismatchError, StructureError, TraceGradError  # noqa: F401
from ..core.hamiltonian import RealSpaceHamiltonian
from ..engines.pyscf.scf import GroundTruthSettings, ground_truth
from ..engines.pyscf.scf_checkpoint import discard
from .perturbation import _root_name, perturbed_structures, phonopy_displacements  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
STRUCTURES_FILE = "structures.extxyz"
FAILURES_FILE = "failures.jsonl"
CHECKPOINTS_DIR = "scf-checkpoints"

#: Settings fields that change how fast a result is made, not what it is.
_NON_PHYSICAL_SETTINGS = ("threads",)


# -- generation ------------------------------------------------------------------------------------------
@dataclass
class GenerationReport:
    """What a :func:`generate_dataset` call did. ``recovered``: done now, with an earlier logged failure."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    wall_time: float
    recovered: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.done)} computed, {len(self.skipped)} already present, {len(self.failed)} failed "
            f"in {self.wall_time:.1f} s"
        )


@dataclass(frozen=True)
class _TaskFailure:
    """An exception inside a task, as plain strings: exception objects need not pickle."""

    error_type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class _Stored:
    """A result the worker wrote itself (to ``path``): only this marker travels back."""

    path: str


def _ground_truth_task(atoms: Atoms, settings: GroundTruthSettings, checkpoint: str | None = None,
                       out: str | None = None) -> RealSpaceHamiltonian | _Stored | _TaskFailure:
    """One structure's ground truth; with ``out`` (a worker that shares the data folder) written there at once,
    so a parent that stalls or restarts the worker cannot lose a finished structure (a rerun skips the file)."""
    try:
        ham = ground_truth(atoms, settings, checkpoint)  # sets PySCF's threads from settings.threads in this thread
    except Exception as exc:  # noqa: BLE001 - every failure is reported per structure, none stops the run
        return _TaskFailure(type(exc).__name__, str(exc), traceback.format_exc())
    return ham if out is None else _store(ham, out)


def _store(ham: RealSpaceHamiltonian, path: str | os.PathLike) -> _Stored | _TaskFailure:
    """``ham`` written to ``path`` (atomically), in a worker or in the parent; a failure as a task failure."""
    try:
        save_h5(ham, path)
    except Exception as exc:  # noqa: BLE001
        return _TaskFailure(type(exc).__name__, f"saving failed: {exc}", traceback.format_exc())
    return _Stored(str(path))


def generate_dataset(
    structures: Sequence[Atoms],
    out_dir: str | os.PathLike,
    settings: GroundTruthSettings | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    progress: bool = True,
    overwrite_settings: bool = False,
    processes: bool = True,
    cluster_kwargs: dict[str, Any] | None = None,
) -> GenerationReport:
    """Compute ground-truth Hamiltonians for ``structures`` in parallel and store them under ``out_dir``.

    ``scheduler=None`` starts a local Dask cluster of ``n_workers`` (default 1) worker processes and closes it
    afterwards; each worker runs one structure at a time with ``threads_per_worker`` PySCF/BLAS threads. A
    scheduler address uses that cluster instead: start its workers with ``--nthreads 1`` (each task already
    uses ``threads_per_worker`` threads). Results come back to this process, which writes them, so workers
    need no shared file system; a local cluster's workers write their own (atomically), so a finished structure
    is stored even if this process stalls.

    Structures are named by ``atoms.info["name"]`` or ``structure-{k:05d}``. Existing files that load and
    match the structure and settings are skipped; missing or unreadable ones are computed. A failing structure
    is logged to ``failures.jsonl`` and the run goes on. If ``out_dir`` was made with other settings,
    :class:`SettingsMismatchError` is raised unless ``overwrite_settings=True``, which adopts the new settings
    and recomputes every file made with the old ones. ``processes=False`` runs the workers as threads of this
    process (for tests; PySCF holds the GIL in parts, so processes are faster for real runs).
    """
    t0 = time.perf_counter()
    settings = settings or GroundTruthSettings()
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker must be >= 1, got {threads_per_worker}")
    out_dir = Path(out_dir)
    names = _structure_names(structures)
    h5_dir = out_dir / STRUCTURES_DIR

    # Every check runs before anything is written, so a refused call leaves the folder as it was.
    _check_settings_file(out_dir / SETTINGS_FILE, settings, overwrite_settings)
    todo: list[int] = []
    skipped: list[str] = []
    for k, (name, atoms) in enumerate(zip(names, structures)):
        if _reusable(h5_dir / f"{name}.h5", name, atoms, settings, overwrite_settings):
            skipped.append(name)
        else:
            todo.append(k)
    earlier_failures = _logged_failures(out_dir / FAILURES_FILE)

    with exclusive(out_dir, "tracegrad generate"):  # a second generator would redo the same hours of SCF
        h5_dir.mkdir(exist_ok=True)
        _write_recipe(out_dir, structures, names, settings)
        logger.info("%s: %d structures to compute, %d already present", out_dir, len(todo), len(skipped))

        done: list[str] = []
        failed: dict[str, str] = {}
        if todo:
            task_settings = replace(settings, threads=threads_per_worker)
            with _DaskClient(scheduler, n_workers, threads_per_worker, processes, cluster_kwargs) as client:
                # Workers of an external scheduler may not share this file system: no SCF checkpoints there.
                checkpoints = out_dir.resolve() / CHECKPOINTS_DIR if scheduler is None else None
                done, failed = _run_tasks(client, structures, names, todo, task_settings, out_dir, progress,
                                          checkpoints)
            if checkpoints is not None and checkpoints.is_dir() and not any(checkpoints.iterdir()):
                checkpoints.rmdir()
    recovered = sorted(set(done) & earlier_failures)
    if recovered:
        logger.info("%d structures that failed before succeeded now: %s", len(recovered), recovered)
    report = GenerationReport(
        done=done, skipped=skipped, failed=failed, wall_time=time.perf_counter() - t0, recovered=recovered
    )
    logger.info("%s: %s", out_dir, report)
    return report


def _run_tasks(client, structures, names, todo, settings, out_dir: Path, progress: bool,
               checkpoints: Path | None = None):
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = {}
    for k in todo:
        # Readable, unique keys make the Dask dashboard show structure names.
        key = f"ground_truth-{names[k]}-{os.urandom(4).hex()}"
        chk = str(checkpoints / f"{names[k]}.chk") if checkpoints is not None else None
        # A local cluster shares this file system (as its checkpoints do): its workers store their own results.
        out = str(out_dir.resolve() / STRUCTURES_DIR / f"{names[k]}.h5") if checkpoints is not None else None
        fut = client.submit(_ground_truth_task, structures[k], settings, chk, out, key=key)
        futures[fut.key] = (names[k], fut, chk)
    done: list[str] = []
    failed: dict[str, str] = {}
    with tqdm(total=len(futures), desc="ground truth", unit="structure", disable=not progress) as bar:
        for fut in as_completed([f for _, f, _ in futures.values()]):
            name, _, chk = futures.pop(fut.key)
            try:
                result = fut.result()  # raises only for the cluster's own failures, e.g. a killed worker
            except Exception as exc:  # noqa: BLE001
                result = _TaskFailure(type(exc).__name__, str(exc), traceback.format_exc())
            finally:
                fut.release()  # results can be large; free the worker's copy now
            if isinstance(result, RealSpaceHamiltonian):  # a remote worker's: stored here
                result = _store(result, out_dir / STRUCTURES_DIR / f"{name}.h5")
            if isinstance(result, _TaskFailure):
                failed[name] = f"{result.error_type}: {result.message}"
                _log_failure(out_dir / FAILURES_FILE, name, result)
            else:
                done.append(name)
            discard(chk)  # stored, or failed for a reason a rerun should meet from the start
            bar.update(1)
            bar.set_postfix(failed=len(failed), refresh=False)
    return sorted(done), dict(sorted(failed.items()))


class _DaskClient:
    """A Client on ``scheduler``, or on a LocalCluster that lives as long as the context."""

    def __init__(self, scheduler, n_workers, threads_per_worker, processes, cluster_kwargs):
        self.args = (scheduler, n_workers, threads_per_worker, processes, dict(cluster_kwargs or {}))
        self.cluster = None
        self.client = None

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        scheduler, n_workers, threads, processes, kwargs = self.args
        if scheduler is not None:
            self.client = Client(scheduler)
            return self.client
        kwargs.setdefault("dashboard_address", None)
        # One task per worker (Dask threads = 1) that itself uses `threads` cores: Dask threads would each run
        # a whole SCF and oversubscribe the cores. Dask pins the BLAS/OpenMP variables of spawned workers to 1;
        # raise them to the threads a task uses (PySCF's own OpenMP count is set inside the task).
        env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        env.update({v: threads for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            self.cluster = LocalCluster(n_workers=n_workers or 1, threads_per_worker=1, processes=processes, **kwargs)
        try:
            self.client = Client(self.cluster)
        except BaseException:
            self.cluster.close()
            raise
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


# -- folder bookkeeping ----------------------------------------------------------------------------------
_BAD_NAME = re.compile(r"[/\\\x00]|^\.|^\s*$")


def _structure_names(structures: Sequence[Atoms]) -> list[str]:
    names = [str(a.info.get("name") or f"structure-{k:05d}") for k, a in enumerate(structures)]
    bad = [n for n in names if _BAD_NAME.search(n) or len(n) > 200]
    if bad:
        raise ValueError(f"structure names must be usable as file names (no '/', no leading '.'): {bad[:5]}")
    seen: set[str] = set()
    dup = sorted({n for n in names if n in seen or seen.add(n)})
    if dup:
        raise ValueError(f"duplicate structure names {dup[:10]}: each structure needs its own name (info['name'])")
    return names


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as JSON would give them back (tuples as lists), without the non-physical fields."""
    d = json.loads(json.dumps(settings))
    for key in _NON_PHYSICAL_SETTINGS:
        d.pop(key, None)
    return d


def _check_settings_file(path: Path, settings: GroundTruthSettings, overwrite: bool) -> None:
    if not path.exists() or overwrite:
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsMismatchError(f"{path} is unreadable ({exc}); fix it or pass overwrite_settings=True") from None
    old, new = _comparable(stored), _comparable(settings.to_dict())
    if old != new:
        diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
        raise SettingsMismatchError(
            f"{path.parent} holds data made with other ground-truth settings (stored vs given: {diff}); "
            "use another folder, or pass overwrite_settings=True to recompute it with the new settings"
        )


def _reusable(path: Path, name: str, atoms: Atoms, settings: GroundTruthSettings, overwrite: bool) -> bool:
    """True if ``path`` holds a readable result for this very structure and these settings."""
    if not path.exists():
        return False
    try:
        ham = load_h5(path)
    except DataFormatError as exc:
        logger.warning("%s: unreadable, recomputing (%s)", path, exc)
        return False
    a = ham.atoms
    same = (
        len(a) == len(atoms)
        and np.array_equal(a.numbers, atoms.numbers)
        and np.array_equal(np.asarray(a.pbc, bool), np.asarray(atoms.pbc, bool))
        and np.allclose(a.positions, atoms.positions, rtol=0, atol=1e-8)
        and np.allclose(np.asarray(a.cell[:]), np.asarray(atoms.cell[:]), rtol=0, atol=1e-8)
    )
    if not same:
        # Reusing it would pair a Hamiltonian with the wrong geometry; overwriting would lose data silently.
        raise ValueError(
            f"{path} holds a different structure than the one named {name!r}; give the structure another name "
            "or delete the file"
        )
    if _comparable(ham.meta.get("settings", {})) != _comparable(settings.for_atoms(atoms).to_dict()):
        if overwrite:
            return False
        raise SettingsMismatchError(
            f"{path} was made with other ground-truth settings than the given ones; pass overwrite_settings=True "
            "to recompute it"
        )
    return True


def _write_recipe(out_dir: Path, structures: Sequence[Atoms], names: list[str], settings: GroundTruthSettings) -> None:
    from ase.io import write

    named = []
    for atoms, name in zip(structures, names):
        a = atoms.copy()  # drops any calculator; extxyz would write its results
        a.info["name"] = name
        named.append(a)
    # An unchanged recipe keeps its mtime, so reruns do not look like new data to make-like tools.
    with atomic_path(out_dir / STRUCTURES_FILE, skip_unchanged=True) as tmp:
        write(tmp, named, format="extxyz")
    atomic_write_json(out_dir / SETTINGS_FILE, settings.to_dict(), indent=2, sort_keys=True, skip_unchanged=True)


def _log_failure(path: Path, name: str, failure: _TaskFailure) -> None:
    logger.warning("%s failed: %s: %s", name, failure.error_type, failure.message)
    record = {
        "name": name,
        "error": failure.error_type,
        "message": failure.message,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "traceback": failure.traceback,
    }
    append_line(path, json.dumps(record))


def _logged_failures(path: Path) -> set[str]:
    if not path.exists():
        return set()
    names = set()
    for line in path.read_text().splitlines():
        try:
            names.add(json.loads(line)["name"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a killed run
    return names


__all__ = ["FAILURES_FILE", "SETTINGS_FILE", "STRUCTURES_FILE", "GenerationReport", "generate_dataset"]
