"""The search of notebook 07 on a tiny budget: the objective, its pruning, and workers sharing a study.

Trials train on the real MNIST for a few steps, in processes of their own with W&B offline (W&B
reads its settings once per process: tests/processes/sweep_*.py), and their runs and studies are read
back here.
"""

from __future__ import annotations

import json

import optuna
import pytest

from helpers.sweeps import journal_storage, train_trial
from tests.processes import command


@pytest.fixture(scope="module")
def objective_runs(tmp_path_factory, run_offline):
    budget = ("--max-steps", 4, "--val-every", 2)
    stdout, records = run_offline(
        command("sweep_objective_run", *budget), tmp_path_factory.mktemp("objective")
    )
    return json.loads(stdout.strip().splitlines()[-1]), {record.id: record for record in records}


def test_a_trial_that_falls_below_the_threshold_is_pruned_at_its_first_report(objective_runs):
    outcome, runs = objective_runs
    pruned = outcome["pruned"]
    assert pruned["state"] == "PRUNED" and pruned["reports"] == [2]  # stopped after the first validation
    run = runs[pruned["run"]]
    assert run.summary["optuna/state"] == "pruned" and run.state == "finished"
    assert run.history["trainer/global_step"].max() < 4


def test_a_kept_trial_trains_its_budget_and_is_logged_as_a_run(objective_runs):
    outcome, runs = objective_runs
    kept = outcome["kept"]
    assert kept["state"] == "COMPLETE" and kept["reports"] == [2, 4]
    run = runs[kept["run"]]
    assert run.summary["optuna/state"] == "complete"
    assert run.summary["val/accuracy"] == pytest.approx(kept["value"])
    assert kept["value"] == kept["last_report"]  # the score is the accuracy of the last validation
    assert {name: run.config[name] for name in kept["params"]} == kept["params"]
    assert run.name == "tests-trial-0" and run.config["max_steps"] == 4


def test_two_workers_share_one_study(tmp_path, run_offline):
    _, records = run_offline(command("sweep_workers_run"), tmp_path)
    study = optuna.load_study(study_name="shared", storage=journal_storage(tmp_path / "study.log"))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert len({t.user_attrs["process"] for t in study.trials}) == 2  # one trial from each process
    assert sorted(t.user_attrs["wandb_run"] for t in study.trials) == sorted(r.id for r in records)
    assert sorted(r.config["trial"] for r in records) == [0, 1]


def test_train_trial_rejects_incomplete_hyperparameters_and_budgets():
    with pytest.raises(ValueError, match="params lacks channels"):
        train_trial({"learning_rate": 0.01, "dropout": 0.1}, datamodule=None)
    with pytest.raises(ValueError, match="max_steps"):
        train_trial({"learning_rate": 0.01, "dropout": 0.1, "channels": 8}, datamodule=None, max_steps=0)
