"""The energy zero (gauge) and the band loss: losses that do not depend on H -> H + c·S, band energies that
match the numpy solver, finite gradients at degenerate levels."""

import numpy as np
import pytest
import torch
from ase.build import graphene

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.model import ModelConfig, build_model, graph_from_arrays, graph_from_hamiltonian
from tracegrad_ase.electronic import band_energies as solve_bands  # the numpy solver, against the torch one
from tracegrad_ase.electronic.bloch import bloch_dense
from tracegrad_ase.model.losses import (band_energies, bloch_sum, gauge_shift, orthogonalizer, sample_kpoints,
                                        window_projected_loss)
from tracegrad_ase.model.train import structure_losses

BASIS = OrbitalBasis(name="mini", shells={"C": (0, 1)}, valence={"C": 4})
SMALL = dict(cutoff=3.0, num_layers=1, muls=[4, 2, 2], lmax_sh=2, num_radial=6, radial_hidden=8, tg_hidden=8, tg_z=4)


def _model(seed):
    torch.manual_seed(seed)
    return build_model(ModelConfig(elements=["C"], basis=BASIS.to_dict(), **SMALL), torch.float64)


def _graphene_truth(shift=0.0, seed=1):
    """A teacher network's H for graphene with a positive-definite model overlap, moved by ``shift``·S."""
    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    nl = neighbor_list(atoms, 3.0, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    teacher = _model(seed)
    g = graph_from_arrays(teacher.layout, atoms.numbers, atoms.positions, atoms.cell[:], edges)
    h = [teacher.layout.unpad_block(p, "C", "C") for p in teacher(g)["H"].detach().numpy()]
    d = np.linalg.norm(atoms.positions[edges[:, 4]] + edges[:, :3] @ atoms.cell[:] - atoms.positions[edges[:, 3]],
                       axis=1)
    s = [np.eye(4) if x < 1e-8 else 0.15 * np.exp(-x) * np.ones((4, 4)) for x in d]
    return RealSpaceHamiltonian(atoms, BASIS, edges, [a + shift * b for a, b in zip(h, s)], s,
                                meta={"fermi_level_ev": shift})


def _losses(model, ham, gauge=True, form="eigenvalues"):
    g = graph_from_hamiltonian(model.layout, ham)
    out = model(g)
    return structure_losses(model, g, out, gauge=gauge, band_weight=1.0, band_kpoints=3, band_window_ev=50.0,
                            generator=torch.Generator().manual_seed(0), band_form=form)


@pytest.mark.parametrize("form", ["eigenvalues", "projected"])
def test_losses_do_not_depend_on_the_energy_zero(form):
    model = _model(7)
    a, b = _losses(model, _graphene_truth(0.0), form=form), _losses(model, _graphene_truth(-1.273), form=form)
    a, b = ({k: v.detach() for k, v in x.items()} for x in (a, b))
    assert float(a["H"][0]) > 1e-3 and float(a["B"][0]) > 1e-3  # a real error, not a trivial zero
    for key in ("H", "T", "B"):
        assert float(a[key][0]) == pytest.approx(float(b[key][0]), rel=1e-9), key
    assert float(b["shift"][0] - a["shift"][0]) == pytest.approx(1.273, abs=1e-9)


def test_without_gauge_the_zero_shows():
    model = _model(7)
    a, b = _losses(model, _graphene_truth(0.0), gauge=False), _losses(model, _graphene_truth(-1.273), gauge=False)
    assert abs(float(a["H"][0]) - float(b["H"][0])) > 1e-3


def test_gauge_shift_recovers_an_exact_c():
    truth = _graphene_truth(0.0)
    model = _model(3)
    g = graph_from_hamiltonian(model.layout, truth)
    moved = g.target + 0.42 * g.overlap
    assert float(gauge_shift(moved - g.target, g)[0]) == pytest.approx(0.42, abs=1e-12)


def test_band_energies_match_the_numpy_solver():
    ham = _graphene_truth(0.3)
    model = _model(3)
    g = graph_from_hamiltonian(model.layout, ham)
    k = torch.tensor([[0.0, 0.0, 0.0], [1 / 3, 1 / 3, 0.0], [0.21, 0.07, 0.0]], dtype=torch.float64)
    edges = torch.arange(g.num_edges)
    xs = orthogonalizer(bloch_sum(g.overlap, g, edges, 0, 2, k), 1e-6)
    ours = torch.stack(band_energies(bloch_sum(g.target, g, edges, 0, 2, k), xs)).numpy()
    ref = solve_bands(ham, k.numpy(), lindep=1e-6)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def _projected(truth, pred_blocks, window=2.0, n_k=4):
    model = _model(3)
    g = graph_from_hamiltonian(model.layout, truth)
    zero = torch.zeros(1, dtype=torch.float64)
    return g, window_projected_loss(pred_blocks(g), g.target, zero, g, n_k, window, 1e-6, 0.5,
                                    torch.Generator().manual_seed(5))


def test_projected_band_loss_is_the_first_order_band_error_in_the_truths_states():
    truth = _graphene_truth(0.0)
    # H + a·S moves every level by exactly a, and C†SC = 1: the projected error is a·1, the loss (a/scale)² per level
    _, loss = _projected(truth, lambda g: g.target + 0.03 * g.overlap)
    assert float(loss[0]) == pytest.approx((0.03 / 0.5) ** 2, rel=1e-10)
    # A quadratic form in H_pred - H that vanishes at the truth (the eigenvalue loss is not one)
    pred = _graphene_truth(0.0, seed=9)
    other = graph_from_hamiltonian(_model(3).layout, pred).target
    f = {t: float(_projected(truth, lambda g: g.target + t * (other - g.target))[1][0]) for t in (0.0, 0.5, 1.0)}
    assert f[0.0] == 0.0 and f[1.0] > 1e-4 and f[0.5] == pytest.approx(0.25 * f[1.0], rel=1e-10)
    # Against numpy: Σ_k ||C†(H'(k) - H(k))C||² over the true levels within 2 eV of E_F, per level, / scale²
    g, loss = _projected(truth, lambda g: other)
    k = sample_kpoints(g.pbc[0], 4, torch.Generator().manual_seed(5)).numpy()
    ht, sk = bloch_dense(truth, k)
    hp, _ = bloch_dense(pred, k)
    total, count = 0.0, 0
    for q in range(len(k)):
        sv, u = np.linalg.eigh(sk[q])
        x = u[:, sv > 1e-6] / np.sqrt(sv[sv > 1e-6])
        e, v = np.linalg.eigh(x.conj().T @ ht[q] @ x)
        c = x @ v[:, np.abs(e - 0.0) <= 2.0]  # E_F of the truth: 0 (its meta)
        total += float((np.abs(c.conj().T @ (hp[q] - ht[q]) @ c) ** 2).sum())
        count += c.shape[1]
    assert count > 0 and float(loss[0]) == pytest.approx(total / count / 0.25, rel=1e-9)


def test_band_energy_gradient_is_finite_at_degenerate_levels():
    # A threefold degenerate p level (on-site blocks proportional to the identity), as at Γ in a crystal.
    h = torch.diag(torch.tensor([-5.0, 1.0, 1.0, 1.0], dtype=torch.float64)).to(torch.complex128).requires_grad_(True)
    x = orthogonalizer(torch.eye(4, dtype=torch.complex128)[None], 1e-6)
    e = band_energies(h[None], x)[0]
    assert float(e[2] - e[1]) == 0.0
    (e * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(h.grad.real).all() and torch.isfinite(h.grad.imag).all()
    # d(sum_n w_n e_n)/dH over a degenerate subspace is the subspace's projector times a mean weight: bounded
    assert float(h.grad.abs().max()) <= 3.0 + 1e-12


# -- ghost levels and gauge metrics, through the calculator and the evaluation ------------------------------------
import warnings  # noqa: E402

from tracegrad_ase.calculator import TraceGradCalculator  # noqa: E402
from tracegrad_ase.io.h5 import save_h5  # noqa: E402
from tracegrad_ase.model.checkpoint import save_model  # noqa: E402
from tracegrad_ase.model.evaluate import evaluate, predict_for  # noqa: E402
from tracegrad_ase.electronic.spectrum import GhostLevelWarning, band_errors, evaluation_mesh  # noqa: E402

SZV_REFERENCE = {"C": [[-12.0, 0.0], [0.0, -4.0]]}


def _szv_model(onsite_s=-12.0):
    basis = OrbitalBasis.from_pyscf("gth-szv", ["C"], pseudo="gth-pbe")
    torch.manual_seed(0)
    cfg = ModelConfig(elements=["C"], basis=basis.to_dict(), cutoff=5.0, num_layers=1, muls=[4, 2, 2], lmax_sh=2,
                      tg_hidden=8, tg_z=4, target_scale=0.5, onsite_reference={"C": [[onsite_s, 0.0], [0.0, -4.0]]})
    return build_model(cfg, torch.float64)


def _sheet():
    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    return atoms


@pytest.fixture(scope="module")
def ghost_models(tmp_path_factory):
    """A toy model whose training range is its own spectrum, and the same model with a planted ghost: its carbon
    2s on-site level moved down by 40 eV."""
    root = tmp_path_factory.mktemp("ghost")
    good = _szv_model()
    sheet = _sheet()
    sheet.calc = TraceGradCalculator(save_model(good, root / "probe"), kpts=(6, 6, 1))
    ef = sheet.calc.get_fermi_level()
    e = np.asarray(sheet.calc.results["eigenvalues"])
    domain = {"spectral_range_ev": [float(e.min() - ef), float(e.max() - ef)]}
    return {"good": save_model(good, root / "good", metadata={"domain": domain}),
            "ghost": save_model(_szv_model(onsite_s=-52.0), root / "ghost", metadata={"domain": domain})}


def test_calculator_warns_of_a_planted_ghost_level(ghost_models):
    sheet = _sheet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GhostLevelWarning)
        sheet.calc = TraceGradCalculator(ghost_models["good"], kpts=(6, 6, 1))
        sheet.calc.get_fermi_level()
        assert sheet.calc.results["ghost_levels"] == []
    sheet = _sheet()
    sheet.calc = TraceGradCalculator(ghost_models["ghost"], kpts=(6, 6, 1))
    with pytest.warns(GhostLevelWarning, match=r"outside the model's training range.*at k = \(") as record:
        sheet.calc.get_fermi_level()
    ghosts = sheet.calc.results["ghost_levels"]
    assert ghosts and all(g.relative < -20 for g in ghosts)
    # The message names both margins: 3 eV below, 10 % of the range's width above (wider here).
    lo_ev, hi_ev = np.asarray(_domain_range(ghost_models["ghost"]))
    above = max(3.0, 0.1 * (hi_ev - lo_ev))
    assert f"by more than 3.0 eV below or {above:.1f} eV above" in str(record[0].message)


def _domain_range(folder) -> list[float]:
    import json

    return json.loads((folder / "model.json").read_text())["metadata"]["domain"]["spectral_range_ev"]


def test_ghost_bounds_margins():
    from tracegrad_ase.electronic.spectrum import ghost_bounds, ghost_levels

    assert ghost_bounds([-20.0, 30.0]) == (-23.0, 35.0)  # above: 10 % of 50 eV
    assert ghost_bounds([-2.0, 8.0]) == (-5.0, 11.0)  # above: the 3 eV floor
    found = ghost_levels([[-23.5, 0.0, 34.9, 35.1]], [[0, 0, 0]], 0.0, [-20.0, 30.0])
    assert [g.relative for g in found] == [-23.5, 35.1]


def test_evaluation_counts_ghosts_and_ignores_the_energy_zero(ghost_models, tmp_path):
    from tracegrad_ase.model.checkpoint import load_model, read_card
    from tracegrad_ase.core.graphs import neighbor_list as nlist
    from tracegrad_ase.engines.pyscf.integrals import overlap_blocks

    good = load_model(ghost_models["good"], torch.float64)
    sheet = _sheet()
    nl = nlist(sheet, 5.0, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j]).astype(np.int64)
    s = overlap_blocks(sheet, good.basis, edges)
    shell = RealSpaceHamiltonian(sheet, good.basis, edges, [np.zeros_like(b) for b in s], s)
    truth = predict_for(shell, good)
    moved = RealSpaceHamiltonian(sheet, good.basis, edges, [h + 0.8 * x for h, x in zip(truth.hamiltonian, s)], s,
                                 meta={"fermi_level_ev": 0.0})
    path = save_h5(moved, tmp_path / "structures" / "g.h5")
    good.card = read_card(ghost_models["good"])
    r = evaluate(good, [path], progress=False, ghost_kpoints=200)
    assert r["mae_mev"] > 10.0  # the raw error is the zero
    assert r["gauge_mae_mev"] < 1e-6 and r["band_mae_ef_mev"] < 1e-6
    assert r["per_structure"][0]["gauge_shift_ev"] == pytest.approx(-0.8, abs=1e-9)
    assert r["ghost_levels"] == 0 and r["ghost_levels_domain"] == 0
    ghost = load_model(ghost_models["ghost"], torch.float64)
    ghost.card = read_card(ghost_models["ghost"])
    r = evaluate(ghost, [path], progress=False, ghost_kpoints=200)
    assert r["ghost_levels"] >= 200 and r["ghost_levels_domain"] >= 200  # one per k-point at least
    assert r["band_mae_ef_mev"] > 100.0


def test_band_errors_align_each_spectrum_to_its_own_fermi_level():
    rng = np.random.default_rng(0)
    true = np.sort(rng.normal(scale=3.0, size=(30, 8)), axis=1)
    b = band_errors(true, true + 1.234, None, 8)  # a rigid shift is no error
    assert b["mae_mev"] == pytest.approx(0.0, abs=1e-6) and b["n_levels"] > 0
    assert b["ref_pred"] - b["ref_true"] == pytest.approx(1.234, abs=1e-9)
    mesh = evaluation_mesh(_sheet().cell[:], [True, True, False])
    assert len(mesh) == 576 and np.all(mesh[:, 2] == 0)
    assert np.isclose(mesh, [1 / 3, 1 / 3, 0]).all(axis=1).any()  # K is on the mesh
    capped = evaluation_mesh(_sheet().cell[:], [True, True, False], max_points=12)
    assert len(capped) == 144 and np.isclose(capped, [1 / 3, 1 / 3, 0]).all(axis=1).any()
    assert len(evaluation_mesh(_sheet().cell[:], [True, True, False], min_points=30)) == 900


def test_cli_strict_refuses_ghost_levels(ghost_models, tmp_path, capsys):
    from ase.io import write

    from tracegrad_ase.cli import main

    cif = tmp_path / "graphene.extxyz"
    write(cif, _sheet())
    png = tmp_path / "bands.png"
    code = main(["bands", str(cif), "--model", str(ghost_models["ghost"]), "--mesh", "6x6x1", "--density", "5",
                 "--strict", "-o", str(png)])
    assert code == 2 and not png.exists()
    assert "ghost level" in capsys.readouterr().err
    with pytest.warns(GhostLevelWarning):
        assert main(["bands", str(cif), "--model", str(ghost_models["ghost"]), "--mesh", "6x6x1", "--density", "5",
                     "-o", str(png)]) == 0
    assert png.is_file()
    assert main(["bands", str(cif), "--model", str(ghost_models["good"]), "--mesh", "6x6x1", "--density", "5",
                 "--strict", "-o", str(tmp_path / "good.png")]) == 0


def test_batched_levels_equal_the_solver():
    from tracegrad_ase.electronic.spectrum import levels

    ham = _graphene_truth(0.2)
    k = np.random.default_rng(3).random((40, 3)) * [1, 1, 0]
    for lindep in (1e-6, 0.5):  # 0.5 drops directions at some k-points only
        np.testing.assert_allclose(levels(ham, k, lindep, chunk=7), solve_bands(ham, k, lindep), atol=1e-9)


def test_periodic_gauge_keeps_a_molecules_zero():
    from ase.build import molecule as build_molecule

    from tracegrad_ase.model.losses import aligned_target

    atoms = build_molecule("CH4")[[0]]  # one carbon atom, no cell: a molecule
    edges = np.array([[0, 0, 0, 0, 0]])
    model = _model(2)
    h = RealSpaceHamiltonian(atoms, BASIS, edges, [np.diag([-10.0, -4.0, -4.0, -4.0])], [np.eye(4)])
    g = graph_from_hamiltonian(model.layout, h)
    pred = g.target + 0.3 * g.overlap
    assert float(aligned_target(pred, g)[1][0]) == pytest.approx(0.3)
    target, shift = aligned_target(pred, g, periodic_only=True)
    assert float(shift[0]) == 0.0 and torch.equal(target, g.target)


def test_collate_keeps_the_graphs_device():
    """A batch of graphs on a device stays there: the index tensors collate makes (node_graph, edge_graph) once
    landed on the CPU and broke GPU training in the gauge shift (found on an H100). The meta device stands in for
    a GPU: any tensor left on the CPU shows."""
    from tracegrad_ase.model import collate

    model = _model(0)
    ham = _graphene_truth()
    g = graph_from_hamiltonian(model.layout, ham).to("meta")
    batch = collate([g, g])
    on_cpu = [name for name, v in vars(batch).items() if isinstance(v, torch.Tensor) and v.device.type != "meta"]
    assert on_cpu == []
    assert batch.edge_graph.shape[0] == 2 * g.num_edges
