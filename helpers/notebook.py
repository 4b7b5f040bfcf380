"""What a notebook's setup cell calls: outputs that show the lesson, not library noise, and the versions."""

from __future__ import annotations

import logging
import platform
import sys
import warnings
from importlib.metadata import version

# The starts of Lightning's info lines that say nothing about the lesson: which accelerators exist (they
# differ between machines), tips that advertise its cloud products, what it reports on every fit, and the
# seed `seed_everything` was given (the cell that calls it shows it).
DROPPED_LINES = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",
    "Loading `train_dataloader` to estimate number of stepping batches.",
    "`Trainer.fit` stopped:",
    "`Trainer(limit_",  # "`Trainer(limit_val_batches=1)` was configured so 1 batch will be used."
    "Seed set to",
    "Trainer already configured with model summary callbacks",  # the reader's own ModelSummary replaces it
    "Initializing distributed:",  # each DDP process's rank, which the cell's own checks show
)
# Lightning's own logger, whose handler prints its info lines (it is the parent of the first logger below).
LIGHTNING_LOGGER = "pytorch_lightning"
# The loggers those lines go to: Lightning's, and Lightning Fabric's for the seed and DDP's start.
LIGHTNING_INFO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.seed",
    "lightning_fabric.utilities.distributed",
)
# Lightning 2.6 still builds a pytree LeafSpec, which torch 2.14 deprecates; nothing a reader can fix.
# The test suite ignores it too (the root conftest.py), through this pattern.
LEAFSPEC_WARNING = r".*isinstance\(treespec, LeafSpec\)"
# The libraries a notebook's results depend on, as (name shown, distribution).
LIBRARIES = (
    ("torch", "torch"),
    ("Lightning", "pytorch-lightning"),
    ("torchmetrics", "torchmetrics"),
    ("wandb", "wandb"),
)


class _DropLines(logging.Filter):
    """Drop log records whose message starts with one of `DROPPED_LINES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(DROPPED_LINES)


def quiet_lightning() -> None:
    """Hide Lightning's device lines, tips, fit reports and seed line, and a deprecation warning it causes.

    Every other message (summaries, warnings about your own code) stays. Calling it again adds nothing.
    """
    for name in LIGHTNING_INFO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines())
    warnings.filterwarnings("ignore", message=LEAFSPEC_WARNING, category=FutureWarning)


def versions() -> str:
    """One line with the Python and library versions this kernel runs: what a reader compares first."""
    return " · ".join(
        [f"Python {platform.python_version()}"] + [f"{name} {version(d)}" for name, d in LIBRARIES]
    )


def lightning_info_to_stdout() -> None:
    """Print Lightning's info lines (the model summary, a restored checkpoint) as the cell's ordinary output.

    Lightning writes them to stderr, which JupyterLab shows in a red box that reads as an error.
    """
    for handler in logging.getLogger(LIGHTNING_LOGGER).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stdout)


def setup_notebook() -> None:
    """Quiet Lightning (`quiet_lightning`), show its info lines as output, and print the versions line."""
    quiet_lightning()
    lightning_info_to_stdout()
    print(versions())
