"""What notebook 06 relies on: checkpoint artifacts that load back offline, and resuming into one run.

A small version of the notebook's trainings (tests/processes/checkpoints_run.py) runs in a process of its
own (W&B reads its settings once per process) and is read back from disk here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.callbacks import InterruptAtStep, SimulatedInterruption
from helpers.models import MNISTClassifier
from helpers.run_tables import artifact_versions
from helpers.tracking import RunRecord
from tests.processes import command

INTERRUPT_AT = 13  # of 20 steps (two epochs of 10 batches); batch 12 logs nothing (log_every_n_steps=2)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory, run_offline) -> tuple[dict, list[RunRecord]]:
    stdout, records = run_offline(
        command("checkpoints_run", "--interrupt-at", INTERRUPT_AT), tmp_path_factory.mktemp("checkpoints")
    )
    return json.loads(stdout.strip().splitlines()[-1]), records


def logged_steps(record: RunRecord) -> list[int]:
    return record.history.dropna(subset=["train/loss_step"])["trainer/global_step"].astype(int).tolist()


def test_every_checkpoint_is_logged_and_versions_follow_the_contents(outcome):
    ids, records = outcome
    (record,) = [r for r in records if r.id == ids["all"]]
    versions = artifact_versions(record)
    assert versions["original_filename"].tolist().count("last.ckpt") >= 2  # rewritten at each save
    assert set(versions["name"]) == {f"model-{record.id}"}
    assert all("latest" in aliases for aliases in versions["aliases"])
    numbers = versions["version"].str[1:].astype(int)
    assert numbers.iloc[0] == 0 and numbers.diff().dropna().isin([0, 1]).all()
    # A record repeats the previous version exactly when it repeats the previous contents.
    repeats_digest = versions["digest"].eq(versions["digest"].shift())
    assert versions["version"].eq(versions["version"].shift()).equals(repeats_digest)
    assert repeats_digest.any()  # last.ckpt right after the top-1 checkpoint it copies


def test_the_best_checkpoint_artifact_loads_into_a_working_model(outcome):
    ids, records = outcome
    (record,) = [r for r in records if r.id == ids["all"]]
    best = next(a for a in reversed(record.artifacts) if a.type == "model" and "best" in a.aliases)
    assert best.metadata["original_filename"] == Path(ids["best"]).name

    model = MNISTClassifier.load_from_checkpoint(best.files["model.ckpt"], map_location="cpu")
    model.freeze()
    kept = torch.load(ids["best"], map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in kept.items())
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_a_resumed_run_continues_the_same_run_with_every_step_once(outcome):
    ids, records = outcome
    reference = next(r for r in records if r.id == ids["all"])
    first, second = [r for r in records if r.id == ids["resume"]]  # oldest first: offline, one folder each
    assert first.path != second.path
    assert (first.state, second.state) == ("failed", "finished")

    before, after = logged_steps(first), logged_steps(second)
    assert max(before) < INTERRUPT_AT <= min(after)
    assert sorted(before + after) == logged_steps(reference)  # nothing lost, nothing twice
    assert ids["resumed_step"] == 20

    # Before the interruption the two trainings are the same computation: same seed, same batches.
    same = reference.history.set_index("trainer/global_step")["train/loss_step"].dropna()
    assert first.history.set_index("trainer/global_step")["train/loss_step"].dropna().to_dict() == {
        step: same[step] for step in before
    }


def test_the_interruption_is_saved_and_only_the_finished_part_logs_models(outcome):
    ids, records = outcome
    first, second = [r for r in records if r.id == ids["resume"]]
    assert f"step={INTERRUPT_AT}.ckpt" in " ".join(p.name for p in Path(ids["resumed_dir"]).iterdir())
    assert not [a for a in first.artifacts if a.type == "model"]  # log_model=True logs on success only
    logged = {a.metadata["original_filename"] for a in second.artifacts if a.type == "model"}
    assert "last.ckpt" in logged and len(logged) == 2


def test_interrupt_at_step_raises_once_that_many_steps_are_done():
    callback = InterruptAtStep(3)
    trainer = type("Trainer", (), {"global_step": 2})()
    callback.on_train_batch_end(trainer, None, None, None, 0)
    trainer.global_step = 3
    with pytest.raises(SimulatedInterruption, match="after step 3"):
        callback.on_train_batch_end(trainer, None, None, None, 0)
    with pytest.raises(ValueError, match="step"):
        InterruptAtStep(0)
