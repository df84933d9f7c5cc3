"""benchmarks/capacity_probe.py: each variant fits the structures it validates on, with the settings it names."""

import json
from pathlib import Path

import pytest
from conftest import benchmark_module  # tests/ is on sys.path: conftest lives there

from tracegrad_ase.model.train import TrainConfig

ARCH = {"elements": ["C"], "cutoff": 9.5, "num_layers": 2, "muls": [24, 12, 8, 6, 4], "tg_hidden": 128, "tg_z": 32,
        "target_scale": 0.45, "onsite_reference": {"C": [[0.0]]}}


@pytest.fixture(scope="module")
def probe():
    return benchmark_module("capacity_probe")


@pytest.fixture
def base(tmp_path):
    return TrainConfig(data=[str(tmp_path / "data")], out=str(tmp_path / "run"), init_from=str(tmp_path / "old"),
                       lr=3e-4, ema_decay=0.99, snapshot_every=10)


def test_scratch_variant_takes_the_architecture_shape_and_its_overrides(probe, base, tmp_path):
    cfg = probe.variant_config(base, "big", ["init_from=null", "lr=0.003", "num_layers=3", "muls=[32,16,12,8,6]"],
                               ["a.h5", "b.h5"], tmp_path / "v0", ARCH, 600)
    assert cfg.init_from is None and cfg.lr == 0.003 and cfg.max_time_s == 600
    assert cfg.model == {"cutoff": 9.5, "num_layers": 3, "muls": [32, 16, 12, 8, 6], "tg_hidden": 128, "tg_z": 32}
    assert cfg.ema_decay is None and cfg.snapshot_every is None  # off unless a variant sets them
    split = json.loads(Path(cfg.split_file).read_text())
    assert split == {"train": ["a.h5", "b.h5"], "val": ["a.h5", "b.h5"], "test": []}
    assert cfg.out == str(tmp_path / "v0")


def test_fine_tuning_variant_keeps_the_init_shape_or_grows_it_deeper(probe, base, tmp_path):
    cfg = probe.variant_config(base, "ft", ["ema_decay=0.9"], ["a.h5"], tmp_path / "v1", ARCH, 60)
    assert cfg.init_from == base.init_from and cfg.model == {} and cfg.lr == 3e-4 and cfg.ema_decay == 0.9
    grown = probe.variant_config(base, "grown", ["num_layers=3"], ["a.h5"], tmp_path / "v2", ARCH, 60)
    assert grown.init_from == base.init_from and grown.model == {"num_layers": 3}  # grows the init's network
    with pytest.raises(SystemExit, match="other than num_layers need init_from=null"):
        probe.variant_config(base, "ft", ["num_layers=3", "muls=[8,4]"], ["a.h5"], tmp_path / "v3", ARCH, 60)


@pytest.mark.parametrize("item, message", [("lr", "not KEY=VALUE"), ("layers=3", "unknown setting 'layers'")])
def test_bad_variant_settings_are_named(probe, base, tmp_path, item, message):
    with pytest.raises(SystemExit, match=message):
        probe.variant_config(base, "bad", [item], ["a.h5"], tmp_path / "v3", ARCH, 60)
