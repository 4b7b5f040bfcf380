"""The series' network, `ConvNet` in plain `torch.nn`, and `MNISTClassifier`, its Lightning wrapper.

Notebook 01 trains `ConvNet` with a hand-written loop; notebook 03 shows `MNISTClassifier`'s code in
a cell and the later notebooks import it from here (a test checks that the two copies match).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.functional.classification import multiclass_accuracy

from helpers.checks import (
    check_non_negative_number,
    check_positive_int,
    check_positive_number,
    check_probability,
)


class ConvNet(nn.Module):
    """Two conv-pool-BatchNorm-ReLU blocks, dropout, and a two-layer classifier head.

    28x28 -> conv(channels) -> pool -> 14x14 -> conv(2*channels) -> pool -> 7x7 -> fc(hidden) -> 10.
    BatchNorm lets it train at the high learning rates of a one-cycle schedule, so two epochs reach about
    99% test accuracy. Pooling straight after each convolution gives BatchNorm and ReLU a quarter of the
    pixels, which saves time on every step (`python -m benchmarks.model_speed` measures it).
    """

    def __init__(
        self, channels: int = 16, hidden: int = 128, dropout: float = 0.1, num_classes: int = 10
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("hidden", hidden), ("num_classes", num_classes)):
            check_positive_int(name, value)
        check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(2 * channels * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map a batch of images (N, 1, 28, 28) to class logits (N, num_classes)."""
        return self.classifier(self.features(images))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MNISTClassifier(pl.LightningModule):
    """ConvNet trained as in notebook 01: cross-entropy, AdamW and a one-cycle schedule stepped per batch."""

    def __init__(
        self,
        channels: int = 16,
        hidden: int = 128,
        dropout: float = 0.1,
        learning_rate: float = 0.01,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__()
        check_positive_number("learning_rate", learning_rate)
        check_non_negative_number("weight_decay", weight_decay)
        self.save_hyperparameters()  # stored in checkpoints, and sent to the logger's config
        # channels_last: the convolutions' faster memory layout on CPUs and GPUs (same numbers, less time)
        self.model = ConvNet(channels, hidden, dropout).to(memory_format=torch.channels_last)
        # One image's shape: the model summary then shows each layer's input and output sizes and its FLOPs.
        self.example_input_array = torch.zeros(1, 1, 28, 28)
        self.train_loss = MeanMetric()
        self.train_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes=10, average="micro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        # Every step: add the batch to the epoch means (torchmetrics' update() is cheap and syncs under DDP).
        self.train_loss.update(loss.detach())
        self.train_accuracy.update(logits, labels)
        # The logger writes one step in `log_every_n_steps` (50 by default), and each self.log call takes
        # time, so the per-step values are logged only on the steps it writes.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True)
            accuracy = multiclass_accuracy(logits, labels, num_classes=10, average="micro")
            self.log("train/accuracy_step", accuracy)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train/loss_epoch", self.train_loss)  # logging a metric computes and resets it
        self.log("train/accuracy_epoch", self.train_accuracy)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.val_accuracy(logits, labels)
        # sync_dist: under DDP, average over all processes' shards (a no-op on one device)
        self.log("val/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.log("val/accuracy", self.val_accuracy, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.test_accuracy(logits, labels)
        self.log("test/loss", F.cross_entropy(logits, labels), sync_dist=True)
        self.log("test/accuracy", self.test_accuracy)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.learning_rate,
            total_steps=int(self.trainer.estimated_stepping_batches),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
