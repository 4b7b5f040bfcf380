"""What notebook 04 shows of TensorBoard, checked on tiny runs made by tests/processes/tensorboard_run.py:
Lightning's TensorBoardLogger beside WandbLogger holds the same numbers, and W&B's TensorBoard sync
mirrors a SummaryWriter's values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from helpers.tensorboard import event_files, read_scalars
from tests.processes import command


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_offline):
    folder = tmp_path_factory.mktemp("tensorboard")
    stdout, records = run_offline(command("tensorboard_run"), folder)
    made = json.loads(stdout.strip().splitlines()[-1])
    return folder, made, {record.id: record for record in records}


def test_tensorboard_logger_writes_under_save_dir_name_version(runs):
    folder, made, _ = runs
    log_dir = folder / made["tb_log_dir"]
    assert log_dir == folder / "tb" / "lightning" / "version_0"
    # fit writes one event file; the logger closes it at the end of fit, so test opens a second one
    assert len(event_files(log_dir)) == 2
    hparams = yaml.safe_load((log_dir / "hparams.yaml").read_text())
    assert hparams["learning_rate"] == 0.01 and hparams["channels"] == 16


def test_tensorboard_holds_the_values_wandb_recorded_at_the_same_steps(runs):
    folder, made, records = runs
    history = records[made["both"]].history
    scalars = read_scalars(folder / made["tb_log_dir"])
    tags = set(scalars["tag"])
    assert "hp_metric" not in tags  # default_hp_metric=False: no placeholder metric
    metrics = {c for c in history.columns if c.startswith(("train/", "val/", "test/"))}
    assert tags == metrics | {"epoch"}
    for tag in sorted(tags):
        wandb_points = history[["trainer/global_step", tag]].dropna()
        tb_points = scalars[scalars["tag"] == tag]
        assert tb_points["step"].tolist() == wandb_points["trainer/global_step"].astype(int).tolist(), tag
        # TensorBoard stores float32; Lightning hands both loggers the same float32 numbers
        np.testing.assert_array_equal(
            tb_points["value"].to_numpy(np.float32), wandb_points[tag].to_numpy(np.float32), err_msg=tag
        )


def test_read_scalars_keeps_every_value_where_tensorboard_samples(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        for step in range(10_050):
            writer.add_scalar("loss", step, step)
    sampled = EventAccumulator(str(tmp_path))
    sampled.Reload()
    assert len(sampled.Scalars("loss")) == 10_000  # TensorBoard's default keeps a sample
    scalars = read_scalars(tmp_path)
    assert scalars["step"].tolist() == list(range(10_050))
    assert scalars["value"].tolist() == [float(step) for step in range(10_050)]


def test_read_scalars_names_a_folder_without_event_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        read_scalars(tmp_path)


@pytest.mark.parametrize("name", ["patched", "alone"])
def test_sync_tensorboard_mirrors_the_writers_values_into_the_run(runs, name):
    folder, made, records = runs
    run = records[made[name]["id"]]
    scalars = read_scalars(folder / made[name]["log_dir"])
    history = run.history
    for tag in ("train/loss", "val/accuracy"):
        mirrored = history[["global_step", tag]].dropna()
        written = scalars[scalars["tag"] == tag]
        assert mirrored["global_step"].astype(int).tolist() == written["step"].tolist()
        # both hold the writer's float32 numbers (W&B keeps each as its shortest decimal form)
        np.testing.assert_array_equal(
            mirrored[tag].to_numpy(np.float32), written["value"].to_numpy(np.float32), err_msg=tag
        )
    assert len(history.dropna(subset=["train/loss"])) == 30
    assert sum(f.rsplit("/", 1)[-1].startswith("events.out.tfevents.") for f in run.files) == 1


def test_sync_tensorboard_waits_for_a_root_folder_unless_patch_names_it(runs):
    """The notebook's reason to call wandb.tensorboard.patch(root_logdir=...): with one log folder and
    no root, W&B waits 10 s at finish to guess the root."""
    _, made, _ = runs
    assert made["alone"]["finish_s"] >= 9
    assert made["patched"]["finish_s"] < made["alone"]["finish_s"] - 5
