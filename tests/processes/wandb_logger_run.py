"""A small WandbLogger training for what notebook 04 relies on; prints the runs' ids.

The first run has tags, a group, extra config, `watch`, a `define_metric` maximum, a CSVLogger beside it,
images, a table and text. A second WandbLogger made before `wandb.finish()` reuses that run; one made
after starts a fresh run.
"""

from __future__ import annotations

import json
import warnings

import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger
from torch.utils.data import TensorDataset

from helpers.data import tensor_batches
from helpers.models import MNISTClassifier
from helpers.notebook import quiet_lightning


def fit(logger: Logger | list[Logger], model: MNISTClassifier, data: TensorDataset, epochs: int = 2) -> None:
    """`epochs` of 5 batches of 64, logging every 2nd step."""
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        accelerator="cpu",
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, tensor_batches(data, 64, shuffle=True), tensor_batches(data, 160))


def main() -> None:
    quiet_lightning()
    pl.seed_everything(0)
    data = TensorDataset(torch.randn(320, 1, 28, 28), torch.randint(0, 10, (320,)))
    logger = WandbLogger(project="tests", name="logger", tags=["t"], group="g", config={"extra": 1})
    model = MNISTClassifier()
    logger.watch(model, log="all", log_freq=2)
    logger.experiment.define_metric("val/accuracy", summary="max")
    fit([logger, CSVLogger("csv")], model, data)
    images = data.tensors[0][:4].clamp(0, 1)
    logger.log_image(key="val/samples", images=list(images), caption=["a", "b", "c", "d"])
    logger.log_table(key="val/table", columns=["image", "label"], data=[[wandb.Image(images[0]), 3]])
    logger.log_text(key="val/notes", columns=["note"], data=[["hello"]])
    first_id = logger.experiment.id

    with warnings.catch_warnings():  # Lightning warns that it reuses the run: what this checks
        warnings.filterwarnings("ignore", "There is a wandb run already in progress", UserWarning)
        reused = WandbLogger(project="tests", name="reused").experiment.id == first_id
    wandb.finish()
    fresh = WandbLogger(project="tests", name="fresh")
    fit(fresh, MNISTClassifier(), data, epochs=1)
    fresh_id = fresh.experiment.id
    wandb.finish()
    print(json.dumps({"first": first_id, "reused": reused, "fresh": fresh_id}))


if __name__ == "__main__":
    main()
