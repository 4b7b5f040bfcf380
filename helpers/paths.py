"""Where the series keeps datasets and runs: inside the repository, or the working folder in Colab."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "TUTORIAL_DATA_DIR"
RUNS_DIR_VARIABLE = "TUTORIAL_RUNS_DIR"


def project_dir() -> Path:
    """The repository's root when `helpers` is used from a checkout, else the current folder.

    In Colab the package is pip-installed into site-packages, where nothing should be written,
    so data and runs go next to the notebook instead.
    """
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return Path.cwd()


def data_dir() -> Path:
    """Folder that datasets are read from and downloaded to (`$TUTORIAL_DATA_DIR` or `data/`)."""
    return Path(os.environ.get(DATA_DIR_VARIABLE) or project_dir() / "data")


def runs_dir() -> Path:
    """Folder for W&B runs, Lightning logs and checkpoints (`$TUTORIAL_RUNS_DIR` or `runs/`)."""
    return Path(os.environ.get(RUNS_DIR_VARIABLE) or project_dir() / "runs")


def display_path(path: str | Path) -> str:
    """`path` relative to the project folder when it lies inside it: printed paths then name no machine."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_dir().resolve()))
    except ValueError:
        return str(path)
