"""One epoch of MNIST training batches under four loading strategies, side by side.

Run from the repository root:  python -m benchmarks.data_loading  (--rounds, --threads, --json)

It only iterates over the batches (no model), so it measures what the loader itself costs per epoch.
"""

from __future__ import annotations

import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

from benchmarks import harness
from helpers.data import MEAN, STD, load_mnist, tensor_batches
from helpers.paths import data_dir

ROUNDS = 3
LABELS = {
    "transform_0": "torchvision dataset + per-image transform, 0 workers",
    "transform_2": "torchvision dataset + per-image transform, 2 workers",
    "per_sample": "in-memory tensors, per-sample `DataLoader`",
    "whole_batch": "in-memory tensors, whole-batch indexing (`helpers.data`)",
}


def per_image_transform_loader(num_workers: int) -> DataLoader:
    """The textbook pipeline: decode and normalise every image on the fly in `__getitem__`."""
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([MEAN], [STD])])
    dataset = torchvision.datasets.MNIST(data_dir(), train=True, transform=transform)
    return DataLoader(dataset, batch_size=harness.BATCH_SIZE, shuffle=True, num_workers=num_workers)


def per_sample_loader(dataset: TensorDataset) -> DataLoader:
    """Tensors in memory, but the DataLoader still indexes one sample at a time and collates."""
    return DataLoader(dataset, batch_size=harness.BATCH_SIZE, shuffle=True)


def epoch(loader: DataLoader) -> harness.Timing:
    stopwatch = harness.Stopwatch(torch.device("cpu"))
    stopwatch.start()
    for images, _labels in loader:
        images.sum()  # touch the batch so that nothing is skipped
    return stopwatch.stop()


def main(argv: list[str] | None = None) -> dict:
    args = harness.parse(harness.arguments(__doc__.split("\n\n")[0], ROUNDS), argv)
    info = harness.machine()
    train = load_mnist().train
    loaders = {
        "transform_0": lambda: per_image_transform_loader(0),
        "transform_2": lambda: per_image_transform_loader(2),
        "per_sample": lambda: per_sample_loader(train),
        "whole_batch": lambda: tensor_batches(train, harness.BATCH_SIZE, shuffle=True),
    }
    runs = {key: lambda _round, make=make: epoch(make()) for key, make in loaders.items()}
    samples = harness.interleave(runs, args.rounds, warm_up=False)  # an epoch is long enough
    results = harness.compare(samples, "whole_batch")
    table = harness.markdown_table(
        ["Loading strategy", "Seconds per epoch", "vs. whole-batch indexing"],
        [[LABELS[key], f"{r['median']:.2f}", f"{r['ratio']:.1f}x"] for key, r in results.items()],
    )
    info["load_average_end"] = harness.load_average()
    print(f"One epoch of MNIST batches of {harness.BATCH_SIZE}, median of {args.rounds} interleaved rounds;")
    print(f"{harness.describe(info)}:\n\n{table}")
    output = {"machine": info, "rounds": args.rounds, "variants": results, "table": table}
    harness.write_json(args.json, output)
    return output


if __name__ == "__main__":
    main()
