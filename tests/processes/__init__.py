"""Programs the tests start as processes of their own, one module per scenario.

W&B reads its WANDB_* settings once per process, so a test whose runs must land in a folder of its own
starts one of these through the `run_offline` fixture (tests/conftest.py), which runs it in that folder.
Each imports only `helpers` and libraries, so it runs by path from any folder, as the tests start it
(`command`), or from the repository root as a module (`python -m tests.processes.tracking_run`). What a
test reads back it prints as JSON on its last line. Two are not run this way: the notebook that
tests/test_progress.py executes imports `progress_notebook`, and tests/test_workers.py runs `worker_threads`
under `pytest -n auto`, each of its tests writing a JSON file.
"""

from __future__ import annotations

import sys
from pathlib import Path

FOLDER = Path(__file__).parent


def command(name: str, *arguments: object) -> list[str]:
    """The command that runs the module `name` of this package by path, with `arguments`."""
    return [sys.executable, str(FOLDER / f"{name}.py"), *map(str, arguments)]
