"""Run by tests/test_workers.py under `pytest -n auto`: each worker reports its torch threads and a child's.

Each test writes `<worker>-<test>.json` into the folder named by `THREADS_REPORT`: the worker count xdist set,
torch's threads in the worker, and those of a Python process the worker starts (as nbval starts a kernel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHILD = "import torch; print(torch.get_num_threads())"


@pytest.mark.parametrize("test", ["first", "second"])  # two tests, on one worker or two
def test_report_threads(test: str) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    report = {
        "workers": int(os.environ["PYTEST_XDIST_WORKER_COUNT"]),
        "worker": torch.get_num_threads(),
        "child": int(child.stdout),
    }
    worker = os.environ["PYTEST_XDIST_WORKER"]
    (Path(os.environ["THREADS_REPORT"]) / f"{worker}-{test}.json").write_text(json.dumps(report))
