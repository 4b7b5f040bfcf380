"""What Lightning and `WandbLogger` cost per training step, beside notebook 01's plain loop.

Run from the repository root:
    python -m benchmarks.overhead                 430 steps (an epoch) x 5 rounds
    python -m benchmarks.overhead --diagnose      adds where Lightning's time goes (see `diagnose`)
    python -m benchmarks.overhead --steps 100 --rounds 3 --json results.json

Same work in every variant: the series' ConvNet in `channels_last` from the same initial weights, on the same
shuffled in-memory batches of 128 (one seeded order per round), AdamW (lr 0.01, weight decay 0.01) with a
one-cycle schedule stepped after every batch, and each batch's loss and accuracy kept for the epoch.

* plain: notebook 01's `train_one_epoch` (a test checks that it is the notebook's code), which keeps each
  step's loss and argmax accuracy as tensors and turns them into floats at the end of the epoch.
* lightning: `helpers.models.MNISTClassifier` in a `Trainer` with no logger, no progress bar, no checkpointing
  and no model summary: Lightning's loop and the module's own logging.
* wandb: the same with an offline `WandbLogger` at Lightning's default `log_every_n_steps=50`; the last row
  logs every step. Each W&B timed run is an offline run of its own; `wandb.init` and `finish` are timed apart.

Timed: the training loop, from the plain loop's call of `train_one_epoch` (Lightning: the `on_train_start`
hook) to its return (`on_train_end`). The last line of the output is
`lightning_overhead=<ratio> wandb_overhead=<ratio>`: the median per-round ratios Lightning / plain and
Lightning + WandbLogger (every 50 steps) / Lightning.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.profilers import SimpleProfiler
from torch.utils.data import TensorDataset

from benchmarks import harness
from helpers.data import load_mnist
from helpers.models import ConvNet, MNISTClassifier
from helpers.wandb_setup import offline_environment

LEARNING_RATE, WEIGHT_DECAY = 0.01, 0.01  # notebook 01's values, and MNISTClassifier's defaults
STEPS, ROUNDS = 430, 5  # an epoch of 55,000 images in batches of 128, 5 times
GOAL = 1.03
device = harness.device()  # notebook 01's name, which train_one_epoch reads


def train_one_epoch(model, loader, optimizer, scheduler, first_step: int) -> list[dict]:
    model.train()
    rows = []
    for step, (images, labels) in enumerate(loader, start=first_step):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()

        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        rows.append({"step": step, "train_loss": loss.detach(), "train_accuracy": accuracy})
    return [{k: float(v) for k, v in row.items()} for row in rows]  # one transfer from the device


def plain_run(train: TensorDataset, steps: int, seed: int) -> harness.Timing:
    """The time of `steps` steps of notebook 01's loop."""
    torch.manual_seed(seed)
    model = ConvNet().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps)
    loader = itertools.islice(harness.seeded_batches(train, seed), steps)
    stopwatch = harness.Stopwatch(device)
    stopwatch.start()
    train_one_epoch(model, loader, optimizer, scheduler, first_step=1)
    return stopwatch.stop()


class LoopOnly(MNISTClassifier):
    """MNISTClassifier with no metric and no `self.log`: what is left is Lightning's loop (--diagnose)."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self(images), labels)

    def on_train_epoch_end(self) -> None:
        pass


def trainer(steps: int, folder: Path, callbacks: list, **options) -> pl.Trainer:
    return pl.Trainer(
        accelerator="auto",
        devices=1,
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=folder,
        callbacks=callbacks,
        **{"logger": False, **options},
    )


def lightning_run(
    train: TensorDataset,
    steps: int,
    seed: int,
    folder: Path,
    module: type[MNISTClassifier] = MNISTClassifier,
    **options,
) -> harness.Timing:
    """The time of `steps` steps of `module` in Lightning; `options` go to the Trainer (logger, profiler)."""
    torch.manual_seed(seed)
    model = module(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    timer = harness.LoopTimer(device)
    batches = harness.seeded_batches(train, seed)
    trainer(steps, folder, [timer], **options).fit(model, train_dataloaders=batches)
    return timer.timing


class WandbRuns:
    """Lightning with a new offline `WandbLogger` per fit; `wandb.init` and `wandb.finish` timed apart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.init_s: list[float] = []
        self.finish_s: list[float] = []

    def run(self, train: TensorDataset, steps: int, seed: int, log_every_n_steps: int = 50) -> harness.Timing:
        start = time.perf_counter()
        logger = WandbLogger(project="overhead-benchmark", save_dir=self.folder, offline=True)
        run = logger.experiment  # wandb.init: once per run, outside the timed loop
        self.init_s.append(time.perf_counter() - start)
        timing = lightning_run(
            train, steps, seed, self.folder, logger=logger, log_every_n_steps=log_every_n_steps
        )
        start = time.perf_counter()
        run.finish()
        self.finish_s.append(time.perf_counter() - start)
        return timing


LABELS = {
    "plain": "plain PyTorch loop (notebook 01)",
    "lightning": "Lightning, no logger",
    "wandb": "Lightning + `WandbLogger`, log every 50 steps (the default)",
    "wandb_every_step": "Lightning + `WandbLogger`, log every step",
    "loop_only": "Lightning, module with no metric and no `self.log` (--diagnose)",
}


def variants(train: TensorDataset, steps: int, folder: Path, wandb_runs: WandbRuns, diagnose: bool) -> dict:
    runs: dict[str, Callable[[int], harness.Timing]] = {
        "plain": lambda seed: plain_run(train, steps, seed),
        "lightning": lambda seed: lightning_run(train, steps, seed, folder),
        "wandb": lambda seed: wandb_runs.run(train, steps, seed),
        "wandb_every_step": lambda seed: wandb_runs.run(train, steps, seed, log_every_n_steps=1),
    }
    if diagnose:
        runs["loop_only"] = lambda seed: lightning_run(train, steps, seed, folder, module=LoopOnly)
    return runs


def report(samples: dict[str, list[harness.Timing]], steps: int) -> tuple[list[dict], dict[str, float]]:
    """Table rows (ms per step, against plain) and the two ratios of the last line."""
    against_plain = harness.compare(samples, "plain", per=steps)
    rows = [
        {
            "key": key,
            "label": LABELS[key],
            "ms_per_step": result["median"] * 1e3,
            "ratio_to_plain": result["ratio"],
            "overhead_ms_per_step": result["difference"] * 1e3,
            "cpu_ratio_to_plain": result["cpu_ratio"],
            "wall_s": result["wall_s"],
            "cpu_s": result["cpu_s"],
        }
        for key, result in against_plain.items()
    ]
    ratios = {
        "lightning_overhead": against_plain["lightning"]["ratio"],
        "wandb_overhead": harness.compare(samples, "lightning")["wandb"]["ratio"],
    }
    return rows, ratios


def table(rows: list[dict]) -> str:
    return harness.markdown_table(
        ["Variant", "ms per step", "vs. plain", "overhead ms/step", "CPU time vs. plain"],
        [
            [
                row["label"],
                f"{row['ms_per_step']:.1f}",
                f"{row['ratio_to_plain']:.3f}x",
                "" if row["key"] == "plain" else f"{row['overhead_ms_per_step']:+.2f}",
                f"{row['cpu_ratio_to_plain']:.3f}x",
            ]
            for row in rows
        ],
    )


def diagnose(train: TensorDataset, steps: int, folder: Path) -> dict[str, float]:
    """One Lightning fit under Lightning's `SimpleProfiler`: ms per step in each of Lightning's actions.

    The actions nest: `run_training_batch` holds the module's `optimizer_step`, which holds the closure's
    `training_step` and `backward` (AdamW's own update is in `optimizer_step` only). What Lightning adds
    around the model's work is in the other actions: moving the batch, `optimizer_zero_grad`, gradient
    clipping's hook, `lr_scheduler_step` (the scheduler's own work, which the plain loop does too) and the
    hooks with nothing in them.
    """
    profiler = SimpleProfiler()
    lightning_run(train, steps, seed=0, folder=folder, profiler=profiler)
    per_step = {
        action: sum(durations) / steps * 1e3 for action, durations in profiler.recorded_durations.items()
    }
    return dict(sorted(per_step.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> dict:
    parser = harness.arguments(__doc__.split("\n\n")[0], ROUNDS)
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps per run (default {STEPS})")
    parser.add_argument("--diagnose", action="store_true", help="add where Lightning's time goes")
    args = harness.parse(parser, argv, "steps")
    harness.quiet()
    info = harness.machine()
    train = load_mnist().train
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        folder = Path(tmp)
        os.environ.update(offline_environment(folder))
        wandb_runs = WandbRuns(folder)
        runs = variants(train, args.steps, folder, wandb_runs, args.diagnose)
        samples = harness.interleave(runs, args.rounds)
        profile = diagnose(train, args.steps, folder) if args.diagnose else None
    rows, ratios = report(samples, args.steps)
    info["load_average_end"] = harness.load_average()
    print(f"Time per training step, batch {harness.BATCH_SIZE}, {args.steps} steps per run, median of ")
    print(f"{args.rounds} interleaved rounds; {harness.describe(info)}:\n")
    markdown = table(rows)
    print(markdown)
    init, finish = statistics.median(wandb_runs.init_s), statistics.median(wandb_runs.finish_s)
    print(f"\nOnce per W&B run, not in the table: wandb.init {init:.2f} s, wandb.finish {finish:.2f} s.")
    if profile is not None:
        print(f"\nOne Lightning fit under SimpleProfiler, ms per step in each action ({args.steps} steps):\n")
        for action, ms in profile.items():
            print(f"  {action:<72} {ms:8.3f}")
    results = {
        "machine": info,
        "steps": args.steps,
        "rounds": args.rounds,
        "variants": rows,
        "wandb_init_s": wandb_runs.init_s,
        "wandb_finish_s": wandb_runs.finish_s,
        "simple_profiler_ms_per_step": profile,
        **ratios,
        "table": markdown,
    }
    harness.write_json(args.json, results)
    met = all(ratio <= GOAL for ratio in ratios.values())
    print(f"\nGoal: each ratio at most {GOAL:.2f}: {'met' if met else 'not met'}.")
    lightning, wandb = ratios["lightning_overhead"], ratios["wandb_overhead"]
    print(f"lightning_overhead={lightning:.3f} wandb_overhead={wandb:.3f}")
    return results


if __name__ == "__main__":
    main()
