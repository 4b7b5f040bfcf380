"""Figures the notebooks share: a grid of digits, training curves and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

from helpers.data import MEAN, STD


def _as_numpy(values: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def plot_samples(
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    predictions: torch.Tensor | Sequence[int] | None = None,
    ncols: int = 8,
) -> Figure:
    """A grid of normalised images titled with their label, or `prediction (label)` in red when wrong."""
    if ncols <= 0:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(
            f"images and labels must be non-empty and of equal length, got {len(images)} and {len(labels)}."
        )
    if predictions is not None and len(predictions) != len(labels):
        raise ValueError(
            f"predictions must have one entry per image, got {len(predictions)} for {len(labels)}."
        )
    pixels = _as_numpy(images).reshape(len(images), 28, 28) * STD + MEAN
    label_values = _as_numpy(labels)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.4 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(pixels[i], cmap="gray_r", vmin=0, vmax=1)
        if predictions is None:
            ax.set_title(str(label_values[i]), fontsize=10)
        else:
            predicted = int(_as_numpy(predictions)[i])
            wrong = predicted != label_values[i]
            title = f"{predicted} ({label_values[i]})" if wrong else str(predicted)
            ax.set_title(title, fontsize=10, color="tab:red" if wrong else "black")
    fig.tight_layout()
    return fig


def plot_curves(
    history: pd.DataFrame, x: str = "epoch", metrics: Sequence[str] = ("loss", "accuracy")
) -> Figure:
    """One panel per metric, with a line for each column named `<split>/<metric>` or `<split>_<metric>`.

    Works on a notebook's own history, Lightning's `metrics.csv` and a W&B run's history alike;
    missing values (metrics logged at other steps) are skipped. Losses get a log scale, so the
    late, small improvements stay visible next to the large early ones.
    """
    if x not in history.columns:
        raise ValueError(f"x={x!r} is not a column of the history; columns are {sorted(history.columns)}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        columns = [c for c in history.columns if c.endswith((f"/{metric}", f"_{metric}"))]
        if not columns:
            raise ValueError(
                f"no column of the history ends in '/{metric}' or '_{metric}'; "
                f"columns are {sorted(history.columns)}."
            )
        for column in columns:
            points = history[[x, column]].dropna()
            ax.plot(points[x], points[column], marker="o" if len(points) < 20 else None, label=column)
        if "loss" in metric:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    targets: torch.Tensor | Sequence[int],
    predictions: torch.Tensor | Sequence[int],
    class_names: Sequence[str] = tuple(map(str, range(10))),
) -> Figure:
    """A seaborn heatmap of counts, true class down the side and predicted class along the top."""
    truths, guesses = _as_numpy(targets).astype(int), _as_numpy(predictions).astype(int)
    if truths.shape != guesses.shape:
        raise ValueError(
            f"targets and predictions must have the same length, got {len(truths)} and {len(guesses)}."
        )
    n = len(class_names)
    if truths.size and (min(truths.min(), guesses.min()) < 0 or max(truths.max(), guesses.max()) >= n):
        raise ValueError(f"class indices must lie in [0, {n}) for {n} class_names.")
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (truths, guesses), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(
        counts,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=False,
        ax=ax,
        xticklabels=class_names,
        yticklabels=class_names,
        annot_kws={"fontsize": 8},
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(np.trace(counts))} of {counts.sum()} correct)")
    fig.tight_layout()
    return fig
