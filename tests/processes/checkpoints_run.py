"""A small version of notebook 06's trainings, with checkpoints logged to offline W&B runs.

One training logs every checkpoint (`log_model="all"`); another is interrupted at `--interrupt-at` and
resumed from its last checkpoint into the same run. Prints the runs' ids and where the checkpoints are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import warnings

import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from torch.utils.data import TensorDataset

from helpers.callbacks import InterruptAtStep, SimulatedInterruption
from helpers.data import tensor_batches
from helpers.models import MNISTClassifier
from helpers.notebook import quiet_lightning

generator = torch.Generator().manual_seed(0)
labels = torch.randint(0, 10, (640,), generator=generator)
images = torch.randn(640, 1, 28, 28, generator=generator) + labels.view(-1, 1, 1, 1) / 3  # learnable
TRAIN = tensor_batches(TensorDataset(images, labels), 64, shuffle=True)  # 10 batches
VAL = tensor_batches(TensorDataset(images[:128], labels[:128]), 64)


def fit(logger: WandbLogger, model: MNISTClassifier, *callbacks: pl.Callback, ckpt_path=None) -> pl.Trainer:
    """Two epochs validated twice each, keeping the best and last checkpoints (and one on an exception)."""
    checkpoint = ModelCheckpoint(monitor="val/loss", save_top_k=1, save_last=True, save_on_exception=True)
    trainer = pl.Trainer(
        max_epochs=2,
        val_check_interval=0.5,
        log_every_n_steps=2,
        accelerator="cpu",
        logger=logger,
        callbacks=[checkpoint, *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, TRAIN, VAL, ckpt_path=ckpt_path)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--interrupt-at", type=int, required=True, help="the step the interrupted run stops at"
    )
    interrupt_at = parser.parse_args().interrupt_at
    quiet_lightning()
    # What the resume does on purpose: it writes into the interrupted training's checkpoint folder, and it
    # starts mid-epoch from a loader that cannot resume (the tests compare steps, not which batches).
    warnings.filterwarnings(
        "ignore", message="Checkpoint directory .* exists and is not empty", category=UserWarning
    )
    warnings.filterwarnings(
        "ignore",
        message="You're resuming from a checkpoint that ended before the epoch ended",
        category=PossibleUserWarning,
    )

    pl.seed_everything(0)
    trainer = fit(WandbLogger(project="tests", name="all", log_model="all"), MNISTClassifier())
    all_id = wandb.run.id
    wandb.finish()

    pl.seed_everything(0)
    logger = WandbLogger(project="tests", name="resume", log_model=True)
    resume_id = logger.experiment.id
    with contextlib.suppress(SimulatedInterruption):
        fit(logger, MNISTClassifier(), InterruptAtStep(interrupt_at))
    wandb.finish(exit_code=1)
    logger = WandbLogger(project="tests", name="resume", log_model=True, id=resume_id, resume="allow")
    resumed = fit(logger, MNISTClassifier(), ckpt_path="last")
    wandb.finish()

    outcome = {
        "all": all_id,
        "best": os.path.abspath(trainer.checkpoint_callback.best_model_path),
        "resume": resume_id,
        "resumed_step": resumed.global_step,
        "resumed_dir": os.path.abspath(resumed.checkpoint_callback.dirpath),
    }
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
