"""The callbacks in helpers.callbacks, on a tiny classifier that is not the series' model.

The classifier is in tests/processes/callbacks_run.py, which also makes the offline W&B run read back here
(in a process of its own: W&B reads its settings once per process).
"""

from __future__ import annotations

import json
import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from helpers.callbacks import LogConfusionMatrix, LogMisclassified, LogPredictions
from tests.processes import command
from tests.processes.callbacks_run import TinyClassifier, loaders, trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_offline):
    _, (record,) = run_offline(command("callbacks_run"), tmp_path_factory.mktemp("callbacks"))
    return record


def logged_tables(run, key: str) -> list[dict]:
    """Every version of a logged table, from the table files in the run's files folder."""
    paths = run.history[f"{key}.path"].dropna().tolist()
    return [json.loads((run.files_dir / path).read_text()) for path in paths]


def test_predictions_are_logged_once_per_validation_epoch_not_in_the_sanity_check(run):
    tables = logged_tables(run, "val/prediction_table")
    assert len(tables) == 2
    for epoch, table in enumerate(tables):
        assert table["columns"] == ["epoch", "image", "truth", "prediction", "confidence"]
        assert len(table["data"]) == 6 and {row[0] for row in table["data"]} == {epoch}
        assert {row[2] for row in table["data"]} <= {"a", "b", "c"}
        assert all(0 < row[4] <= 1 for row in table["data"])
    # the same fixed samples each epoch: the truth column does not change
    assert [row[2] for row in tables[0]["data"]] == [row[2] for row in tables[1]["data"]]
    panels = run.history.dropna(subset=["val/predictions.count"])
    assert panels["val/predictions.count"].tolist() == [6, 6]


def test_misclassified_rows_are_all_mistakes_least_confident_first(run):
    tables = logged_tables(run, "val/misclassified")
    assert len(tables) == 2
    for table in tables:
        rows = table["data"]
        assert 0 < len(rows) <= 5
        assert all(row[2] != row[3] for row in rows)
        confidences = [row[4] for row in rows]
        assert confidences == sorted(confidences)


def test_confusion_matrix_heatmap_and_curves(run):
    history = run.history
    for key in ("val/confusion_matrix_table", "val/roc_table", "val/precision_recall_table"):
        assert history[f"{key}.path"].notna().sum() == 2, key
    assert history["val/confusion_matrix_heatmap._type"].dropna().tolist() == ["image-file"] * 2
    matrix = logged_tables(run, "val/confusion_matrix_table")[-1]
    counts = sum(row[2] for row in matrix["data"])
    assert counts == 120  # one count per sample looked at


def test_without_wandb_they_warn_once_and_the_matrix_is_saved_locally(tmp_path):
    train, val = loaders()
    matrix = LogConfusionMatrix(num_samples=60)
    callbacks = [LogPredictions(num_samples=4), LogMisclassified(), matrix]
    pl.seed_everything(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(CSVLogger(tmp_path), callbacks).fit(TinyClassifier(), train, val)
    skipped = [str(w.message) for w in caught if "has no WandbLogger" in str(w.message)]
    assert len(skipped) == 2 and "LogPredictions" in skipped[0] and "LogMisclassified" in skipped[1]
    assert [p.name for p in matrix.saved] == ["confusion_matrix_epoch0.png", "confusion_matrix_epoch1.png"]
    assert all(p.is_file() and p.parent == tmp_path / "lightning_logs" / "version_0" for p in matrix.saved)


def test_inputs_are_rescaled_for_display_when_no_mapping_is_given():
    callback = LogPredictions()
    pixels = callback.to_pixels(torch.tensor([[[[-2.0, 0.0], [1.0, 2.0]]]]))
    assert pixels.min() == 0 and pixels.max() == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LogPredictions(num_samples=0), "num_samples must be a positive integer"),
        (lambda: LogMisclassified(max_rows=-1), "max_rows must be a positive integer"),
        (lambda: LogConfusionMatrix(num_samples=2.5), "num_samples must be a positive integer"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_with_no_logger_at_all_nothing_is_written(tmp_path, monkeypatch):
    """Without any logger there is no run folder: the confusion matrix must not land in the current folder."""
    train, val = loaders()
    monkeypatch.chdir(tmp_path)
    matrix = LogConfusionMatrix(num_samples=60)
    with pytest.warns(
        UserWarning, match="LogConfusionMatrix saves into the logger's folder, but this Trainer has no"
    ):
        trainer(False, [matrix]).fit(TinyClassifier(), train, val)
    assert matrix.saved == [] and list(tmp_path.iterdir()) == []
