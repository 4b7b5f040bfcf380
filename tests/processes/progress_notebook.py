"""What the tiny notebook of tests/test_progress.py trains, imported by its first cell.

A one-layer Lightning model on random tensors, a callback that interrupts a fit after step 3, and a
Trainer with nothing but a progress bar (and any other callbacks) writing.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def step(self, batch, name: str) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log(name, loss, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self.step(batch, "loss")

    def validation_step(self, batch, batch_idx):
        self.step(batch, "val_loss")

    def test_step(self, batch, batch_idx):
        self.step(batch, "test_loss")

    def predict_step(self, batch, batch_idx):
        return self.layer(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Interrupt(pl.Callback):
    """Raise a RuntimeError once 3 training steps are done."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == 3:
            raise RuntimeError("interrupted after step 3")


def data(n: int) -> DataLoader:
    """`n` random samples in batches of 8."""
    return DataLoader(TensorDataset(torch.randn(n, 4), torch.randn(n, 1)), batch_size=8)


def trainer(*callbacks: pl.Callback) -> pl.Trainer:
    """One epoch, no logger, no checkpoints, no model summary: only `callbacks` (a progress bar) write."""
    return pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
