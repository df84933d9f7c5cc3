"""Training: AdamW, plateau LR schedule, gradient clipping, validation, early stopping, atomic checkpoints that
resume, and data parallelism over torch.distributed (DDP; launch with ``torchrun``; gloo on CPU, NCCL on GPU).

Loss (per structure s, averaged over the batch):

    L_H = mean over real orbital entries of ((H_pred - H) / scale)^2
    L_T = mean over existing trace labels of |T_hat - T|          (TraceGrad only)
    L   = L_H + lambda * sg(L_H / L_T) * L_T                      (the balanced loss of the paper's code)

The trace term is rescaled every step to ``lambda`` times the H loss; its gradient direction is unchanged.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..basis import OrbitalBasis
from ..datafiles import load_dataset, load_h5, split_dataset
from ..errors import DataFormatError
from .checkpoint import load_model, load_training_state, save_model
from .data import GraphBatch, collate, graph_from_hamiltonian
from .layout import BlockLayout
from .network import ModelConfig, TraceGradNet, build_model

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: What defines a run: resuming with any of these changed would mix two runs (a different seed draws another
#: split, and the old split.json would be overwritten). Epochs, time limits, early stopping, device may change.
RESUME_MUST_MATCH = ("data", "model", "split", "seed", "batch_size", "lr", "weight_decay", "lr_factor",
                     "lr_patience", "grad_clip", "trace_weight", "dtype")


@dataclass
class TrainConfig:
    """A training run; ``tracegrad train CONFIG.yaml`` reads these keys (paths relative to the YAML file)."""

    data: list[str]  # data set folders (each with structures/*.h5)
    out: str  # run folder: checkpoints/last, checkpoints/best, log.jsonl, split.json
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields (elements/basis come from the data)
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    epochs: int = 200
    batch_size: int = 1  # structures per optimizer step, over all processes
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_factor: float = 0.5  # ReduceLROnPlateau on the validation loss
    lr_patience: int = 10
    min_lr: float = 1e-5  # training stops when the LR falls below this
    grad_clip: float = 5.0
    trace_weight: float = 0.3  # lambda; 0 turns the trace loss off (z and v stay in the network)
    early_stopping: int = 40  # epochs without validation improvement
    max_time_s: float | None = None  # stop (with a checkpoint) after this much wall time
    dtype: str = "float32"
    device: str = "cpu"
    progress: bool = True

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such training config")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise DataFormatError(f"{path}: not valid YAML ({exc})") from None
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise DataFormatError(f"{path}: unknown training settings {sorted(unknown)}; known: {sorted(known)}")
        if isinstance(raw.get("data"), str):
            raw["data"] = [raw["data"]]
        root = path.parent
        raw["data"] = [str(p if Path(p).is_absolute() else root / p) for p in raw.get("data", [])]
        if "out" in raw and not Path(raw["out"]).is_absolute():
            raw["out"] = str(root / raw["out"])
        return cls(**raw)


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
    t = torch.tensor(values, dtype=torch.float64)
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
        onsite = (i == j) & (g.edge_offset.abs().sum(dim=1) == 0)
        rest = g.target - probe.onsite_ref.double()[g.species[i]] * onsite[:, None, None]
        sq += float((rest * g.mask).pow(2).sum())
        count += int(g.mask.sum())
        edges += g.num_edges
        nodes += len(g.species)
    settings.setdefault("target_scale", math.sqrt(sq / max(count, 1)))
    settings.setdefault("avg_neighbors", edges / max(nodes, 1))
    return ModelConfig(elements=sorted(shells), basis=basis.to_dict(), **settings)


def training_domain(hams) -> dict[str, Any]:
    """What the model saw: elements and the shortest distance of each element pair (Å), for the calculator's
    out-of-domain checks, and the median Fermi level of its structures (eV), where the data record one."""
    shortest: dict[str, float] = {}
    for h in hams:
        sym = h.atoms.get_chemical_symbols()
        lengths = h.edge_lengths()
        for (rx, ry, rz, i, j), d in zip(h.edges, lengths):
            if i == j and not (rx or ry or rz):
                continue
            key = "-".join(sorted((sym[i], sym[j])))
            shortest[key] = min(shortest.get(key, np.inf), float(d))
    elements = sorted({s for h in hams for s in h.atoms.get_chemical_symbols()})
    periodic = sorted({bool(any(h.atoms.pbc)) for h in hams})
    out = {"elements": elements, "min_distance": dict(sorted(shortest.items())), "periodic": periodic,
           "n_structures": len(hams)}
    fermi = [h.meta["fermi_level_ev"] for h in hams if h.meta.get("fermi_level_ev") is not None]
    if fermi:  # where the sparse solver of a large cell starts looking (a guess eV off costs factorizations)
        out["fermi_level_ev"] = float(np.median(fermi))
    return out


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
def structure_losses(model: TraceGradNet, batch: GraphBatch, out: dict[str, torch.Tensor]):
    """Per-structure L_H and L_T (zeros when TraceGrad is off), each of shape (n_graphs,)."""
    scale = model.config.target_scale
    mask = batch.mask
    diff = (out["H"] - batch.target) / scale  # the on-site reference cancels in the difference
    per_edge_sq = (diff * diff * mask).flatten(1).sum(1)
    per_edge_n = mask.flatten(1).sum(1).to(diff.dtype)
    g = batch.edge_graph
    zeros = torch.zeros(batch.n_graphs, dtype=diff.dtype, device=diff.device)
    l_h = zeros.index_add(0, g, per_edge_sq) / zeros.index_add(0, g, per_edge_n).clamp(min=1)
    if "trace_hat" not in out:
        return l_h, torch.zeros_like(l_h)
    i, j = batch.edge_index
    onsite = (i == j) & (batch.edge_offset.abs().sum(dim=1) == 0)
    labels = model.trace_labels(batch.target, batch.species[i], onsite)
    tmask = model.trace_mask(mask).to(diff.dtype)
    err = ((out["trace_hat"] - labels).abs() * tmask).sum(1)
    l_t = zeros.index_add(0, g, err) / zeros.index_add(0, g, tmask.sum(1)).clamp(min=1)
    return l_h, l_t


def combined_loss(l_h: torch.Tensor, l_t: torch.Tensor, trace_weight: float, n_global: int,
                  world: int) -> tuple[torch.Tensor, float, float]:
    """The balanced loss of a (possibly sharded) batch; returns (loss to backpropagate, L_H, L_T) where
    the floats are global batch means. Gradients averaged over ``world`` processes equal one process's."""
    sums = _all_sum([float(l_h.detach().sum()), float(l_t.detach().sum())])
    mean_h, mean_t = sums[0] / n_global, sums[1] / n_global
    local = l_h.sum() / n_global
    if trace_weight > 0 and mean_t > 0:
        local = local + trace_weight * (mean_h / mean_t) * l_t.sum() / n_global
    return local * world, mean_h, mean_t


def _check_same_run(out: Path, stored: dict[str, Any], cfg: TrainConfig) -> None:
    now = json.loads(json.dumps(asdict(cfg)))
    stored = json.loads(json.dumps(stored))
    changed = [k for k in RESUME_MUST_MATCH if stored.get(k) != now.get(k)]
    if changed:
        detail = "; ".join(f"{k}: {stored.get(k)!r} there, {now.get(k)!r} now" for k in changed)
        raise ValueError(f"{out} holds another run ({detail}); use another 'out' or the same settings to resume")


# -- training --------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a model; returns the final state (epochs, best validation loss, history)."""
    _init_distributed(cfg.device)
    rank, world = _rank_world()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of the {world} processes")
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
    dtype = _DTYPES[cfg.dtype]
    out = Path(cfg.out)
    last, best = out / "checkpoints" / "last", out / "checkpoints" / "best"
    files = _dataset_files(cfg)
    train_files, val_files, test_files = split_dataset(files, cfg.split, cfg.seed)
    if not train_files or not val_files:
        raise ValueError(f"the split {cfg.split} of {len(files)} structures leaves no training or validation data")

    hams = {p: load_h5(p) for p in files}
    if (last / "model.json").is_file():
        model = load_model(last, dtype)
        trainer_state, state = load_training_state(last)
        if trainer_state is None or state is None:
            raise DataFormatError(f"{last}: a model without training state cannot be resumed")
        _check_same_run(out, state.get("train_config", {}), cfg)
    else:
        torch.manual_seed(cfg.seed)
        model = build_model(_model_config(cfg, hams, train_files), dtype)
        trainer_state, state = None, None
    device = torch.device(cfg.device)
    model.to(device)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience)
    if trainer_state is not None:
        optimizer.load_state_dict(trainer_state["optimizer"])
        scheduler.load_state_dict(trainer_state["scheduler"])
        torch.set_rng_state(trainer_state["torch_rng"])
    state = state or {"epoch": 0, "best_val": None, "best_epoch": None, "history": [], "wall_time_s": 0.0,
                      "train_config": asdict(cfg)}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "split.json", {"train": [p.name for p in train_files], "val": [p.name for p in val_files],
                                         "test": [p.name for p in test_files]})
        _truncate_log(out / "log.jsonl", state["epoch"])

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
        model.train()
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(train_graphs))
        sums = np.zeros(2)
        steps = 0
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            idx = order[start : start + cfg.batch_size][rank::world]
            batch = collate([train_graphs[k] for k in idx])
            out_ = net(batch)
            l_h, l_t = structure_losses(model, batch, out_)
            loss, mean_h, mean_t = combined_loss(l_h, l_t, cfg.trace_weight, cfg.batch_size, world)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            sums += (mean_h, mean_t)
            steps += 1
        val = validate(model, val_graphs)
        scheduler.step(val["loss_h"])
        lr = optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch + 1, "train_loss_h": sums[0] / max(steps, 1), "train_loss_t": sums[1] / max(steps, 1),
                  "val_loss_h": val["loss_h"], "val_mae_mev": val["mae_mev"], "lr": lr,
                  "time_s": time.perf_counter() - t_start}
        state["epoch"] = epoch + 1
        state["history"].append(record)
        state["wall_time_s"] = record["time_s"]
        improved = state["best_val"] is None or val["loss_h"] < state["best_val"]
        if improved:
            state["best_val"], state["best_epoch"] = val["loss_h"], epoch + 1
        if rank == 0:
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            meta = {"best_epoch": state["best_epoch"], "val_mae_mev": val["mae_mev"], "domain": domain}
            if improved:
                save_model(model, best, metadata=meta)
            save_model(model, last, metadata=meta, state=state, trainer_state={
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()})
        bar.update(1)
        bar.set_postfix(val_mae_mev=f"{val['mae_mev']:.2f}", lr=f"{lr:.1e}", refresh=False)
        if lr < cfg.min_lr:
            stop_reason = "min_lr"
            break
        if epoch + 1 - state["best_epoch"] >= cfg.early_stopping:
            stop_reason = "early_stopping"
            break
        if cfg.max_time_s is not None and record["time_s"] >= cfg.max_time_s:
            stop_reason = "max_time"
            break
    bar.close()
    state["stop_reason"] = stop_reason
    if _dist() is not None:
        _dist().barrier()
    return state


def validate(model: TraceGradNet, graphs: Sequence[GraphBatch]) -> dict[str, float]:
    """Mean L_H and MAE (meV) over the real orbital entries of ``graphs`` (autograd on: TraceGrad needs it)."""
    model.eval()
    sq = ae = n = 0.0
    for g in graphs:
        pred = model(g)["H"].detach()
        diff = (pred - g.target) * g.mask
        sq += float((diff / model.config.target_scale).pow(2).sum())
        ae += float(diff.abs().sum())
        n += float(g.mask.sum())
    return {"loss_h": sq / max(n, 1), "mae_mev": 1000 * ae / max(n, 1)}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _truncate_log(path: Path, epochs: int) -> None:
    """Keep the log consistent with the checkpoint being resumed: drop lines of epochs it does not hold."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln).get("epoch", 0) <= epochs]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(ln + "\n" for ln in kept))
        os.replace(tmp, path)

