"""What notebook 06 relies on: checkpoint artifacts that load back offline, and resuming into one run.

A small version of the notebook's trainings runs in a process of its own (W&B reads its settings once
per process) and is read back from disk here.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers.callbacks import InterruptAtStep, SimulatedInterruption
from helpers.models import MNISTClassifier
from helpers.run_tables import artifact_versions
from helpers.tracking import RunRecord

INTERRUPT_AT = 13  # of 20 steps (two epochs of 10 batches); batch 12 logs nothing (log_every_n_steps=2)

SCRIPT = textwrap.dedent(
    f"""
    import json, os, warnings
    import pytorch_lightning as pl
    import torch
    import wandb
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import WandbLogger
    from torch.utils.data import TensorDataset

    from helpers.callbacks import InterruptAtStep, SimulatedInterruption
    from helpers.data import tensor_batches
    from helpers.models import MNISTClassifier

    warnings.filterwarnings("ignore")
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (640,), generator=generator)
    images = torch.randn(640, 1, 28, 28, generator=generator) + labels.view(-1, 1, 1, 1) / 3  # learnable
    train = tensor_batches(TensorDataset(images, labels), 64, shuffle=True)
    val = tensor_batches(TensorDataset(images[:128], labels[:128]), 64)

    def fit(logger, model, *callbacks, ckpt_path=None):
        checkpoint = ModelCheckpoint(monitor="val/loss", save_top_k=1, save_last=True, save_on_exception=True)
        trainer = pl.Trainer(
            max_epochs=2, val_check_interval=0.5, log_every_n_steps=2, accelerator="cpu", logger=logger,
            callbacks=[checkpoint, *callbacks], enable_progress_bar=False, enable_model_summary=False,
        )
        trainer.fit(model, train, val, ckpt_path=ckpt_path)
        return trainer

    pl.seed_everything(0)
    trainer = fit(WandbLogger(project="tests", name="all", log_model="all"), MNISTClassifier())
    all_id = wandb.run.id
    wandb.finish()

    pl.seed_everything(0)
    logger = WandbLogger(project="tests", name="resume", log_model=True)
    resume_id = logger.experiment.id
    try:
        fit(logger, MNISTClassifier(), InterruptAtStep({INTERRUPT_AT}))
    except SimulatedInterruption:
        pass
    wandb.finish(exit_code=1)
    logger = WandbLogger(project="tests", name="resume", log_model=True, id=resume_id, resume="allow")
    resumed = fit(logger, MNISTClassifier(), ckpt_path="last")
    wandb.finish()

    print(json.dumps({{
        "all": all_id, "best": os.path.abspath(trainer.checkpoint_callback.best_model_path),
        "resume": resume_id, "resumed_step": resumed.global_step,
        "resumed_dir": os.path.abspath(resumed.checkpoint_callback.dirpath),
    }}))
    """
)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory, run_offline) -> tuple[dict, list[RunRecord]]:
    stdout, records = run_offline([sys.executable, "-c", SCRIPT], tmp_path_factory.mktemp("checkpoints"))
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
