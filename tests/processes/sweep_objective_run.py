"""helpers.sweeps.objective as notebook 07's search calls it: one trial that is pruned, one that is kept.

Each trial trains on the real MNIST for `--max-steps` steps, validating every `--val-every`, and logs an
offline W&B run. Prints, for each, the trial's state, score, hyperparameters, run id and reports.
"""

from __future__ import annotations

import argparse
import json

import optuna

from helpers.data import MNISTDataModule
from helpers.notebook import quiet_lightning
from helpers.sweeps import objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--val-every", type=int, required=True)
    budget = vars(parser.parse_args())
    quiet_lightning()
    datamodule = MNISTDataModule()
    studies = {  # accuracy is never 2.0 or more: the first trial is pruned at its first report
        "pruned": optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)),
        "kept": optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner()),
    }
    outcome = {}
    for name, study in studies.items():
        study.optimize(lambda trial: objective(trial, datamodule, "tests", **budget), n_trials=1)
        trial = study.trials[0]
        reports = trial.intermediate_values
        outcome[name] = {
            "state": trial.state.name,
            "value": trial.value,
            "params": trial.params,
            "run": trial.user_attrs["wandb_run"],
            "reports": sorted(reports),
            "last_report": reports[max(reports)],
        }
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
