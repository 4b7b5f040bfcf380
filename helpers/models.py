"""The series' network: a small CNN for 28x28 digits, in plain `torch.nn` so any loop can train it."""

from __future__ import annotations

import torch
from torch import nn


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
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}.")
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
