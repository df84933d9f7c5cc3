"""How good is a model: block errors, error by element pair and by CG degree, eigenvalue errors, parity plot.

Every metric compares the model with the stored truth on the same edges: the truth's edges up to the
model's cutoff (the model predicts nothing beyond it). Eigenvalues are compared on those edges too, with the
true overlap on both sides, so they measure the model's H alone and not the truncation of the data (the
number of stored edges beyond the cutoff is reported as ``n_edges_beyond_cutoff``).

Errors are pooled over all files: an MAE is the sum of absolute errors over the number of values, in meV.

The energy zero of a periodic calculation is arbitrary (more vacuum: H + c·S), so next to the raw MAE every
structure is also judged after removing the best c (``gauge_*``; the breakdowns by element pair and degree are
gauge errors), and bands are judged as users see them: relative to E_F (VBM for gapped systems) within ±2 eV
(``band_mae_ef_mev``, on a Γ-centred mesh), with ghost levels counted on random k-points
(:mod:`tracegrad_ase.spectrum`). No ASE import here; structures arrive as
:class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian` objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..io.h5 import load_h5
from ..core.hamiltonian import RealSpaceHamiltonian, gauge_shift
from ..electronic.filling import electron_count  # noqa: F401 (the one count; re-exported here as before)
from ..electronic.solve import LINDEP_THRESHOLD, PREDICTED_LINDEP, model_lindep
from ..electronic.spectrum import GHOST_MARGIN_EV, align, band_errors, evaluation_mesh, ghost_levels, levels, \
    near_band_edges, random_kpoints, spectral_range
from .breakdowns import EV_TO_MEV, DistanceProfile, ErrorSum, PairDegreeBreakdown
from .data import GraphBatch
from .committee_mean import check_same_quantity, load_members, mean_padded
from .inference import _model_graph, predict_for, predict_hamiltonian  # noqa: F401 (public here)
from .parity import parity_figure
from .network import TraceGradNet

#: Default k-points (fractional) for crystals: Γ, a zone-boundary point, K-like and two generic points. Components
#: along non-periodic directions are set to zero (see :func:`default_kpoints`).
DEFAULT_KPTS = np.array([
    [0.0, 0.0, 0.0],
    [0.1, 0.2, 0.3],
    [1.0 / 3.0, 1.0 / 3.0, 0.0],
    [0.5, 0.0, 0.0],
    [0.0, 0.5, 0.5],
])


# -- helpers --------------------------------------------------------------------------------------------------
def is_molecule(ham: RealSpaceHamiltonian) -> bool:
    """No periodic direction: a molecule, whose only k-point is Γ."""
    return not bool(np.any(ham.atoms.pbc))


def default_kpoints(pbc: Sequence[bool]) -> np.ndarray:
    """:data:`DEFAULT_KPTS` with the components along non-periodic directions set to zero (duplicates dropped)."""
    k = DEFAULT_KPTS * np.asarray(pbc, dtype=float)[None, :]
    _, first = np.unique(np.round(k, 12), axis=0, return_index=True)
    return k[np.sort(first)]


# -- evaluation -----------------------------------------------------------------------------------------------
@dataclass
class _Accumulator:
    """Everything :func:`evaluate` sums over the files, plus an optional uniform sample for the parity plot."""

    model: TraceGradNet
    sample_size: int = 0
    seed: int = 0
    ghost_kpoints: int = 1000
    domain_range: tuple[float, float] | None = None  # the model's training spectral range relative to E_F (eV)
    lindep: float = PREDICTED_LINDEP  # the model's own (model.json), as the calculator solves its predictions
    overall: ErrorSum = field(default_factory=ErrorSum)
    onsite: ErrorSum = field(default_factory=ErrorSum)
    offsite: ErrorSum = field(default_factory=ErrorSum)
    gauge: ErrorSum = field(default_factory=ErrorSum)
    gauge_onsite: ErrorSum = field(default_factory=ErrorSum)
    gauge_offsite: ErrorSum = field(default_factory=ErrorSum)
    band: ErrorSum = field(default_factory=ErrorSum)
    band_full: ErrorSum = field(default_factory=ErrorSum)  # against the truth in the full basis (what PBE gives)
    band_max: float = 0.0
    ghosts: int = 0
    ghosts_domain: int = 0
    gauge_distances: DistanceProfile = field(default_factory=DistanceProfile)
    eig: ErrorSum = field(default_factory=ErrorSum)
    eig_occ: ErrorSum = field(default_factory=ErrorSum)
    eig_edges: ErrorSum = field(default_factory=ErrorSum)
    gap: ErrorSum = field(default_factory=ErrorSum)
    gap_full: ErrorSum = field(default_factory=ErrorSum)
    per_structure: list[dict[str, Any]] = field(default_factory=list)
    n_edges: int = 0
    n_beyond: int = 0
    n_molecules: int = 0
    n_crystals: int = 0
    # parity sample: true, predicted (eV), on-site flag and the random key that decides which values are kept
    sample: dict[str, np.ndarray] | None = None
    # the current structure's solves, by (Hamiltonian, k-points, lindep): a molecule's Γ is the eigenvalue
    # k-point, the evaluation mesh and the ghost k-point alike, and was solved up to three times
    _solved: dict[tuple, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.breakdown = PairDegreeBreakdown(self.model)  # raw errors
        self.gauge_breakdown = PairDegreeBreakdown(self.model)
        self.rng = np.random.default_rng(self.seed)

    def add_blocks(self, name: str, graph: GraphBatch, pred: np.ndarray) -> float:
        """Block errors of one structure (padded blocks, eV), raw and in the prediction's energy zero; returns
        that zero's shift c (eV) of the truth."""
        raw_true = graph.target.detach().to("cpu", torch.float64).numpy()
        mask = graph.mask.cpu().numpy()
        overlap = graph.overlap.detach().to("cpu", torch.float64).numpy() * mask if graph.overlap is not None else None
        shift = gauge_shift([pred], [raw_true], [overlap]) if overlap is not None else 0.0
        true = raw_true + shift * overlap if overlap is not None else raw_true
        i, j = graph.edge_index.cpu().numpy()
        species = graph.species.cpu().numpy()
        onsite = graph.onsite().cpu().numpy()
        err = np.abs(pred - true)
        raw_err = np.abs(pred - raw_true)
        self.n_edges += len(i)

        s, g = ErrorSum(), ErrorSum()
        s.add(raw_err[mask])
        g.add(err[mask])
        self.overall.add_sum(s.total, s.count)
        self.gauge.add_sum(g.total, g.count)
        self.per_structure.append({"name": name, "mae_mev": s.mev(), "gauge_mae_mev": g.mev(), "gauge_shift_ev": shift,
                                   "n_edges": int(len(i))})
        self.onsite.add(raw_err[onsite][mask[onsite]])
        self.offsite.add(raw_err[~onsite][mask[~onsite]])
        self.gauge_onsite.add(err[onsite][mask[onsite]])
        self.gauge_offsite.add(err[~onsite][mask[~onsite]])

        si, sj = species[i], species[j]
        self.breakdown.add(pred - raw_true, mask, si, sj)
        self.gauge_breakdown.add(pred - true, mask, si, sj)
        self.gauge_distances.add(graph, err, mask, onsite)

        if self.sample_size > 0:
            self._add_sample(true[mask], pred[mask], np.broadcast_to(onsite[:, None, None], mask.shape)[mask])
        return shift

    def _add_sample(self, true: np.ndarray, pred: np.ndarray, onsite: np.ndarray) -> None:
        # A uniform random sample of all values in bounded memory: every value gets a random key and the
        # sample_size smallest keys seen so far are kept.
        new = {"true": true, "pred": pred, "onsite": onsite, "key": self.rng.random(len(true))}
        if self.sample is not None:
            new = {k: np.concatenate([self.sample[k], new[k]]) for k in new}
        if len(new["key"]) > self.sample_size:
            keep = np.argpartition(new["key"], self.sample_size - 1)[: self.sample_size]
            new = {k: v[keep] for k, v in new.items()}
        self.sample = new

    def _levels(self, ham: RealSpaceHamiltonian, kpts: np.ndarray, lindep: float) -> np.ndarray:
        """:func:`levels`, each solve of the current structure made once."""
        kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
        key = (id(ham), kpts.tobytes(), float(lindep))
        if key not in self._solved:
            self._solved[key] = levels(ham, kpts, lindep)
        return self._solved[key]

    def add_eigenvalues(self, true_ham: RealSpaceHamiltonian, pred_ham: RealSpaceHamiltonian,
                        kpts: np.ndarray | None) -> None:
        """Eigenvalue errors of one structure: absolute orbital energies at Γ (molecule) or bands on ``kpts``
        (crystal); E_F-aligned band errors on an evaluation mesh; ghost levels on random k-points."""
        self._solved.clear()  # ids of freed Hamiltonians are reused
        molecule = is_molecule(true_ham)
        if molecule:
            k = np.zeros((1, 3))
        else:
            k = default_kpoints(true_ham.atoms.pbc) if kpts is None else np.atleast_2d(np.asarray(kpts, float))
        # Solved as the calculator solves a prediction (the model's lindep), the truth in the same space.
        lindep = self.lindep
        e_true = self._levels(true_ham, k, lindep)  # absolute levels, as before: raw (see band_mae_ef_mev)
        e_pred = self._levels(pred_ham, k, lindep)
        nb = min(e_true.shape[1], e_pred.shape[1])  # canonical orthogonalization may drop different directions
        e_true, e_pred = e_true[:, :nb], e_pred[:, :nb]
        err = np.abs(e_pred - e_true)
        self.eig.add(err)
        nelec = electron_count(true_ham)
        nocc = min((nelec + 1) // 2, nb)  # a singly occupied level counts as occupied
        record = self.per_structure[-1]
        record["eig_mae_mev"] = float(err.mean() * EV_TO_MEV) if err.size else None
        if molecule:
            self.n_molecules += 1
            self.eig_occ.add(err[:, :nocc])
            if 0 < nocc < nb:
                gap_true = e_true[0, nocc] - e_true[0, nocc - 1]
                gap_pred = e_pred[0, nocc] - e_pred[0, nocc - 1]
                self.gap.add(np.array([abs(gap_pred - gap_true)]))
                record["homo_lumo_gap_error_mev"] = float(abs(gap_pred - gap_true) * EV_TO_MEV)
                # What a user compares with PBE: the truth's own gap, nothing cut. The difference from the
                # above is the cut's floor (benchmarks/lindep_floor.py), which no model can beat at this lindep.
                full = self._levels(true_ham, k, LINDEP_THRESHOLD)
                if nocc < full.shape[1]:
                    err_full = abs(gap_pred - (full[0, nocc] - full[0, nocc - 1]))
                    self.gap_full.add(np.array([err_full]))
                    record["homo_lumo_gap_error_full_mev"] = float(err_full * EV_TO_MEV)
        else:
            self.n_crystals += 1
            fermi = true_ham.meta.get("fermi_level_ev")
            if fermi is None:
                # Without a stored Fermi level, the top of the lowest nelectron/2 bands (the valence band
                # maximum of an insulator) stands in for it.
                fermi = float(e_true[:, nocc - 1].max()) if nocc > 0 else float(e_true.min())
            near = near_band_edges(e_true, float(fermi))
            self.eig_edges.add(err[near])
        self._add_band_errors(true_ham, pred_ham, nelec, record)

    def _add_band_errors(self, true_ham: RealSpaceHamiltonian, pred_ham: RealSpaceHamiltonian, nelec: int,
                         record: dict[str, Any]) -> None:
        """E_F-aligned band errors within ±2 eV on the evaluation mesh, and ghost levels on random k-points."""
        lindep = self.lindep
        atoms = true_ham.atoms
        mesh = evaluation_mesh(atoms.cell[:], atoms.pbc)
        e_true, e_pred = self._levels(true_ham, mesh, lindep), self._levels(pred_ham, mesh, lindep)
        try:
            b = band_errors(e_true, e_pred, None, nelec)
        except ValueError:  # no Fermi level (e.g. every band filled): nothing to judge
            return
        record["band_mae_ef_mev"] = b["mae_mev"]
        record["band_alignment"] = b["kind"]
        if b["n_levels"]:
            self.band.add_sum(b["mae_mev"] * b["n_levels"] / EV_TO_MEV, b["n_levels"])
            self.band_max = max(self.band_max, b["max_mev"])
        full = band_errors(self._levels(true_ham, mesh, LINDEP_THRESHOLD), e_pred, None, nelec)
        record["band_mae_ef_full_mev"] = full["mae_mev"]
        if full["n_levels"]:
            self.band_full.add_sum(full["mae_mev"] * full["n_levels"] / EV_TO_MEV, full["n_levels"])
        if self.ghost_kpoints <= 0:
            return
        rk = random_kpoints(atoms.pbc, self.ghost_kpoints, seed=len(self.per_structure))
        g_true, g_pred = self._levels(true_ham, rk, lindep), self._levels(pred_ham, rk, lindep)
        allowed = spectral_range(g_true, b["ref_true"])
        ghosts = ghost_levels(g_pred, rk, b["ref_pred"], allowed, GHOST_MARGIN_EV)
        record["ghost_levels"] = len(ghosts)
        self.ghosts += len(ghosts)
        if ghosts:
            record["worst_ghost"] = str(min(ghosts, key=lambda x: x.relative))
        if self.domain_range is not None:
            ef_pred = align(e_pred, None, nelec, kind="fermi").ref
            n = len(ghost_levels(g_pred, rk, ef_pred, self.domain_range, GHOST_MARGIN_EV))
            record["ghost_levels_domain"] = n
            self.ghosts_domain += n

    def result(self) -> dict[str, Any]:
        return {
            "n_structures": len(self.per_structure),
            "lindep": self.lindep,
            "n_molecules": self.n_molecules,
            "n_crystals": self.n_crystals,
            "n_edges": self.n_edges,
            "n_values": self.overall.count,
            "n_edges_beyond_cutoff": self.n_beyond,
            "mae_mev": self.overall.mev(),
            "mae_onsite_mev": self.onsite.mev(),
            "mae_offsite_mev": self.offsite.mev(),
            "gauge_mae_mev": self.gauge.mev(),
            "gauge_mae_onsite_mev": self.gauge_onsite.mev(),
            "gauge_mae_offsite_mev": self.gauge_offsite.mev(),
            "band_mae_ef_mev": self.band.mev(),
            "band_max_ef_mev": self.band_max if self.band.count else None,
            "band_mae_ef_full_mev": self.band_full.mev(),
            "n_band_levels": self.band.count,
            "ghost_levels": self.ghosts,
            "ghost_levels_domain": self.ghosts_domain if self.domain_range is not None else None,
            "ghost_kpoints": self.ghost_kpoints,
            "mae_by_element_pair_mev": self.breakdown.by_pair(),
            "mae_by_degree_mev": self.breakdown.by_degree(),
            "gauge_mae_by_element_pair_mev": self.gauge_breakdown.by_pair(),
            "gauge_mae_by_degree_mev": self.gauge_breakdown.by_degree(),
            "gauge_error_by_distance": self.gauge_distances.rows(),
            "eig_mae_mev": self.eig.mev(),
            "eig_occupied_mae_mev": self.eig_occ.mev(),
            "homo_lumo_gap_error_mev": self.gap.mev(),
            "homo_lumo_gap_error_full_mev": self.gap_full.mev(),
            "eig_near_edges_mae_mev": self.eig_edges.mev(),
            "per_structure": self.per_structure,
        }


def _domain_range(model: TraceGradNet) -> tuple[float, float] | None:
    r = model.domain.get("spectral_range_ev")
    return (float(r[0]), float(r[1])) if r else None


def _run(model: TraceGradNet, paths: Sequence[str | os.PathLike], kpts: np.ndarray | None, progress: bool,
         sample_size: int = 0, seed: int = 0, eigenvalues: bool = True, ghost_kpoints: int = 1000,
         members: Sequence[TraceGradNet] = ()) -> _Accumulator:
    from tqdm.auto import tqdm

    acc = _Accumulator(model, sample_size=sample_size, seed=seed, ghost_kpoints=ghost_kpoints,
                       domain_range=_domain_range(model), lindep=model_lindep(getattr(model, "model_file", None)))
    for path in tqdm(list(paths), desc="evaluate", unit="structure", disable=not progress):
        ham = load_h5(path)
        sub, graph = _model_graph(model, ham)
        acc.n_beyond += len(ham.edges) - len(sub.edges)
        pred = mean_padded([model, *members], graph)  # members: the committee's mean H is judged
        acc.add_blocks(Path(path).stem, graph, pred)
        if eigenvalues:
            numbers = sub.atoms.numbers
            blocks = model.layout.unpad_blocks(pred, numbers, sub.edges[:, 3], sub.edges[:, 4])
            pred_ham = RealSpaceHamiltonian(atoms=sub.atoms, basis=sub.basis, edges=sub.edges,
                                            hamiltonian=blocks, overlap=sub.overlap, meta={})
            acc.add_eigenvalues(sub, pred_ham, kpts)
    return acc


def evaluate(model: TraceGradNet, paths: Sequence[str | os.PathLike], kpts: np.ndarray | None = None,
             progress: bool = True, ghost_kpoints: int = 1000,
             members: Sequence[TraceGradNet] = ()) -> dict[str, Any]:
    """Errors of ``model`` against the data files ``paths`` (HDF5 from :func:`~tracegrad_ase.datafiles.save_h5`).

    Keys (meV; ``None`` where nothing was counted, e.g. no molecule in the set):
    ``mae_mev``, ``mae_onsite_mev`` (edges i -> i, R = 0), ``mae_offsite_mev``: raw block errors;
    ``gauge_mae_mev``, ``gauge_mae_onsite_mev``, ``gauge_mae_offsite_mev``: the same after moving each structure's
    truth to the prediction's energy zero (H + c·S with the least-squares c, ``per_structure[].gauge_shift_ev``);
    ``mae_by_element_pair_mev`` (``"C-H"``: unordered pair, sorted symbols) and ``mae_by_degree_mev`` (``"0"``,
    ``"1"``, ...: errors of the CG components h^(l), counted where the shell pair exists), raw, and the same as
    ``gauge_mae_by_element_pair_mev``, ``gauge_mae_by_degree_mev``; ``gauge_error_by_distance``: rows
    ``{"from_angstrom", "to_angstrom", "n_edges", "n_values", "mae_mev", "share_of_error"}``, on-site first (0 to
    0 Å), then the off-site pairs by distance in bins of 0.25 Å (:mod:`.breakdowns`), with each bin's share of the
    summed absolute gauge error (the many far pairs of small error add up in the bands);
    ``eig_mae_mev`` (all levels/bands, absolute: depends on the zero), ``eig_occupied_mae_mev`` and
    ``homo_lumo_gap_error_mev`` (molecules, Γ), ``eig_near_edges_mae_mev`` (crystals on ``kpts``, default
    :func:`default_kpoints`, absolute, within 2 eV of the band edges); ``band_mae_ef_mev``/``band_max_ef_mev``:
    levels relative to each spectrum's own E_F (VBM when the truth has a gap), true levels within ±2 eV, on a
    Γ-centred mesh (:func:`spectrum.evaluation_mesh`, ≤ 0.125 Å⁻¹ spacing;
    molecules: Γ); ``ghost_levels``: predicted levels more than 3 eV below (above: 10 % of its width) the truth's
    E_F-relative range on
    ``ghost_kpoints`` random k-points per structure, ``ghost_levels_domain`` the same against the model's training
    range (``None`` if the model records none). These compare both sides solved with the model's lindep (the
    Hamiltonian's own error); ``band_mae_ef_full_mev`` and ``homo_lumo_gap_error_full_mev`` compare the
    prediction with the truth solved in the full basis (``LINDEP_THRESHOLD``): what a user sees against PBE, the
    cut's floor included. ``n_structures``, ``n_molecules``, ``n_crystals``, ``n_edges``,
    ``n_values``, ``n_edges_beyond_cutoff``; ``per_structure``: ``[{"name", "mae_mev", "gauge_mae_mev", ...}]``.
    ``members``: further committee members; the mean of all is judged (``ensemble=True`` in the calculator).
    """
    check_same_quantity(model, members, [f"member {i + 1}" for i in range(len(members))])
    return _run(model, paths, kpts, progress, ghost_kpoints=ghost_kpoints, members=members).result()


# -- parity plot ----------------------------------------------------------------------------------------------
def parity_plot(model: TraceGradNet, paths: Sequence[str | os.PathLike], png_path: str | os.PathLike,
                max_points: int = 20000, seed: int = 0, progress: bool = False) -> Path:
    """Predicted vs true matrix elements (eV), on-site and off-site in two colours, with the error histogram.

    At most ``max_points`` values (a uniform random sample, reproducible with ``seed``) are drawn; the MAEs in
    the legend and title are over all values. Returns ``png_path``.
    """
    acc = _run(model, paths, None, progress, sample_size=max_points, seed=seed, eigenvalues=False)
    return parity_figure(acc, png_path)


# -- files ----------------------------------------------------------------------------------------------------
def _portable(path: str | os.PathLike, base: Path) -> str:
    """``path`` relative to the results file's folder ``base`` when near it (no folder of the machine that made it)."""
    rel = os.path.relpath(Path(path).resolve(), base.resolve())
    return rel if not rel.startswith(os.path.join("..", "..", "..")) else str(path)


def evaluate_to_files(model_folder: str | os.PathLike, paths: Sequence[str | os.PathLike],
                      out_json: str | os.PathLike, parity_png: str | os.PathLike | None = None,
                      kpts: np.ndarray | None = None, progress: bool = True, max_points: int = 20000,
                      ghost_kpoints: int = 1000, members: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Load the model in ``model_folder``, evaluate it on ``paths``, write the results to ``out_json``
    (atomically) and, if asked, the parity plot to ``parity_png``; returns the results. ``members``: folders of
    further committee members, whose mean with the model is judged (:func:`evaluate`); ``result["members"]``.
    One pass over the data serves both: the parity sample is drawn while the metrics are summed.
    """
    from ..io.atomic import atomic_write_json
    from .checkpoint import load_model, read_card, weights_digest

    model = load_model(model_folder)
    model.model_file = read_card(model_folder)  # its training domain, for ghost levels
    acc = _run(model, paths, kpts, progress, sample_size=max_points if parity_png is not None else 0,
               ghost_kpoints=ghost_kpoints, members=load_members(model, members))
    here = Path(out_json).parent
    result = {**acc.result(), "model": _portable(model_folder, here), "model_sha256": weights_digest(model_folder)}
    if members:
        result["members"] = [_portable(f, here) for f in members]
    if parity_png is not None:
        result["parity_png"] = _portable(parity_figure(acc, parity_png), here)
    atomic_write_json(Path(out_json), result, indent=2, allow_nan=False)
    return result


__all__ = ["DEFAULT_KPTS", "default_kpoints", "electron_count", "evaluate", "evaluate_to_files", "is_molecule",
           "parity_plot", "predict_for", "predict_hamiltonian"]
