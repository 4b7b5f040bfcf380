"""Regenerate the pictures the README shows, into images/, with the project's own code.

Run from the repository root:  python -m scripts.make_images [NAME ...]
(all of them by default; about 3 minutes on a 2-core CPU, and Debian's chromium for jupyterlab.png)

* mnist_samples.png     the first test digits (helpers.plotting.plot_samples)
* training_curves.png   a short offline W&B run of helpers' MNISTClassifier, read back from disk with
                        helpers.tracking.read_run and drawn with helpers.plotting.plot_curves
* confusion_matrix.png  that model on the test set (helpers.plotting.plot_confusion_matrix)
* wandb_leet.png        `wandb leet` showing that run, on a terminal (scripts/terminal_picture.py)
* jupyterlab.png        notebook 03 run in JupyterLab in headless Chromium (scripts/jupyterlab_browser.py,
                        the code the browser test drives the lab with)

The run is made offline in a temporary folder, with W&B's system metadata off: its environment panel
would otherwise show this machine's paths, which a committed picture should not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from helpers.data import MNISTDataModule, load_mnist  # noqa: E402
from helpers.models import MNISTClassifier  # noqa: E402
from helpers.paths import project_dir  # noqa: E402
from helpers.plotting import plot_confusion_matrix, plot_curves, plot_samples  # noqa: E402
from helpers.tracking import read_run  # noqa: E402
from helpers.wandb_setup import WANDB_PROJECT, offline_environment  # noqa: E402
from scripts import terminal_picture  # noqa: E402

PICTURES = ("mnist_samples", "training_curves", "confusion_matrix", "wandb_leet", "jupyterlab")
RUN_PICTURES = {"training_curves", "confusion_matrix", "wandb_leet"}
TERMINAL_SIZE = (150, 42)  # columns, lines: wide enough for wandb leet's three panes


def save_figure(figure, path: Path) -> None:
    figure.savefig(path, dpi=100, bbox_inches="tight")


def mnist_samples(path: Path) -> None:
    """The first 24 test digits with their labels."""
    test_images, test_labels = load_mnist().test.tensors
    save_figure(plot_samples(test_images[:24], test_labels[:24], ncols=12), path)


def use_offline_wandb(folder: Path) -> None:
    """Offline W&B, every folder of it inside `folder`; call it before importing wandb."""
    for name in [name for name in os.environ if name.startswith("WANDB_")]:
        del os.environ[name]
    os.environ.update(offline_environment(folder))


def train_short_run(folder: Path) -> tuple[MNISTClassifier, MNISTDataModule, Path]:
    """Two epochs of MNISTClassifier logged offline by WandbLogger: the model, its data, the run's folder."""
    use_offline_wandb(folder)
    import pytorch_lightning as pl
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    pl.seed_everything(42)
    datamodule = MNISTDataModule(batch_size=128)
    model = MNISTClassifier()
    logger = WandbLogger(
        project=WANDB_PROJECT,
        name="readme-pictures",
        tags=["readme"],
        save_dir=folder,
        settings=wandb.Settings(x_disable_meta=True),
    )
    trainer = pl.Trainer(
        max_epochs=2,
        val_check_interval=0.25,
        log_every_n_steps=10,
        logger=logger,
        accelerator="auto",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule, verbose=False)
    run_dir = Path(logger.experiment.dir).parent  # run.dir is the run's files/ folder
    wandb.finish()
    return model, datamodule, run_dir


def training_curves(run_dir: Path, path: Path) -> None:
    """Loss and accuracy per step, as W&B recorded them: training smoothed over 5 logs, validation as is."""
    history = read_run(run_dir).history
    steps = "trainer/global_step"
    train = history.dropna(subset=["train/loss_step"])[[steps, "train/loss_step", "train/accuracy_step"]]
    train = train.rename(columns={"train/loss_step": "train/loss", "train/accuracy_step": "train/accuracy"})
    train[["train/loss", "train/accuracy"]] = train[["train/loss", "train/accuracy"]].rolling(5, 1).mean()
    validation = history.dropna(subset=["val/loss"])[[steps, "val/loss", "val/accuracy"]]
    figure = plot_curves(pd.concat([train, validation]), x=steps, metrics=["loss", "accuracy"])
    save_figure(figure, path)


def confusion_matrix(model: MNISTClassifier, datamodule: MNISTDataModule, path: Path) -> None:
    """The trained model's predictions on the 10,000 test images against their labels."""
    images, labels = datamodule.splits.test.tensors
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(batch).argmax(dim=1) for batch in images.split(1000)])
    save_figure(plot_confusion_matrix(labels, predictions), path)


def wandb_leet(run_dir: Path, path: Path) -> None:
    """`wandb leet` on the run, pictured once its three panes and charts are drawn."""
    env = {**os.environ, "WANDB_CONFIG_DIR": str(run_dir.parent / "leet-config")}  # LEET's default layout
    screen = terminal_picture.capture(
        [sys.executable, "-m", "wandb", "leet", "run", str(run_dir)],
        *TERMINAL_SIZE,
        ready=lambda lines: (
            any("Run Overview" in line for line in lines) and any("System Metrics" in line for line in lines)
        ),
        env=env,
    )
    terminal_picture.render(screen, path)


def jupyterlab_screenshot(path: Path) -> None:
    """The training notebook run in JupyterLab in headless Chromium, checked as the browser test checks it."""
    from scripts.jupyterlab_browser import (
        TRAINING_NOTEBOOK,
        chromium_page,
        execution_problems,
        jupyterlab,
        run_notebook,
        screenshot,
        widget_problems,
    )

    with (
        tempfile.TemporaryDirectory(prefix="readme-lab-") as folder,
        jupyterlab(Path(folder)) as lab,
        chromium_page() as page,
    ):
        cells = run_notebook(page, lab, TRAINING_NOTEBOOK, timeout=900)
        problems = execution_problems(cells) + widget_problems(cells)
        if problems:
            raise RuntimeError(f"{TRAINING_NOTEBOOK} did not run cleanly in the browser: {problems}")
        screenshot(page, path, cells)
        lab.shutdown_kernels()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(PICTURES)} (default: all)")
    names = parser.parse_args().names or list(PICTURES)
    if unknown := sorted(set(names) - set(PICTURES)):
        parser.error(f"no picture is called {', '.join(unknown)}; choose from {', '.join(PICTURES)}")
    images_dir = project_dir() / "images"
    images_dir.mkdir(exist_ok=True)
    paths = {name: images_dir / f"{name}.png" for name in names}

    if "mnist_samples" in paths:
        mnist_samples(paths["mnist_samples"])
    if RUN_PICTURES & set(paths):
        with tempfile.TemporaryDirectory(prefix="readme-run-") as folder:
            model, datamodule, run_dir = train_short_run(Path(folder))
            if "training_curves" in paths:
                training_curves(run_dir, paths["training_curves"])
            if "confusion_matrix" in paths:
                confusion_matrix(model, datamodule, paths["confusion_matrix"])
            if "wandb_leet" in paths:
                wandb_leet(run_dir, paths["wandb_leet"])
    if "jupyterlab" in paths:
        jupyterlab_screenshot(paths["jupyterlab"])
    for path in paths.values():
        print(f"wrote {path.relative_to(project_dir())}")


if __name__ == "__main__":
    main()
