from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import wandb

from helpers import tracking, wandb_setup
from helpers.tracking import read_run
from helpers.wandb_setup import offline_environment, offline_process_environment, setup_wandb
from tests.processes import command


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, run_offline):
    """A small run with every kind of record read_run reads back, made in a process of its own so that its
    WANDB_* settings apply (W&B reads them once per process)."""
    _, (record,) = run_offline(command("tracking_run"), tmp_path_factory.mktemp("wandb-run"))
    return record


def test_reads_identity_and_config(offline_run):
    assert offline_run.name == "readback" and offline_run.project == "tests"
    assert offline_run.state == "finished" and offline_run.tags == ["a", "b"]
    assert offline_run.config == {"lr": 0.01, "batch_size": 32}
    assert offline_run.path.name.startswith("offline-run-") and offline_run.id in offline_run.path.name


def test_reads_history_as_a_dataframe(offline_run):
    history = offline_run.history
    assert history["train/loss"].dropna().tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6])
    validation = history.dropna(subset=["val/loss"])
    assert validation["epoch"].tolist() == [0, 1, 2]
    assert validation["val/accuracy"].tolist() == [0.8, 0.9, 0.85]
    assert history["_step"].tolist() == list(range(10))


def test_summary_keeps_define_metric_min_and_max(offline_run):
    summary = offline_run.summary
    assert summary["val/loss"] == {"min": 0.3}
    assert summary["val/accuracy"] == {"max": 0.9}
    assert summary["test/accuracy"] == 0.875
    assert summary["train/loss"] == pytest.approx(1 / 6)
    assert summary["predictions"]["_type"] == "table-file" and summary["predictions"]["nrows"] == 2


def test_logged_media_files_are_on_disk(offline_run):
    image_paths = offline_run.history["digits.path"].dropna().tolist()
    table_paths = offline_run.history["predictions.path"].dropna().tolist()
    assert len(image_paths) == len(table_paths) == 1
    assert (offline_run.files_dir / image_paths[0]).is_file()
    assert (offline_run.files_dir / table_paths[0]).is_file()
    assert set(image_paths + table_paths) <= set(offline_run.files)


def test_artifacts_with_aliases_and_files(offline_run):
    (model,) = [a for a in offline_run.artifacts if a.type == "model"]
    assert model.name == "convnet" and sorted(model.aliases) == ["best", "latest"]
    assert list(model.files) == ["weights.bin"]
    assert model.files["weights.bin"].read_bytes() == b"weights"
    assert model.metadata == {"epochs": 3} and len(model.digest) == 32
    assert any(a.type == "run_table" for a in offline_run.artifacts)


def test_system_metrics(offline_run):
    metrics = offline_run.system_metrics
    assert len(metrics) >= 2
    assert {"timestamp", "memory_percent", "proc.memory.rssMB"} <= set(metrics.columns)
    assert metrics["timestamp"].is_monotonic_increasing


def test_read_run_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(ValueError, match="is not a W&B run folder"):
        read_run(tmp_path)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for name in (
        "WANDB_SILENT",
        "WANDB_MODE",
        "WANDB_API_KEY",
        "WANDB_BASE_URL",
        "WANDB_DIR",
        "WANDB_DATA_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_ARTIFACT_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("TUTORIAL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    yield tmp_path
    wandb.teardown()  # setup_wandb made W&B read this test's settings: forget them


def test_offline_without_a_key(clean_env, capsys):
    assert setup_wandb() == "offline"
    assert os.environ["WANDB_MODE"] == "offline"
    out = capsys.readouterr().out
    assert out.startswith("W&B mode: offline (no API key found") and out.count("\n") == 1
    assert os.environ["WANDB_DIR"] == str(clean_env / "runs")
    assert os.environ["WANDB_DATA_DIR"].startswith(str(clean_env / "runs"))


def test_silences_wandb_unless_the_reader_chose(clean_env, monkeypatch):
    setup_wandb()
    assert os.environ["WANDB_SILENT"] == "true"
    monkeypatch.setenv("WANDB_SILENT", "false")
    setup_wandb()
    assert os.environ["WANDB_SILENT"] == "false"
    monkeypatch.delenv("WANDB_SILENT")
    setup_wandb(silent=False)
    assert "WANDB_SILENT" not in os.environ


def test_online_with_a_key_and_the_key_is_never_printed(clean_env, monkeypatch, capsys):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    assert setup_wandb() == "online"
    out = capsys.readouterr().out
    assert "WANDB_API_KEY is set" in out and secret not in out


def test_online_after_wandb_login(clean_env, capsys):
    (clean_env / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (clean_env / "netrc").chmod(0o600)
    assert setup_wandb() == "online"
    assert "`wandb login` stored an API key" in capsys.readouterr().out


def test_readers_mode_wins(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert setup_wandb() == "disabled"
    assert "WANDB_MODE is set" in capsys.readouterr().out


def test_colab_secret(clean_env, monkeypatch):
    class FakeUserdata:
        @staticmethod
        def get(name):
            assert name == "WANDB_API_KEY"
            return "k" * 40

    fake_colab = type(sys)("google.colab")
    fake_colab.userdata = FakeUserdata
    monkeypatch.setitem(sys.modules, "google.colab", fake_colab)
    assert setup_wandb() == "online"
    assert os.environ["WANDB_API_KEY"] == "k" * 40


def test_unknown_mode_is_refused(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ValueError, match="WANDB_MODE must be one of online, offline, disabled, shared"):
        setup_wandb()


def test_folders_the_reader_set_are_kept(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(clean_env / "mine"))
    wandb_setup.use_repo_folders()
    assert os.environ["WANDB_DIR"] == str(clean_env / "mine")


def test_offline_environment_keeps_every_folder_inside(tmp_path):
    env = offline_environment(tmp_path)
    assert env["WANDB_MODE"] == "offline" and env["WANDB_SILENT"] == "true"
    folders = [value for name, value in env.items() if name.endswith("_DIR")]
    assert len(folders) == 6 and all(Path(folder).is_relative_to(tmp_path) for folder in folders)


def test_a_process_environment_drops_every_inherited_wandb_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "a key of the parent's")
    monkeypatch.setenv("WANDB_SERVICE", "3-1-unix-/a/parent/service.sock")
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    env = offline_process_environment(tmp_path)
    assert "WANDB_API_KEY" not in env and "WANDB_SERVICE" not in env and env["SOMETHING_ELSE"] == "kept"
    assert {name: env[name] for name in offline_environment(tmp_path)} == offline_environment(tmp_path)


@pytest.mark.slow
def test_a_script_started_after_setup_writes_its_own_run(clean_env):
    """setup_wandb leaves no W&B service behind for child processes to share: a script it launches (torchrun,
    an Optuna worker) writes its run itself, complete when the script exits."""
    setup_wandb()
    subprocess.run(command("one_value_run"), check=True, timeout=180)  # its run is finished at exit
    (folder,) = tracking.find_runs(clean_env / "runs" / "wandb")
    assert read_run(folder).history["x"].tolist() == [1]
