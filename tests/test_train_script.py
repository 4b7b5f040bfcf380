"""helpers.cli and helpers/mnist.yaml: the config-driven training of notebook 08, also under DDP.

The DDP test starts two CPU processes with torchrun (gloo), as a cluster job would, and checks that
one W&B run records the training and that validation metrics cover both processes' shards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import CONFIG
from helpers.data import load_mnist
from helpers.models import MNISTClassifier
from helpers.tracking import find_runs, read_run
from helpers.wandb_setup import WANDB_PROJECT

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--trainer.max_steps=8", "--trainer.val_check_interval=4", "--trainer.limit_val_batches=1.0"]


@pytest.mark.slow
def test_the_config_sets_what_the_script_trains():
    command = [
        sys.executable,
        "-m",
        "helpers.cli",
        "fit",
        "--config",
        str(CONFIG),
        "--model.learning_rate=0.005",
        "--print_config",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    config = yaml.safe_load(result.stdout[result.stdout.index("# pytorch_lightning") :])  # after the W&B line
    assert config["model"]["learning_rate"] == 0.005  # the command line overrides the file
    assert config["model"]["channels"] == 16 and config["data"]["batch_size"] == 128
    assert config["trainer"]["logger"]["class_path"] == "pytorch_lightning.loggers.WandbLogger"
    assert config["seed_everything"] == 42


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, run_offline):
    folder = tmp_path_factory.mktemp("ddp")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
        "helpers.cli",
        "fit", "--config", str(CONFIG), "--trainer.accelerator=cpu", "--trainer.devices=2",
        "--trainer.strategy=ddp", *SHORT,
    ]  # fmt: skip
    stdout, _ = run_offline(command, folder)
    return folder, [read_run(path) for path in find_runs(folder)]


def test_ddp_on_two_processes_writes_one_run(ddp_run):
    _, runs = ddp_run
    (run,) = runs  # rank zero logs; the other process writes nothing
    assert run.state == "finished" and run.name == "08-cli"
    assert run.project == WANDB_PROJECT  # the config names none: helpers.cli sets WANDB_PROJECT
    assert len(run.history.dropna(subset=["val/accuracy"])) == 2  # validated after steps 4 and 8
    assert run.config["learning_rate"] == 0.01


def test_ddp_validation_metrics_cover_both_shards(ddp_run):
    folder, (run,) = ddp_run
    (checkpoint,) = folder.rglob("*.ckpt")
    model = MNISTClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    images, labels = load_mnist().val.tensors
    with torch.inference_mode():
        logits = torch.cat([model(batch) for batch in images.split(1_000)])
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    logged = run.history.dropna(subset=["val/accuracy"]).iloc[-1]
    # Each process validated half of the 5,000 images; the logged values are those of all 5,000.
    assert logged["val/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert logged["val/loss"] == pytest.approx(loss, rel=1e-4)
