"""Time one epoch of MNIST batches under three loading strategies, side by side.

Run from the repository root:  python benchmarks/data_loading.py

It only iterates over the batches (no model), so it measures what the loader itself costs per
epoch. The strategies are interleaved over several rounds and the median is reported, so that
noise from the machine hits all of them alike.
"""

from __future__ import annotations

import statistics
import time

import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

from helpers.data import MEAN, STD, load_mnist, tensor_batches
from helpers.paths import data_dir

BATCH_SIZE = 128
ROUNDS = 3


def per_sample_transform_loader(num_workers: int) -> DataLoader:
    """The textbook pipeline: decode and normalise every image on the fly in __getitem__."""
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([MEAN], [STD])])
    dataset = torchvision.datasets.MNIST(data_dir(), train=True, transform=transform)
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=num_workers)


def in_memory_per_sample_loader(dataset: TensorDataset) -> DataLoader:
    """Tensors in memory, but the DataLoader still indexes one sample at a time and collates."""
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)


def time_epoch(loader: DataLoader) -> float:
    start = time.perf_counter()
    for images, _labels in loader:
        images.sum()  # touch the batch so that nothing is skipped
    return time.perf_counter() - start


def main() -> None:
    splits = load_mnist()
    candidates = {
        "torchvision dataset + transform, 0 workers": lambda: per_sample_transform_loader(0),
        "torchvision dataset + transform, 2 workers": lambda: per_sample_transform_loader(2),
        "in-memory tensors, per-sample DataLoader": lambda: in_memory_per_sample_loader(splits.train),
        "in-memory tensors, whole-batch indexing (helpers.data)": lambda: tensor_batches(
            splits.train, BATCH_SIZE, shuffle=True
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        for name, make_loader in candidates.items():
            times[name].append(time_epoch(make_loader()))
    fastest = min(statistics.median(t) for t in times.values())
    print(f"One epoch of MNIST batches (batch size {BATCH_SIZE}), median of {ROUNDS} rounds:")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<56} {median:7.2f} s   {median / fastest:5.1f}x")


if __name__ == "__main__":
    main()
