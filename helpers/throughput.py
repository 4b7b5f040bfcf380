"""Time the same training in a plain PyTorch loop, in Lightning, and in Lightning with `WandbLogger`.

Run it (it lives in `helpers` so that notebook 08 can run it in Colab too):
    python -m helpers.throughput                  the full benchmark: 430 steps (an epoch) x 5 rounds
    python -m helpers.throughput --short          notebook 08's quick version: 80 steps x 3 rounds
    python -m helpers.throughput --diagnose       adds the variants that show where Lightning's time goes
    python -m helpers.throughput --profile        cProfile of one run of each, and per-call costs
Add `--json PATH` to write the results (every round's times, the medians, ratios and the machine) as JSON.

Same work in every variant: the series' ConvNet from the same initial weights, on the same shuffled
in-memory batches of 128 (`helpers.data.tensor_batches` over the 55,000 training images, one seeded order per
round), AdamW (lr 0.01, weight decay 0.01) with a one-cycle schedule stepped after every batch, and each
batch's loss and accuracy kept, so that both are there per step and as epoch means. No validation in any.
All run on the device `Trainer(accelerator="auto", devices=1)` picks; the plain loop uses the same one.

* plain: notebook 01's `train_one_epoch`: loss and `argmax` accuracy of each batch kept as tensors and
  turned into floats once, at the end of the epoch.
* lightning: `helpers.models.MNISTClassifier` as the notebooks use it (torchmetrics accuracy; `self.log` of
  loss and accuracy, on_step and on_epoch) in a `Trainer` with no logger, no progress bar, no checkpointing
  and no model summary: what is left is Lightning's loop and its logging machinery.
* wandb: the same Trainer with a `WandbLogger` (offline, in a temporary folder) at Lightning's default
  `log_every_n_steps=50`; wandb_every_step: the same with `log_every_n_steps=1`.
* --diagnose adds: a module with no metric and no `self.log` at all (Lightning's loop alone); one that logs
  the accuracy per epoch only; one that calls `self.log` only on the steps the logger writes and keeps the
  epoch means with torchmetrics' `update()` (what a reader can do); and Lightning's progress bar on (its
  default; it draws into /dev/null here, so a terminal's or a notebook's drawing is not counted).

What is timed. The "loop": from the start of training (the plain loop's first batch; Lightning's
`on_train_start` hook) to the end of the epoch's bookkeeping (the plain loop's floats; `on_train_end`).
Ratios and per-step overheads come from it. Each run also times the whole call (the model, `pl.Trainer(...)`
and `trainer.fit(...)`); what that adds to the loop is the per-fit overhead, paid once per fit. Left out and
reported apart: imports, loading MNIST, and each W&B run's `wandb.init` and `finish`. Each W&B timed run is
an offline run of its own, so W&B's background process works only during W&B's own runs.

Rounds: after an untimed warm-up run of each, every variant runs once per round, in an order that rotates
from round to round. The table gives each variant's median loop time and, against plain, the median of the
per-round ratios and differences (a round's variants ran close together, under the same machine load).

Findings, measured on the series' 2-core CPU (2 threads; torch 2.14, Lightning 2.6.6, torchmetrics 1.9,
wandb 0.31) while other jobs ran now and then, so indicative only: one full run (plain step 28.2 ms) and
two --diagnose runs of 100 steps x 3 rounds (plain step 29-30 ms).
* Lightning with the series' module added 2.5 ms per step (+8.7%) in the full run and 1.0-2.9 ms in the
  others: over the 3% goal. Lightning's loop alone (hooks, the optimizer closure, moving the batch; the
  module with no metric and no `self.log`) added 0.1-0.7 ms (+0.4-2.5%). The rest is the module's logging.
  Per call, without a profiler (--profile): `self.log` costs 0.35 ms whatever `log_every_n_steps` is,
  because Lightning records every call for the epoch mean (cProfile puts three quarters of it in
  `_ResultMetric.to`, which walks the logged value's record at each call); MNISTClassifier makes two per
  step. The torchmetrics accuracy called as `accuracy(logits, labels)` costs 0.36 ms (it also computes the
  batch's value), `accuracy.update(...)` 0.10 ms, and the plain loop's argmax accuracy 0.013 ms.
* What a reader can do: call `self.log` only on the steps the logger writes and keep epoch means with
  torchmetrics' `update()` (SparseLoggingClassifier: same loss curve at the logged steps, same epoch
  means, no per-step accuracy): +0.9 ms, +3.0% (one run). Logging the accuracy per epoch only: +1.8-1.9 ms.
  Lightning's progress bar (on by default, redrawn every step) cost another 0.2-1.5 ms per step:
  `enable_progress_bar=False` removes it (the notebooks' `TQDMProgressBar(refresh_rate=20)`: not measured).
* WandbLogger at the default `log_every_n_steps=50` added nothing measurable (-0.9% to +1.2% over
  Lightning); logging every step added 0.9-1.6 ms per step (+3.2% to +5.5%), so keep the default or log
  less often. Per offline run, `wandb.init` took 0.16 s and `finish` 0.01 s (0.9 s for the first run of a
  process); building the Trainer and fit()'s setup and teardown took 0.02 s per fit.
* These costs are per step, not per image: with bigger batches, a bigger model or a GPU, the same
  milliseconds are a smaller share of a step.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import inspect
import itertools
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanMetric

from helpers.data import load_mnist, tensor_batches
from helpers.models import ConvNet, MNISTClassifier
from helpers.tracking import offline_environment

BATCH_SIZE = 128
LEARNING_RATE, WEIGHT_DECAY = 0.01, 0.01  # MNISTClassifier's defaults, and notebook 01's values
FULL = {"steps": 430, "rounds": 5}  # an epoch (55,000 / 128 = 430 batches) x 5 rounds: 5 minutes here
SHORT = {"steps": 80, "rounds": 3}
WARMUP_STEPS = 10
GOAL_PERCENT = 3.0
LEGEND = """
ms per step: the loop's wall-clock time. vs. plain, overhead: medians of the per-round ratios and differences.
per-fit s: what building the model and the Trainer and fit()'s setup and teardown add, once per run.
CPU time vs. plain: the same ratio in this process's CPU time: steadier on a busy machine, but blind to the
CPU time of W&B's own background process."""


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


def shuffled_batches(train: TensorDataset, seed: int) -> DataLoader:
    """`tensor_batches(train, 128, shuffle=True)` with its own seeded order, the same for every variant."""
    loader = tensor_batches(train, BATCH_SIZE, shuffle=True)
    loader.sampler.sampler.generator = torch.Generator().manual_seed(seed)  # the BatchSampler's RandomSampler
    return loader


@dataclass(frozen=True)
class Timing:
    loop: float  # seconds: the training loop, first batch to the end of the epoch's bookkeeping
    total: float  # seconds: the whole call, building the model (and the Trainer) included
    loop_cpu: float  # CPU seconds this process used during the loop (all its threads; not W&B's own process)


# --- Variant 1: the plain loop of notebook 01 ---------------------------------------------------------


def plain_run(train: TensorDataset, steps: int, seed: int, dev: torch.device, **_: object) -> Timing:
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = ConvNet().to(dev, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps)
    loader = shuffled_batches(train, seed)
    synchronize(dev)
    loop_start, cpu_start = time.perf_counter(), time.process_time()
    model.train()
    rows = []
    for step, (images, labels) in enumerate(itertools.islice(loader, steps), start=1):
        images, labels = images.to(dev), labels.to(dev)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()

        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        rows.append({"step": step, "train_loss": loss.detach(), "train_accuracy": accuracy})
    rows = [{k: float(v) for k, v in row.items()} for row in rows]  # one transfer from the device
    synchronize(dev)
    end, cpu_end = time.perf_counter(), time.process_time()
    return Timing(loop=end - loop_start, total=end - start, loop_cpu=cpu_end - cpu_start)


# --- Variants 2 and 3: Lightning, with and without WandbLogger -----------------------------------------


class BareClassifier(MNISTClassifier):
    """MNISTClassifier without any metric work in training: no torchmetrics, no `self.log`."""

    def training_step(self, batch, batch_idx):
        images, labels = batch
        return F.cross_entropy(self(images), labels)


class EpochAccuracyClassifier(MNISTClassifier):
    """Accuracy accumulated with `update()` each step and logged once, at the end of the epoch.

    It saves, per step, one `self.log` call and torchmetrics' per-batch `compute()`; the logger then gets
    no `train/accuracy_step`, only `train/accuracy_epoch` (here named `train/accuracy`).
    """

    def training_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_accuracy.update(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_end(self):
        self.log("train/accuracy", self.train_accuracy)


class SparseLoggingClassifier(MNISTClassifier):
    """`self.log` only on the steps the logger writes, and epoch means from torchmetrics' `update()`.

    The logger receives `train/loss_step` on the same steps as with MNISTClassifier, and the epoch's mean
    loss and accuracy at its end; it no longer receives the per-step accuracy.
    """

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.train_loss = MeanMetric()

    def training_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_loss.update(loss.detach())
        self.train_accuracy.update(logits, labels)
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # a step the logger writes
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self):
        self.log("train/loss_epoch", self.train_loss)
        self.log("train/accuracy_epoch", self.train_accuracy)


class Stopwatch(Callback):
    """Reads the clock when Lightning's training loop starts and when it ends."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.start = self.end = self.cpu_start = self.cpu_end = float("nan")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        synchronize(self.dev)
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        synchronize(self.dev)
        self.end, self.cpu_end = time.perf_counter(), time.process_time()


def lightning_run(
    train: TensorDataset,
    steps: int,
    seed: int,
    dev: torch.device,
    folder: Path,
    module: type[MNISTClassifier] = MNISTClassifier,
    logger: pl.loggers.Logger | bool = False,
    log_every_n_steps: int = 50,
    progress_bar: bool = False,
) -> Timing:
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = module(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    stopwatch = Stopwatch(dev)
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        logger=logger,
        log_every_n_steps=log_every_n_steps,
        enable_progress_bar=progress_bar,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[stopwatch],
        default_root_dir=folder,
    )
    # The progress bar draws into the void: what is timed is making its line, not a terminal's speed.
    with contextlib.ExitStack() as stack:
        if progress_bar:
            void = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
            stack.enter_context(contextlib.redirect_stdout(void))
            stack.enter_context(contextlib.redirect_stderr(void))
        trainer.fit(model, train_dataloaders=shuffled_batches(train, seed))
    synchronize(dev)
    end = time.perf_counter()
    return Timing(
        loop=stopwatch.end - stopwatch.start,
        total=end - start,
        loop_cpu=stopwatch.cpu_end - stopwatch.cpu_start,
    )


class WandbRuns:
    """A new offline W&B run for each timed fit; the time of `wandb.init` and `wandb.finish` kept apart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.init_s: list[float] = []
        self.finish_s: list[float] = []

    def run(self, train, steps, seed, dev, folder, **options) -> Timing:
        start = time.perf_counter()
        logger = WandbLogger(project="throughput-benchmark", save_dir=self.folder, log_model=False)
        run = logger.experiment  # wandb.init happens here, outside the timed fit
        self.init_s.append(time.perf_counter() - start)
        timing = lightning_run(train, steps, seed, dev, folder, logger=logger, **options)
        start = time.perf_counter()
        run.finish()
        self.finish_s.append(time.perf_counter() - start)
        return timing


# --- The variants, the rounds and the report ----------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    run: Callable[..., Timing]


def variants(wandb_runs: WandbRuns, diagnose: bool) -> list[Variant]:
    main = [
        Variant("plain", "plain PyTorch loop (notebook 01)", plain_run),
        Variant("lightning", "Lightning, no logger", lightning_run),
        Variant("wandb", "Lightning + WandbLogger, log every 50 steps", wandb_runs.run),
        Variant(
            "wandb_every_step",
            "Lightning + WandbLogger, log every step",
            lambda *args, **kw: wandb_runs.run(*args, log_every_n_steps=1, **kw),
        ),
    ]
    if not diagnose:
        return main
    return main + [
        Variant(
            "lightning_bare",
            "Lightning, no metric, no self.log",
            lambda *args, **kw: lightning_run(*args, module=BareClassifier, **kw),
        ),
        Variant(
            "lightning_epoch_accuracy",
            "Lightning, accuracy logged per epoch only",
            lambda *args, **kw: lightning_run(*args, module=EpochAccuracyClassifier, **kw),
        ),
        Variant(
            "lightning_sparse_logging",
            "Lightning, self.log only on logged steps, epoch means by update()",
            lambda *args, **kw: lightning_run(*args, module=SparseLoggingClassifier, **kw),
        ),
        Variant(
            "lightning_progress_bar",
            "Lightning, progress bar on (its default)",
            lambda *args, **kw: lightning_run(*args, progress_bar=True, **kw),
        ),
    ]


def measure(
    candidates: list[Variant], train: TensorDataset, steps: int, rounds: int, dev: torch.device, folder: Path
) -> dict[str, list[Timing]]:
    for variant in candidates:  # warm-up: first-call costs (lazy imports, kernel choices) are paid here
        variant.run(train, min(steps, WARMUP_STEPS), seed=0, dev=dev, folder=folder)
    timings: dict[str, list[Timing]] = {variant.key: [] for variant in candidates}
    for round_index in range(rounds):
        shift = round_index % len(candidates)
        for variant in candidates[shift:] + candidates[:shift]:
            gc.collect()  # so that no variant pays for collecting another one's garbage
            timings[variant.key].append(variant.run(train, steps, seed=round_index, dev=dev, folder=folder))
    return timings


def summarise(candidates: list[Variant], timings: dict[str, list[Timing]], steps: int) -> list[dict]:
    plain = timings["plain"]
    rows = []
    for variant in candidates:
        samples = timings[variant.key]
        ratios = [t.loop / p.loop for t, p in zip(samples, plain, strict=True)]
        cpu_ratios = [t.loop_cpu / p.loop_cpu for t, p in zip(samples, plain, strict=True)]
        extra_ms = [(t.loop - p.loop) / steps * 1e3 for t, p in zip(samples, plain, strict=True)]
        loop = statistics.median(t.loop for t in samples)
        ratio = statistics.median(ratios)
        rows.append(
            {
                "key": variant.key,
                "label": variant.label,
                "loop_s": [t.loop for t in samples],
                "total_s": [t.total for t in samples],
                "loop_cpu_s": [t.loop_cpu for t in samples],
                "median_loop_s": loop,
                "ms_per_step": loop / steps * 1e3,
                "ratio_to_plain": ratio,
                "overhead_percent": (ratio - 1) * 100,
                "cpu_ratio_to_plain": statistics.median(cpu_ratios),
                "overhead_ms_per_step": statistics.median(extra_ms),
                "per_fit_overhead_s": statistics.median(t.total - t.loop for t in samples),
            }
        )
    return rows


def print_report(rows: list[dict], config: dict, one_off: dict) -> None:
    print(
        f"Training throughput on {config['device']} ({config['threads']} threads), batch {BATCH_SIZE}, "
        f"{config['steps']} steps per run, median of {config['rounds']} interleaved rounds:\n"
    )
    print(
        "| Variant | ms per step | vs. plain | overhead | overhead ms/step | per-fit s | CPU time vs. plain |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['label']} | {row['ms_per_step']:.1f} | {row['ratio_to_plain']:.3f}x "
            f"| {row['overhead_percent']:+.1f}% | {row['overhead_ms_per_step']:+.2f} "
            f"| {row['per_fit_overhead_s']:.2f} | {row['cpu_ratio_to_plain']:.3f}x |"
        )
    print(LEGEND)
    by_key = {row["key"]: row for row in rows}
    lightning = by_key["lightning"]["overhead_percent"]
    goal = f"goal: at most {GOAL_PERCENT:.0f}%"
    print(f"\nLightning's overhead over the plain loop: {lightning:+.1f}% ({goal}).")
    for key in ("wandb", "wandb_every_step"):
        extra = by_key[key]["overhead_percent"] - lightning
        how = by_key[key]["label"].split(", ")[-1]
        print(f"WandbLogger's overhead on top of Lightning, {how}: {extra:+.1f}% of the plain loop ({goal}).")
    if one_off["wandb_init_s"]:
        init, finish = (statistics.median(one_off[key]) for key in ("wandb_init_s", "wandb_finish_s"))
        print(f"Once per W&B run, not in the table: wandb.init {init:.2f} s, wandb.finish {finish:.2f} s.")


# --- The profile: where Lightning's time goes ---------------------------------------------------------


def _profile_parts() -> list[tuple[str, Callable]]:
    """The functions whose inclusive time the profile shows; none contains another, but "  of which" rows."""
    from pytorch_lightning.trainer import call
    from pytorch_lightning.trainer.connectors.logger_connector.logger_connector import _LoggerConnector
    from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric
    from torch.optim.adam import adam
    from torch.optim.lr_scheduler import LRScheduler
    from torch.utils.data.dataloader import _BaseDataLoaderIter
    from torchmetrics import Metric

    return [
        ("batches from the DataLoader", _BaseDataLoaderIter.__next__),
        ("ConvNet forward", ConvNet.forward),
        ("cross-entropy loss", F.cross_entropy),
        ("backward", torch.autograd.backward),
        ("optimizer.zero_grad", torch.optim.Optimizer.zero_grad),
        ("AdamW update", adam),
        ("scheduler.step", LRScheduler.step),
        ("torchmetrics accuracy (forward)", Metric.forward),
        ("self.log", pl.LightningModule.log),
        ("  of which _ResultMetric.to (every call)", _ResultMetric.to),
        ("logging to the logger, every n steps", _LoggerConnector.update_train_step_metrics),
        ("callback hooks", call._call_callback_hooks),
    ]


def _cumulative_seconds(stats: pstats.Stats, function: Callable) -> float:
    code = inspect.unwrap(function).__code__
    key = (code.co_filename, code.co_firstlineno, code.co_name)
    return stats.stats[key][3] if key in stats.stats else 0.0  # (calls, primitive calls, own, cumulative, ..)


def profile(train: TensorDataset, steps: int, dev: torch.device, folder: Path, wandb_runs: WandbRuns) -> None:
    """Run the plain loop, Lightning and Lightning + W&B (every step) under cProfile; show where time goes.

    cProfile slows every Python function call down, so the Python-heavy parts (Lightning's loop, self.log,
    torchmetrics, wandb) look larger here than they are: read the shares, and take the real costs from the
    timed variants (`--diagnose`).
    """
    candidates = [
        ("plain", plain_run, {}),
        ("lightning", lightning_run, {}),
        ("wandb_every_step", wandb_runs.run, {"log_every_n_steps": 1}),
    ]
    parts = _profile_parts()
    columns = {}
    for key, run, options in candidates:
        run(train, min(steps, WARMUP_STEPS), seed=0, dev=dev, folder=folder, **options)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        timing = run(train, steps, seed=0, dev=dev, folder=folder, **options)
        profiler.disable()
        stats = pstats.Stats(profiler)
        seconds = [_cumulative_seconds(stats, function) for _, function in parts]
        counted = sum(s for s, (label, _) in zip(seconds, parts, strict=True) if not label.startswith(" "))
        columns[key] = [s / steps * 1e3 for s in seconds] + [(timing.loop - counted) / steps * 1e3]
        columns[key].append(timing.loop / steps * 1e3)
        if key == "lightning":
            lightning_stats = stats
    labels = [label for label, _ in parts] + ["everything else in the loop", "the loop"]
    print(f"ms per step under cProfile, {steps} steps on {dev} ({torch.get_num_threads()} threads):\n")
    print("| Part | " + " | ".join(key for key, _, _ in candidates) + " |")
    print("| --- |" + " --- |" * len(candidates))
    for i, label in enumerate(labels):
        print(f"| {label} | " + " | ".join(f"{columns[key][i]:.2f}" for key, _, _ in candidates) + " |")
    print(
        "\nLightning (no logger): Lightning's and torchmetrics' functions with the most time of their own:\n"
    )
    lightning_stats.sort_stats("tottime").print_stats(r"lightning|torchmetrics", 15)
    per_call_costs(dev)


def per_call_costs(dev: torch.device, calls: int = 300) -> None:
    """Time, without a profiler, each call the Lightning module makes per step for its metrics.

    `self.log` is timed through the object it hands values to, Lightning's `_ResultCollection` (a private
    class: if a later Lightning renames it, only this line of the report is skipped).
    """
    from torchmetrics.classification import MulticlassAccuracy

    logits, labels = torch.randn(BATCH_SIZE, 10, device=dev), torch.randint(0, 10, (BATCH_SIZE,), device=dev)
    loss, accuracy = F.cross_entropy(logits, labels), MulticlassAccuracy(num_classes=10).to(dev)
    accuracy(logits, labels)
    calls_to_time = {
        "accuracy as the plain loop computes it (argmax, mean)": lambda: (
            (logits.argmax(1) == labels).float().mean()
        ),
        "torchmetrics accuracy(logits, labels): update + compute": lambda: accuracy(logits, labels),
        "torchmetrics accuracy.update(logits, labels)": lambda: accuracy.update(logits, labels),
    }
    try:
        from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultCollection

        results = _ResultCollection(training=True)
        results.batch_size = BATCH_SIZE
        calls_to_time["self.log(loss, on_step=True, on_epoch=True)"] = lambda: results.log(
            "training_step", "train/loss", loss, on_step=True, on_epoch=True
        )
        calls_to_time["self.log(torchmetrics accuracy, on_step=True, on_epoch=True)"] = lambda: results.log(
            "training_step", "train/accuracy", accuracy, on_step=True, on_epoch=True
        )
    except (ImportError, TypeError, AttributeError) as error:
        print(f"(self.log not timed: {error})")
    print(f"\nms per call, best of 5 repeats of {calls} calls, no profiler:\n")
    for label, call in calls_to_time.items():
        best = min(timeit.repeat(call, number=calls, repeat=5)) / calls
        print(f"  {label:<66} {best * 1e3:6.3f}")


# --- Entry point --------------------------------------------------------------------------------------


def quiet() -> None:
    """Keep the output to the report: Lightning's per-Trainer banner and its hints about data loading."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=pl.utilities.warnings.PossibleUserWarning)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help=f"training steps per timed run (default {FULL['steps']})")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {FULL['rounds']})")
    parser.add_argument(
        "--short",
        action="store_true",
        help=f"the notebook's quick version: {SHORT['steps']} steps, "
        f"{SHORT['rounds']} rounds (--steps and --rounds still win)",
    )
    parser.add_argument("--diagnose", action="store_true", help="add variants that show what each part costs")
    parser.add_argument("--profile", action="store_true", help="profile one Lightning fit instead of timing")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    defaults = SHORT if args.short else FULL
    args.steps = defaults["steps"] if args.steps is None else args.steps
    args.rounds = defaults["rounds"] if args.rounds is None else args.rounds
    if not 1 <= args.steps <= FULL["steps"]:
        parser.error(f"--steps must be between 1 and {FULL['steps']} (one epoch), got {args.steps}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet()
    dev = device()
    train = load_mnist().train
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        folder = Path(tmp)
        os.environ.update(offline_environment(folder / "wandb"))
        wandb_runs = WandbRuns(folder / "wandb")
        if args.profile:
            profile(train, args.steps, dev, folder, wandb_runs)
            return
        candidates = variants(wandb_runs, args.diagnose)
        timings = measure(candidates, train, args.steps, args.rounds, dev, folder)
    rows = summarise(candidates, timings, args.steps)
    config = {
        "steps": args.steps,
        "rounds": args.rounds,
        "batch_size": BATCH_SIZE,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
        "wandb": __import__("wandb").__version__,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    one_off = {"wandb_init_s": wandb_runs.init_s, "wandb_finish_s": wandb_runs.finish_s}
    print_report(rows, config, one_off)
    if args.json:
        results = {"config": config, "one_off": one_off, "variants": rows}
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nResults written to {args.json}")


if __name__ == "__main__":
    main()
