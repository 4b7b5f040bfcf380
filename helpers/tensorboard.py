"""Reading TensorBoard's event files back: the scalars a SummaryWriter or a TensorBoardLogger wrote.

Notebook 04 shows this reading code in its own cells; this copy is for the tests and other callers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

EVENT_FILE_PATTERN = "events.out.tfevents.*"


def event_files(log_dir: str | os.PathLike) -> list[Path]:
    """The event files directly in `log_dir`, oldest first (their names start with the creation time)."""
    return sorted(Path(log_dir).glob(EVENT_FILE_PATTERN))


def read_scalars(log_dir: str | os.PathLike) -> pd.DataFrame:
    """Every scalar in the event files directly in `log_dir`, one row each: tag, step, value, wall_time.

    TensorBoard's own reader keeps a sample of 10,000 values per tag by default; `size_guidance`
    0 keeps them all. Subfolders are not read: each holds a run of its own.
    """
    if not event_files(log_dir):
        raise FileNotFoundError(f"no TensorBoard event files ({EVENT_FILE_PATTERN}) in {log_dir}.")
    events = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})
    events.Reload()
    rows = [
        {"tag": tag, "step": event.step, "value": event.value, "wall_time": event.wall_time}
        for tag in events.Tags()[SCALARS]
        for event in events.Scalars(tag)
    ]
    return pd.DataFrame(rows, columns=["tag", "step", "value", "wall_time"])
