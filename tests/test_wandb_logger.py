"""What notebook 04 relies on, checked on a small WandbLogger run made here and read back from disk."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import pytorch_lightning as pl
    import torch
    import wandb
    from pytorch_lightning.loggers import CSVLogger, WandbLogger
    from torch.utils.data import TensorDataset

    from helpers.data import tensor_batches
    from helpers.models import MNISTClassifier

    warnings.filterwarnings("ignore")
    pl.seed_everything(0)
    data = TensorDataset(torch.randn(320, 1, 28, 28), torch.randint(0, 10, (320,)))

    OPTIONS = dict(accelerator="cpu", log_every_n_steps=2, enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False)

    def fit(logger, model, epochs=2):
        trainer = pl.Trainer(max_epochs=epochs, logger=logger, **OPTIONS)
        trainer.fit(model, tensor_batches(data, 64, shuffle=True), tensor_batches(data, 160))

    logger = WandbLogger(project="tests", name="logger", tags=["t"], group="g", config={"extra": 1})
    model = MNISTClassifier()
    logger.watch(model, log="all", log_freq=2)
    logger.experiment.define_metric("val/accuracy", summary="max")
    fit([logger, CSVLogger("csv")], model)
    images = data.tensors[0][:4].clamp(0, 1)
    logger.log_image(key="val/samples", images=list(images), caption=["a", "b", "c", "d"])
    logger.log_table(key="val/table", columns=["image", "label"], data=[[wandb.Image(images[0]), 3]])
    logger.log_text(key="val/notes", columns=["note"], data=[["hello"]])
    first_id = logger.experiment.id

    reused = WandbLogger(project="tests", name="reused").experiment.id == first_id
    wandb.finish()
    fresh = WandbLogger(project="tests", name="fresh")
    fit(fresh, MNISTClassifier(), epochs=1)
    fresh_id = fresh.experiment.id
    wandb.finish()
    print(json.dumps({"first": first_id, "reused": reused, "fresh": fresh_id}))
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_offline):
    stdout, records = run_offline([sys.executable, "-c", SCRIPT], tmp_path_factory.mktemp("wandb-logger"))
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
