"""What notebook 04 relies on, checked on a small WandbLogger run read back from disk.

The run is made by tests/processes/wandb_logger_run.py, in a process of its own (W&B reads its settings
once per process).
"""

from __future__ import annotations

import json

import pytest

from tests.processes import command


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_offline):
    stdout, records = run_offline(command("wandb_logger_run"), tmp_path_factory.mktemp("wandb-logger"))
    ids = json.loads(stdout.strip().splitlines()[-1])
    return ids, {record.id: record for record in records}


def test_hyperparameters_reach_the_config(runs):
    ids, records = runs
    run = records[ids["first"]]
    assert run.name == "logger" and run.tags == ["t"]
    hparams = {"channels", "hidden", "dropout", "learning_rate", "weight_decay"}
    assert hparams | {"extra"} <= set(run.config)
    assert run.config["learning_rate"] == 0.01 and run.config["extra"] == 1


def test_metrics_are_logged_against_the_trainer_step(runs):
    ids, records = runs
    history = records[ids["first"]].history
    assert {"train/loss_step", "train/loss_epoch", "val/loss", "val/accuracy", "trainer/global_step"} <= set(
        history.columns
    )
    training = history.dropna(subset=["train/loss_step"])
    assert training["trainer/global_step"].tolist() == [1, 3, 5, 7, 9]  # every 2nd of 10 steps
    assert history["trainer/global_step"].notna().all()  # every logged row carries Lightning's step
    assert any(c.startswith("gradients/") for c in history.columns)  # watch(log_freq=2) fired


def test_define_metric_keeps_the_best_value(runs):
    ids, records = runs
    run = records[ids["first"]]
    best = run.summary["val/accuracy"]
    assert set(best) == {"max"}
    assert best["max"] == run.history["val/accuracy"].max()


def test_images_tables_and_text_are_on_disk(runs):
    ids, records = runs
    run = records[ids["first"]]
    types = {key: run.summary[key]["_type"] for key in ("val/samples", "val/table", "val/notes")}
    assert types == {"val/samples": "images/separated", "val/table": "table-file", "val/notes": "table-file"}
    for key in ("val/table", "val/notes"):
        table = json.loads((run.files_dir / run.summary[key]["path"]).read_text())
        assert table["columns"] in (["image", "label"], ["note"])
    images = [f for f in run.files if f.startswith("media/images/val/samples")]
    assert len(images) == 4 and all((run.files_dir / f).is_file() for f in images)


def test_a_second_logger_reuses_the_run_until_wandb_finish(runs):
    ids, records = runs
    assert ids["reused"] is True
    assert ids["fresh"] != ids["first"] and set(records) == {ids["first"], ids["fresh"]}
    fresh = records[ids["fresh"]]
    assert fresh.name == "fresh"
    # its own 5 steps (logged at steps 1 and 3), nothing of the first run's 10
    assert fresh.history["trainer/global_step"].max() <= 5
    assert fresh.history["train/loss_step"].notna().sum() == 2
