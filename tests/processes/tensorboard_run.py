"""Tiny runs for what notebook 04 shows of TensorBoard; prints their ids, folders and finish times.

One Lightning training with TensorBoardLogger beside WandbLogger, then a plain SummaryWriter loop mirrored
into a W&B run by `sync_tensorboard`, once with `wandb.tensorboard.patch(root_logdir=...)` and once without.
"""

from __future__ import annotations

import json
import time

import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch.utils.data import TensorDataset
from torch.utils.tensorboard import SummaryWriter

from helpers.data import tensor_batches
from helpers.models import MNISTClassifier
from helpers.notebook import quiet_lightning


def both_loggers() -> tuple[str, str]:
    """Both loggers on one Trainer, as in the notebook; the W&B run's id and TensorBoard's folder."""
    pl.seed_everything(0)
    data = TensorDataset(torch.randn(320, 1, 28, 28), torch.randint(0, 10, (320,)))
    wandb_logger = WandbLogger(project="tests", name="both")
    tb_logger = TensorBoardLogger("tb", name="lightning", default_hp_metric=False)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=[wandb_logger, tb_logger],
        log_every_n_steps=2,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    model = MNISTClassifier()
    trainer.fit(model, tensor_batches(data, 64, shuffle=True), tensor_batches(data, 160))
    trainer.test(model, tensor_batches(data, 160), verbose=False)
    run_id = wandb_logger.experiment.id
    wandb.finish()
    return run_id, tb_logger.log_dir


def plain_loop(log_dir: str) -> None:
    """TensorBoard-only logging code: no wandb in it."""
    writer = SummaryWriter(log_dir)
    for step in range(30):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        if step % 10 == 9:
            writer.add_scalar("val/accuracy", step / 30, step)
    writer.close()


def synced(name: str, log_dir: str, root: bool) -> dict:
    """`plain_loop` in a run with `sync_tensorboard=True`; how long `finish` took."""
    if root:
        wandb.tensorboard.patch(root_logdir=log_dir)
    run = wandb.init(project="tests", name=name, sync_tensorboard=True)
    plain_loop(log_dir)
    start = time.perf_counter()
    run.finish()
    finish = time.perf_counter() - start
    wandb.tensorboard.unpatch()
    return {"id": run.id, "log_dir": log_dir, "finish_s": finish}


def main() -> None:
    quiet_lightning()
    both_id, tb_log_dir = both_loggers()
    made = {
        "both": both_id,
        "tb_log_dir": tb_log_dir,
        "patched": synced("patched", "tb/patched", root=True),
        "alone": synced("alone", "tb/alone", root=False),
    }
    print(json.dumps(made))


if __name__ == "__main__":
    main()
