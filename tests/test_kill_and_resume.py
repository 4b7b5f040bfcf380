"""Fault tests: `python -m helpers.resumable` killed with SIGKILL at many moments, resumed each time.

One training (48 steps of 32 random images, 20 batches an epoch, a checkpoint every 8 steps, every
step logged, validation every 12 steps) is killed seven times, each time at another moment, by a
callback that sends SIGKILL to its own process (once to W&B's service first). After each kill the
test waits until every process of that training is gone, W&B's service included, as after a
pre-emption, and runs the same command again. The parts of the run are then read back by run id and
every (metric, trainer/global_step) pair must be there exactly once, the same pairs as in a training
that was never killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from helpers.resumable import BOOKKEEPING, logged_pairs
from helpers.tracking import NoRunYetError, find_runs, offline_environment, read_run

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ["--max-steps", "48", "--checkpoint-every", "8", "--log-every-n-steps", "1", "--val-every", "12"]
SETTINGS += ["--batch-size", "32", "--synthetic", "800"]  # 640 to train on: 20 batches an epoch
# W&B writes the run's file every second instead of every 15: a killed part then has most of its records
# on disk (not logged again) and loses the last second's. The part killed while saving keeps W&B's 15 s,
# so nothing of it reaches its file: its values before the checkpoint are logged again from the ledger.
FLUSH = {"saving": "15"}

# Runs helpers.resumable with a callback that kills the process at one moment: (moment, step, whom).
KILLER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import psutil
    import pytorch_lightning as pl
    from helpers import resumable

    moment, step, whom, pids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    def die():
        sys.stdout.flush()
        # W&B's service writes the run's file every second here (see FLUSH): give it that second, so that
        # the killed part's file holds what was logged so far and the resume must not log it again. Without
        # it, how much reaches the file depends on how fast the machine is.
        time.sleep(1.5)
        children = psutil.Process().children(recursive=True)  # W&B's service runs in a session of its own
        with open(pids_file, "w") as file:
            json.dump([child.pid for child in children], file)
        if whom == "service-too":
            for child in children:
                child.kill()
        os.kill(os.getpid(), signal.SIGKILL)

    class KillAt(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            if moment == "train_start":
                die()
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if moment == "batch_start" and trainer.global_step == step:
                die()
        def on_validation_batch_end(self, trainer, *args, **kwargs):
            if moment == "validation" and trainer.global_step == step:
                die()
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            if moment == "saving" and trainer.global_step == step:
                die()
        def on_train_epoch_end(self, trainer, pl_module):
            if moment == "epoch_end" and trainer.global_step == step:
                die()
        def on_train_end(self, trainer, pl_module):
            if moment == "train_end":
                die()

    log_metrics = resumable.ResumedWandbLogger.log_metrics
    def log_or_die(self, metrics, step=None):
        # "logging": after the checkpoint of the batch that makes step N is saved, before its metrics are
        # logged (Lightning logs them with trainer/global_step N - 1).
        if moment == "logging" and step == int(sys.argv[2]) - 1 and "train/loss_step" in metrics:
            die()
        log_metrics(self, metrics, step)
    resumable.ResumedWandbLogger.log_metrics = log_or_die

    resumable.main(sys.argv[5:], callbacks=[KillAt()])
    """
)

# (moment, step, whom), in the order they happen along the training.
KILLS = [
    ("train_start", 0, "process"),  # before the first step and before any checkpoint
    ("batch_start", 12, "process"),  # between checkpoints: steps 9-12 are redone
    ("logging", 16, "process"),  # checkpoint 16 saved, its batch's metrics not yet logged
    ("validation", 24, "process"),  # in the middle of the validation at step 24
    ("saving", 32, "process"),  # while the checkpoint at step 32 is being made
    ("epoch_end", 40, "service-too"),  # the end of epoch 2, with W&B's service killed too
    ("train_end", 0, "process"),  # training done, the run not yet finished
]


def _run(
    command: list[str], env: dict, cwd: Path, pids_file: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `command`; if it was killed, wait until the processes it had started (in `pids_file`) are gone."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if pids_file is not None and pids_file.exists():
        deadline = time.monotonic() + 60
        for pid in json.loads(pids_file.read_text()):  # W&B's service outlives a killed training for a moment
            while _alive(pid):
                if time.monotonic() > deadline:
                    pytest.fail(f"process {pid} of the killed training did not end within 60 s")
                time.sleep(0.2)
        pids_file.unlink()
    return result


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _environment(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(offline_environment(folder))
    env["PYTHONPATH"] = str(ROOT)
    return env


def _metric_pairs(parts) -> Counter:
    """How many times each (metric, trainer/global_step) was logged across the parts."""
    counts = Counter()
    for part in parts:
        history = part.history
        for column in history.columns:
            if column.startswith("_") or column in BOOKKEEPING:
                continue
            steps = history.loc[history[column].notna(), "trainer/global_step"]
            counts.update((column, int(step)) for step in steps)
    return counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Counter:
    """The pairs logged by the same training, never killed."""
    folder = tmp_path_factory.mktemp("reference")
    command = [sys.executable, "-m", "helpers.resumable", "--folder", str(folder / "training"), *SETTINGS]
    result = _run(command, _environment(folder), folder)
    assert result.returncode == 0, result.stderr[-3000:]
    (part,) = [read_run(path) for path in find_runs(folder / "wandb")]
    return _metric_pairs([part])


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """The training killed at every moment in KILLS, resumed after each, then run once more."""
    folder = tmp_path_factory.mktemp("killed")
    env = _environment(folder)
    arguments = ["--folder", str(folder / "training"), *SETTINGS, "--wandb-flush-seconds", "1"]
    results = []
    for moment, step, whom in KILLS:
        pids = folder / "pids.json"
        arguments[-1] = FLUSH.get(moment, "1")
        result = _run(
            [sys.executable, "-c", KILLER, moment, str(step), whom, str(pids), *arguments], env, folder, pids
        )
        assert result.returncode == -signal.SIGKILL, f"not killed at {moment}:\n{result.stderr[-3000:]}"
        results.append(result)
    results.append(_run([sys.executable, "-m", "helpers.resumable", *arguments], env, folder))
    assert results[-1].returncode == 0, results[-1].stderr[-3000:]
    return folder, results


@pytest.mark.slow
def test_the_reference_logs_every_step_once(reference):
    assert max(reference.values()) == 1
    assert {step for key, step in reference if key == "train/loss_step"} == set(range(48))
    assert {step for key, step in reference if key == "val/loss"} == {11, 23, 35, 47}


@pytest.mark.slow
def test_every_logged_step_is_there_exactly_once_across_the_parts(killed, reference):
    folder, _ = killed
    run_id = json.loads((folder / "training" / "training.json").read_text())["wandb_run_id"]
    parts = [read_run(path, partial=True) for path in find_runs(folder / "wandb", run_id=run_id)]
    others = set(find_runs(folder / "wandb")) - {part.path for part in parts}
    for other in others:  # a part killed before W&B wrote anything holds no run: nothing else was made
        with pytest.raises(NoRunYetError):
            read_run(other)
    assert len(parts) >= 3 and "running" in {part.state for part in parts}  # parts killed before finish
    counts = _metric_pairs(parts)
    twice = sorted(pair for pair, count in counts.items() if count > 1)
    lost = sorted(set(reference) - set(counts))
    assert twice == [] and lost == []
    assert set(counts) == set(reference)


@pytest.mark.slow
def test_each_resume_resumes_from_the_last_checkpoint_whose_steps_were_all_logged(killed):
    _, results = killed
    outputs = [result.stdout for result in results]
    assert "Started W&B run" in outputs[0]
    assert "from the start (no checkpoint yet)" in outputs[1]
    assert "from step 8:" in outputs[2]  # killed at the start of step 13's batch
    assert "from step 8:" in outputs[3]  # checkpoint 16 was saved, but its batch's metrics never logged
    assert "from step 16:" in outputs[4]  # killed during the validation at step 24
    assert "from step 24:" in outputs[5]  # killed while the checkpoint at step 32 was being made
    replayed = re.search(r"(\d+) values that W&B had not written to disk were logged again", outputs[5])
    assert int(replayed[1]) > 0  # that part's file held nothing: steps 16-23 came from the ledger
    assert "from step 32:" in outputs[6]  # killed at the end of epoch 2, W&B's service too
    # Killed after training, before W&B wrote the last second: the values it lost are logged from the ledger.
    assert re.search(
        r"is finished \(48 steps\)(: nothing to do|; \d+ values that W&B had not written to disk were logged "
        r"again from logged.jsonl)\.$",
        outputs[-1].strip(),
    )


@pytest.mark.slow
def test_the_checkpoint_to_resume_from_is_never_half_written(killed):
    folder, _ = killed
    import torch

    checkpoint = torch.load(folder / "training" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 48


@pytest.mark.slow
def test_a_resume_with_other_settings_is_refused_in_one_sentence(killed):
    folder, _ = killed
    arguments = ["--folder", str(folder / "training"), *SETTINGS]
    arguments[arguments.index("--max-steps") + 1] = "60"
    result = subprocess.run(
        [sys.executable, "-m", "helpers.resumable", *arguments],
        cwd=folder,
        env=_environment(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert "was started with --max-steps 48: resume it with the same settings, or give another" in last_line


def test_logged_pairs_counts_media_under_their_key():
    import pandas as pd

    from helpers.tracking import RunRecord

    history = pd.DataFrame(
        {"trainer/global_step": [3, 4], "val/predictions.path": ["a.png", None], "loss": [None, 0.5]}
    )
    part = RunRecord(Path("."), "id", "", "", "", [], {}, {}, history, pd.DataFrame())
    assert {("val/predictions", 3), ("val/predictions.path", 3), ("loss", 4)} <= logged_pairs([part])
    assert ("loss", 3) not in logged_pairs([part])


def test_a_ledger_line_cut_by_a_kill_is_left_out_and_the_next_starts_afresh(tmp_path):
    from helpers.resumable import ResumedWandbLogger, read_ledger

    ledger = tmp_path / "logged.jsonl"
    ledger.write_text('{"step": 3, "metrics": {"loss": 0.5}}\n{"step": 4, "metr')
    assert read_ledger(ledger) == {("loss", 3): 0.5}
    ResumedWandbLogger(ledger, project="tests", offline=True, save_dir=str(tmp_path))
    with ledger.open("a") as file:
        file.write('{"step": 4, "metrics": {"loss": 0.25}}\n')
    assert read_ledger(ledger) == {("loss", 3): 0.5, ("loss", 4): 0.25}
