"""Training: AdamW, plateau LR schedule, gradient clipping, validation, early stopping, atomic checkpoints that
resume, and data parallelism over torch.distributed (DDP; launch with ``torchrun``; gloo on CPU, NCCL on GPU).

Loss (per structure s, averaged over the batch):

    H'  = H + c*·S, c* = <S, H_pred - H>/<S, S>                  (the truth in the prediction's energy zero)
    L_H = mean over real orbital entries of ((H_pred - H') / scale)^2
    L_T = mean over existing trace labels of |T_hat - T(H')|          (TraceGrad only)
    L_B = mean over levels within band_window_ev of E_F, at band_kpoints random k, of ((e_pred - e') / scale)^2
          (band_form "projected": Σ_mn |c_m† (H_pred(k) - H'(k)) c_n|² / scale² per level, c the truth's states in
          the window: the same to first order, convex in H_pred)
    L   = L_H + lambda * sg(L_H / L_T) * L_T + band_weight * L_B    (the balanced loss of the paper's code, plus bands)

The zero of energy of a periodic calculation is the cell-averaged potential, which no local model can see, so
with ``gauge: periodic`` (default) nothing above depends on it for structures with a periodic direction; a
molecule's zero is the vacuum level, physical and kept (``gauge: true`` aligns molecules too, ``false`` nothing;
see :mod:`tracegrad_ase.model.losses`). The trace term
is rescaled every step to ``lambda`` times the H loss; its gradient direction is unchanged.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..core.dtypes import dtype_names
from ..io.atomic import atomic_write_json
from ..io.exclusive import exclusive
from ..core.basis import OrbitalBasis
from ..io.h5 import load_dataset, load_h5, split_dataset
from ..core.errors import DataFormatError, TrainingDivergedError
from ..electronic.solve import PREDICTED_LINDEP
from .checkpoint import load_model, load_training_state, resolve_folder
from .data import GraphBatch, collate, graph_from_hamiltonian
from .layout import BlockLayout
from .domain import training_domain  # noqa: F401 (public here before: calculators/ship_model.py)
from .averaging import WeightAverage
from .init_from import initial_model
from .losses import aligned_target, band_loss, band_maes_and_loss, shifted_target
from .network import ModelConfig, TraceGradNet, build_model
from .run_folder import best_checkpoint, last_checkpoint, log_file, split_file
from .run_writer import save_epoch, selected_on_disk, truncate_log
from .train_config import RESUME_MUST_MATCH, TrainConfig, fixed_split

_DTYPES = dtype_names()  # the one name -> dtype map (core.dtypes)
# -- distributed helpers ---------------------------------------------------------------------------------
def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _rank_world() -> tuple[int, int]:
    d = _dist()
    return (d.get_rank(), d.get_world_size()) if d else (0, 1)


def _init_distributed(device: str) -> None:
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def _all_sum(values: list[float]) -> list[float]:
    d = _dist()
    if d is None:
        return values
    # NCCL reduces CUDA tensors only (gloo: CPU ones); each rank's current device is the one it trains on.
    device = torch.device("cuda", torch.cuda.current_device()) if d.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    d.all_reduce(t)
    return t.tolist()


# -- data ------------------------------------------------------------------------------------------------
def _dataset_files(cfg: TrainConfig) -> list[Path]:
    files: list[Path] = []
    for folder in cfg.data:
        files += load_dataset(folder)
    if not files:
        raise DataFormatError(f"no structures in {cfg.data}")
    return files


def _model_config(cfg: TrainConfig, hams: dict[Path, Any], train_files: Sequence[Path]) -> ModelConfig:
    """Elements and basis from the data; target scale and neighbour count from the training set."""
    first_path, first = next(iter(hams.items()))
    shells: dict[str, tuple[int, ...]] = {}
    valence: dict[str, int] = {}
    for p, h in hams.items():
        if h.basis.name != first.basis.name:
            raise DataFormatError(f"{p}: basis {h.basis.name!r} differs from {first.basis.name!r} of {first_path}")
        for e in set(h.atoms.get_chemical_symbols()):
            if e not in h.basis.valence:  # foreign folders read without valence= (io.layouts): Z would be wrong
                raise DataFormatError(f"{p}: no valence charge for {e} in its basis; read foreign data with "
                                      "valence={...} before training on it")
            shells[e], valence[e] = h.basis.shells_of(e), int(h.basis.valence[e])
    basis = OrbitalBasis(name=first.basis.name, shells=dict(sorted(shells.items())),
                         valence=dict(sorted(valence.items())), pseudo=first.basis.pseudo)
    settings = dict(cfg.model)
    cutoff = float(settings.get("cutoff", ModelConfig.__dataclass_fields__["cutoff"].default))
    if "onsite_reference" not in settings:
        layout = BlockLayout.build(basis, sorted(shells))
        settings["onsite_reference"] = _onsite_reference(layout, [hams[p] for p in train_files])
    # A layer-free model only provides the padded reference blocks, built as the real model will build them.
    probe = build_model(ModelConfig(elements=sorted(shells), basis=basis.to_dict(), cutoff=cutoff, num_layers=0,
                                    tracegrad=False, onsite_reference=settings["onsite_reference"]))
    sq, count, edges, nodes = 0.0, 0, 0, 0
    for p in train_files:
        g = graph_from_hamiltonian(probe.layout, hams[p], cutoff)
        i, j = g.edge_index
        rest = g.target - probe.onsite_ref.double()[g.species[i]] * g.onsite()[:, None, None]
        sq += float((rest * g.mask).pow(2).sum())
        count += int(g.mask.sum())
        edges += g.num_edges
        nodes += len(g.species)
    settings.setdefault("target_scale", math.sqrt(sq / max(count, 1)))
    settings.setdefault("avg_neighbors", edges / max(nodes, 1))
    return ModelConfig(elements=sorted(shells), basis=basis.to_dict(), **settings)


def _onsite_reference(layout, hams) -> dict[str, list[list[float]]]:
    """Mean tr(H_ab)/(2l+1) of the on-site same-l shell pairs, per element (see ModelConfig)."""
    start = layout.slot_start
    sums = {e: np.zeros((len(layout.slot_ls),) * 2) for e in layout.elements}
    counts = {e: 0 for e in layout.elements}
    for h in hams:
        sym = h.atoms.get_chemical_symbols()
        for (rx, ry, rz, i, j), block in zip(h.edges, h.hamiltonian):
            if i != j or rx or ry or rz:
                continue
            padded = layout.pad_block(block, sym[i], sym[i])
            for a, la in enumerate(layout.slot_ls):
                for b, lb in enumerate(layout.slot_ls):
                    if la == lb:
                        sums[sym[i]][a, b] += np.trace(padded[start[a] : start[a + 1], start[b] : start[b + 1]]) / (2 * la + 1)
            counts[sym[i]] += 1
    return {e: (sums[e] / max(counts[e], 1)).tolist() for e in layout.elements if counts[e]}


# -- loss ------------------------------------------------------------------------------------------------
def structure_losses(model: TraceGradNet, batch: GraphBatch, out: dict[str, torch.Tensor], gauge: bool | str = True,
                     band_weight: float = 0.0, band_kpoints: int = 4, band_window_ev: float = 3.0,
                     generator: torch.Generator | None = None, band_lindep: float | None = None,
                     band_form: str = "eigenvalues") -> dict[str, torch.Tensor]:
    """Per-structure losses, each of shape (n_graphs,): ``"H"``, ``"T"`` (zeros when TraceGrad is off) and ``"B"``
    (zeros when ``band_weight`` is 0), and the gauge shift ``"shift"`` (eV) of the truth."""
    scale = model.config.target_scale
    mask = batch.mask
    if gauge:
        target, shift = aligned_target(out["H"], batch, periodic_only=gauge == "periodic")
    else:
        target, shift = batch.target, torch.zeros(batch.n_graphs, dtype=out["H"].dtype, device=out["H"].device)
    diff = (out["H"] - target) / scale  # the on-site reference cancels in the difference
    per_edge_sq = (diff * diff * mask).flatten(1).sum(1)
    per_edge_n = mask.flatten(1).sum(1).to(diff.dtype)
    g = batch.edge_graph
    zeros = torch.zeros(batch.n_graphs, dtype=diff.dtype, device=diff.device)
    l_h = zeros.index_add(0, g, per_edge_sq) / zeros.index_add(0, g, per_edge_n).clamp(min=1)
    losses = {"H": l_h, "T": torch.zeros_like(l_h), "B": torch.zeros_like(l_h), "shift": shift.detach()}
    if "trace_hat" in out:
        i, _ = batch.edge_index
        labels = model.trace_labels(target.detach(), batch.species[i], batch.onsite())
        tmask = model.trace_mask(mask).to(diff.dtype)
        err = ((out["trace_hat"] - labels).abs() * tmask).sum(1)
        losses["T"] = zeros.index_add(0, g, err) / zeros.index_add(0, g, tmask.sum(1)).clamp(min=1)
    if band_weight > 0:
        if batch.overlap is None:
            raise ValueError("the band loss needs the overlap blocks in the graphs (graph_from_hamiltonian)")
        losses["B"] = band_loss(out["H"], target.detach(), shift, batch, band_kpoints, band_window_ev,
                                PREDICTED_LINDEP if band_lindep is None else band_lindep, scale, generator,
                                form=band_form)
    return losses


def combined_loss(losses: dict[str, torch.Tensor], trace_weight: float, band_weight: float, n_global: int,
                  world: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of a (possibly sharded) batch; returns (loss to backpropagate, global batch means of L_H, L_T, L_B).
    Gradients averaged over ``world`` processes equal one process's."""
    l_h, l_t, l_b = losses["H"], losses["T"], losses["B"]
    sums = _all_sum([float(l_h.detach().sum()), float(l_t.detach().sum()), float(l_b.detach().sum())])
    mean_h, mean_t, mean_b = (x / n_global for x in sums)
    local = l_h.sum() / n_global
    if trace_weight > 0 and mean_t > 0:
        local = local + trace_weight * (mean_h / mean_t) * l_t.sum() / n_global
    if band_weight > 0:
        local = local + band_weight * l_b.sum() / n_global
    return local * world, {"H": mean_h, "T": mean_t, "B": mean_b}


def _check_same_run(out: Path, stored: dict[str, Any], cfg: TrainConfig) -> None:
    now = json.loads(json.dumps(asdict(cfg)))
    stored = json.loads(json.dumps(stored))
    # A run stored before a setting existed ran with its default.
    defaults = {f.name: f.default for f in fields(TrainConfig) if not callable(f.default)}
    changed = [k for k in RESUME_MUST_MATCH if stored.get(k, defaults.get(k)) != now.get(k)]
    if changed:
        detail = "; ".join(f"{k}: {stored.get(k)!r} there, {now.get(k)!r} now" for k in changed)
        raise ValueError(f"{out} holds another run ({detail}); use another 'out' or the same settings to resume")


# -- training --------------------------------------------------------------------------------------------
def _resumed_or_new(cfg: TrainConfig, out: Path, last: Path, dtype: torch.dtype, hams: dict, train_files: list
                    ) -> tuple[TraceGradNet, dict | None, dict | None]:
    """The model with its trainer state and run state, resumed from ``last``, else new (seeded; states None)."""
    # A kill between the two renames of a checkpoint swap leaves the previous one complete as .last.old:
    # resume from it (the next save renames it back) rather than from epoch 0.
    resume_from = resolve_folder(last)
    if (resume_from / "model.json").is_file():
        model = load_model(resume_from, dtype)
        trainer_state, state = load_training_state(resume_from)
        if trainer_state is None or state is None:
            raise DataFormatError(f"{resume_from}: a model without training state cannot be resumed")
        _check_same_run(out, state.get("train_config", {}), cfg)
        return model, trainer_state, state
    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        return initial_model(cfg.init_from, cfg.model, hams, dtype), None, None
    return build_model(_model_config(cfg, hams, train_files), dtype), None, None


def _optimizers(model: TraceGradNet, cfg: TrainConfig, trainer_state: dict | None):
    """AdamW and its plateau scheduler, with their state (and torch's RNG) restored on resume."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience)
    if trainer_state is not None:
        optimizer.load_state_dict(trainer_state["optimizer"])
        scheduler.load_state_dict(trainer_state["scheduler"])
        torch.set_rng_state(trainer_state["torch_rng"])
    return optimizer, scheduler


def _train_epoch(net: torch.nn.Module, model: TraceGradNet, graphs: list, optimizer, cfg: TrainConfig, epoch: int,
                 rank: int, world: int, names: Sequence[str] = (), ema: WeightAverage | None = None) -> np.ndarray:
    """One pass over the training graphs in the epoch's seeded order (folding each step into ``ema``); the mean
    (L_H, L_T, L_B) per step. ``names`` (of the graphs' structures) go into the error when a loss is not finite."""
    model.train()
    order = np.random.default_rng(cfg.seed + epoch).permutation(len(graphs))
    sums = np.zeros(3)
    band_rng = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)  # reproducible k-points on resume
    steps = 0
    for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
        idx = order[start : start + cfg.batch_size][rank::world]
        batch = collate([graphs[k] for k in idx])
        out_ = net(batch)
        losses = structure_losses(model, batch, out_, cfg.gauge, cfg.band_weight, cfg.band_kpoints,
                                  cfg.band_window_ev, band_rng, cfg.band_lindep, cfg.band_form)
        loss, means = combined_loss(losses, cfg.trace_weight, cfg.band_weight, cfg.batch_size, world)
        if not all(math.isfinite(v) for v in means.values()):
            # A diverged step would write NaN weights into every later checkpoint: stop with the last good one.
            which = ", ".join(names[k] for k in idx) if names else f"graphs {list(idx)}"
            raise TrainingDivergedError(
                f"epoch {epoch + 1}: the loss is not finite ({', '.join(f'L_{k}={v:g}' for k, v in means.items())}) "
                f"on {which}; checkpoints/last holds the last finite epoch. Lower lr or grad_clip, or check these "
                f"structures' data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        sums += (means["H"], means["T"], means["B"])
        steps += 1
    return sums / max(steps, 1)


def _stop_reason(cfg: TrainConfig, state: dict, record: dict, lr: float) -> str | None:
    """Why training stops after this epoch (``min_lr``, ``early_stopping``, ``max_time``), or None."""
    if lr < cfg.min_lr:
        return "min_lr"
    if record["epoch"] - state["best_epoch"] >= cfg.early_stopping:
        return "early_stopping"
    if cfg.max_time_s is not None and record["time_s"] >= cfg.max_time_s:
        return "max_time"
    return None


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a model; returns the final state (epochs, best validation loss, history). The run folder
    is locked while it runs (:mod:`~tracegrad_ase.io.exclusive`): a second run on it is refused, not interleaved."""
    _init_distributed(cfg.device)
    rank, world = _rank_world()
    # Checked before the lock, which makes the run folder: a refused config leaves nothing behind.
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of the {world} processes")
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
    parts = _checked_split(cfg)
    if rank:
        return _train(cfg, rank, world, parts)
    with exclusive(cfg.out, "tracegrad train"):
        return _train(cfg, rank, world, parts)


def _checked_split(cfg: TrainConfig) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """Every data file, and the training, validation and test files: a split that cannot train is a ValueError."""
    files = _dataset_files(cfg)
    train_files, val_files, test_files = (fixed_split(files, cfg.split_file) if cfg.split_file
                                          else split_dataset(files, cfg.split, cfg.seed))
    if not train_files or not val_files:
        raise ValueError(f"the split {cfg.split} of {len(files)} structures leaves no training or validation data")
    if len(train_files) < cfg.batch_size:  # every step needs a full batch: the epochs would train nothing
        raise ValueError(f"{len(train_files)} training structure(s) cannot fill one batch of batch_size "
                         f"{cfg.batch_size}: lower batch_size or add structures")
    return files, train_files, val_files, test_files


def _train(cfg: TrainConfig, rank: int, world: int, parts: tuple[list[Path], ...]) -> dict[str, Any]:
    dtype = _DTYPES[cfg.dtype]
    out = Path(cfg.out)
    last, best = last_checkpoint(out), best_checkpoint(out)
    files, train_files, val_files, test_files = parts

    hams = {p: load_h5(p) for p in files}
    model, trainer_state, state = _resumed_or_new(cfg, out, last, dtype, hams, train_files)
    # What checkpoints/best already holds: a run that starts again (last deleted) must not replace it with a
    # worse model. None for a new folder or a best written before this record (then: replaced on improvement).
    best_on_disk = selected_on_disk(best, cfg)
    device = torch.device(cfg.device)
    model.to(device)
    net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer, scheduler = _optimizers(model, cfg, trainer_state)
    ema = WeightAverage(model, cfg.ema_decay, (trainer_state or {}).get("ema")) if cfg.ema_decay else None
    state = state or {"epoch": 0, "best_val": None, "best_epoch": None, "history": [], "wall_time_s": 0.0,
                      "train_config": asdict(cfg)}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(split_file(out), {part: [p.name for p in paths] for part, paths in
                                            (("train", train_files), ("val", val_files), ("test", test_files))})
        truncate_log(log_file(out), state["epoch"])

    domain = training_domain([hams[p] for p in train_files])

    train_graphs, val_graphs = (
        [graph_from_hamiltonian(model.layout, hams[p], model.config.cutoff).to(device, dtype) for p in paths]
        for paths in (train_files, val_files))
    hams.clear()  # the graphs hold what training needs
    from tqdm.auto import tqdm

    t_start = time.perf_counter() - state["wall_time_s"]
    bar = tqdm(total=cfg.epochs, initial=state["epoch"], desc="training", unit="epoch",
               disable=not (cfg.progress and rank == 0))
    stop_reason = "epochs"
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        means = _train_epoch(net, model, train_graphs, optimizer, cfg, epoch, rank, world,
                             [p.name for p in train_files], ema)
        val = validate(ema.average if ema else model, val_graphs, cfg)
        scheduler.step(val["loss"])
        lr = optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch + 1, "train_loss_h": means[0], "train_loss_t": means[1],
                  "train_loss_b": means[2], "val_loss": val["loss"], "val_loss_h": val["loss_h"],
                  "val_loss_b": val["loss_b"], "val_mae_mev": val["mae_mev"], "val_raw_mae_mev": val["raw_mae_mev"],
                  **({"val_band_mae_mev": val["band_mae_mev"]} if "band_mae_mev" in val else {}),
                  "lr": lr, "time_s": time.perf_counter() - t_start}
        state["epoch"] = epoch + 1
        state["history"].append(record)
        state["wall_time_s"] = record["time_s"]
        improved = state["best_val"] is None or val["select"] < state["best_val"]
        if improved:
            state["best_val"], state["best_epoch"] = val["select"], epoch + 1
        if rank == 0:
            snapshot = bool(cfg.snapshot_every) and state["epoch"] % cfg.snapshot_every == 0
            best_on_disk = save_epoch(out, model, record, state, val, domain, improved, best_on_disk, optimizer,
                                       scheduler, ema, snapshot)
        bar.update(1)
        bar.set_postfix(val_mae_mev=f"{val['mae_mev']:.2f}", lr=f"{lr:.1e}", refresh=False)
        stop = _stop_reason(cfg, state, record, lr)
        if stop is not None:
            stop_reason = stop
            break
    bar.close()
    state["stop_reason"] = stop_reason
    if _dist() is not None:
        _dist().barrier()
    return state


def validate(model: TraceGradNet, graphs: Sequence[GraphBatch], cfg: TrainConfig | None = None) -> dict[str, float]:
    """Validation losses and MAEs (meV) over the real orbital entries of ``graphs`` (autograd on: TraceGrad needs
    it). ``loss`` drives the LR schedule: L_H, plus ``band_weight`` times L_B (at fixed k-points, the same every
    epoch); ``select`` picks the best model: the loss, or with ``select_by: band`` the band MAE ``band_mae_mev``
    (mean over structures of each one's MAE over the true levels in the window, at the same fixed k-points). With
    ``gauge`` the MAE is the gauge MAE (truth moved to the prediction's zero, see :mod:`~tracegrad_ase.model.losses`);
    ``raw_mae_mev`` is without that."""
    cfg = cfg or TrainConfig(data=[], out="")
    model.eval()
    sq = ae = raw = n = 0.0
    band = 0.0
    band_mae = []
    lindep = PREDICTED_LINDEP if cfg.band_lindep is None else cfg.band_lindep
    for k, g in enumerate(graphs):
        pred = model(g)["H"].detach()
        by_band = cfg.select_by == "band"
        # With select_by band the eigenvalue errors are solved once, below, for the eigenvalue loss too.
        shared = by_band and cfg.band_form == "eigenvalues"
        losses = structure_losses(model, g, {"H": pred}, cfg.gauge, 0.0 if shared else cfg.band_weight,
                                  cfg.band_kpoints, cfg.band_window_ev, torch.Generator().manual_seed(k),
                                  cfg.band_lindep, cfg.band_form)
        target = shifted_target(g, losses["shift"])
        if by_band:
            maes, loss_b = band_maes_and_loss(pred, target, losses["shift"], g, cfg.band_kpoints, cfg.band_window_ev,
                                              lindep, model.config.target_scale, torch.Generator().manual_seed(k))
            band_mae, band = band_mae + maes, band + (loss_b if shared and cfg.band_weight > 0 else 0.0)
        count = float(g.mask.sum())
        sq += float(losses["H"].sum()) * count
        band += float(losses["B"].sum())
        ae += float(((pred - target) * g.mask).abs().sum())
        raw += float(((pred - g.target) * g.mask).abs().sum())
        n += count
    loss_h, loss_b = sq / max(n, 1), band / max(len(graphs), 1)
    out = {"loss": loss_h + cfg.band_weight * loss_b, "loss_h": loss_h, "loss_b": loss_b,
           "mae_mev": 1000 * ae / max(n, 1), "raw_mae_mev": 1000 * raw / max(n, 1)}
    if cfg.select_by == "band":
        if not band_mae:
            raise ValueError(f"select_by: band, but no validation structure has a true level within "
                             f"band_window_ev={cfg.band_window_ev} eV of its Fermi level")
        out["band_mae_mev"] = float(np.mean(band_mae))
    out["select"] = out["band_mae_mev"] if cfg.select_by == "band" else out["loss"]
    return out
