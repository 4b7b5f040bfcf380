import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.plotting import plot_confusion_matrix, plot_curves, plot_samples


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_samples_grid_marks_mistakes_in_red():
    images, labels = torch.zeros(10, 1, 28, 28), torch.arange(10)
    predictions = labels.clone()
    predictions[3] = 5
    fig = plot_samples(images, labels, predictions, ncols=4)
    axes = fig.axes
    assert len(axes) == 12  # 3 rows of 4, two of them empty
    assert axes[3].get_title() == "5 (3)" and axes[3].title.get_color() == "tab:red"
    assert axes[2].get_title() == "2" and axes[2].title.get_color() == "black"


def test_curves_pick_columns_by_metric_and_skip_gaps():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train/loss": [1.0, 0.5, 0.2],
            "val/loss": [np.nan, 0.6, 0.3],
            "train_accuracy": [0.5, 0.8, 0.9],
        }
    )
    fig = plot_curves(history)
    loss_axis, accuracy_axis = fig.axes
    assert [line.get_label() for line in loss_axis.lines] == ["train/loss", "val/loss"]
    assert len(loss_axis.lines[1].get_xdata()) == 2
    assert loss_axis.get_yscale() == "log" and accuracy_axis.get_yscale() == "linear"


def test_curves_reject_unknown_names():
    history = pd.DataFrame({"epoch": [1], "val_loss": [0.1]})
    with pytest.raises(ValueError, match="no column of the history ends in '/accuracy'"):
        plot_curves(history)
    with pytest.raises(ValueError, match="x='step' is not a column"):
        plot_curves(history, x="step", metrics=["loss"])


def test_confusion_matrix_counts():
    fig = plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], class_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert ax.get_title() == "Confusion matrix (3 of 4 correct)"
    counts = [text.get_text() for text in ax.texts]
    assert counts == ["1", "0", "0", "0", "1", "1", "0", "0", "1"]


def test_bad_plot_arguments():
    with pytest.raises(ValueError, match="same length"):
        plot_confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        plot_confusion_matrix([0, 5], [0, 1], class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="ncols must be a positive integer"):
        plot_samples(torch.zeros(1, 1, 28, 28), [0], ncols=0)
    with pytest.raises(ValueError, match="one entry per image"):
        plot_samples(torch.zeros(2, 1, 28, 28), [0, 1], predictions=[1])
