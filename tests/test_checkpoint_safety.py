"""Checkpoints survive a kill at any moment, training resumes at the right epoch, and best is never replaced by a
worse model (issue #14)."""

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from faults import Killed, killed_at
from test_training import BASIS, SMALL, _config, dataset  # noqa: F401  (module fixture, reused)
from tracegrad_ase.core.errors import DataFormatError
from tracegrad_ase.model import ModelConfig, build_model
from tracegrad_ase.model.checkpoint import (CARD, TRAINER, TRAINER_JSON, TRAINER_TENSORS, WEIGHTS, is_complete,
                                            load_model, load_training_state, read_card, resolve_folder, save_model)
from tracegrad_ase.model.train import train


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / WEIGHTS))


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, dataset):  # noqa: F811
    root = tmp_path_factory.mktemp("straight")
    state = train(_config(root, dataset, epochs=3))
    return root / "run", state


@pytest.fixture(scope="module")
def after_one_epoch(tmp_path_factory, dataset):  # noqa: F811
    root = tmp_path_factory.mktemp("one")
    train(_config(root, dataset, epochs=1))
    return root / "run"


def _model(seed):
    torch.manual_seed(seed)
    return build_model(ModelConfig(elements=["H"], basis=BASIS.to_dict(), **SMALL))


@pytest.mark.parametrize("existing", [False, True])
def test_a_kill_at_any_step_of_a_checkpoint_write_leaves_old_or_new(tmp_path, existing):
    """Every rename, replace, rmtree and fsync of a save as a kill point: afterwards the folder (or the .old a swap
    left) is complete and holds the old or the new model, and the next save recovers and cleans up."""
    old, new = _model(1), _model(2)
    step = 0
    while True:
        root = tmp_path / f"kill{step}"
        if existing:
            save_model(old, root / "last", trainer_state={"x": torch.ones(1)}, state={"epoch": 1})
        try:
            with killed_at(step):
                save_model(new, root / "last", trainer_state={"x": torch.zeros(1)}, state={"epoch": 2})
        except Killed:
            pass
        else:
            break
        found = resolve_folder(root / "last")
        if existing or found.exists():
            assert is_complete(found), (step, _leftovers(root))
            got = _weights(found)
            assert _same_weights(got, old.state_dict()) or _same_weights(got, new.state_dict()), step
            assert load_training_state(found)[1]["epoch"] in (1, 2)
        save_model(new, root / "last", state={"epoch": 3}, trainer_state={"x": torch.zeros(1)})
        assert _same_weights(_weights(root / "last"), new.state_dict())
        assert _leftovers(root) == [], step
        step += 1
    assert step >= (8 if existing else 4)


def test_a_kill_at_any_step_of_a_save_loses_at_most_that_epoch(tmp_path, dataset, straight, after_one_epoch):  # noqa: F811
    """Kill epoch 2 at every rename/replace/rmtree of its writes (split.json, log, best, last), then resume to
    epoch 3: the checkpoint is the previous or the new one, complete, and the result equals an uninterrupted run.
    (Kills at the fsyncs in between leave the same states; the test above covers them for one save.)"""
    straight_run, straight_state = straight
    step, killed = 0, 0
    while True:
        root = tmp_path / f"kill{step}"
        shutil.copytree(after_one_epoch, root / "run")
        cfg = _config(root, dataset, epochs=2)
        try:
            with killed_at(step, fsync=False):
                train(cfg)
        except Killed:
            killed += 1
        else:
            break  # no step left to kill at
        ckpt = root / "run" / "checkpoints"
        last = resolve_folder(ckpt / "last")
        assert is_complete(last), (step, _leftovers(ckpt))
        assert load_training_state(last)[1]["epoch"] in (1, 2)
        assert is_complete(resolve_folder(ckpt / "best"))

        state = train(_config(root, dataset, epochs=3))
        assert state["epoch"] == 3
        log = [json.loads(line)["epoch"] for line in (root / "run" / "log.jsonl").read_text().splitlines()]
        assert log == [1, 2, 3], step
        assert [r["train_loss_h"] for r in state["history"]] == pytest.approx(
            [r["train_loss_h"] for r in straight_state["history"]], rel=1e-10)
        for name in ("last", "best"):
            assert _same_weights(_weights(ckpt / name), _weights(straight_run / "checkpoints" / name)), (step, name)
        assert _leftovers(ckpt) == [], step  # stale temporaries and .old folders are gone after the next writes
        step += 1
    assert killed >= 6  # split.json, best and last each offered kill points


def test_resume_from_old_folder_when_a_kill_left_last_missing(tmp_path, dataset):  # noqa: F811
    """The state a kill between the two renames of a swap leaves: no last, a complete .last.old."""
    train(_config(tmp_path, dataset, epochs=2))
    ckpt = tmp_path / "run" / "checkpoints"
    os.rename(ckpt / "last", ckpt / ".last.old")
    assert resolve_folder(ckpt / "last") == ckpt / ".last.old"
    assert load_model(ckpt / "last") is not None  # readers fall back on it
    state = train(_config(tmp_path, dataset, epochs=3))
    assert state["epoch"] == 3 and len(state["history"]) == 3  # resumed, not restarted from epoch 0
    assert (ckpt / "last").is_dir() and not (ckpt / ".last.old").exists()


def test_best_is_not_replaced_by_a_worse_model(tmp_path, dataset):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=6))
    ckpt = tmp_path / "run" / "checkpoints"
    best_card = read_card(ckpt / "best")
    assert {"val_loss", "val_loss_h"} <= set(best_card["metadata"])
    assert best_card["metadata"]["best_epoch"] > 1  # so epoch 1 of a new start is a worse model
    best_bytes = (ckpt / "best" / WEIGHTS).read_bytes()
    shutil.rmtree(ckpt / "last")  # lost: training starts again from epoch 0
    (tmp_path / "run" / "log.jsonl").unlink()
    train(_config(tmp_path, dataset, epochs=1))
    assert (ckpt / "best" / WEIGHTS).read_bytes() == best_bytes
    assert read_card(ckpt / "best") == best_card


def test_an_older_best_without_a_recorded_loss_is_replaced_as_before(tmp_path, dataset):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=1))
    ckpt = tmp_path / "run" / "checkpoints"
    card = json.loads((ckpt / "best" / CARD).read_text())
    card["metadata"] = {"best_epoch": 1, "val_mae_mev": 1.0}  # what 0.4 wrote
    (ckpt / "best" / CARD).write_text(json.dumps(card))
    shutil.rmtree(ckpt / "last")
    train(_config(tmp_path, dataset, epochs=1))
    assert "val_loss" in read_card(ckpt / "best")["metadata"]


def test_a_cut_log_line_does_not_block_resuming(tmp_path, dataset):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=2))
    log = tmp_path / "run" / "log.jsonl"
    with open(log, "a") as f:
        f.write('{"epoch": 3, "train_loss_h": 0.1')  # a kill in the middle of the next line
    train(_config(tmp_path, dataset, epochs=3))
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("damage", ["json", "tensors", "legacy"])
def test_a_corrupt_trainer_state_is_named_without_torch_advice(tmp_path, dataset, damage):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=1))
    last = tmp_path / "run" / "checkpoints" / "last"
    bad = {"json": TRAINER_JSON, "tensors": TRAINER_TENSORS, "legacy": TRAINER}[damage]
    (last / bad).write_bytes(b"PK\x03\x04 not what it claims to be")
    with pytest.raises(DataFormatError) as err:
        train(_config(tmp_path, dataset, epochs=2))
    msg = str(err.value)
    assert str(last / bad) in msg and "delete" in msg.lower() and "checkpoints/best" in msg
    assert "weights_only" not in msg and "WeightsUnpickler" not in msg


def test_legacy_trainer_pt_is_still_read(tmp_path, dataset):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=1))
    last = tmp_path / "run" / "checkpoints" / "last"
    trainer, _ = load_training_state(last)
    torch.save(trainer, last / TRAINER)
    (last / TRAINER_JSON).unlink()
    (last / TRAINER_TENSORS).unlink()
    assert is_complete(last)
    assert train(_config(tmp_path, dataset, epochs=2))["epoch"] == 2


def test_trainer_state_round_trips_without_pickle(tmp_path):
    model = build_model(ModelConfig(elements=["H"], basis=BASIS.to_dict(), **SMALL))
    state = {"optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 2)}},
                           "param_groups": [{"betas": (0.9, 0.999), "params": [0], "foreach": None}]},
             "scheduler": {"best": float("inf"), "min_lrs": [0.0], "mode": "min"}, "torch_rng": torch.get_rng_state()}
    save_model(model, tmp_path / "m", trainer_state=state, state={"epoch": 1})
    back, _ = load_training_state(tmp_path / "m")
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay int: the optimizer maps states by them
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["scheduler"]["best"] == float("inf")
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], torch.ones(2, 2))
    assert not (tmp_path / "m" / TRAINER).exists()


def test_save_cleans_stale_temporaries_and_uses_the_umask(tmp_path):
    model = build_model(ModelConfig(elements=["H"], basis=BASIS.to_dict(), **SMALL))
    (tmp_path / ".last.abcd1234.tmp").mkdir()  # a killed writer's folder
    (tmp_path / ".last.abcd1234.tmp" / WEIGHTS).write_bytes(b"half")
    (tmp_path / ".last.zzzz9999.tmp").write_text("x")
    (tmp_path / ".best.abcd1234.tmp").mkdir()  # another target's: not ours to remove now
    (tmp_path / ".last.notes").write_text("a user's file")
    old = os.umask(0o022)
    try:
        save_model(model, tmp_path / "last")
        save_model(model, tmp_path / "last")  # replaces a complete folder: the swap path
    finally:
        os.umask(old)
    assert _leftovers(tmp_path) == [".best.abcd1234.tmp", ".last.notes"]
    assert (tmp_path / "last").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "last" / CARD).stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "last" / WEIGHTS).stat().st_mode & 0o777 == 0o644
