"""Tiny offline runs in every state notebook 09's table meets, with no training; prints their ids.

A finished run with nested config, a `define_metric` minimum and an image; a failed run; and a run that
fails and is resumed offline, which writes a second folder.
"""

from __future__ import annotations

import json

import numpy as np
import wandb


def main() -> None:
    ids = {}
    run = wandb.init(
        project="tests",
        group="grid",
        job_type="train",
        name="finished",
        config={"lr": 0.1, "model": {"width": 8}},
    )
    run.define_metric("val/loss", summary="min")
    for loss in (0.5, 0.3, 0.4):
        run.log({"val/loss": loss})
    run.log({"digits": wandb.Image(np.zeros((28, 28), dtype=np.uint8))})
    run.summary["test/accuracy"] = 0.9
    ids["finished"] = run.id
    run.finish()

    run = wandb.init(project="tests", group="grid", job_type="train", name="failed", config={"lr": 0.01})
    run.log({"val/loss": 2.0})
    ids["failed"] = run.id
    run.finish(exit_code=1)

    run = wandb.init(project="tests", name="resumed", config={"lr": 0.05})
    run.define_metric("val/loss", summary="min")
    for loss in (0.6, 0.2):
        run.log({"val/loss": loss})
    run.summary["only_in_part_1"] = 1
    ids["resumed"] = run.id
    run.finish(exit_code=1)
    run = wandb.init(project="tests", name="resumed", id=ids["resumed"], resume="allow", config={"epochs": 2})
    run.define_metric("val/loss", summary="min")
    for loss in (0.5, 0.25):
        run.log({"val/loss": loss})
    run.finish()

    print(json.dumps(ids))


if __name__ == "__main__":
    main()
