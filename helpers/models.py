"""The series' network, `ConvNet` in plain `torch.nn`, and `MNISTClassifier`, its Lightning wrapper.

Notebook 01 trains `ConvNet` with a hand-written loop; notebook 03 shows `MNISTClassifier`'s code in
a cell and the later notebooks import it from here (a test checks that the two copies match).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from helpers.checks import (
    check_non_negative_number,
    check_positive_int,
    check_positive_number,
    check_probability,
)


class ConvNet(nn.Module):
    """Two conv-BatchNorm-ReLU-pool blocks, dropout, and a two-layer classifier head.

    28x28 -> conv(channels) -> pool -> 14x14 -> conv(2*channels) -> pool -> 7x7 -> fc(hidden) -> 10.
    Pooling after each convolution keeps it fast on a CPU, and BatchNorm lets it train at the
    high learning rates of a one-cycle schedule, so two epochs reach about 99% test accuracy.
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
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
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
        self.model = ConvNet(channels, hidden, dropout)
        self.train_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes=10, average="micro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_accuracy(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/accuracy", self.train_accuracy, on_step=True, on_epoch=True)
        return loss

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

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.learning_rate, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
