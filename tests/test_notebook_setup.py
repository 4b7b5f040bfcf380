"""helpers.notebook: what the notebooks' setup cells call."""

from __future__ import annotations

import logging

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader, TensorDataset

from helpers.models import MNISTClassifier
from helpers.notebook import DROPPED_LINES, LIGHTNING_INFO_LOGGERS, quiet_lightning, setup_notebook, versions


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_messages():
    """The messages Lightning logs while the test runs; the filters the test added are removed after."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_INFO_LOGGERS]
    saved = [(list(logger.filters), logger.level) for logger in loggers]
    handler = _Collect()
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler.messages
    for logger, (filters, level) in zip(loggers, saved, strict=True):
        logger.removeHandler(handler)
        logger.filters[:] = filters
        logger.setLevel(level)


@pytest.fixture
def lightning_handlers():
    """Lightning's own stream handlers; the streams they print to are put back after the test."""
    from helpers.notebook import LIGHTNING_LOGGER

    handlers = [
        h for h in logging.getLogger(LIGHTNING_LOGGER).handlers if isinstance(h, logging.StreamHandler)
    ]
    streams = [handler.stream for handler in handlers]
    yield handlers
    for handler, stream in zip(handlers, streams, strict=True):
        handler.stream = stream  # not setStream, which would flush the test's closed capture


def fit_briefly() -> None:
    """Seed, then fit MNISTClassifier on one batch of random images: Lightning's usual messages."""
    pl.seed_everything(0)
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    trainer = pl.Trainer(
        accelerator="cpu",
        callbacks=[ModelSummary(max_depth=1)],
        logger=False,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(MNISTClassifier(), train_dataloaders=loader, val_dataloaders=loader)
    rank_zero_info("a message about the reader's own code")  # the logger Lightning's info lines go to


def test_quiet_lightning_drops_device_lines_tips_fit_reports_and_the_seed_line_only(lightning_messages):
    fit_briefly()
    loud = list(lightning_messages)
    for start in DROPPED_LINES:
        # Not every Lightning version logs these (2.5.3, the lowest the series allows, gives no tip here).
        if start not in ("TPU available:", "HPU available:", "💡 Tip:", "Initializing distributed:"):
            assert any(m.startswith(start) for m in loud), (start, loud)

    lightning_messages.clear()
    quiet_lightning()
    quiet_lightning()  # a second call installs nothing more
    fit_briefly()
    assert not any(m.startswith(DROPPED_LINES) for m in lightning_messages), lightning_messages
    kept = [m for m in loud if not m.startswith(DROPPED_LINES)]
    assert kept and lightning_messages == kept, "only those lines go; every other message stays"
    assert "a message about the reader's own code" in kept
    assert all(len(logging.getLogger(name).filters) == 1 for name in LIGHTNING_INFO_LOGGERS)


def test_versions_names_python_and_each_library_as_imported():
    import platform

    import pytorch_lightning
    import torch
    import torchmetrics
    import wandb

    line = versions()
    assert "\n" not in line and line.startswith(f"Python {platform.python_version()} · ")
    for name, module in [("torch", torch), ("Lightning", pytorch_lightning), ("torchmetrics", torchmetrics)]:
        assert f"{name} {module.__version__.split('+')[0]}" in line, (name, line)
    assert f"wandb {wandb.__version__}" in line


def test_setup_notebook_prints_the_versions_and_hides_lightnings_leafspec_warning(
    capsys, lightning_messages, lightning_handlers
):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        setup_notebook()
        warnings.warn("isinstance(treespec, LeafSpec) is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("a warning about the reader's own code", FutureWarning, stacklevel=1)
    assert capsys.readouterr().out == versions() + "\n"
    assert [str(w.message) for w in caught] == ["a warning about the reader's own code"]


def test_lightning_info_lines_print_to_stdout_after_setup(capsys, lightning_handlers):
    import sys

    from helpers.notebook import lightning_info_to_stdout

    assert lightning_handlers, "Lightning prints its info lines through a handler of its own"
    lightning_info_to_stdout()
    rank_zero_info("a model summary")
    printed = capsys.readouterr()
    assert "a model summary" in printed.out and "a model summary" not in printed.err
    assert all(handler.stream is sys.stdout for handler in lightning_handlers)
