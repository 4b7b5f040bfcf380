"""What every benchmark here shares: interleaved rounds, medians, the machine, tables and JSON.

Each benchmark defines its variants as functions of the round number that return a `Timing`. `interleave`
runs each once untimed (first-call costs: lazy imports, kernel choices), then every variant once per round,
in an order that rotates from round to round, so that all of them meet the machine's load alike. Ratios are
medians of per-round ratios: the two variants of a round ran close together, under the same load.

Lightning runs are timed with a `Callback` (`LoopTimer`), never with Lightning's private symbols.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers.data import tensor_batches
from helpers.notebook import quiet_lightning

BATCH_SIZE = 128  # the series' training batch
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides which kernels PyTorch picks


def device() -> torch.device:
    """The device `Trainer(accelerator="auto")` picks: CUDA, then MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(dev: torch.device) -> None:
    """Wait for queued GPU work, so that a timer stops when the work is done, not when it was queued."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elif dev.type == "mps":
        torch.mps.synchronize()


def seeded_batches(dataset: TensorDataset, seed: int, batch_size: int = BATCH_SIZE) -> DataLoader:
    """`helpers.data.tensor_batches(dataset, batch_size, shuffle=True)` with its own seeded order.

    The same loader as the series' (one tensor index per batch), so that every variant of a round trains
    on the same batches in the same order.
    """
    return tensor_batches(dataset, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds on the clock
    cpu: float  # CPU seconds of this process, all its threads: steadier than `wall` on a busy machine


class Stopwatch:
    """`start()`, then `stop()` returns the `Timing` in between, after waiting for queued GPU work."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.wall = self.cpu = float("nan")

    def start(self) -> None:
        synchronize(self.dev)
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> Timing:
        synchronize(self.dev)
        return Timing(time.perf_counter() - self.wall, time.process_time() - self.cpu)


class LoopTimer(pl.Callback):
    """Times Lightning's training loop, from the `on_train_start` hook to `on_train_end`."""

    def __init__(self, dev: torch.device) -> None:
        self.stopwatch = Stopwatch(dev)
        self.timing: Timing | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stopwatch.start()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.timing = self.stopwatch.stop()


def interleave(
    variants: dict[str, Callable[[int], Timing]], rounds: int, warm_up: bool = True
) -> dict[str, list[Timing]]:
    """Run every variant once per round, the order rotating each round; return each one's timings.

    A variant is called with the round number (0, 1, ...), for example to seed that round's batches.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds!r}.")
    names = list(variants)
    if warm_up:
        for name in names:
            variants[name](-1)
    samples: dict[str, list[Timing]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()  # so that no variant pays for collecting another one's garbage
            samples[name].append(variants[name](round_index))
    return samples


def compare(samples: dict[str, list[Timing]], reference: str, per: int = 1) -> dict[str, dict]:
    """Each variant's median seconds (divided by `per`, for example per step) and, against `reference`,
    the median of the per-round ratios and differences; `cpu_ratio` is the ratio of CPU times."""
    base = samples[reference]
    results = {}
    for name, timings in samples.items():
        pairs = list(zip(timings, base, strict=True))
        results[name] = {
            "wall_s": [t.wall for t in timings],
            "cpu_s": [t.cpu for t in timings],
            "median": statistics.median(t.wall for t in timings) / per,
            "ratio": statistics.median(t.wall / b.wall for t, b in pairs),
            "difference": statistics.median((t.wall - b.wall) / per for t, b in pairs),
            "cpu_ratio": statistics.median(t.cpu / b.cpu for t, b in pairs),
        }
    return results


def machine() -> dict:
    """The CPU (model, the flags that choose kernels, cores), the threads, the load, and the versions."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {
        "cpu": model,
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags] if flags else "unknown",
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device()),
        "load_average": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,  # with its build, such as +cu130 or +cpu
        "pytorch-lightning": pl.__version__,
        **{name: _version(name) for name in ("torchmetrics", "wandb")},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def load_average() -> list[float] | None:
    """The machine's load over the last 1, 5 and 15 minutes (None where the system does not say)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(info: dict) -> str:
    """One line that says where the figures were measured."""
    flags = ", ".join(info["cpu_flags"]) if isinstance(info["cpu_flags"], list) else "flags unknown"
    load = info["load_average"]
    return (
        f"{info['cpu']} ({flags}), {info['cores']} cores, {info['torch_threads']} torch threads, "
        f"load average {load[0] if load else '?'} at the start; torch {info['torch']}, "
        f"Lightning {info['pytorch-lightning']}, torchmetrics {info['torchmetrics']}, wandb {info['wandb']}"
    )


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def arguments(description: str, rounds: int) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has: --rounds, --threads and --json."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's choice, one per core); on a machine other jobs keep busy, "
        "1 avoids threads waiting for each other, which can slow a step down ten times",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None, *counts: str) -> argparse.Namespace:
    """Parse `argv`, check that --rounds and each option in `counts` are at least 1, apply --threads."""
    args = parser.parse_args(argv)
    for option in ("rounds", "threads", *counts):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be at least 1, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def write_json(path: Path | None, results: dict) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nResults written to {path}")


def quiet() -> None:
    """Keep the output to the results: Lightning's per-Trainer banner and its hints about data loading."""
    quiet_lightning()  # the series' own filters, including a deprecation warning from inside Lightning
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=pl.utilities.warnings.PossibleUserWarning)
