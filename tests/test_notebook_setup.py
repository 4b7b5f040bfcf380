"""helpers.notebook: what the notebooks' setup cells call."""

from __future__ import annotations

import logging

import pytest
import pytorch_lightning as pl

from helpers.notebook import LIGHTNING_INFO_LOGGER, quiet_lightning, setup_notebook, versions


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_messages():
    """The messages Lightning logs while the test runs; the filters the test added are removed after."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    filters, level = list(logger.filters), logger.level
    handler = _Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.messages
    logger.removeHandler(handler)
    logger.filters[:] = filters
    logger.setLevel(level)


def build_trainer() -> None:
    pl.Trainer(accelerator="cpu", logger=False, limit_train_batches=1, enable_progress_bar=False)


def test_quiet_lightning_drops_device_lines_and_tips_only(lightning_messages):
    build_trainer()
    loud = list(lightning_messages)
    assert any(m.startswith("GPU available:") for m in loud), loud
    assert any(m.startswith("💡 Tip:") for m in loud), loud

    lightning_messages.clear()
    quiet_lightning()
    quiet_lightning()  # a second call installs nothing more
    build_trainer()
    assert not any(m.startswith(("GPU available:", "TPU available:", "💡 Tip:")) for m in lightning_messages)
    kept = [m for m in loud if not m.startswith(("GPU available:", "TPU available:", "HPU available:", "💡"))]
    assert kept and lightning_messages == kept, "only the banners go; every other message stays"
    assert len(logging.getLogger(LIGHTNING_INFO_LOGGER).filters) == 1


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


def test_setup_notebook_prints_the_versions_and_hides_lightnings_leafspec_warning(capsys, lightning_messages):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        setup_notebook()
        warnings.warn("isinstance(treespec, LeafSpec) is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("a warning about the reader's own code", FutureWarning, stacklevel=1)
    assert capsys.readouterr().out == versions() + "\n"
    assert [str(w.message) for w in caught] == ["a warning about the reader's own code"]
