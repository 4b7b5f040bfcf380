"""A training step of the series' ConvNet: block order, `channels_last` and bf16 autocast, side by side.

Run from the repository root:  python -m benchmarks.model_speed  (--steps, --rounds, --threads, --json)

Every variant trains on the same in-memory MNIST batches of 128 with AdamW, on the device notebook 01 would
pick. The reference is the series' choice: pool straight after each convolution (conv -> pool -> BatchNorm
-> ReLU), fp32, `channels_last`. "conv -> BatchNorm -> ReLU -> pool" is the textbook order the series used
before: the same parameters, with BatchNorm and ReLU on four times the pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import harness
from helpers.data import load_mnist
from helpers.models import ConvNet

STEPS, ROUNDS, WARM_UP_STEPS = 30, 3, 3


class ConvFirstConvNet(ConvNet):
    """ConvNet with the textbook block order, conv -> BatchNorm -> ReLU -> pool (the same parameters)."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__(channels)
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


VARIANTS = {  # label: (model class, channels_last, bf16 autocast)
    "pool first, fp32 + `channels_last` (the series)": (ConvNet, True, False),
    "pool first, fp32": (ConvNet, False, False),
    "conv -> BatchNorm -> ReLU -> pool, fp32 + `channels_last`": (ConvFirstConvNet, True, False),
    "conv -> BatchNorm -> ReLU -> pool, fp32": (ConvFirstConvNet, False, False),
    "pool first, bf16 autocast + `channels_last`": (ConvNet, True, True),
    "pool first, bf16 autocast": (ConvNet, False, True),
}
REFERENCE = next(iter(VARIANTS))


def train_steps(
    images: torch.Tensor, labels: torch.Tensor, steps: int, model_class: type, channels_last: bool, bf16: bool
) -> harness.Timing:
    """The time of `steps` training steps, after WARM_UP_STEPS untimed ones."""
    dev = images.device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = model_class().to(dev, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stopwatch = harness.Stopwatch(dev)
    for i in range(WARM_UP_STEPS + steps):
        if i == WARM_UP_STEPS:
            stopwatch.start()
        batch = slice(i * harness.BATCH_SIZE, (i + 1) * harness.BATCH_SIZE)
        inputs = images[batch].contiguous(memory_format=memory_format)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(inputs), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return stopwatch.stop()


def main(argv: list[str] | None = None) -> dict:
    parser = harness.arguments(__doc__.split("\n\n")[0], ROUNDS)
    parser.add_argument("--steps", type=int, default=STEPS, help=f"timed steps per run (default {STEPS})")
    args = harness.parse(parser, argv, "steps")
    info = harness.machine()
    dev = harness.device()
    images, labels = (t.to(dev) for t in load_mnist().train.tensors)
    runs = {
        label: lambda _round, options=options: train_steps(images, labels, args.steps, *options)
        for label, options in VARIANTS.items()
    }
    results = harness.compare(harness.interleave(runs, args.rounds, warm_up=False), REFERENCE, per=args.steps)
    table = harness.markdown_table(
        ["Variant", "ms per step", "vs. the series"],
        [[label, f"{r['median'] * 1e3:.1f}", f"{r['ratio']:.2f}x"] for label, r in results.items()],
    )
    info["load_average_end"] = harness.load_average()
    print(f"ConvNet training step, batch {harness.BATCH_SIZE}, {args.steps} steps per run, median of")
    print(f"{args.rounds} interleaved rounds; {harness.describe(info)}:\n\n{table}")
    output = {"machine": info, "steps": args.steps, "rounds": args.rounds, "variants": results}
    output["table"] = table
    harness.write_json(args.json, output)
    return output


if __name__ == "__main__":
    main()
