"""Notebook 02's hand-instrumented W&B logging, checked on a tiny offline run read back from disk.

`make_run` logs the way notebook 02 does (config, per-step training metrics, per-epoch validation
metrics with `define_metric`, `run.watch`, a table of images, `wandb.plot` charts, test metrics in
the summary, the weights as a model artifact) for a few steps on random images. The tests read the
run back with `helpers.tracking.read_run` and check that each of those landed where the notebook
expects it.

The run is made in a subprocess: W&B reads its `WANDB_*` variables once per process, at the first
`wandb.init`, so in a pytest process where another test has already started a run, the temporary
folders set here would be ignored and the run would land elsewhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.models import ConvNet
from helpers.tracking import RunRecord

CONFIG = {
    "batch_size": 16,
    "epochs": 2,
    "max_learning_rate": 0.01,
    "channels": 4,
    "hidden": 8,
    "dropout": 0.1,
}
STEPS_PER_EPOCH = 4
WATCH_EVERY = 3  # 8 training steps: snapshots after the 3rd and the 6th backward pass
TABLE_ROWS = 5
TEST_IMAGES = 32


def fake_data(seed: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised images and labels, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 1, 28, 28, generator=generator), torch.randint(
        0, 10, (count,), generator=generator
    )


def make_model(config: dict) -> ConvNet:
    return ConvNet(channels=config["channels"], hidden=config["hidden"], dropout=config["dropout"])


@torch.no_grad()
def accuracy_on_test_data(model: ConvNet) -> float:
    model.eval()
    images, labels = fake_data(seed=2, count=TEST_IMAGES)
    return (model(images).argmax(dim=1) == labels).float().mean().item()


def make_run() -> None:
    """Train for a few steps and log like notebook 02. Runs in a subprocess: see the module docstring."""
    import wandb

    from helpers.paths import runs_dir
    from helpers.wandb_setup import setup_wandb

    setup_wandb()
    torch.manual_seed(0)
    run = wandb.init(
        project="test-project",
        name="test-run",
        tags=["test", "notebook-02"],
        config=CONFIG,
        settings=wandb.Settings(silent=True),
    )
    config = run.config
    run.define_metric("epoch")
    run.define_metric("val/loss", step_metric="epoch", summary="min,last")
    run.define_metric("val/accuracy", step_metric="epoch", summary="max,last")

    model = make_model(dict(config))
    run.watch(model, log="all", log_freq=WATCH_EVERY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.max_learning_rate)
    images, labels = fake_data(seed=1, count=config.batch_size * STEPS_PER_EPOCH)
    val_images, val_labels = fake_data(seed=3, count=config.batch_size)
    for epoch in range(1, config.epochs + 1):
        model.train()
        batches = zip(images.split(config.batch_size), labels.split(config.batch_size), strict=True)
        for batch_images, batch_labels in batches:
            logits = model(batch_images)
            loss = F.cross_entropy(logits, batch_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            accuracy = (logits.argmax(dim=1) == batch_labels).float().mean()
            run.log({"train/loss": loss.item(), "train/accuracy": accuracy.item()})
        model.eval()
        with torch.no_grad():
            val_logits = model(val_images)
        run.log(
            {
                "epoch": epoch,
                "val/loss": F.cross_entropy(val_logits, val_labels).item(),
                "val/accuracy": (val_logits.argmax(dim=1) == val_labels).float().mean().item(),
            }
        )

    test_images, test_labels = fake_data(seed=2, count=TEST_IMAGES)
    with torch.no_grad():
        confidences, predictions = model(test_images).softmax(dim=1).max(dim=1)
    table = wandb.Table(columns=["index", "image", "truth", "prediction", "confidence"])
    for i in range(TABLE_ROWS):
        pixels = (test_images[i, 0].sigmoid() * 255).round().to(torch.uint8).numpy()
        table.add_data(
            i, wandb.Image(pixels), int(test_labels[i]), int(predictions[i]), confidences[i].item()
        )
    run.log({"test/predictions": table})
    curve = wandb.Table(columns=["threshold", "accuracy"], data=[[0.5, 0.9], [0.9, 0.99]])
    run.log(
        {
            "test/accuracy_vs_threshold": wandb.plot.line(curve, "threshold", "accuracy", title="accuracy"),
            "test/confusion_matrix": wandb.plot.confusion_matrix(
                y_true=test_labels.tolist(),
                preds=predictions.tolist(),
                class_names=[str(d) for d in range(10)],
            ),
        }
    )
    run.summary["test/accuracy"] = accuracy_on_test_data(model)

    model_path = runs_dir() / "models" / f"convnet-{run.id}.pt"
    model_path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), model_path)
    artifact = wandb.Artifact(name="convnet-mnist", type="model", metadata=dict(config))
    artifact.add_file(str(model_path), name="model.pt", policy="immutable")
    run.log_artifact(artifact, aliases=["notebook-02"])
    run.finish()


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory, run_offline) -> RunRecord:
    _, runs = run_offline([sys.executable, __file__], tmp_path_factory.mktemp("wandb-run"))
    assert len(runs) == 1, f"expected one run, found {len(runs)}"
    return runs[0]


def test_run_is_offline_finished_and_named(record: RunRecord) -> None:
    assert record.path.name.startswith("offline-run-")
    assert (record.name, record.project, record.state) == ("test-run", "test-project", "finished")
    assert sorted(record.tags) == ["notebook-02", "test"]


def test_config_round_trips(record: RunRecord) -> None:
    assert record.config == CONFIG


def test_history_has_a_row_per_training_step_and_per_epoch(record: RunRecord) -> None:
    history = record.history
    train = history.dropna(subset=["train/loss"])
    val = history.dropna(subset=["val/loss"])
    assert len(train) == CONFIG["epochs"] * STEPS_PER_EPOCH
    assert train["train/accuracy"].between(0, 1).all()
    assert val["epoch"].tolist() == [1, 2]
    assert val["train/loss"].isna().all(), "validation metrics are logged in steps of their own"
    assert (val["_step"] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH + 1]).all()


def test_define_metric_keeps_best_and_last_in_summary(record: RunRecord) -> None:
    val = record.history.dropna(subset=["val/loss"])
    assert record.summary["val/loss"] == {"min": val["val/loss"].min(), "last": val["val/loss"].iloc[-1]}
    assert record.summary["val/accuracy"] == {
        "max": val["val/accuracy"].max(),
        "last": val["val/accuracy"].iloc[-1],
    }
    assert record.summary["epoch"] == CONFIG["epochs"]


def test_watch_logs_histograms_every_log_freq_steps(record: RunRecord) -> None:
    history = record.history
    parameters = [name for name, _ in make_model(CONFIG).named_parameters()]
    for prefix in ("gradients", "parameters"):
        columns = {f"{prefix}/{name}.values" for name in parameters}
        assert columns <= set(history.columns), f"missing {prefix} histograms"
    # Each snapshot lands in the row of the training step whose backward pass produced it.
    training_step = history["train/loss"].notna().cumsum()
    snapshot_rows = history[f"gradients/{parameters[0]}.values"].notna()
    total_steps = CONFIG["epochs"] * STEPS_PER_EPOCH
    expected = list(range(WATCH_EVERY, total_steps + 1, WATCH_EVERY))
    assert training_step[snapshot_rows].tolist() == expected
    assert history.loc[snapshot_rows, "train/loss"].notna().all()


def test_predictions_table_and_its_images_are_on_disk(record: RunRecord) -> None:
    [table_json] = [f for f in record.files if f.startswith("media/table/test/predictions_")]
    assert (record.files_dir / table_json).is_file()
    assert record.summary["test/predictions"]["nrows"] == TABLE_ROWS

    [artifact] = [a for a in record.artifacts if "test/predictions.table.json" in a.files]
    assert artifact.type == "run_table"
    table = json.loads(artifact.files["test/predictions.table.json"].read_text())
    assert table["columns"] == ["index", "image", "truth", "prediction", "confidence"]
    assert len(table["data"]) == TABLE_ROWS
    for _index, image, truth, prediction, confidence in table["data"]:
        assert image["_type"] == "image-file" and (image["width"], image["height"]) == (28, 28)
        png = Path(artifact.files[image["path"]])
        with Image.open(png) as thumbnail:
            assert thumbnail.size == (28, 28)
        assert 0 <= truth < 10 and 0 <= prediction < 10 and 0.1 <= confidence <= 1


def test_custom_charts_are_logged_with_their_tables(record: RunRecord) -> None:
    line = record.summary["test/accuracy_vs_threshold_table"]
    matrix = record.summary["test/confusion_matrix_table"]
    assert (line["_type"], line["nrows"]) == ("table-file", 2)
    # one row for every (true, predicted) pair of the 10 classes
    assert (matrix["_type"], matrix["nrows"]) == ("table-file", 100)
    for chart in (line, matrix):
        assert (record.files_dir / chart["path"]).is_file()
    assert sum(a.type == "run_table" for a in record.artifacts) == 3


def test_model_artifact_holds_loadable_weights(record: RunRecord) -> None:
    [artifact] = [a for a in record.artifacts if a.type == "model"]
    assert artifact.name == "convnet-mnist"
    assert sorted(artifact.aliases) == ["latest", "notebook-02"]
    assert list(artifact.files) == ["model.pt"]
    weights = artifact.files["model.pt"]
    assert weights.name == f"convnet-{record.id}.pt", (
        "policy='immutable' references the file where it was saved"
    )
    model = make_model(record.config)
    model.load_state_dict(torch.load(weights, weights_only=True))
    assert accuracy_on_test_data(model) == record.summary["test/accuracy"]


if __name__ == "__main__":
    make_run()
