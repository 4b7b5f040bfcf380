"""Lightning callbacks that show what a classifier does on validation images, logged to W&B.

They work with any classification `LightningModule` whose forward pass maps a batch of inputs to
class logits, and with any validation loader that yields `(inputs, labels)` batches: they call
`pl_module(inputs)` and nothing else of the model. Each looks at a bounded number of validation
samples, on rank zero only, so it costs little. Without a `WandbLogger` they say so once and skip
(the confusion matrix is then saved as a PNG in the logger's folder instead, and skipped with no
logger at all: nothing is written outside a run's folders).

Each checks the model once, on the first batch it sees (the sanity check's, or else the first
training batch): batches must be `(inputs, labels)`, `forward` must return logits of shape
`(batch, classes)`, the class names and labels must fit those classes. A model that does not fit
stops the fit with one sentence before any training time is lost, not with an error an epoch later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_warn

from helpers.checks import check_class_names, check_optional_callable, check_positive_int
from helpers.plotting import plot_confusion_matrix

ToPixels = Callable[[torch.Tensor], torch.Tensor]


def find_wandb_logger(trainer: pl.Trainer) -> WandbLogger | None:
    """The trainer's `WandbLogger`, if it has one among its loggers."""
    return next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)


def _rescale(images: torch.Tensor) -> torch.Tensor:
    """Stretch each image to [0, 1], for inputs whose normalisation the callback does not know."""
    flat = images.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    shape = (-1,) + (1,) * (images.dim() - 1)
    return (images - low.view(shape)) / (high - low).clamp_min(1e-8).view(shape)


class _ValidationSamples(pl.Callback):
    """Shared plumbing: the first `num_samples` validation samples and the model's predictions on them."""

    needs_wandb = True  # skip when the Trainer has no WandbLogger

    def __init__(
        self, num_samples: int, class_names: Sequence[str] | None = None, to_pixels: ToPixels | None = None
    ) -> None:
        check_positive_int("num_samples", num_samples)
        check_class_names("class_names", class_names)
        check_optional_callable("to_pixels", to_pixels)
        self.num_samples = num_samples
        self.class_names = list(class_names) if class_names is not None else None
        self.to_pixels = to_pixels or _rescale
        self.wandb_logger: WandbLogger | None = None
        self.active = False  # whether it has somewhere to log to in this fit
        self.model_checked = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.wandb_logger = find_wandb_logger(trainer)
        self.active = self.wandb_logger is not None or (not self.needs_wandb and bool(trainer.loggers))
        self.model_checked = False
        if self.active:
            return
        if self.needs_wandb:
            missing = "logs to W&B, but this Trainer has no WandbLogger"
        else:
            missing = "saves into the logger's folder, but this Trainer has no logger"
        rank_zero_warn(f"{type(self).__name__} {missing}: it will skip.")

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.check_model(pl_module, batch)

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.check_model(pl_module, batch)

    @torch.no_grad()
    def check_model(self, pl_module: pl.LightningModule, batch: object) -> None:
        """Once per fit, on the first batch: raise one sentence if the model or data cannot be shown."""
        if self.model_checked or not self.active:
            return
        self.model_checked = True
        name = type(self).__name__
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2 and all(map(torch.is_tensor, batch))):
            raise ValueError(
                f"{name} needs batches of (inputs, labels) tensors, but got a {type(batch).__name__}."
            )
        inputs, labels = batch
        was_training = pl_module.training
        pl_module.eval()
        logits = pl_module(inputs[:2])
        pl_module.train(was_training)
        if not torch.is_tensor(logits):
            raise TypeError(
                f"{name} needs the model's forward to return a tensor of class logits (batch, classes), "
                f"but it returned a {type(logits).__name__}: make forward return the logits."
            )
        if logits.dim() != 2 or logits.shape[0] != len(inputs[:2]):
            raise ValueError(
                f"{name} needs the model's forward to return class logits of shape (batch, classes), "
                f"but for a batch of {len(inputs[:2])} it returned shape {tuple(logits.shape)}."
            )
        classes = logits.shape[1]
        if self.class_names is not None and len(self.class_names) != classes:
            raise ValueError(
                f"{name} was given {len(self.class_names)} class names, but the model scores {classes} "
                f"classes: pass one name per class."
            )
        if labels.dtype.is_floating_point or labels.dim() != 1:
            raise ValueError(
                f"{name} needs labels as a 1-D tensor of class indices, but got shape {tuple(labels.shape)} "
                f"of {labels.dtype}."
            )
        outside = labels[(labels < 0) | (labels >= classes)]
        if len(outside):
            raise ValueError(
                f"{name} needs labels from 0 to {classes - 1} (the model scores {classes} classes), but a "
                f"batch has label {int(outside[0])}."
            )

    def name_of(self, index: int) -> str:
        return self.class_names[index] if self.class_names is not None else str(index)

    def samples(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `num_samples` (inputs, labels) of the first validation loader, on the CPU."""
        loader = trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        if loader is None:
            raise RuntimeError(f"{type(self).__name__} needs a validation loader: pass one to trainer.fit.")
        inputs, labels, count = [], [], 0
        for batch_inputs, batch_labels in loader:
            inputs.append(batch_inputs.cpu())
            labels.append(batch_labels.cpu())
            count += len(batch_labels)
            if count >= self.num_samples:
                break
        return torch.cat(inputs)[: self.num_samples], torch.cat(labels)[: self.num_samples]

    @torch.no_grad()
    def predict(self, pl_module: pl.LightningModule, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities for `inputs`, in batches, with the model in eval mode."""
        was_training = pl_module.training
        pl_module.eval()
        probabilities = torch.cat(
            [
                pl_module(batch.to(pl_module.device)).softmax(dim=1).float().cpu()
                for batch in inputs.split(1000)
            ]
        )
        pl_module.train(was_training)
        return probabilities

    def should_run(self, trainer: pl.Trainer) -> bool:
        return trainer.is_global_zero and not trainer.sanity_checking and self.active


class LogPredictions(_ValidationSamples):
    """After each validation epoch, log a fixed set of validation images with truth, prediction and
    confidence: as an image panel (`val/predictions`) and as a table (`val/prediction_table`), so
    that the W&B UI shows the predictions improve from epoch to epoch."""

    def __init__(
        self,
        num_samples: int = 32,
        class_names: Sequence[str] | None = None,
        to_pixels: ToPixels | None = None,
    ) -> None:
        super().__init__(num_samples, class_names, to_pixels)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.should_run(trainer) or self.wandb_logger is None:
            return
        inputs, labels = self.samples(trainer)
        confidences, predictions = self.predict(pl_module, inputs).max(dim=1)
        pixels = self.to_pixels(inputs).clamp(0, 1)
        rows = [
            (pixel, self.name_of(t), self.name_of(p), round(c, 4))
            for pixel, t, p, c in zip(
                pixels, labels.tolist(), predictions.tolist(), confidences.tolist(), strict=True
            )
        ]
        step = trainer.global_step
        self.wandb_logger.log_image(
            key="val/predictions",
            images=[row[0] for row in rows],
            caption=[f"{p} ({c:.0%}), true {t}" for _, t, p, c in rows],
            step=step,
        )
        self.wandb_logger.log_table(
            key="val/prediction_table",
            columns=["epoch", "image", "truth", "prediction", "confidence"],
            data=[[trainer.current_epoch, wandb.Image(pixel), t, p, c] for pixel, t, p, c in rows],
            step=step,
        )


class LogMisclassified(_ValidationSamples):
    """After each validation epoch, log the validation samples the model gets wrong (among the first
    `num_samples`, at most `max_rows`, least confident first) as a table (`val/misclassified`)."""

    def __init__(
        self,
        num_samples: int = 1000,
        max_rows: int = 64,
        class_names: Sequence[str] | None = None,
        to_pixels: ToPixels | None = None,
    ) -> None:
        super().__init__(num_samples, class_names, to_pixels)
        check_positive_int("max_rows", max_rows)
        self.max_rows = max_rows

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.should_run(trainer) or self.wandb_logger is None:
            return
        inputs, labels = self.samples(trainer)
        confidences, predictions = self.predict(pl_module, inputs).max(dim=1)
        wrong = (predictions != labels).nonzero().squeeze(1)
        wrong = wrong[confidences[wrong].argsort()][: self.max_rows]
        pixels = self.to_pixels(inputs[wrong]).clamp(0, 1)
        data = []
        for i, pixel in zip(wrong.tolist(), pixels, strict=True):
            truth, prediction = self.name_of(int(labels[i])), self.name_of(int(predictions[i]))
            data.append([i, wandb.Image(pixel), truth, prediction, round(float(confidences[i]), 4)])
        self.wandb_logger.log_table(
            key="val/misclassified",
            columns=["index", "image", "truth", "prediction", "confidence"],
            data=data,
            step=trainer.global_step,
        )


class LogConfusionMatrix(_ValidationSamples):
    """After each validation epoch, log the confusion matrix of the first `num_samples` validation
    samples, as a seaborn heatmap (`val/confusion_matrix_heatmap`) and as W&B's interactive chart
    (`val/confusion_matrix`), with ROC and precision-recall curves from the same predictions.
    Without a `WandbLogger` the heatmap is saved as a PNG in the logger's folder instead."""

    needs_wandb = False

    def __init__(self, num_samples: int = 5000, class_names: Sequence[str] | None = None) -> None:
        super().__init__(num_samples, class_names)
        self.saved: list[Path] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.should_run(trainer):
            return
        inputs, labels = self.samples(trainer)
        probabilities = self.predict(pl_module, inputs)
        predictions = probabilities.argmax(dim=1)
        names = [self.name_of(i) for i in range(probabilities.shape[1])]
        figure = plot_confusion_matrix(labels, predictions, class_names=names)
        figure.axes[0].set_title(f"{figure.axes[0].get_title()}, epoch {trainer.current_epoch}")
        if self.wandb_logger is None:
            if trainer.log_dir is None:
                raise RuntimeError(
                    "LogConfusionMatrix saves into the logger's folder, and this Trainer's logger has none: "
                    "give the logger a save_dir, or add a WandbLogger."
                )
            folder = Path(trainer.log_dir)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"confusion_matrix_epoch{trainer.current_epoch}.png"
            figure.savefig(path, dpi=100)
            self.saved.append(path)
        else:
            y_true, y_probas = labels.tolist(), probabilities.tolist()
            charts: dict[str, Any] = {  # W&B media and charts: WandbLogger hands them to W&B as they are
                "val/confusion_matrix_heatmap": wandb.Image(figure),
                "val/confusion_matrix": wandb.plot.confusion_matrix(
                    y_true=y_true, preds=predictions.tolist(), class_names=names
                ),
                "val/roc": wandb.plot.roc_curve(y_true, y_probas, labels=names),
                "val/precision_recall": wandb.plot.pr_curve(y_true, y_probas, labels=names),
            }
            self.wandb_logger.log_metrics(charts, step=trainer.global_step)
        plt.close(figure)


class SimulatedInterruption(RuntimeError):
    """Raised by `InterruptAtStep`: stands for a crash, a pre-emption or a Ctrl-C in a demonstration."""


class InterruptAtStep(pl.Callback):
    """Stop training by raising `SimulatedInterruption` once `step` optimizer steps are done.

    It raises at the end of the batch, where Lightning's own checkpoints are taken, so that
    `ModelCheckpoint(save_on_exception=True)` saves a state that resumes cleanly at `step`. The
    metrics of that last batch are not logged (Lightning logs them after this hook): pick a step
    that is not a multiple of `log_every_n_steps` to lose nothing.
    """

    def __init__(self, step: int) -> None:
        check_positive_int("step", step)
        self.step = step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            raise SimulatedInterruption(f"training interrupted after step {self.step}")
