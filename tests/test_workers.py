"""The README's test command runs test files on pytest-xdist's workers (`-n auto`: one more than the cores),
each with its share of the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import FOLDER

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # starts a pytest with workers, each importing torch
def test_auto_starts_a_worker_more_than_the_cores_each_with_its_share_of_them(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    environment.pop("OMP_NUM_THREADS", None)  # as in a shell that never set it: the root conftest chooses
    environment["THREADS_REPORT"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "auto",
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
    workers = (os.cpu_count() or 1) + 1
    share = max(1, (os.cpu_count() or 1) // workers)
    for report in reports:
        assert report == {"workers": workers, "worker": share, "child": share}, report
