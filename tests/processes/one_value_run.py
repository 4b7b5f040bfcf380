"""A script that logs one value to a W&B run it never finishes: W&B finishes it when the process exits.

Whatever mode and folders the environment gives it, as for a script a notebook launches after setup_wandb.
"""

from __future__ import annotations

import wandb

if __name__ == "__main__":
    run = wandb.init(project="t")
    run.log({"x": 1})
