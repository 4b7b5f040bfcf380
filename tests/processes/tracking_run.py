"""A small offline run with every kind of record that helpers.tracking.read_run reads back.

Config and tags, history with a custom step metric, `define_metric` summaries, an image, a table, a model
artifact with an alias, and system metrics sampled every half second.
"""

from __future__ import annotations

import time

import numpy as np
import wandb


def main() -> None:
    run = wandb.init(
        project="tests",
        name="readback",
        tags=["a", "b"],
        config={"lr": 0.01, "batch_size": 32},
        settings=wandb.Settings(x_stats_sampling_interval=0.5),
    )
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    run.define_metric("val/loss", summary="min")
    run.define_metric("val/accuracy", summary="max")
    for step in range(6):
        run.log({"train/loss": 1.0 / (step + 1)})
    for epoch, (loss, accuracy) in enumerate([(0.5, 0.8), (0.3, 0.9), (0.4, 0.85)]):
        run.log({"val/loss": loss, "val/accuracy": accuracy, "epoch": epoch})
    run.log(
        {
            "digits": wandb.Image(np.zeros((28, 28), dtype=np.uint8)),
            "predictions": wandb.Table(columns=["label", "prediction"], data=[[1, 1], [2, 7]]),
        }
    )
    run.summary["test/accuracy"] = 0.875
    with open("weights.bin", "wb") as file:
        file.write(b"weights")
    artifact = wandb.Artifact("convnet", type="model", metadata={"epochs": 3})
    artifact.add_file("weights.bin")
    run.log_artifact(artifact, aliases=["best"])
    time.sleep(1.5)  # let the system monitor take a sample or two
    run.finish()


if __name__ == "__main__":
    main()
