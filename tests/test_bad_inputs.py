"""A new user's mistakes, one row each: every bad input must end in one clear sentence, and none of the
reader's files may be changed or deleted by the attempt.

Each row builds what it needs in its own temporary folder, then makes one call that must raise the
given exception with the given fragment in its message (for a command line, in what it prints). The
folder is fingerprinted before and after: every file and folder that was there must still be there,
with the same contents.
"""

# ruff: noqa: E501  (a table: each row's message fragment is kept whole, to be found by searching)
from __future__ import annotations

import hashlib
import math
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import optuna
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import resumable, sweeps, tracking, wandb_setup
from helpers.callbacks import InterruptAtStep, LogConfusionMatrix, LogMisclassified, LogPredictions
from helpers.data import (
    RAW_FILES_MD5,
    DatasetCorruptError,
    DatasetNotFoundError,
    MNISTDataModule,
    load_mnist,
    mnist_dataloaders,
    tensor_batches,
)
from helpers.models import ConvNet, MNISTClassifier
from helpers.paths import data_dir
from helpers.run_tables import collect_runs
from helpers.runfile import BLOCK_SIZE, CHUNK_HEADER, FULL, HEADER, HEADER_IDENT, HEADER_MAGIC
from helpers.tracking import find_runs, read_run

REAL_RAW = data_dir() / "MNIST" / "raw"
HAVE_MNIST = all((REAL_RAW / name).is_file() for name in RAW_FILES_MD5)
NAN, INF = math.nan, math.inf
TINY = TensorDataset(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))


# --- building bad inputs --------------------------------------------------------------------------------


def raw(tmp: Path) -> Path:
    folder = tmp / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def mnist_copy(tmp: Path, skip: tuple[str, ...] = ()) -> Path:
    """`tmp/MNIST/raw` with links to the real files, except `skip`."""
    for name in RAW_FILES_MD5:
        if name not in skip:
            (raw(tmp) / name).symlink_to(REAL_RAW / name)
    return tmp


def fake_files(tmp: Path, content: bytes) -> Path:
    """`tmp/MNIST/raw` with all four files holding `content` (no real data needed)."""
    for name in RAW_FILES_MD5:
        (raw(tmp) / name).write_bytes(content)
    return tmp


def replaced(tmp: Path, name: str, change) -> Path:
    """A copy of MNIST in which file `name` is `change(real bytes)`."""
    mnist_copy(tmp, skip=(name,))
    (raw(tmp) / name).write_bytes(change((REAL_RAW / name).read_bytes()))
    return tmp


def offline(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def chunk(data: bytes) -> bytes:
    """One whole record as W&B writes it: CRC-32 of its type byte and data, length, type, data."""
    return CHUNK_HEADER.pack(zlib.crc32(data, zlib.crc32(bytes([FULL]))), len(data), FULL) + data


def wandb_file(tmp: Path, change=lambda data: data, name: str = "run-abc.wandb") -> Path:
    """A run folder with a `.wandb` file of three checksummed records, then `change`d."""
    folder = tmp / "wandb" / "offline-run-20990101_000000-abc"
    folder.mkdir(parents=True)
    data = HEADER.pack(HEADER_IDENT, HEADER_MAGIC, 0) + b"".join(chunk(bytes([i]) * 300) for i in range(3))
    (folder / name).write_bytes(change(data))
    return folder


def run_folder(tmp: Path) -> Path:
    return tmp / "wandb" / "offline-run-20990101_000000-abc"


def two_files(tmp: Path) -> Path:
    """A run folder holding two `.wandb` files."""
    folder = wandb_file(tmp)
    (folder / "run-b.wandb").write_bytes((folder / "run-abc.wandb").read_bytes())
    return folder


def only_gz(tmp: Path) -> Path:
    """MNIST as the downloaded .gz files, not uncompressed."""
    for name in RAW_FILES_MD5:
        (raw(tmp) / f"{name}.gz").write_bytes(b"gz")
    return tmp


def a_file(path: Path) -> None:
    """A file where a folder or a run is expected."""
    path.write_text("x")


def flip(position: int):
    return lambda data: data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


# --- models and loaders the callbacks do not fit --------------------------------------------------------


class Tiny(pl.LightningModule):
    """A 3-class model whose forward output `shape` picks what goes wrong: 'dict', 'tuple', '3d', 'one'."""

    def __init__(self, output: str = "logits", classes: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, classes)
        self.output = output

    def forward(self, x):
        logits = self.linear(x.flatten(1))
        return {
            "logits": logits,
            "dict": {"logits": logits},
            "tuple": (logits, logits),
            "3d": logits.unsqueeze(1),
            "one": logits.mean(0, keepdim=True),
        }[self.output]

    def training_step(self, batch, batch_idx):
        x, y = batch if isinstance(batch, (list, tuple)) else (batch["x"], batch["y"])
        self.trained = True
        return nn.functional.cross_entropy(self.linear(x.flatten(1)), y.long().clamp(0, 2))

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(
    tmp: Path,
    callback: pl.Callback,
    model: pl.LightningModule,
    labels=None,
    wandb: bool = False,
    batches=None,
):
    """A call that fits `model` for one step with `callback`, on 8 images (labels 0-2 unless given)."""
    labels = labels if labels is not None else torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loader = batches or DataLoader(TensorDataset(torch.randn(8, 1, 28, 28), labels), batch_size=4)

    def call():
        logger = WandbLogger(project="tests", save_dir=str(tmp)) if wandb else CSVLogger(tmp)
        trainer = pl.Trainer(
            max_steps=1, logger=logger, callbacks=[callback], accelerator="cpu", enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        )  # fmt: skip
        try:
            trainer.fit(model, loader, loader)
        except BaseException:
            assert not hasattr(model, "trained"), "the check came after a training step"
            raise
        finally:
            if wandb:
                import wandb as wandb_module

                wandb_module.finish()

    return call


def prune_on(tmp: Path, monitor: str):
    """A call that trains MNISTClassifier for 2 steps, validating once, with OptunaPruning on `monitor`."""

    def call():
        trial = optuna.create_study().ask()
        trainer = pl.Trainer(
            max_steps=2, limit_val_batches=1, val_check_interval=2, logger=CSVLogger(tmp), accelerator="cpu",
            callbacks=[sweeps.OptunaPruning(trial, monitor=monitor)], enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        )  # fmt: skip
        loader = DataLoader(TINY, batch_size=4)
        trainer.fit(MNISTClassifier(), loader, loader)

    return call


# --- the table ------------------------------------------------------------------------------------------
# (id, make(tmp, monkeypatch) -> the failing call, exception, fragment of its message)

C = MNISTClassifier
CASES = [
    # Hyperparameters that cannot train, refused when the object is built.
    (
        "lr-inf",
        lambda t, m: lambda: C(learning_rate=INF),
        ValueError,
        "learning_rate must be a finite number above 0, got inf.",
    ),
    (
        "lr-nan",
        lambda t, m: lambda: C(learning_rate=NAN),
        ValueError,
        "learning_rate must be a finite number above 0, got nan.",
    ),
    (
        "lr-zero",
        lambda t, m: lambda: C(learning_rate=0),
        ValueError,
        "learning_rate must be a finite number above 0, got 0.",
    ),
    (
        "lr-negative",
        lambda t, m: lambda: C(learning_rate=-0.01),
        ValueError,
        "learning_rate must be a finite number above 0",
    ),
    (
        "lr-string",
        lambda t, m: lambda: C(learning_rate="0.01"),
        ValueError,
        "learning_rate must be a finite number above 0, got '0.01'",
    ),
    (
        "lr-bool",
        lambda t, m: lambda: C(learning_rate=True),
        ValueError,
        "learning_rate must be a finite number above 0, got True",
    ),
    (
        "lr-none",
        lambda t, m: lambda: C(learning_rate=None),
        ValueError,
        "learning_rate must be a finite number above 0, got None",
    ),
    (
        "lr-tensor",
        lambda t, m: lambda: C(learning_rate=torch.tensor(0.01)),
        ValueError,
        "learning_rate must be a finite number",
    ),
    (
        "wd-negative",
        lambda t, m: lambda: C(weight_decay=-0.1),
        ValueError,
        "weight_decay must be a finite number of 0 or more",
    ),
    (
        "wd-nan",
        lambda t, m: lambda: C(weight_decay=NAN),
        ValueError,
        "weight_decay must be a finite number of 0 or more, got nan",
    ),
    (
        "wd-inf",
        lambda t, m: lambda: C(weight_decay=INF),
        ValueError,
        "weight_decay must be a finite number of 0 or more, got inf",
    ),
    (
        "wd-string",
        lambda t, m: lambda: C(weight_decay="0"),
        ValueError,
        "weight_decay must be a finite number of 0 or more",
    ),
    (
        "dropout-one",
        lambda t, m: lambda: C(dropout=1.0),
        ValueError,
        "dropout must be a probability in [0, 1), got 1.0",
    ),
    (
        "dropout-negative",
        lambda t, m: lambda: C(dropout=-0.1),
        ValueError,
        "dropout must be a probability in [0, 1)",
    ),
    (
        "dropout-nan",
        lambda t, m: lambda: C(dropout=NAN),
        ValueError,
        "dropout must be a probability in [0, 1), got nan",
    ),
    (
        "dropout-string",
        lambda t, m: lambda: C(dropout="0.1"),
        ValueError,
        "dropout must be a probability in [0, 1)",
    ),
    (
        "channels-zero",
        lambda t, m: lambda: C(channels=0),
        ValueError,
        "channels must be a positive integer, got 0",
    ),
    (
        "channels-float",
        lambda t, m: lambda: C(channels=16.0),
        ValueError,
        "channels must be a positive integer, got 16.0",
    ),
    (
        "channels-bool",
        lambda t, m: lambda: C(channels=True),
        ValueError,
        "channels must be a positive integer, got True",
    ),
    (
        "hidden-negative",
        lambda t, m: lambda: C(hidden=-1),
        ValueError,
        "hidden must be a positive integer, got -1",
    ),
    (
        "convnet-classes-zero",
        lambda t, m: lambda: ConvNet(num_classes=0),
        ValueError,
        "num_classes must be a positive integer",
    ),
    (
        "convnet-classes-float",
        lambda t, m: lambda: ConvNet(num_classes=1.5),
        ValueError,
        "num_classes must be a positive integer",
    ),
    (
        "convnet-dropout",
        lambda t, m: lambda: ConvNet(dropout=1.5),
        ValueError,
        "dropout must be a probability in [0, 1)",
    ),
    # Data arguments.
    (
        "batch-zero",
        lambda t, m: lambda: MNISTDataModule(batch_size=0),
        ValueError,
        "batch_size must be a positive integer, got 0",
    ),
    (
        "batch-negative",
        lambda t, m: lambda: MNISTDataModule(batch_size=-3),
        ValueError,
        "batch_size must be a positive integer",
    ),
    (
        "batch-float",
        lambda t, m: lambda: MNISTDataModule(batch_size=2.5),
        ValueError,
        "batch_size must be a positive integer",
    ),
    (
        "batch-string",
        lambda t, m: lambda: MNISTDataModule(batch_size="128"),
        ValueError,
        "batch_size must be a positive integer, got '128'",
    ),
    (
        "batch-bool",
        lambda t, m: lambda: MNISTDataModule(batch_size=True),
        ValueError,
        "batch_size must be a positive integer, got True",
    ),
    (
        "eval-batch-zero",
        lambda t, m: lambda: MNISTDataModule(eval_batch_size=0),
        ValueError,
        "eval_batch_size must be a positive integer",
    ),
    (
        "val-fraction-zero",
        lambda t, m: lambda: MNISTDataModule(val_fraction=0),
        ValueError,
        "val_fraction must be a number strictly between 0 and 1, got 0",
    ),
    (
        "val-fraction-one",
        lambda t, m: lambda: load_mnist(t, val_fraction=1),
        ValueError,
        "val_fraction must be a number strictly between 0 and 1, got 1",
    ),
    (
        "val-fraction-nan",
        lambda t, m: lambda: load_mnist(t, val_fraction=NAN),
        ValueError,
        "val_fraction must be a number strictly between 0 and 1, got nan",
    ),
    (
        "datamodule-before-setup",
        lambda t, m: lambda: MNISTDataModule().train_dataloader(),
        RuntimeError,
        "MNISTDataModule has no data yet for its train loader: call datamodule.setup('fit') first",
    ),
    (
        "val-fraction-bool",
        lambda t, m: lambda: MNISTDataModule(val_fraction=True),
        ValueError,
        "val_fraction must be a number strictly between 0 and 1",
    ),
    (
        "split-seed-negative",
        lambda t, m: lambda: load_mnist(t, split_seed=-1),
        ValueError,
        "split_seed must be an integer of 0 or more, got -1",
    ),
    (
        "split-seed-float",
        lambda t, m: lambda: load_mnist(t, split_seed=1.5),
        ValueError,
        "split_seed must be an integer of 0 or more",
    ),
    (
        "root-int",
        lambda t, m: lambda: load_mnist(5),
        ValueError,
        "root must be a folder path (a str or Path), got 5.",
    ),
    (
        "loaders-batch-zero",
        lambda t, m: lambda: mnist_dataloaders(batch_size=0),
        ValueError,
        "batch_size must be a positive integer",
    ),
    (
        "loaders-eval-batch",
        lambda t, m: lambda: mnist_dataloaders(eval_batch_size=-1),
        ValueError,
        "eval_batch_size must be a positive integer",
    ),
    (
        "tensor-batches-zero",
        lambda t, m: lambda: tensor_batches(TINY, 0),
        ValueError,
        "batch_size must be a positive integer",
    ),
    # The data folder.
    (
        "data-root-is-a-file",
        lambda t, m: a_file(t / "data") or (lambda: load_mnist(t / "data")),
        DatasetNotFoundError,
        "data is a file, but MNIST needs a folder there",
    ),
    (
        "data-mnist-is-a-file",
        lambda t, m: a_file(t / "MNIST") or (lambda: load_mnist(t)),
        DatasetNotFoundError,
        "MNIST is a file, but MNIST needs a folder there",
    ),
    (
        "data-raw-is-a-file",
        lambda t, m: (t / "MNIST").mkdir() or a_file(t / "MNIST" / "raw") or (lambda: load_mnist(t)),
        DatasetNotFoundError,
        "raw is a file, but MNIST needs a folder there",
    ),
    (
        "data-idx-is-a-folder",
        lambda t, m: (raw(t) / "t10k-images-idx3-ubyte").mkdir() or (lambda: load_mnist(t)),
        DatasetNotFoundError,
        "t10k-images-idx3-ubyte is a folder, but it must be MNIST's file of that name",
    ),
    (
        "data-env-is-a-file",
        lambda t, m: a_file(t / "f") or m.setenv("TUTORIAL_DATA_DIR", str(t / "f")) or (lambda: load_mnist()),
        DatasetNotFoundError,
        "f is a file, but MNIST needs a folder there",
    ),
    (
        "data-read-only",
        lambda t, m: lambda: load_mnist("/sys/fs/tutorial-data"),
        DatasetNotFoundError,
        "/sys/fs/tutorial-data/MNIST/raw and that folder cannot be created (",
    ),
    (
        "data-nothing-offline",
        lambda t, m: offline(m) or (lambda: load_mnist(t)),
        DatasetNotFoundError,
        "could not be downloaded (no network?",
    ),
    (
        "data-nothing-download-off",
        lambda t, m: lambda: load_mnist(t, download=False),
        DatasetNotFoundError,
        "or pass download=True.",
    ),
    (
        "data-only-gz",
        lambda t, m: only_gz(t) and (lambda: load_mnist(t, download=False)),
        DatasetNotFoundError,
        "only the .gz of train-images-idx3-ubyte, train-labels-idx1-ubyte",
    ),
    (
        "data-garbage-files",
        lambda t, m: fake_files(t, b"not mnist at all") and (lambda: load_mnist(t)),
        DatasetCorruptError,
        "train-images-idx3-ubyte is not an MNIST file (no IDX header; 16 bytes)",
    ),
    (
        "data-empty-files",
        lambda t, m: fake_files(t, b"") and (lambda: load_mnist(t)),
        DatasetCorruptError,
        "train-images-idx3-ubyte is not an MNIST file (no IDX header; 0 bytes)",
    ),
]
if HAVE_MNIST:
    CASES += [
        (
            "data-train-labels-missing",
            lambda t, m: mnist_copy(t, skip=("train-labels-idx1-ubyte",)) and (lambda: load_mnist(t)),
            DatasetNotFoundError,
            "train-labels-idx1-ubyte missing while the other files are there",
        ),
        (
            "data-test-labels-missing",
            lambda t, m: mnist_copy(t, skip=("t10k-labels-idx1-ubyte",)) and (lambda: load_mnist(t)),
            DatasetNotFoundError,
            "MNIST is incomplete in",
        ),
        (
            "data-two-missing",
            lambda t, m: (
                mnist_copy(t, skip=("t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"))
                and (lambda: load_mnist(t))
            ),
            DatasetNotFoundError,
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte missing",
        ),
        (
            "data-truncated",
            lambda t, m: (
                replaced(t, "train-labels-idx1-ubyte", lambda d: d[:30_000]) and (lambda: load_mnist(t))
            ),
            DatasetCorruptError,
            "train-labels-idx1-ubyte is truncated or corrupt (30,000 bytes, its header promises 60,008)",
        ),
        (
            "data-longer",
            lambda t, m: (
                replaced(t, "t10k-labels-idx1-ubyte", lambda d: d + b"\0") and (lambda: load_mnist(t))
            ),
            DatasetCorruptError,
            "t10k-labels-idx1-ubyte is truncated or corrupt (10,009 bytes",
        ),
        (
            "data-one-byte-changed",
            lambda t, m: replaced(t, "t10k-labels-idx1-ubyte", flip(100)) and (lambda: load_mnist(t)),
            DatasetCorruptError,
            "t10k-labels-idx1-ubyte is corrupt (its MD5 sum is not MNIST's",
        ),
        (
            "data-val-fraction-tiny",
            lambda t, m: lambda: load_mnist(val_fraction=1e-9),
            ValueError,
            "leaves no image on one side of the split",
        ),
    ]
CASES += [
    # Callbacks, built wrong.
    (
        "cb-num-samples-zero",
        lambda t, m: lambda: LogPredictions(num_samples=0),
        ValueError,
        "num_samples must be a positive integer",
    ),
    (
        "cb-class-names-string",
        lambda t, m: lambda: LogPredictions(class_names="0123456789"),
        ValueError,
        "class_names must be a list of strings, one per class, got '0123456789'",
    ),
    (
        "cb-class-names-ints",
        lambda t, m: lambda: LogPredictions(class_names=[0, 1, 2]),
        ValueError,
        "class_names must be a list of strings",
    ),
    (
        "cb-to-pixels-string",
        lambda t, m: lambda: LogPredictions(to_pixels="rescale"),
        ValueError,
        "to_pixels must be a function (or None), got 'rescale'",
    ),
    (
        "cb-max-rows-zero",
        lambda t, m: lambda: LogMisclassified(max_rows=0),
        ValueError,
        "max_rows must be a positive integer",
    ),
    (
        "cb-misclassified-samples",
        lambda t, m: lambda: LogMisclassified(num_samples=-5),
        ValueError,
        "num_samples must be a positive integer",
    ),
    (
        "cb-matrix-samples-float",
        lambda t, m: lambda: LogConfusionMatrix(num_samples=2.5),
        ValueError,
        "num_samples must be a positive integer",
    ),
    (
        "cb-matrix-class-names-int",
        lambda t, m: lambda: LogConfusionMatrix(class_names=5),
        ValueError,
        "class_names must be a list of strings",
    ),
    (
        "pruning-monitor-misspelled",
        lambda t, m: prune_on(t, monitor="val/acuracy"),
        RuntimeError,
        "OptunaPruning monitors `val/acuracy`, which the model did not log: pass one of ['val/accuracy', 'val/loss'",
    ),
    (
        "interrupt-zero",
        lambda t, m: lambda: InterruptAtStep(0),
        ValueError,
        "step must be a positive integer",
    ),
    (
        "interrupt-float",
        lambda t, m: lambda: InterruptAtStep(1.5),
        ValueError,
        "step must be a positive integer",
    ),
    # Callbacks on a model or data they do not fit: stopped before the first training step.
    (
        "cb-forward-dict",
        lambda t, m: fit(t, LogPredictions(class_names=["a", "b", "c"]), Tiny("dict"), wandb=True),
        TypeError,
        "LogPredictions needs the model's forward to return a tensor of class logits (batch, classes), but it returned a dict",
    ),
    (
        "cb-forward-tuple",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny("tuple")),
        TypeError,
        "LogConfusionMatrix needs the model's forward to return a tensor of class logits (batch, classes), but it returned a tuple",
    ),
    (
        "cb-logits-3d",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny("3d")),
        ValueError,
        "for a batch of 2 it returned shape (2, 1, 3)",
    ),
    (
        "cb-logits-one-row",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny("one")),
        ValueError,
        "for a batch of 2 it returned shape (1, 3)",
    ),
    (
        "cb-fewer-class-names",
        lambda t, m: fit(t, LogMisclassified(class_names=["a", "b"]), Tiny(), wandb=True),
        ValueError,
        "LogMisclassified was given 2 class names, but the model scores 3 classes: pass one name per class.",
    ),
    (
        "cb-more-class-names",
        lambda t, m: fit(t, LogConfusionMatrix(class_names=list("abcdefghij")), Tiny()),
        ValueError,
        "was given 10 class names, but the model scores 3 classes",
    ),
    (
        "cb-labels-out-of-range",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny(), labels=torch.tensor([0, 1, 9, 0, 1, 2, 0, 1])),
        ValueError,
        "LogConfusionMatrix needs labels from 0 to 2 (the model scores 3 classes), but a batch has label 9.",
    ),
    (
        "cb-labels-negative",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny(), labels=torch.tensor([0, -1, 2, 0, 1, 2, 0, 1])),
        ValueError,
        "but a batch has label -1",
    ),
    (
        "cb-labels-float",
        lambda t, m: fit(t, LogConfusionMatrix(), Tiny(), labels=torch.rand(8)),
        ValueError,
        "needs labels as a 1-D tensor of class indices, but got shape (4,) of torch.float32",
    ),
    (
        "cb-labels-one-hot",
        lambda t, m: fit(
            t, LogConfusionMatrix(), Tiny(), labels=torch.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]].long()
        ),
        ValueError,
        "needs labels as a 1-D tensor of class indices, but got shape (4, 3)",
    ),
    (
        "cb-dict-batches",
        lambda t, m: fit(
            t,
            LogConfusionMatrix(),
            Tiny(),
            batches=DataLoader([{"x": torch.randn(1, 28, 28), "y": i % 3} for i in range(8)], batch_size=4),
        ),
        ValueError,
        "LogConfusionMatrix needs batches of (inputs, labels) tensors, but got a dict.",
    ),
    # Hyperparameter search.
    (
        "sweep-max-steps-zero",
        lambda t, m: lambda: sweeps.train_trial({}, None, max_steps=0),
        ValueError,
        "max_steps must be a positive integer",
    ),
    (
        "sweep-val-every-too-big",
        lambda t, m: lambda: sweeps.train_trial({}, None, max_steps=120, val_every=200),
        ValueError,
        "val_every (200) must be at most max_steps (120), or the trial never validates.",
    ),
    (
        "sweep-params-missing",
        lambda t, m: lambda: sweeps.train_trial({"learning_rate": 0.01}, None),
        ValueError,
        "params lacks dropout, channels; it needs learning_rate, dropout, channels.",
    ),
    (
        "sweep-params-string",
        lambda t, m: lambda: sweeps.train_trial("lr=0.01", None),
        ValueError,
        "params must be a dict of learning_rate, dropout, channels",
    ),
    (
        "sweep-params-lr-inf",
        lambda t, m: lambda: sweeps.train_trial({"learning_rate": INF, "dropout": 0.1, "channels": 8}, None),
        ValueError,
        "learning_rate must be a finite number above 0, got inf.",
    ),
    (
        "sweep-cli-trials-zero",
        lambda t, m: lambda: sweeps.main(["--study", "s", "--storage", str(t / "s.log"), "--trials", "0"]),
        SystemExit,
        "--trials must be a positive integer, got 0.",
    ),
    (
        "sweep-cli-val-every",
        lambda t, m: (
            lambda: sweeps.main(
                ["--study", "s", "--storage", str(t / "s.log"), "--max-steps", "10", "--val-every", "50"]
            )
        ),
        SystemExit,
        "val_every (50) must be at most max_steps (10)",
    ),
    # Reading runs back.
    (
        "read-missing",
        lambda t, m: lambda: read_run(t / "offline-run-x"),
        FileNotFoundError,
        "offline-run-x does not exist: pass a run folder (find_runs lists them) or its .wandb file.",
    ),
    (
        "read-text-file",
        lambda t, m: a_file(t / "notes.txt") or (lambda: read_run(t / "notes.txt")),
        ValueError,
        "notes.txt is not a .wandb file",
    ),
    (
        "read-folder-of-runs",
        lambda t, m: wandb_file(t) and (lambda: read_run(t / "wandb")),
        ValueError,
        "wandb is a folder of runs, not one run: pass one of its run folders (find_runs).",
    ),
    (
        "read-empty-folder",
        lambda t, m: lambda: read_run(t),
        ValueError,
        "is not a W&B run folder (one holding a .wandb file) nor a .wandb file.",
    ),
    (
        "read-two-files",
        lambda t, m: two_files(t) and (lambda: read_run(run_folder(t))),
        ValueError,
        "holds 2 .wandb files: pass the one to read.",
    ),
    (
        "read-not-a-path",
        lambda t, m: lambda: read_run(42),
        ValueError,
        "path must be a run folder or a .wandb file (a str or Path), got 42.",
    ),
    (
        "read-empty-file",
        lambda t, m: wandb_file(t, lambda d: b"") and (lambda: read_run(run_folder(t))),
        ValueError,
        "run-abc.wandb is damaged: it is empty; nothing of the run in it can be read.",
    ),
    (
        "read-header-only",
        lambda t, m: wandb_file(t, lambda d: d[:7]) and (lambda: read_run(run_folder(t))),
        RuntimeError,
        "run-abc.wandb holds no run yet",
    ),
    (
        "read-truncated",
        lambda t, m: wandb_file(t, lambda d: d[:-100]) and (lambda: read_run(run_folder(t))),
        ValueError,
        "is damaged: it is cut off inside a record; only its first 2 records (621 of 828 bytes) can be read: pass partial=True",
    ),
    (
        "read-cut-in-a-chunk-header",
        lambda t, m: wandb_file(t, lambda d: d[: 621 + 3]) and (lambda: read_run(run_folder(t))),
        ValueError,
        "it is cut off inside a record; only its first 2 records (621 of 624 bytes)",
    ),
    (
        "read-bit-flip",
        lambda t, m: wandb_file(t, flip(700)) and (lambda: read_run(run_folder(t))),
        ValueError,
        "the record at byte 621 does not match its checksum; only its first 2 records",
    ),
    (
        "read-bit-flip-in-type",
        lambda t, m: wandb_file(t, flip(621 + 6)) and (lambda: read_run(run_folder(t))),
        ValueError,
        "the record at byte 621 has a damaged header",
    ),
    (
        "read-bit-flip-in-length",
        lambda t, m: wandb_file(t, flip(621 + 4)) and (lambda: read_run(run_folder(t))),
        ValueError,
        "it is cut off inside a record; only its first 2 records",
    ),
    (
        "read-bit-flip-in-checksum",
        lambda t, m: wandb_file(t, flip(314)) and (lambda: read_run(run_folder(t))),
        ValueError,
        "the record at byte 314 does not match its checksum; nothing of the run in it can be read.",
    ),
    (
        "read-not-wandb",
        lambda t, m: wandb_file(t, lambda d: b"PK\x03\x04" + d[4:]) and (lambda: read_run(run_folder(t))),
        ValueError,
        "it does not start with W&B's header (not a .wandb file?)",
    ),
    (
        "read-newer-format",
        lambda t, m: wandb_file(t, lambda d: d[:6] + b"\x07" + d[7:]) and (lambda: read_run(run_folder(t))),
        ValueError,
        "it is in version 7 of W&B's format, and this reader knows version 0",
    ),
    (
        "read-padding-not-zero",
        lambda t, m: (
            wandb_file(t, lambda d: d[:7] + chunk(b"p" * (BLOCK_SIZE - 7 - 7 - 3)) + b"\1\0\0" + d[7:])
            and (lambda: read_run(run_folder(t)))
        ),
        ValueError,
        f"byte {BLOCK_SIZE - 3:,} should be padding",
    ),
    (
        "collect-missing-folder",
        lambda t, m: lambda: collect_runs(t / "nowhere"),
        FileNotFoundError,
        "nowhere does not exist: pass the folder that holds the run folders.",
    ),
    (
        "collect-a-file",
        lambda t, m: a_file(t / "runs.txt") or (lambda: collect_runs(t / "runs.txt")),
        FileNotFoundError,
        "runs.txt is a file, not a folder",
    ),
    (
        "collect-damaged",
        lambda t, m: wandb_file(t, lambda d: d[:-100]) and (lambda: collect_runs(t / "wandb")),
        ValueError,
        "pass partial=True to collect_runs to use the intact part of such files",
    ),
    (
        "find-missing-folder",
        lambda t, m: lambda: find_runs(t / "nowhere", run_id="abc"),
        FileNotFoundError,
        "nowhere does not exist",
    ),
    (
        "wandb-too-old",
        lambda t, m: lambda: tracking.check_wandb_version("0.30.2"),
        RuntimeError,
        "read_run needs wandb 0.31 or newer (for its `wandb leet inspect` reader), but wandb 0.30.2 is installed: upgrade it",
    ),
    (
        "wandb-mode-unknown",
        lambda t, m: (
            m.setenv("WANDB_MODE", "sometimes")
            or m.setenv("TUTORIAL_RUNS_DIR", str(t))
            or (lambda: wandb_setup.setup_wandb())
        ),
        ValueError,
        "WANDB_MODE must be one of online, offline, disabled, shared, got 'sometimes'.",
    ),
    # The resumable training's command line and folder.
    (
        "resumable-max-steps-zero",
        lambda t, m: lambda: resumable.main(["--folder", str(t / "r"), "--max-steps", "0"]),
        SystemExit,
        "--max-steps must be a positive integer, got 0.",
    ),
    (
        "resumable-checkpoint-every",
        lambda t, m: lambda: resumable.main(["--folder", str(t / "r"), "--checkpoint-every", "-1"]),
        SystemExit,
        "--checkpoint-every must be a positive integer, got -1.",
    ),
    (
        "resumable-synthetic-negative",
        lambda t, m: lambda: resumable.main(["--folder", str(t / "r"), "--synthetic", "-5"]),
        SystemExit,
        "--synthetic must be an integer of 0 or more, got -5.",
    ),
    (
        "resumable-flush-zero",
        lambda t, m: lambda: resumable.main(["--folder", str(t / "r"), "--wandb-flush-seconds", "0"]),
        SystemExit,
        "--wandb-flush-seconds must be a finite number above 0, got 0.0.",
    ),
    (
        "resumable-checkpoint-without-run",
        lambda t, m: (
            m.setenv("TUTORIAL_RUNS_DIR", str(t / "runs"))
            or (t / "r").mkdir()
            or a_file(t / "r" / "last.ckpt")
            or (lambda: resumable.main(["--folder", str(t / "r")]))
        ),
        SystemExit,
        "r/last.ckpt has no training.json beside it, so the settings it was started with are unknown: give another --folder to start afresh (nothing here is deleted).",
    ),
]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file, link and folder under `folder` with its contents (a link: its target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = f"link to {os.readlink(path)}"
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path)] = "folder"
    return found


@pytest.mark.parametrize(
    ("make", "error", "fragment"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_input_ends_in_one_clear_sentence_and_changes_nothing(
    make, error, fragment, tmp_path, monkeypatch, capsys
):
    call = make(tmp_path, monkeypatch)
    before = fingerprint(tmp_path)
    with pytest.raises(error) as caught:
        call()
    if error is SystemExit and not isinstance(caught.value.code, str):  # argparse printed it, then exited
        message = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        message = str(caught.value)
    assert fragment in message
    assert "\n" not in message.strip(), "one sentence, on one line"
    assert message.rstrip().endswith((".", ")")) or error is SystemExit
    after = fingerprint(tmp_path)
    assert {path: after.get(path) for path in before} == before, "an input was changed or deleted"


def test_the_table_is_long_enough():
    assert len(CASES) >= 80 and len({c[0] for c in CASES}) == len(CASES)
