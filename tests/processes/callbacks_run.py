"""helpers.callbacks on a tiny classifier that is not the series' model, logging to an offline W&B run.

The classifier, its data and its Trainer are imported by tests/test_callbacks.py too, for the tests that
need no W&B run. A 3-class problem on 8x8 inputs, learnable but not perfectly, and a linear model with no
attribute names in common with the series' MNISTClassifier.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import wandb
from pytorch_lightning.loggers import Logger, WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.callbacks import LogConfusionMatrix, LogMisclassified, LogPredictions
from helpers.notebook import quiet_lightning

CLASS_NAMES = ["a", "b", "c"]


class TinyClassifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loaders() -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders over the same 240 samples."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (240,), generator=generator)
    inputs = torch.randn(240, 1, 8, 8, generator=generator) * 2 + labels.view(-1, 1, 1, 1)
    data = TensorDataset(inputs, labels)
    return DataLoader(data, batch_size=40, shuffle=True), DataLoader(data, batch_size=50)


def trainer(logger: Logger | bool, callbacks: list[pl.Callback]) -> pl.Trainer:
    """Two epochs on the CPU, with nothing but the logger and the callbacks writing."""
    return pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
    )


def main() -> None:
    quiet_lightning()
    pl.seed_everything(0)
    callbacks = [
        LogPredictions(num_samples=6, class_names=CLASS_NAMES),
        LogMisclassified(num_samples=120, max_rows=5, class_names=CLASS_NAMES),
        LogConfusionMatrix(num_samples=120, class_names=CLASS_NAMES),
    ]
    train, val = loaders()
    trainer(WandbLogger(project="tests", name="callbacks"), callbacks).fit(TinyClassifier(), train, val)
    wandb.finish()


if __name__ == "__main__":
    main()
