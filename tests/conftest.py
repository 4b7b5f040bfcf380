"""Test-wide settings: a headless plotting backend, and W&B kept inside a temporary folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# W&B reads these once per process, so they are set before any test imports wandb: runs, staging
# copies, caches and settings all stay in a temporary folder instead of the home folder.
_WANDB_HOME = Path(tempfile.mkdtemp(prefix="tutorial-tests-wandb-"))
for _name, _sub in {
    "WANDB_DIR": "runs",
    "WANDB_DATA_DIR": "data",
    "WANDB_CACHE_DIR": "cache",
    "WANDB_CONFIG_DIR": "config",
    "WANDB_ARTIFACT_DIR": "artifacts",
}.items():
    os.environ[_name] = str(_WANDB_HOME / _sub)
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)
