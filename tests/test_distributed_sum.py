"""The loss sums of data-parallel training are reduced across processes (gloo here; NCCL takes CUDA tensors)."""

from __future__ import annotations

import torch.multiprocessing as mp


def _worker(rank: int, init: str, out) -> None:
    import torch.distributed as dist

    from tracegrad_ase.model.train import _all_sum

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        out.put((rank, _all_sum([1.0 + rank, 10.0 * rank])))
    finally:
        dist.destroy_process_group()


def test_all_sum_adds_every_rank(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    init = f"file://{tmp_path / 'store'}"
    procs = [ctx.Process(target=_worker, args=(r, init, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results == {0: [3.0, 10.0], 1: [3.0, 10.0]}


def test_all_sum_without_a_process_group_is_the_identity():
    from tracegrad_ase.model.train import _all_sum

    assert _all_sum([1.5, 2.5]) == [1.5, 2.5]
