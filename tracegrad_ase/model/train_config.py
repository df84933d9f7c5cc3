"""A training run's settings: ``TrainConfig`` (the keys of a training YAML, checked on construction) and the fixed
split a ``split_file`` gives."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.errors import DataFormatError

#: What defines a run: resuming with any of these changed would mix two runs (a different seed draws another
#: split, and the old split.json would be overwritten). Epochs, time limits, early stopping, snapshots, device
#: may change.
RESUME_MUST_MATCH = ("data", "model", "split", "seed", "batch_size", "lr", "weight_decay", "lr_factor",
                     "lr_patience", "grad_clip", "trace_weight", "dtype", "gauge", "band_weight", "band_form",
                     "band_kpoints", "band_window_ev", "band_lindep", "select_by", "split_file", "init_from",
                     "ema_decay")

#: The forms of the band loss (``band_form``): the eigenvalue errors, or their first-order projection.
BAND_FORMS = ("eigenvalues", "projected")


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
    # Compare with the truth moved to the prediction's energy zero (H + c*·S per structure): "periodic" (crystals,
    # slabs, wires: their zero is the cell-averaged potential), true (molecules too) or false.
    gauge: bool | str = "periodic"
    band_weight: float = 0.0  # weight of the band-energy loss L_B (0: off)
    # L_B from the eigenvalue errors ("eigenvalues") or from their first-order projection onto the truth's states
    # in the window ("projected": convex in H, no level pairing; model/losses.py window_projected_loss)
    band_form: str = "eigenvalues"
    band_kpoints: int = 4  # random k-points per crystal and step for L_B (molecules: Γ)
    # L_B counts the true levels within this of E_F (molecules: from this below the HOMO to this above the LUMO)
    band_window_ev: float = 3.0
    # Overlap directions below this are dropped when L_B and the validation band MAE solve a prediction (None: the
    # calculator's PREDICTED_LINDEP); set the value the model will be solved with (e.g. a molecules model's
    # calibrated lindep, calculators/calibrate_lindep.py).
    band_lindep: float | None = None
    # What picks checkpoints/best and early stopping: "loss" (validation L_H + band_weight * L_B) or "band" (the
    # validation band MAE in meV of the levels L_B counts, at band_kpoints fixed k-points per crystal, Γ for a
    # molecule): what users of the bands feel. The LR schedule follows the loss.
    select_by: str = "loss"
    # A JSON {"train": [...], "val": [...], "test": [...]} of structure file names (as in a run's split.json): a
    # fixed split instead of drawing one with `split` and `seed` (learning curves share validation and test sets).
    split_file: str | None = None
    # A model folder (or a run folder: its checkpoints/best) whose weights start this run instead of random ones:
    # fine-tuning when the data set has grown. Its architecture, elements and basis are kept, but for `num_layers` in
    # `model`: a larger number deepens it by layers that at first predict nothing (model/grow.py). The optimizer
    # starts afresh at `lr`.
    init_from: str | None = None
    # Validate, select and ship an exponential moving average of the weights over ~1/(1 - ema_decay) optimizer steps
    # (e.g. 0.99) instead of the last step's weights: steadier validation figures for select_by and early stopping
    # (model/averaging.py). None: off.
    ema_decay: float | None = None
    early_stopping: int = 40  # epochs without validation improvement
    # Every this many epochs also keep the validated weights (the averaged ones with ema_decay) in
    # checkpoints/epoch-NNNN: candidates that a later, larger validation set can choose among. None: off.
    snapshot_every: int | None = None
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
        for key in ("split_file", "init_from"):
            if raw.get(key) and not Path(raw[key]).is_absolute():
                raw[key] = str(root / raw[key])
        return cls(**raw)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse impossible values, all of them at once, as a :class:`~tracegrad_ase.errors.ConfigError` naming each
        (``batch_size: 0``, negative epochs, a split that does not sum to 1, ``lr: 1e-3`` that YAML reads as text).
        Runs on construction, so a bad YAML file stops before any data is read."""
        from ..core.errors import ConfigError

        def number(x: Any, low: float | None = None, strict: bool = False) -> bool:
            ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            return ok and (low is None or (x > low if strict else x >= low))

        def integer(x: Any, low: int) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= low

        split = self.split
        split_ok = isinstance(split, (list, tuple)) and len(split) == 3 and all(number(x, 0) for x in split) \
            and abs(sum(split) - 1) < 1e-6 and split[0] > 0 and split[1] > 0
        rules = [
            ("data", isinstance(self.data, list) and all(isinstance(p, (str, os.PathLike)) for p in self.data),
             "a list of data set folders"),
            ("out", isinstance(self.out, (str, os.PathLike)), "a folder name"),
            ("model", isinstance(self.model, dict), "a mapping of model settings"),
            ("split", split_ok, "3 fractions (train, validation, test) >= 0 summing to 1, train and validation > 0"),
            ("seed", integer(self.seed, -2**63), "an integer"),
            ("epochs", integer(self.epochs, 1), "an integer >= 1"),
            ("batch_size", integer(self.batch_size, 1), "an integer >= 1"),
            ("lr", number(self.lr, 0, True), "a number > 0 (in YAML write 1.0e-3: 1e-3 without a dot is text)"),
            ("weight_decay", number(self.weight_decay, 0), "a number >= 0"),
            ("lr_factor", number(self.lr_factor, 0, True) and self.lr_factor < 1, "a number between 0 and 1"),
            ("lr_patience", integer(self.lr_patience, 0), "an integer >= 0"),
            ("min_lr", number(self.min_lr, 0) and not (number(self.lr) and self.min_lr >= self.lr),
             "a number >= 0 and below lr"),
            ("grad_clip", number(self.grad_clip, 0, True), "a number > 0"),
            ("trace_weight", number(self.trace_weight, 0), "a number >= 0"),
            ("early_stopping", integer(self.early_stopping, 1), "an integer >= 1"),
            ("snapshot_every", self.snapshot_every is None or integer(self.snapshot_every, 1),
             "an integer >= 1 or null"),
            ("max_time_s", self.max_time_s is None or number(self.max_time_s, 0, True), "a number > 0 or null"),
            ("dtype", self.dtype in ("float32", "float64"), "'float32' or 'float64'"),
            ("device", isinstance(self.device, str) and bool(self.device), "a torch device such as 'cpu' or 'cuda'"),
            ("progress", isinstance(self.progress, bool), "true or false"),
        ]
        later = {"gauge": (lambda v: isinstance(v, bool) or v == "periodic", "true, false or 'periodic'"),
                 "band_weight": (lambda v: number(v, 0), "a number >= 0"),
                 "band_form": (lambda v: v in BAND_FORMS, " or ".join(repr(f) for f in BAND_FORMS)),
                 "band_kpoints": (lambda v: integer(v, 1), "an integer >= 1"),
                 "band_window_ev": (lambda v: number(v, 0, True), "a number > 0"),
                 "band_lindep": (lambda v: v is None or (number(v, 0) and v < 1), "a number in [0, 1) or null"),
                 "select_by": (lambda v: v in ("loss", "band"), "'loss' or 'band'"),
                 "split_file": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a file name or null"),
                 "init_from": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a model folder or null"),
                 "ema_decay": (lambda v: v is None or (number(v, 0, True) and v < 1), "a number in (0, 1) or null")}
        rules += [(k, ok(getattr(self, k)), what) for k, (ok, what) in later.items() if hasattr(self, k)]
        problems = [f"{name}={getattr(self, name)!r} (must be {what})" for name, ok, what in rules if not ok]
        if problems:
            raise ConfigError("bad training settings: " + "; ".join(problems))


def fixed_split(files: list[Path], split_file: str) -> tuple[list[Path], list[Path], list[Path]]:
    """The split a JSON of file names gives; every name must be one of the data's files."""
    try:
        names = json.loads(Path(split_file).read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{split_file}: unreadable split file ({exc})") from None
    by_name = {f.name: f for f in files}
    parts = []
    for part in ("train", "val", "test"):
        wanted = names.get(part, []) if isinstance(names, dict) else None
        if not isinstance(wanted, list):
            raise DataFormatError(f"{split_file}: needs lists 'train', 'val' and 'test' of structure file names")
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise DataFormatError(f"{split_file}: {len(missing)} {part} structure(s) are not in the data, "
                                  f"e.g. {missing[0]}")
        parts.append([by_name[n] for n in wanted])
    return parts[0], parts[1], parts[2]
