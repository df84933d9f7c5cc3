"""Training, checkpoints, resume and data parallelism, on a tiny synthetic data set (a teacher network's H)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import molecule

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.io.h5 import STRUCTURES_DIR, save_h5
from tracegrad_ase.core.errors import DataFormatError
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.model import ModelConfig, build_model, graph_from_arrays
from tracegrad_ase.model.checkpoint import load_model, save_model
from tracegrad_ase.model.train import TrainConfig, train

BASIS = OrbitalBasis(name="mini", shells={"H": (0,), "O": (0, 1)}, valence={"H": 1, "O": 6})
SMALL = {"cutoff": 3.0, "num_layers": 1, "muls": [4, 2, 2], "lmax_sh": 2, "num_radial": 6, "radial_hidden": 8,
         "tg_hidden": 8, "tg_z": 4}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    torch.manual_seed(1)
    teacher = build_model(ModelConfig(elements=["H", "O"], basis=BASIS.to_dict(), **SMALL), torch.float64)
    rng = np.random.default_rng(0)
    for k in range(8):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        nl = neighbor_list(atoms, 3.0, self_edges=True)
        edges = np.column_stack([nl.shifts, nl.i, nl.j])
        g = graph_from_arrays(teacher.layout, atoms.numbers, atoms.positions, np.zeros((3, 3)), edges)
        padded = teacher(g)["H"].detach().numpy()
        sym = atoms.get_chemical_symbols()
        h = [teacher.layout.unpad_block(p, sym[i], sym[j]) for p, (i, j) in zip(padded, edges[:, 3:])]
        s = [np.eye(len(b)) if i == j else 0.1 * np.ones_like(b) for b, (i, j) in zip(h, edges[:, 3:])]
        save_h5(RealSpaceHamiltonian(atoms, BASIS, edges, h, s), root / STRUCTURES_DIR / f"w{k}.h5")
    return root


def _config(tmp_path, dataset, **kw):
    base = dict(data=[str(dataset)], out=str(tmp_path / "run"), model=dict(SMALL), epochs=2, batch_size=2,
                split=[0.5, 0.25, 0.25], dtype="float64", progress=False, lr=5e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_checkpoints_and_learns(tmp_path, dataset):
    state = train(_config(tmp_path, dataset, epochs=6))
    run = tmp_path / "run"
    assert (run / "checkpoints" / "best" / "model.safetensors").is_file()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert log[-1]["train_loss_h"] < log[0]["train_loss_h"]
    assert set(json.loads((run / "split.json").read_text())) == {"train", "val", "test"}
    model = load_model(run / "checkpoints" / "last")
    assert model.config.tracegrad and model.config.elements == ["H", "O"]
    assert state["epoch"] == 6


def test_resume_is_identical_to_an_uninterrupted_run(tmp_path, dataset):
    straight = train(_config(tmp_path / "a", dataset, epochs=3))
    train(_config(tmp_path / "b", dataset, epochs=2))  # "killed" after epoch 2
    resumed = train(_config(tmp_path / "b", dataset, epochs=3))
    assert resumed["epoch"] == 3
    assert [r["train_loss_h"] for r in resumed["history"]] == pytest.approx(
        [r["train_loss_h"] for r in straight["history"]], rel=1e-10)
    wa = load_model(tmp_path / "a" / "run" / "checkpoints" / "last").state_dict()
    wb = load_model(tmp_path / "b" / "run" / "checkpoints" / "last").state_dict()
    assert all(torch.allclose(wa[k], wb[k], rtol=0, atol=1e-12) for k in wa)
    assert len((tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()) == 3


def test_resuming_with_another_seed_or_model_is_refused(tmp_path, dataset):
    """A rerun into the same folder with a different seed would draw another split and overwrite split.json."""
    train(_config(tmp_path, dataset, epochs=1))
    split = (tmp_path / "run" / "split.json").read_text()
    other_seed = _config(tmp_path, dataset, epochs=2)
    other_seed.seed += 1
    with pytest.raises(ValueError, match="another run.*seed"):
        train(other_seed)
    with pytest.raises(ValueError, match="another run.*model"):
        train(_config(tmp_path, dataset, model=dict(SMALL, tg_hidden=7), epochs=2))
    assert (tmp_path / "run" / "split.json").read_text() == split
    assert train(_config(tmp_path, dataset, epochs=2))["epoch"] == 2  # more epochs: the same run, resumed


def test_baseline_switch_trains_the_same_backbone(tmp_path, dataset):
    model = dict(SMALL, tracegrad=False)
    state = train(_config(tmp_path, dataset, model=model, epochs=1))
    m = load_model(tmp_path / "run" / "checkpoints" / "last")
    assert not m.config.tracegrad and state["history"][0]["train_loss_t"] == 0.0
    names = {k.split(".")[0] for k in m.state_dict()}
    assert "tracegrad_blocks" not in names and "decoder" not in names


def test_corrupt_or_foreign_model_files_are_named(tmp_path, dataset):
    train(_config(tmp_path, dataset, epochs=1))
    folder = tmp_path / "run" / "checkpoints" / "last"
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataFormatError, match="unreadable weights"):
        load_model(folder)
    (folder / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DataFormatError, match="not a tracegrad-ase model"):
        load_model(folder)
    with pytest.raises(DataFormatError, match="not a tracegrad-ase model folder"):
        load_model(tmp_path)
    (folder / "trainer.pt").write_bytes(b"garbage")
    from tracegrad_ase.model.checkpoint import load_training_state

    with pytest.raises(DataFormatError, match="unreadable training state"):
        load_training_state(folder)


def test_save_model_refuses_to_overwrite_other_folders(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    model = build_model(ModelConfig(elements=["H"], basis=BASIS.to_dict(), **SMALL))
    with pytest.raises(DataFormatError, match="refusing"):
        save_model(model, other)
    assert (other / "notes.txt").read_text() == "keep"


def test_two_processes_give_the_same_loss_as_one(tmp_path, dataset):
    import yaml

    def run(folder, nproc):
        cfg = dict(data=[str(dataset)], out=str(folder), model=dict(SMALL), epochs=2, batch_size=2,
                   split=[0.5, 0.25, 0.25], dtype="float64", progress=False, lr=5e-3)
        path = folder.parent / f"{folder.name}.yaml"
        folder.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        env = dict(os.environ, OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "tracegrad_ase.cli", "train", str(path)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return [json.loads(x) for x in (folder / "log.jsonl").read_text().splitlines()]

    one, two = run(tmp_path / "one", 1), run(tmp_path / "two", 2)
    for a, b in zip(one, two):
        assert a["train_loss_h"] == pytest.approx(b["train_loss_h"], rel=1e-9)
        assert a["val_loss_h"] == pytest.approx(b["val_loss_h"], rel=1e-9)


def test_training_domain_records_distances_and_the_crystals_fermi_level():
    from ase.build import graphene

    from tracegrad_ase.model.train import training_domain

    basis = OrbitalBasis(name="s", shells={"C": (0,)}, valence={"C": 1})
    hams = []
    for ef, a in ((-3.0, 2.46), (-4.0, 2.50), (-3.8, 2.48)):
        atoms = graphene(a=a, vacuum=5.0)
        nl = neighbor_list(atoms, 1.6, self_edges=True)
        edges = np.column_stack([nl.shifts, nl.i, nl.j])
        blocks = [np.zeros((1, 1))] * len(edges)
        hams.append(RealSpaceHamiltonian(atoms, basis, edges, blocks, blocks, meta={"fermi_level_ev": ef}))
    domain = training_domain(hams)
    assert domain["fermi_level_ev"] == pytest.approx(-3.8)  # the median
    assert domain["min_distance"]["C-C"] == pytest.approx(2.46 / np.sqrt(3)) and domain["periodic"] == [True]
    hams[0].meta.clear(), hams[1].meta.clear(), hams[2].meta.clear()
    assert "fermi_level_ev" not in training_domain(hams)  # molecules: no Fermi level to record


def test_a_fixed_split_file_is_used_and_checked(tmp_path, dataset):
    files = sorted(p.name for p in (dataset / "structures").glob("*.h5"))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": files[:3], "val": files[3:5], "test": files[5:]}))
    train(_config(tmp_path, dataset, epochs=1, split_file=str(split)))
    assert json.loads((tmp_path / "run" / "split.json").read_text()) == json.loads(split.read_text())
    split.write_text(json.dumps({"train": ["nope.h5"], "val": files[3:5], "test": []}))
    with pytest.raises(DataFormatError, match="not in the data"):
        train(_config(tmp_path / "other", dataset, epochs=1, split_file=str(split)))
    # One structure cannot fill a batch of two: every epoch would take no step and the "best" be the start.
    split.write_text(json.dumps({"train": files[:1], "val": files[:1], "test": []}))
    with pytest.raises(ValueError, match="1 training structure.*batch_size 2"):
        train(_config(tmp_path / "small", dataset, epochs=1, split_file=str(split)))
    assert not (tmp_path / "small").exists()  # refused before the run folder is made


def test_training_refuses_a_run_folder_in_use(tmp_path, dataset):
    from tracegrad_ase.io.exclusive import FolderInUseError, exclusive

    cfg = _config(tmp_path, dataset)
    with exclusive(cfg.out, "tracegrad train"):
        with pytest.raises(FolderInUseError, match="in use by another job"):
            train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_non_finite_loss_stops_training_and_names_the_structures(tmp_path, dataset, monkeypatch):
    from tracegrad_ase.errors import TrainingDivergedError
    from tracegrad_ase.model import train as train_module

    real = train_module.combined_loss

    def poisoned(losses, *args, **kwargs):
        loss, means = real(losses, *args, **kwargs)
        return loss * float("nan"), {**means, "H": float("nan")}

    train(_config(tmp_path, dataset, epochs=1))
    before = load_model(tmp_path / "run" / "checkpoints" / "last").state_dict()
    monkeypatch.setattr(train_module, "combined_loss", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2: the loss is not finite .* on w\d\.h5"):
        train(_config(tmp_path, dataset, epochs=2))
    after = load_model(tmp_path / "run" / "checkpoints" / "last").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the last good checkpoint is untouched


def test_init_from_starts_from_the_models_weights_and_checks_that_it_fits(tmp_path, dataset):
    from tracegrad_ase.core.errors import ConfigError

    def distance(a, b):
        return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values())
                   if x.numel())

    train(_config(tmp_path, dataset, epochs=3, out=str(tmp_path / "first")))
    first = load_model(tmp_path / "first" / "checkpoints" / "best", torch.float64)
    # One epoch at a tiny LR stays next to where it starts: the first model's weights (a run folder names its best
    # checkpoint), not the seed's fresh ones.
    tiny = dict(epochs=1, lr=1e-9, min_lr=1e-12)
    state = train(_config(tmp_path, dataset, **tiny, model={}, out=str(tmp_path / "tuned"),
                          init_from=str(tmp_path / "first")))
    train(_config(tmp_path, dataset, **tiny, out=str(tmp_path / "fresh")))
    tuned = load_model(tmp_path / "tuned" / "checkpoints" / "last", torch.float64)
    fresh = load_model(tmp_path / "fresh" / "checkpoints" / "last", torch.float64)
    assert state["epoch"] == 1 and tuned.config == first.config
    assert distance(tuned, first) < 1e-6 < 1e-2 < distance(fresh, first)

    # num_layers may grow: the first model's weights, and a layer more (model/grow.py proves the predictions)
    train(_config(tmp_path, dataset, **tiny, model={"num_layers": 2}, out=str(tmp_path / "grown"),
                  init_from=str(tmp_path / "first")))
    grown = load_model(tmp_path / "grown" / "checkpoints" / "last", torch.float64)
    assert grown.config.num_layers == 2 and len(grown.edge_update) == 2
    shared = {k: v for k, v in grown.state_dict().items() if k in first.state_dict() and k != "decoder.0.weight"}
    assert len(shared) > 10 and max(float((v - first.state_dict()[k]).abs().max()) for k, v in shared.items()
                                    if v.numel()) < 1e-6
    with pytest.raises(ConfigError, match="does not shrink"):
        train(_config(tmp_path, dataset, model={"num_layers": 0}, out=str(tmp_path / "shrunk"),
                      init_from=str(tmp_path / "first")))
    with pytest.raises(ConfigError, match="cutoff: 3.0 in the model, 2.5 here"):
        train(_config(tmp_path, dataset, model={"cutoff": 2.5}, out=str(tmp_path / "clash"),
                      init_from=str(tmp_path / "first")))
    with pytest.raises(DataFormatError, match="neither a model folder nor a run folder"):
        train(_config(tmp_path, dataset, model={}, out=str(tmp_path / "none"), init_from=str(tmp_path)))
    only_h = tmp_path / "only_h"
    save_model(build_model(ModelConfig(elements=["H"], basis=BASIS.to_dict(), **SMALL), torch.float64), only_h)
    with pytest.raises(DataFormatError, match="element O is unknown to the init_from model"):
        train(_config(tmp_path, dataset, model={}, out=str(tmp_path / "o"), init_from=str(only_h)))


def test_select_by_band_keeps_the_epoch_with_the_lowest_validation_band_mae(tmp_path, dataset):
    """The validation band MAE is the spectrum's (levels of the stored structures, solved as evaluation does), and
    checkpoints/best is the epoch where it was lowest."""
    from tracegrad_ase.electronic import spectrum
    from tracegrad_ase.io.h5 import load_h5
    from tracegrad_ase.model.inference import predict_for

    cfg = _config(tmp_path, dataset, epochs=4, select_by="band", band_lindep=0.05, band_window_ev=1e-3,
                  lr=2e-2)
    train(cfg)
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    maes = [r["val_band_mae_mev"] for r in log]
    best = load_model(tmp_path / "run" / "checkpoints" / "best", torch.float64)
    meta = json.loads((tmp_path / "run" / "checkpoints" / "best" / "model.json").read_text())["metadata"]
    assert meta["best_epoch"] == 1 + int(np.argmin(maes)) and meta["val_select"] == pytest.approx(min(maes))
    assert len(set(np.round(maes, 6))) > 1  # the epochs differ, so the choice means something

    val = json.loads((tmp_path / "run" / "split.json").read_text())["val"]
    errors = []
    for name in val:  # molecules: Γ, the true levels from 1 meV below the HOMO to 1 meV above the LUMO (4 of 6
        truth = load_h5(dataset / STRUCTURES_DIR / name)  # filled), so both frontier levels whatever the gap
        exact = spectrum.levels(truth, np.zeros((1, 3)), 0.05)[0]
        pred = spectrum.levels(predict_for(truth, best), np.zeros((1, 3)), 0.05)[0]
        assert exact[4] - exact[3] > 2e-3  # a window around the gap's midpoint would hold no level here
        sel = (exact >= exact[3] - 1e-3) & (exact <= exact[4] + 1e-3)
        errors.append(1000 * np.abs(pred - exact)[sel].mean())
    assert np.mean(errors) == pytest.approx(min(maes), rel=1e-6)


def test_select_by_band_picks_by_band_mae_where_the_loss_disagrees(tmp_path, dataset, monkeypatch):
    import tracegrad_ase.model.train as train_module

    real, script = train_module.validate, iter([300.0, 100.0, 200.0, 400.0])  # the loss keeps falling meanwhile

    def scripted(model, graphs, cfg=None):
        out = real(model, graphs, cfg)
        out["band_mae_mev"] = out["select"] = next(script)
        return out

    monkeypatch.setattr(train_module, "validate", scripted)
    state = train(_config(tmp_path, dataset, epochs=4, select_by="band", early_stopping=5))
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["val_loss"] < log[1]["val_loss"]
    assert state["best_epoch"] == 2
    meta = json.loads((tmp_path / "run" / "checkpoints" / "best" / "model.json").read_text())["metadata"]
    assert meta["best_epoch"] == 2 and meta["val_select"] == 100.0


def test_weight_average_follows_its_formula_and_refuses_a_bad_decay():
    from tracegrad_ase.model.averaging import WeightAverage

    net = torch.nn.Linear(2, 1, dtype=torch.float64)
    start = net.weight.detach().clone()
    ema = WeightAverage(net, 0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)  # step 1: d = min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.average.weight, d * start + (1 - d) * net.weight, atol=1e-14)
    assert not torch.allclose(ema.average.weight, net.weight)
    restored = WeightAverage(net, 0.9, ema.state_dict())
    assert restored.steps == 1 and torch.equal(restored.average.weight, ema.average.weight)
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, 1.0)
    with pytest.raises(Exception, match="ema_decay"):
        TrainConfig(data=[], out="x", ema_decay=1.5)


def test_ema_run_resumes_exactly_and_ships_the_averaged_weights(tmp_path, dataset):
    """checkpoints/best holds the validated (averaged) weights, checkpoints/last the raw ones plus the average,
    and a resumed run continues the average as if it had never stopped."""
    straight = train(_config(tmp_path / "a", dataset, epochs=3, ema_decay=0.8))
    train(_config(tmp_path / "b", dataset, epochs=2, ema_decay=0.8))
    resumed = train(_config(tmp_path / "b", dataset, epochs=3, ema_decay=0.8))
    assert [r["val_loss"] for r in resumed["history"]] == pytest.approx(
        [r["val_loss"] for r in straight["history"]], rel=1e-10)
    run = tmp_path / "a" / "run" / "checkpoints"
    best, last = load_model(run / "best").state_dict(), load_model(run / "last").state_dict()
    assert any(not torch.allclose(best[k], last[k]) for k in best)  # best is the average, not the last step
    from tracegrad_ase.model.train import validate

    graphs = _val_graphs(tmp_path / "a" / "run", dataset, load_model(run / "best"))
    best_epoch = straight["best_epoch"]
    assert validate(load_model(run / "best"), graphs)["loss"] == pytest.approx(
        straight["history"][best_epoch - 1]["val_loss"], rel=1e-8)
    with pytest.raises(ValueError, match="another run.*ema_decay"):
        train(_config(tmp_path / "b", dataset, epochs=4, ema_decay=0.9))


def test_snapshots_keep_the_validated_weights_every_n_epochs(tmp_path, dataset):
    """snapshot_every: checkpoints/epoch-NNNN hold the averaged weights each N epochs, which validate to the loss the
    log recorded for that epoch: candidates a later validation set can choose among. Turned on when resuming."""
    from tracegrad_ase.model.train import validate

    train(_config(tmp_path, dataset, epochs=2, ema_decay=0.8))
    state = train(_config(tmp_path, dataset, epochs=5, ema_decay=0.8, snapshot_every=2))
    run = tmp_path / "run"
    snaps = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("epoch-"))
    assert snaps == ["epoch-0004"]
    model = load_model(run / "checkpoints" / "epoch-0004")
    assert validate(model, _val_graphs(run, dataset, model))["loss"] == pytest.approx(
        state["history"][3]["val_loss"], rel=1e-8)
    with pytest.raises(Exception, match="snapshot_every"):
        TrainConfig(data=[], out="x", snapshot_every=0)


def _val_graphs(run, dataset, model):
    from tracegrad_ase.io.h5 import load_h5
    from tracegrad_ase.model.data import graph_from_hamiltonian

    names = json.loads((run / "split.json").read_text())["val"]
    return [graph_from_hamiltonian(model.layout, load_h5(dataset / STRUCTURES_DIR / n), model.config.cutoff)
            for n in names]


def test_validation_band_loss_is_solved_once_and_unchanged_by_select_by(tmp_path, dataset, monkeypatch):
    """With select_by: band and a band loss, the validation band errors are solved once per structure and give
    the same band loss as the plain band-loss path."""
    import tracegrad_ase.model.losses as losses_module
    import tracegrad_ase.model.train as train_module

    train(_config(tmp_path, dataset, epochs=1))
    model = load_model(tmp_path / "run" / "checkpoints" / "best")
    graphs = _val_graphs(tmp_path / "run", dataset, model)
    common = dict(data=[], out="", band_weight=0.5, band_lindep=0.05, band_window_ev=2.0)
    plain = train_module.validate(model, graphs, TrainConfig(**common))
    calls = []
    real = losses_module.window_band_errors
    for module in (losses_module, train_module):  # the band loss's solve, and any of validate's own
        monkeypatch.setattr(module, "window_band_errors", lambda *a, **k: calls.append(1) or real(*a, **k),
                            raising=False)
    by_band = train_module.validate(model, graphs, TrainConfig(select_by="band", **common))
    assert plain["loss_b"] > 0 and by_band["loss_b"] == pytest.approx(plain["loss_b"], rel=1e-12)
    assert by_band["loss"] == pytest.approx(plain["loss"], rel=1e-12)
    assert len(calls) == len(graphs) and by_band["band_mae_mev"] > 0
    # The projected form: its own L_B in the loss, the same band MAE to select by (the MAE is of eigenvalues).
    projected = train_module.validate(model, graphs, TrainConfig(select_by="band", band_form="projected", **common))
    assert projected["loss_b"] > 0 and projected["loss_b"] != pytest.approx(plain["loss_b"], rel=1e-6)
    assert projected["loss"] == pytest.approx(projected["loss_h"] + 0.5 * projected["loss_b"], rel=1e-12)
    assert projected["band_mae_mev"] == pytest.approx(by_band["band_mae_mev"], rel=1e-12)


def test_projected_band_loss_trains_and_its_form_is_checked(tmp_path, dataset):
    from tracegrad_ase.core.errors import ConfigError

    with pytest.raises(ConfigError, match="band_form='exact'"):
        _config(tmp_path, dataset, band_form="exact")
    train(_config(tmp_path, dataset, epochs=1, band_weight=0.1, band_form="projected", band_window_ev=2.0))
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["train_loss_b"] > 0 and math.isfinite(log[0]["val_loss_b"])
    # Resuming with the other form would mix two runs
    with pytest.raises(ValueError, match="band_form: 'projected' there, 'eigenvalues' now"):
        train(_config(tmp_path, dataset, epochs=2, band_weight=0.1, band_window_ev=2.0))
