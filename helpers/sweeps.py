"""Hyperparameter search for the series' classifier, driven by W&B Sweeps or by Optuna.

Both engines call the same `train_trial`: it trains `MNISTClassifier` with one set of
hyperparameters on a fixed budget of optimizer steps and returns the last validation accuracy.
`objective` wraps it for Optuna (one W&B run per trial, pruning through `OptunaPruning`), and
`python -m helpers.sweeps` runs more trials of a shared study from another process or machine.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytorch_lightning as pl
import wandb
from optuna.storages.journal import JournalFileBackend
from pytorch_lightning.loggers import Logger, WandbLogger

from helpers.checks import check_positive_int, check_trial_budget
from helpers.data import MNISTDataModule
from helpers.models import MNISTClassifier
from helpers.paths import runs_dir
from helpers.wandb_setup import WANDB_PROJECT, setup_wandb

HYPERPARAMETERS = ("learning_rate", "dropout", "channels")


def train_trial(
    params: dict,
    datamodule: pl.LightningDataModule,
    max_steps: int = 120,
    val_every: int = 40,
    logger: Logger | bool = False,
    callbacks: Sequence[pl.Callback] = (),
    seed: int = 0,
) -> float:
    """Train with `params` for `max_steps` steps, validating every `val_every`; the last val/accuracy.

    Every trial starts from the same `seed` (same initial weights for the same shape, same batches),
    so trials differ by their hyperparameters only.
    """
    check_trial_budget(max_steps, val_every)
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of {', '.join(HYPERPARAMETERS)}, got {params!r}.")
    missing = [name for name in HYPERPARAMETERS if name not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing)}; it needs {', '.join(HYPERPARAMETERS)}.")
    pl.seed_everything(seed, verbose=False)
    model = MNISTClassifier(**{name: params[name] for name in HYPERPARAMETERS})
    trainer = pl.Trainer(
        max_steps=max_steps,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,  # validate every `val_every` steps, across epoch boundaries too
        accelerator="auto",
        logger=logger,
        callbacks=list(callbacks),
        log_every_n_steps=10,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    return float(trainer.callback_metrics["val/accuracy"])


class OptunaPruning(pl.Callback):
    """After each validation, report `monitor` to the Optuna trial and stop the trial if Optuna prunes it."""

    def __init__(self, trial: optuna.Trial, monitor: str = "val/accuracy") -> None:
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            raise RuntimeError(
                f"OptunaPruning monitors `{self.monitor}`, which the model did not log: "
                f"pass one of {sorted(trainer.callback_metrics)} as monitor."
            )
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.global_step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor} {value:.4f} at step {trainer.global_step}")


def suggest(trial: optuna.Trial) -> dict:
    """The search space: Optuna's counterpart of the W&B sweep's `parameters`."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "channels": trial.suggest_categorical("channels", [8, 16, 32]),
    }


def objective(
    trial: optuna.Trial,
    datamodule: pl.LightningDataModule,
    group: str,
    max_steps: int = 120,
    val_every: int = 40,
) -> float:
    """One Optuna trial: train on a budget, logged as its own W&B run in `group`; pruned trials stop early."""
    check_trial_budget(max_steps, val_every)  # before a W&B run is made for nothing
    params = suggest(trial)
    logger = WandbLogger(
        project=WANDB_PROJECT,
        group=group,
        name=f"{group}-trial-{trial.number}",
        job_type="optuna-trial",
        config={**params, "trial": trial.number, "max_steps": max_steps},
        save_dir=runs_dir(),
    )
    trial.set_user_attr("wandb_run", logger.experiment.id)  # which W&B run holds this trial
    trial.set_user_attr("process", os.getpid())
    state = "failed"
    try:
        pruning = OptunaPruning(trial)
        accuracy = train_trial(params, datamodule, max_steps, val_every, logger=logger, callbacks=[pruning])
        state = "complete"
        return accuracy
    except optuna.TrialPruned:
        state = "pruned"
        raise
    finally:
        logger.experiment.summary["optuna/state"] = state
        wandb.finish(exit_code=0 if state != "failed" else 1)


def load_study(
    name: str, storage: str | optuna.storages.BaseStorage, seed: int | None = None
) -> optuna.Study:
    """Create the study, or join it if another process already did: the same name and storage.

    TPE samples the first 3 trials at random, then models which values did well; the median
    pruner stops a trial whose accuracy is below the median of earlier trials at the same step,
    once 3 trials have finished.
    """
    return optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(n_startup_trials=3, seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )


def journal_storage(path: str | os.PathLike) -> optuna.storages.JournalStorage:
    """A study stored in one append-only file, which several processes on this machine can share."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run trials of a shared Optuna study (one worker).")
    parser.add_argument("--study", required=True, help="study name, the same for every worker")
    parser.add_argument("--storage", required=True, help="a journal file path, or a database URL")
    parser.add_argument("--trials", type=int, default=1, help="trials this worker runs")
    parser.add_argument("--max-steps", type=int, default=120, help="training steps per trial")
    parser.add_argument("--val-every", type=int, default=40, help="validate (and maybe prune) every N steps")
    args = parser.parse_args(argv)
    try:
        check_positive_int("--trials", args.trials)
        check_trial_budget(args.max_steps, args.val_every)
    except ValueError as error:
        parser.error(str(error))
    setup_wandb()
    storage = args.storage if "://" in args.storage else journal_storage(args.storage)
    study = load_study(args.study, storage)
    datamodule = MNISTDataModule(batch_size=128)
    study.optimize(
        lambda trial: objective(trial, datamodule, args.study, args.max_steps, args.val_every),
        n_trials=args.trials,
    )


if __name__ == "__main__":
    main()
