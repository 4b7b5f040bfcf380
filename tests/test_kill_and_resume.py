"""Fault tests: `python -m helpers.resumable` stopped by SIGKILL and SIGTERM at many moments, each resumed.

One training (48 steps of 32 random images, 20 batches an epoch, a checkpoint every 8 steps, every
step logged, validation every 12 steps) is stopped nine times, each time at another moment, by a
callback that sends a signal to its own process: SIGKILL seven times (once to W&B's service first),
SIGTERM twice (between two checkpoints, and inside a validation). After each stop the test waits until
every process of that training is gone, W&B's service included, as after a pre-emption, and starts the
same command again. The parts of the run are then read back by run id and every (metric,
trainer/global_step) pair must be there exactly once, the same pairs as in a training never stopped.

Each start is a process of its own, forked from one driver process that imported Lightning, torch and
W&B once (a fresh `python -m helpers.resumable` spends most of its start importing them): the forked
process runs `helpers.resumable.main` with the command's arguments, starts its own W&B service, and is
killed, or stops, as a fresh one would be.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers.resumable import BOOKKEEPING, PREEMPTED, logged_pairs
from helpers.tracking import NoRunYetError, find_runs, read_run
from helpers.wandb_setup import SERVICE_VARIABLE, offline_process_environment
from tests.processes import command

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ["--max-steps", "48", "--checkpoint-every", "8", "--log-every-n-steps", "1", "--val-every", "12"]
SETTINGS += ["--batch-size", "32", "--synthetic", "800"]  # 640 to train on: 20 batches an epoch
# W&B writes the run's file every 0.2 s instead of every 15, and a killed part waits until its file stops
# growing: its file then holds what it logged, which the resume must not log again. The part killed while
# saving writes its file every 600 s, so nothing of it reaches its file: its values are logged again from the
# ledger.
FLUSH_SECONDS = 0.2
FLUSH = {"saving": "600"}

# (signal, moment, step, whom), in the order they happen along the training.
STOPS = [
    ("SIGKILL", "train_start", 0, "process"),  # before the first step and before any checkpoint
    ("SIGKILL", "batch_start", 12, "process"),  # between checkpoints: steps 9-12 are redone
    ("SIGKILL", "logging", 16, "process"),  # checkpoint 16 saved, its batch's metrics not yet logged
    ("SIGTERM", "batch_start", 18, "process"),  # between checkpoints: stops after step 19, saves it
    ("SIGKILL", "validation", 24, "process"),  # in the middle of the validation at step 24
    ("SIGKILL", "saving", 32, "process"),  # while the checkpoint at step 32 is being made
    ("SIGTERM", "validation", 36, "process"),  # in the validation at step 36: stops it, keeps checkpoint 32
    ("SIGKILL", "epoch_end", 40, "service-too"),  # the end of epoch 2, with W&B's service killed too
    ("SIGKILL", "train_end", 0, "process"),  # training done, the run not yet finished
]


def _environment(folder: Path) -> dict:
    env = offline_process_environment(folder)
    env["PYTHONPATH"] = str(ROOT)
    env["OMP_NUM_THREADS"] = "1"  # batches of 32 small images: more threads only wait for each other
    return env


def _drive(folder: Path, starts: list) -> list[dict]:
    """Run `starts` one after the other, each in a process of its own; their exit statuses and outputs."""
    results = folder / "results.json"
    driver = subprocess.run(
        command("kill_driver", results, json.dumps(starts), FLUSH_SECONDS),
        cwd=folder,
        env=_environment(folder),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert driver.returncode == 0 and results.exists(), driver.stderr[-3000:]
    return json.loads(results.read_text())


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


def _parts(training: Path) -> list:
    run_id = json.loads((training / "training.json").read_text())["wandb_run_id"]
    return [read_run(path, partial=True) for path in find_runs(training.parent / "wandb", run_id=run_id)]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A training never stopped (`reference`), then one stopped at every moment in STOPS, resumed after each,
    then run once more."""
    folder = tmp_path_factory.mktemp("stopped")
    reference = [
        "--folder",
        str(folder / "reference"),
        *SETTINGS,
        "--wandb-flush-seconds",
        str(FLUSH_SECONDS),
    ]
    arguments = ["--folder", str(folder / "training"), *SETTINGS, "--wandb-flush-seconds", str(FLUSH_SECONDS)]
    starts = [["none", "", 0, "process", reference]]
    for stop, moment, step, whom in STOPS:
        flush = FLUSH.get(moment, str(FLUSH_SECONDS)) if stop == "SIGKILL" else str(FLUSH_SECONDS)
        starts.append([stop, moment, step, whom, [*arguments[:-1], flush]])
    starts.append(["none", "", 0, "process", arguments])
    results = _drive(folder, starts)
    for (stop, moment, *_), result in zip(starts, results, strict=True):
        expected = {"none": 0, "SIGKILL": -signal.SIGKILL, "SIGTERM": PREEMPTED}[stop]
        assert result["status"] == expected, (
            f"{stop} at {moment}: status {result['status']}\n{result['stdout']}\n{result['stderr']}"
        )
    return folder, results


@pytest.fixture(scope="module")
def reference(stopped) -> Counter:
    """The pairs logged by the same training, never stopped."""
    folder, _ = stopped
    (part,) = _parts(folder / "reference")
    return _metric_pairs([part])


@pytest.mark.slow
def test_the_reference_logs_every_step_once(reference):
    assert max(reference.values()) == 1
    assert {step for key, step in reference if key == "train/loss_step"} == set(range(48))
    assert {step for key, step in reference if key == "val/loss"} == {11, 23, 35, 47}


@pytest.mark.slow
def test_every_logged_step_is_there_exactly_once_across_the_parts(stopped, reference):
    folder, _ = stopped
    parts = _parts(folder / "training")
    reference_parts = _parts(folder / "reference")
    others = set(find_runs(folder / "wandb")) - {part.path for part in parts + reference_parts}
    for other in others:  # a part killed before W&B wrote anything holds no run: nothing else was made
        with pytest.raises(NoRunYetError):
            read_run(other)
    assert len(parts) >= 3 and "running" in {part.state for part in parts}  # parts killed before finish
    counts = _metric_pairs(parts)
    twice = sorted(pair for pair, count in counts.items() if count > 1)
    lost = sorted(set(reference) - set(counts))
    assert twice == [] and lost == []
    assert set(counts) == set(reference)
    steps = [
        int(step)
        for part in parts
        if "train/loss_step" in part.history
        for step in part.history.dropna(subset=["train/loss_step"])["trainer/global_step"]
    ]
    assert steps == sorted(set(steps)), "part after part, the steps are strictly increasing"


@pytest.mark.slow
def test_each_resume_resumes_from_the_last_checkpoint_whose_steps_were_all_logged(stopped):
    _, results = stopped
    outputs = [result["stdout"] for result in results[1:]]  # results[0] is the reference
    assert "Started W&B run" in outputs[0]
    assert "from the start (no checkpoint yet)" in outputs[1]
    assert "from step 8:" in outputs[2]  # killed at the start of step 13's batch
    # The killed part's file held steps 8-11: computed again, not logged again.
    assert "steps 8-11 (trainer/global_step) are computed again, but the interrupted part had" in outputs[2]
    assert "from step 8:" in outputs[3]  # checkpoint 16 was saved, but its batch's metrics never logged
    assert "from step 19:" in outputs[4]  # SIGTERM at the start of step 19's batch: saved after it
    assert "from step 19:" in outputs[5]  # killed during the validation at step 24: checkpoint 24 unused
    assert "from step 24:" in outputs[6]  # killed while the checkpoint at step 32 was being made
    replayed = re.search(r"(\d+) values that W&B had not written to disk were logged again", outputs[6])
    assert int(replayed[1]) > 0  # that part's file held nothing: steps 24-31 came from the ledger
    assert "from step 32:" in outputs[7]  # SIGTERM inside the validation at step 36
    assert "from step 32:" in outputs[8]  # killed at the end of epoch 2, W&B's service too
    # Killed after training, before W&B wrote the last values: those it lost are logged from the ledger.
    assert re.search(
        r"is finished \(48 steps\)(: nothing to do|; \d+ values that W&B had not written to disk were logged "
        r"again from logged.jsonl)\.$",
        outputs[-1].strip(),
    )


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_after_the_batch_or_keeps_the_last_one_inside_a_validation(stopped):
    _, results = stopped
    between, inside = results[4]["stdout"], results[7]["stdout"]
    assert "Stopped by SIGTERM: saved last.ckpt at step 19. Run the same command to continue" in between
    assert "Stopped by SIGTERM: it stopped inside a validation, so last.ckpt stays at step 32." in inside


@pytest.mark.slow
def test_a_part_stopped_by_sigterm_is_written_whole_and_marked_as_preempted(stopped):
    folder, _ = stopped
    parts = _parts(folder / "training")
    stopped_parts = [part for part in parts if part.state != "running" and part is not parts[-1]]
    assert len(stopped_parts) == 2  # the two SIGTERM stops; every other part but the last was killed
    assert all(part.damage == "" and part.state == "failed" for part in stopped_parts)  # exit status 143


@pytest.mark.slow
def test_the_checkpoint_to_resume_from_is_whole_and_names_the_run(stopped):
    folder, _ = stopped
    import torch

    training = folder / "training"
    checkpoint = torch.load(training / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 48
    assert checkpoint["wandb_run_id"] == json.loads((training / "training.json").read_text())["wandb_run_id"]


@pytest.mark.slow
def test_a_resume_with_other_settings_is_refused_in_one_sentence(stopped):
    from helpers import resumable

    folder, _ = stopped
    arguments = ["--folder", str(folder / "training"), *SETTINGS]
    arguments[arguments.index("--max-steps") + 1] = "60"
    with pytest.raises(SystemExit) as refused:
        resumable.train(resumable.parser().parse_args(arguments))
    assert "was started with --max-steps 48: resume it with the same settings, or give another" in str(
        refused.value
    )


@pytest.mark.slow
def test_the_command_starts_its_own_wandb_service_not_its_parents(tmp_path):
    """A parent that ran `wandb.init` (a notebook's kernel) leaves its service's address in WANDB_SERVICE. A
    training started from it must not log through that service, which would keep a killed training's run open
    and refuse the next start ("run ID ... is in use"): the command ignores the variable. Here it names a
    socket nobody listens on, so a command that used it could not log at all."""
    env = _environment(tmp_path)
    env[SERVICE_VARIABLE] = f"3-{os.getpid()}-unix-{tmp_path / 'no-service-here.sock'}"
    small = ["--max-steps", "2", "--checkpoint-every", "1", "--val-every", "2", "--batch-size", "32"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.resumable",
            "--folder",
            str(tmp_path / "training"),
            *small,
            "--synthetic",
            "64",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is finished (2 steps)" in result.stdout, result.stdout


def test_a_checkpoint_of_another_run_is_refused_in_one_sentence(tmp_path):
    import torch

    from helpers import resumable

    args = resumable.parser().parse_args(["--folder", str(tmp_path), *SETTINGS])
    settings = {name: getattr(args, name) for name in resumable.SETTINGS}
    (tmp_path / "training.json").write_text(json.dumps({"wandb_run_id": "ours", "settings": settings}))
    torch.save({"global_step": 8, "wandb_run_id": "theirs"}, tmp_path / "last.ckpt")
    with pytest.raises(
        SystemExit, match="belongs to W&B run theirs, but training.json beside it names run ours"
    ):
        resumable.train(args)


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
