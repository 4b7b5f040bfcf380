"""The README's test command runs test files on pytest-xdist's workers, each with its share of the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import FOLDER

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # starts a pytest with two workers, each importing torch
def test_each_worker_and_the_processes_it_starts_get_a_share_of_the_cores(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    environment.pop("OMP_NUM_THREADS", None)  # as in a shell that never set it: the root conftest chooses
    environment["THREADS_REPORT"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "-q",
            str(FOLDER / "worker_threads.py"),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("*.json"))]
    assert len(reports) == 2, reports
    share = max(1, (os.cpu_count() or 1) // 2)
    for report in reports:
        assert report == {"workers": 2, "worker": share, "child": share}, report
