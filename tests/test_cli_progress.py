"""``tracegrad progress``: a run's standing from its folder (log and last checkpoint), and its figure."""

from test_training import _config, dataset  # noqa: F401  (module fixture, reused)
from tracegrad_ase.cli import main
from tracegrad_ase.cli_progress import progress_lines
from tracegrad_ase.model.run_folder import read_log
from tracegrad_ase.model.train import train


def test_progress_of_a_real_run_names_its_best_epoch_and_budget(tmp_path, dataset, capsys):  # noqa: F811
    cfg = _config(tmp_path, dataset, epochs=3)
    state = train(cfg)
    run = tmp_path / "run"
    with open(run / "log.jsonl", "a") as f:
        f.write('{"epoch": 4, "train_loss_h": 0.1')  # a line a kill cut short is not an epoch
    assert [r["epoch"] for r in read_log(run)] == [1, 2, 3]
    png = tmp_path / "progress.png"
    assert main(["progress", str(run), "--last", "2", "--plot", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.split() and line.split()[0].isdigit() and "epochs" not in line]
    assert [int(r.split()[0]) for r in rows] == [2, 3]
    best = state["best_epoch"]
    assert f"best: epoch {best}," in "\n".join(out) and f"{3 - best} epochs since" in "\n".join(out)
    assert any("<- best" in r for r in rows) == (best >= 2)
    assert "3 of at most 3 epochs" in "\n".join(out)
    assert png.stat().st_size > 10_000
    assert main(["progress", str(run), "--plot", str(png)]) == 2  # an existing figure is kept without --force
    capsys.readouterr()
    (run / "checkpoints" / "last").rename(run / "checkpoints" / ".last.old")  # a checkpoint swap in progress
    assert main(["progress", str(run)]) == 0
    assert f"best: epoch {best}," in capsys.readouterr().out


def test_progress_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["progress", str(tmp_path / "missing")]) == 2
    assert "no such training run folder" in capsys.readouterr().err
    assert main(["progress", str(tmp_path)]) == 2
    assert "no finished epoch yet" in capsys.readouterr().err


def test_progress_lines_read_the_selection_and_the_stopping_rules():
    records = [{"epoch": e, "train_loss_h": 0.1, "val_mae_mev": 10.0 / e, "val_band_mae_mev": 100.0 / e,
                "lr": 1e-3, "time_s": 3600.0 * e} for e in (1, 2, 3)]
    state = {"best_epoch": 2, "best_val": 50.0, "train_config": {
        "select_by": "band", "epochs": 100, "max_time_s": 36000, "early_stopping": 40, "min_lr": 1e-5,
        "lr_factor": 0.5, "lr_patience": 10}}
    text = "\n".join(progress_lines(records, state, last=3))
    assert "3 of at most 100 epochs; 3.00 h of training (max_time_s 10.0 h: ~7 more epochs at the table's 3600 s " \
           "per epoch)" in text
    assert "best: epoch 2, validation band MAE 50.0 meV; 1 epochs since (early stopping after 40)" in text
    assert text.count("<- best") == 1 and "times 0.5 after 10 epochs" in text
    loss_state = {**state, "train_config": {**state["train_config"], "select_by": "loss"}, "best_val": 0.0123}
    assert "validation loss 0.0123" in "\n".join(progress_lines(records, loss_state))
    assert "best:" not in "\n".join(progress_lines(records, None))  # a run without a checkpoint yet
    # a run that selects by loss logs no band MAE: a dash in its column, the columns still aligned
    table = progress_lines([{**r, "val_band_mae_mev": None} for r in records], None, last=3)[:4]
    assert len({len(line) for line in table}) == 1 and table[1].split()[3] == "-"
