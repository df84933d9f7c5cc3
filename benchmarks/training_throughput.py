"""Training throughput: structures (and edges) per second of forward + backward + AdamW step.

    python benchmarks/training_throughput.py calculators/molecules/train.yaml --steps 20
    python benchmarks/training_throughput.py calculators/carbon/train.yaml --device cuda   # where a GPU exists

Reads a training config (its data folders and model settings), builds the model as ``tracegrad train`` would,
and times ``--steps`` optimizer steps on batches of the config's batch size after ``--warmup`` steps, for
TraceGrad and for its baseline (same backbone, tracegrad: false). Prints a table and writes
benchmarks/results/training_throughput.json (merged by config, device and threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.model.data import collate, graph_from_hamiltonian
from tracegrad_ase.model.network import build_model
from tracegrad_ase.model.train import TrainConfig, _dataset_files, _model_config, combined_loss, structure_losses
from _results import machine, merge_results  # benchmarks/_results.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=None,
                    help="batch sizes to time (default: the config's); a GPU step is bound by kernel launches, so "
                         "larger batches show what it could do")
    ap.add_argument("--variants", nargs="*", choices=["tracegrad", "baseline"], default=["tracegrad", "baseline"])
    ap.add_argument("--max-structures", type=int, default=64, help="structures loaded (a sample of the data)")
    ap.add_argument("--products", choices=["frame", "e3nn"], default="frame",
                    help="tensor products in each edge's frame (the default) or e3nn's own modules (the reference)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "training_throughput.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.from_yaml(args.config)
    files = _dataset_files(cfg)
    files = [files[i] for i in np.random.default_rng(0).permutation(len(files))[: args.max_structures]]
    hams = {p: load_h5(p) for p in files}
    rows = {}
    for variant, tg, bs in ((v, v == "tracegrad", b) for v in args.variants
                            for b in (args.batch_sizes or [cfg.batch_size])):
        name = variant if not args.batch_sizes else f"{variant}, batch {bs}"
        cfg.model = {**cfg.model, "tracegrad": tg}
        torch.manual_seed(0)
        model = build_model(_model_config(cfg, hams, files)).to(args.device)
        model.use_edge_frame = args.products == "frame"
        model.train()
        graphs = [graph_from_hamiltonian(model.layout, h, model.config.cutoff).to(args.device, torch.float32)
                  for h in hams.values()]
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        n_structures = n_edges = 0
        t0 = 0.0
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            batch_graphs = [graphs[(step * bs + b) % len(graphs)] for b in range(bs)]
            batch = collate(batch_graphs)
            out = model(batch)
            losses = structure_losses(model, batch, out, cfg.gauge, cfg.band_weight, cfg.band_kpoints,
                                      cfg.band_window_ev)
            loss, _ = combined_loss(losses, cfg.trace_weight, cfg.band_weight, bs, 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step >= args.warmup:
                n_structures += bs
                n_edges += sum(g.num_edges for g in batch_graphs)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rows[name] = {"structures_per_s": n_structures / dt, "edges_per_s": n_edges / dt,
                      "s_per_step": dt / args.steps, "batch_size": bs,
                      "parameters": sum(p.numel() for p in model.parameters())}
        row = rows[name]
        print(f"{name:>10}: {row['structures_per_s']:.2f} structures/s, {row['edges_per_s']:.0f} edges/s, "
              f"{row['s_per_step']:.2f} s/step (batch {bs}, {row['parameters']} parameters, {args.device})")
    products = "" if args.products == "frame" else ", e3nn products"
    merge_results(args.out, f"{args.config}, {args.device}, {torch.get_num_threads()} threads{products}",
                  {"rows": rows, "machine": machine(torch=torch.__version__)})


if __name__ == "__main__":
    main()
