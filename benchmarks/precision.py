"""Time a training step of the series' ConvNet in fp32, with channels_last, and with bf16 autocast.

Run from the repository root:  python benchmarks/precision.py

Each variant trains on the same in-memory MNIST batches (batch size 128); the variants are
interleaved over several rounds and the median step time is reported, so all of them see the same
machine noise. It runs on the device notebook 01 would pick (CUDA, MPS or CPU).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from helpers.data import load_mnist
from helpers.models import ConvNet
from helpers.throughput import device

BATCH_SIZE, STEPS, ROUNDS = 128, 30, 3
VARIANTS = {
    "fp32": {"channels_last": False, "bf16": False},
    "fp32 + channels_last": {"channels_last": True, "bf16": False},
    "bf16 autocast": {"channels_last": False, "bf16": True},
    "bf16 autocast + channels_last": {"channels_last": True, "bf16": True},
}


def step_time(images: torch.Tensor, labels: torch.Tensor, channels_last: bool, bf16: bool) -> float:
    """Median seconds per optimiser step over STEPS steps, after 3 warm-up steps."""
    dev = images.device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = ConvNet().to(dev, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(STEPS + 3):
        batch = images[i * BATCH_SIZE : (i + 1) * BATCH_SIZE].contiguous(memory_format=memory_format)
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(batch), labels[i * BATCH_SIZE : (i + 1) * BATCH_SIZE])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def main() -> None:
    dev = device()
    images, labels = (t.to(dev) for t in load_mnist().train.tensors)
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, options in VARIANTS.items():
            results[name].append(step_time(images, labels, **options))
    baseline = statistics.median(results["fp32"])
    print(f"ConvNet training step on {dev} ({torch.get_num_threads()} threads), batch {BATCH_SIZE}:")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"  {name:<32} {median * 1e3:8.1f} ms/step   {median / baseline:5.2f}x the fp32 time")


if __name__ == "__main__":
    main()
