"""A training that survives being killed: run the same command again and it carries on, in the same W&B run.

    python -m helpers.resumable --folder runs/resumable/demo --max-steps 400

The folder is the training's identity. The first call starts a W&B run and writes `training.json`
there (the run's id and the settings); every checkpoint carries the run's id too. Every later call with
that folder resumes from its newest checkpoint into the same run (offline: a new run folder with the same
id, which `wandb sync` joins), or says that the training is finished.

SIGTERM, what SLURM, Kubernetes and most spot VMs send some seconds before they kill, stops the training
cleanly: Lightning notes the signal (`trainer.received_sigterm`) and, once the batch that was running and its
logging are done, raises `SIGTERMException`; `CommittedCheckpoints.on_exception` saves a checkpoint of that
moment, W&B writes the run's file, and the command exits with `PREEMPTED` (143 = 128 + 15, what a shell
reports for a process that SIGTERM ended), so that whatever restarts it sees an unfinished training. A
SIGTERM during a validation ends the validation before its results are logged: then the checkpoint before it
is kept, and the steps since are redone. A process killed at any moment, even with SIGKILL, which leaves no
chance to save anything, loses no logged step and logs none twice:

* A checkpoint (`pending.ckpt`) is taken at the end of a batch, where Lightning's own are, and becomes
  the one to resume from (`last.ckpt`, replaced atomically) only at the start of the next batch or at
  the end of training. By then Lightning has logged that batch's metrics, its validation and its
  epoch's metrics: Lightning logs them after the callbacks' end-of-batch hook, so a checkpoint used at
  once could resume past a step whose metrics never reached W&B.
* W&B's service writes a run's records to its `.wandb` file every 15 s (and when the run finishes):
  when the training process is killed, the service ends too and what it had not written yet is lost.
  So every scalar is first written to a ledger in the folder, `logged.jsonl`, which the operating
  system keeps even when the process is killed. A resume logs again, from the ledger, the values of
  the steps before its checkpoint that are missing from the earlier parts' files (read with
  `read_run(..., partial=True)`: a killed part may be cut off mid-record). Logged images and tables
  are not in the ledger: those of the last seconds before a kill can be lost.
* A resume redoes the steps after its checkpoint, and logs none of the (metric, step) pairs that the
  earlier parts' files already hold: each value is kept from the part that first logged it. The
  script prints which steps are redone and how many values it logged again from the ledger.

Steps are counted by `trainer/global_step` (W&B's own `_step` starts again at 0 in each offline part).
The pieces also work without the command line, for a training interrupted in a notebook:
`CommittedCheckpoints` in the Trainer's callbacks, a `ResumedWandbLogger` to start with, and to resume
`Resumption.find(run_id, restored_step, ledger).logger(...)` with `ckpt_path=checkpoints.last`.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from torch.utils.data import TensorDataset

from helpers.checks import check_non_negative_int, check_positive_int, check_positive_number
from helpers.data import MNISTDataModule, tensor_batches
from helpers.models import MNISTClassifier
from helpers.paths import display_path, runs_dir
from helpers.tracking import RunRecord, find_runs, read_run
from helpers.wandb_setup import WANDB_PROJECT, own_wandb_service, setup_wandb

SETTINGS = (
    "max_steps",
    "checkpoint_every",
    "log_every_n_steps",
    "val_every",
    "batch_size",
    "synthetic",
    "seed",
)
BOOKKEEPING = ("epoch", "trainer/global_step")  # logged with every call, not metrics of their own
PREEMPTED = 143  # the exit status after a clean stop on SIGTERM: 128 + signal 15, as a shell reports it


def logged_pairs(parts: Sequence[RunRecord]) -> set[tuple[str, int]]:
    """Every (key, trainer/global_step) that the parts logged; a logged image or table `key` shows up in
    the history as `key.path`, `key._type`, ..., so each prefix of a dotted column counts as a key."""
    pairs: set[tuple[str, int]] = set()
    for part in parts:
        if "trainer/global_step" not in part.history:
            continue
        for column in part.history.columns:
            logged = part.history.loc[part.history[column].notna(), "trainer/global_step"].dropna()
            pieces = column.split(".")
            for key in (".".join(pieces[: i + 1]) for i in range(len(pieces))):
                pairs.update((key, int(step)) for step in logged)
    return pairs


class ResumedWandbLogger(WandbLogger):
    """A `WandbLogger` that leaves out each metric an earlier part of the run logged at that step, and
    first writes each scalar it logs to a ledger, `logged.jsonl`, that outlives a killed process."""

    def __init__(
        self, ledger: Path, already_logged: AbstractSet[tuple[str, int]] = frozenset(), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.ledger = Path(ledger)
        self.already_logged = already_logged
        if self.ledger.exists() and not self.ledger.read_bytes().endswith(b"\n"):
            # A line cut off by a kill: start the next on a line of its own.
            with self.ledger.open("a") as file:
                file.write("\n")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and self.already_logged:
            metrics = {
                k: v for k, v in metrics.items() if k in BOOKKEEPING or (k, step) not in self.already_logged
            }
            if not set(metrics) - set(BOOKKEEPING):
                return
        if step is not None:
            scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            with self.ledger.open("a") as ledger:  # written by the OS at once: a kill cannot lose it
                ledger.write(json.dumps({"step": step, "metrics": scalars}) + "\n")
        super().log_metrics(metrics, step)


def read_ledger(path: Path) -> dict[tuple[str, int], float]:
    """The scalars in a ledger by (key, step); a last line cut off by a kill is left out."""
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # the last line, when the process died while writing it
                continue
            values.update({(key, entry["step"]): value for key, value in entry["metrics"].items()})
    return values


@dataclass
class Resumption:
    """What a resume of W&B run `run_id` from `restored_step` finds: its earlier parts on disk, the
    (metric, step) pairs they hold, and the ledger's values of earlier steps that W&B never wrote."""

    run_id: str
    restored_step: int
    ledger: Path
    parts: list[RunRecord]
    on_disk: set[tuple[str, int]]
    lost: dict[tuple[str, int], float]

    @classmethod
    def find(cls, run_id: str, restored_step: int, ledger: Path, directory: Path | None = None) -> Resumption:
        """Read the run's parts under `directory` (default: the W&B folder in `runs/`) and the ledger."""
        folders = find_runs(directory if directory is not None else runs_dir() / "wandb", run_id=run_id)
        parts = [read_run(folder, partial=True) for folder in folders]  # a killed part may be cut off
        on_disk = logged_pairs(parts)
        # Steps before the checkpoint are not computed again: what W&B lost of them comes from the ledger.
        lost = {
            (key, step): value
            for (key, step), value in read_ledger(ledger).items()
            if step < restored_step and (key, step) not in on_disk and key not in BOOKKEEPING
        }
        return cls(run_id, restored_step, ledger, parts, on_disk, lost)

    def logger(self, **logger_args: Any) -> ResumedWandbLogger:
        """A logger into the same run that logs the lost values again, then leaves out what is on disk."""
        logger = ResumedWandbLogger(self.ledger, self.on_disk, id=self.run_id, resume="allow", **logger_args)
        for step in sorted({step for _, step in self.lost}):
            logger.log_metrics({key: v for (key, s), v in self.lost.items() if s == step}, step)
        return logger

    def redone(self) -> str:
        """Which steps the resume computes again that the earlier parts had logged, in words."""
        steps = sorted({step for _, step in self.on_disk if step >= self.restored_step})
        if not steps:
            return "no step after it had been logged"
        return (
            f"steps {steps[0]}-{steps[-1]} (trainer/global_step) are computed again, but the interrupted "
            f"part had logged them already and they are not logged twice"
        )

    def replayed(self) -> str:
        """How many lost values the resume logs again, in words."""
        count = len(self.lost)
        return f"{count} values that W&B had not written to disk were logged again from {self.ledger.name}"


class CommittedCheckpoints(pl.Callback):
    """Every `every_n_steps` steps, save `pending.ckpt` at the end of the batch and make it `last.ckpt` once
    that batch's logging is done (the next batch's start, or the end of training); on SIGTERM, save and
    commit the state at the moment Lightning stops. Each checkpoint carries the W&B run's id, `run_id`."""

    def __init__(self, folder: Path, every_n_steps: int, run_id: str | None = None) -> None:
        check_positive_int("checkpoint_every", every_n_steps)
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self.run_id = run_id
        self.pending = False
        self.stopped_at: int | None = None  # the step of the checkpoint saved on SIGTERM

    @property
    def last(self) -> Path:
        return self.folder / "last.ckpt"

    def _save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.folder / "pending.ckpt", weights_only=False)  # all, to resume from
        self.pending = True

    def _commit(self) -> None:
        if self.pending:
            os.replace(self.folder / "pending.ckpt", self.last)  # atomic: last.ckpt is always whole
            self.pending = False

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._commit()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.pending:
            self._save(trainer)
        self._commit()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash: resume from the last committed checkpoint
        if trainer.validating:  # stopped inside a validation, whose results were never logged
            self.pending = False  # this batch's checkpoint would skip that validation: keep the one before
            return
        # Lightning raises it after the batch's logging and validation, where it resumes without redoing them.
        self._save(trainer)
        self._commit()
        self.stopped_at = trainer.global_step

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        if self.run_id is not None:
            checkpoint["wandb_run_id"] = self.run_id


def synthetic_loaders(samples: int, batch_size: int, seed: int) -> tuple:
    """Train and validation loaders of random 28x28 images whose brightness tells the class (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (samples,), generator=generator)
    images = torch.randn(samples, 1, 28, 28, generator=generator) + labels.view(-1, 1, 1, 1) / 3
    val = max(batch_size, samples // 5)
    return (
        tensor_batches(TensorDataset(images[val:], labels[val:]), batch_size, shuffle=True),
        tensor_batches(TensorDataset(images[:val], labels[:val]), batch_size),
    )


def _load_training(folder: Path, settings: dict) -> dict | None:
    """The folder's training.json, if a training was started there; refuse other settings for it."""
    path = folder / "training.json"
    if not path.exists():
        return None
    training = json.loads(path.read_text())
    changed = [
        f"--{k.replace('_', '-')} {training['settings'][k]}"
        for k in SETTINGS
        if training["settings"][k] != settings[k]
    ]
    if changed:
        raise SystemExit(
            f"The training in {display_path(folder)} was started with {', '.join(changed)}: resume it with "
            f"the same settings, or give another --folder for a new training."
        )
    return training


def _write_json(path: Path, content: dict) -> None:
    """Write `content` so that `path` is never half-written, whenever the process dies."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(content, indent=1))
    os.replace(partial, path)


def train(args: argparse.Namespace, callbacks: Sequence[pl.Callback] = ()) -> int:
    """Start or resume the training in `args.folder`; the number of steps done when it returns."""
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {name: getattr(args, name) for name in SETTINGS}
    training = _load_training(folder, settings)
    checkpoints = CommittedCheckpoints(folder, args.checkpoint_every)
    if training is None and checkpoints.last.exists():
        raise SystemExit(
            f"{display_path(checkpoints.last)} has no training.json beside it, so the settings it was "
            "started with are unknown: give another --folder to start afresh (nothing here is deleted)."
        )
    saved = torch.load(checkpoints.last, weights_only=True) if checkpoints.last.exists() else {}
    restored_step = saved.get("global_step", 0)
    run_id = training["wandb_run_id"] if training is not None else None
    if saved.get("wandb_run_id", run_id) != run_id:
        raise SystemExit(
            f"{display_path(checkpoints.last)} belongs to W&B run {saved['wandb_run_id']}, but training.json "
            f"beside it names run {run_id}: put each checkpoint back in its own training's "
            f"folder, or give another --folder to start afresh."
        )
    logger_args = {
        "project": args.project,
        "name": folder.name,
        "save_dir": str(runs_dir()),
        "settings": wandb.Settings(x_transaction_log_flush_interval=args.wandb_flush_seconds),
    }
    ledger = folder / "logged.jsonl"
    if training is None:
        logger = ResumedWandbLogger(ledger, **logger_args)
        _write_json(folder / "training.json", {"wandb_run_id": logger.experiment.id, "settings": settings})
        print(f"Started W&B run {logger.experiment.id}; checkpoints go to {display_path(folder)}.")
    else:
        resumption = Resumption.find(training["wandb_run_id"], restored_step, ledger)
        finished = restored_step >= args.max_steps
        if finished and not resumption.lost:
            print(
                f"The training in {display_path(folder)} is finished ({restored_step} steps): nothing to do."
            )
            return restored_step
        logger = resumption.logger(**logger_args)
        if finished:
            wandb.finish()
            done = f"The training in {display_path(folder)} is finished ({restored_step} steps)"
            print(f"{done}; {resumption.replayed()}.")
            return restored_step
        start = f"step {restored_step}" if checkpoints.last.exists() else "the start (no checkpoint yet)"
        earlier = f"{len(resumption.parts)} earlier part{'' if len(resumption.parts) == 1 else 's'}"
        print(
            f"Resuming W&B run {resumption.run_id} ({earlier}) from {start}: "
            f"{resumption.redone()}; {resumption.replayed()}."
        )

    checkpoints.run_id = logger.experiment.id  # stored in every checkpoint, beside training.json's copy
    pl.seed_everything(args.seed, verbose=False)
    if args.synthetic:
        train_loader, val_loader = synthetic_loaders(args.synthetic, args.batch_size, args.seed)
        data = {"train_dataloaders": train_loader, "val_dataloaders": val_loader}
    else:
        data = {"datamodule": MNISTDataModule(batch_size=args.batch_size)}
    trainer = pl.Trainer(
        max_steps=args.max_steps,
        val_check_interval=args.val_every,
        check_val_every_n_epoch=None,  # validate every `val_every` steps, across epoch boundaries too
        log_every_n_steps=args.log_every_n_steps,
        accelerator="auto",
        logger=logger,
        callbacks=[checkpoints, *callbacks],
        enable_checkpointing=False,  # CommittedCheckpoints takes them
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        # Resuming mid-epoch: Lightning warns that the loader's order is not restored; we report redone steps.
        warnings.filterwarnings(
            "ignore", "You're resuming from a checkpoint that ended before", PossibleUserWarning
        )
        try:
            trainer.fit(
                MNISTClassifier(), ckpt_path=checkpoints.last if checkpoints.last.exists() else None, **data
            )
        except SIGTERMException:  # Lightning stopped at the end of a batch after a SIGTERM
            exit_preempted(logger, checkpoints, folder)
    wandb.finish()
    print(f"The training in {display_path(folder)} is finished ({trainer.global_step} steps).")
    return trainer.global_step


def exit_preempted(logger: WandbLogger, checkpoints: CommittedCheckpoints, folder: Path) -> None:
    """After a SIGTERM: tell W&B, write the run's file, say where to resume from, exit with `PREEMPTED`."""
    logger.experiment.mark_preempting()
    wandb.finish(exit_code=PREEMPTED)
    if checkpoints.stopped_at is not None:
        kept = f"saved {checkpoints.last.name} at step {checkpoints.stopped_at}"
    elif checkpoints.last.exists():
        step = torch.load(checkpoints.last, weights_only=True)["global_step"]
        kept = f"it stopped inside a validation, so {checkpoints.last.name} stays at step {step}"
    else:
        kept = "it stopped before the first checkpoint"
    print(
        f"Stopped by SIGTERM: {kept}. Run the same command to continue the training in "
        f"{display_path(folder)}.",
        flush=True,
    )
    raise SystemExit(PREEMPTED)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the series' classifier so that a killed run resumes.")
    parser.add_argument(
        "--folder", default=str(runs_dir() / "resumable"), help="checkpoints and the run's id"
    )
    parser.add_argument("--max-steps", type=int, default=400, help="training steps in all")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--log-every-n-steps", type=int, default=10, help="Lightning's logging interval")
    parser.add_argument("--val-every", type=int, default=100, help="validate every N steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--synthetic", type=int, default=0, help="train on N random images, not MNIST (tests)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", default=WANDB_PROJECT)
    parser.add_argument(
        "--wandb-flush-seconds",
        type=float,
        default=15.0,
        help="how often W&B writes the run's file (W&B: 15)",
    )
    return parser


def main(argv: Sequence[str] | None = None, callbacks: Sequence[pl.Callback] = ()) -> int:
    """Parse the command line, then start or resume; `callbacks` are added to the Trainer's."""
    args = parser().parse_args(argv)
    try:
        for name in ("max_steps", "checkpoint_every", "log_every_n_steps", "val_every", "batch_size"):
            check_positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
        for name in ("synthetic", "seed"):
            check_non_negative_int(f"--{name}", getattr(args, name))
        check_positive_number("--wandb-flush-seconds", args.wandb_flush_seconds)
    except ValueError as error:
        parser().error(str(error))
    own_wandb_service()  # a killed training's run must end with it, not stay open in a parent's service
    setup_wandb()
    return train(args, callbacks)


if __name__ == "__main__":
    main()
