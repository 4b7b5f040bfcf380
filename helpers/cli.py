"""Train the series' classifier from the command line, configured by YAML: the script behind notebook 08.

    python -m helpers.cli fit --config helpers/mnist.yaml
    torchrun --nproc_per_node=2 -m helpers.cli fit --config helpers/mnist.yaml --trainer.devices=2

`LightningCLI` turns the arguments of `MNISTClassifier`, `MNISTDataModule` and `Trainer` into
options and YAML keys, so an experiment is a config file rather than code
edits, and what runs on a cluster is the code the notebooks run. Run it from the repository root:
the config's folders (`save_dir: runs`) are relative to the working directory, and Lightning saves
the resolved config there too, as `runs/config.yaml`. W&B follows `setup_wandb`: offline
unless a key is configured; under DDP only rank zero logs, so one run records the whole training.
The config's `WandbLogger` names no project: it takes `WANDB_PROJECT` from the environment, which
`main` sets to the series' project unless you set it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytorch_lightning.cli import LightningCLI

from helpers.data import MNISTDataModule
from helpers.models import MNISTClassifier
from helpers.wandb_setup import WANDB_PROJECT, setup_wandb

CONFIG = Path(__file__).with_name("mnist.yaml")  # installed with the package, so Colab has it too


def main(args: list[str] | None = None) -> LightningCLI:
    setup_wandb()
    os.environ.setdefault("WANDB_PROJECT", WANDB_PROJECT)  # WandbLogger's project when the config names none
    return LightningCLI(MNISTClassifier, MNISTDataModule, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
