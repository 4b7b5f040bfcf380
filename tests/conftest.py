"""Test-wide settings: a headless plotting backend, W&B kept inside a temporary folder, and the `slow` rule.

Every test that makes its run through `run_offline` (a training or W&B process of its own) is marked
`slow`, whichever file it is in, and so is every test in `SLOW_FILES`; other slow tests carry
`pytest.mark.slow` themselves, and notebook cells are marked by the root conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import matplotlib
import pytest

from helpers.data import RAW_FILES_MD5
from helpers.paths import data_dir
from helpers.wandb_setup import offline_environment, offline_process_environment

matplotlib.use("Agg")

# W&B reads these once per process, so they are set before any test imports wandb: runs, staging
# copies, caches and settings all stay in a temporary folder instead of the home folder.
# The notebooks nbval runs keep theirs in `runs/`, as a reader's do: only W&B's variables are set here.
_WANDB_HOME = Path(tempfile.mkdtemp(prefix="tutorial-tests-wandb-"))
os.environ.update({k: v for k, v in offline_environment(_WANDB_HOME).items() if k.startswith("WANDB_")})
os.environ.pop("WANDB_API_KEY", None)


def _run_offline(command: list[str], folder: Path) -> tuple[str, list]:
    """Run `command` in a fresh process with W&B offline and all its folders inside `folder`.

    W&B reads its WANDB_* variables once per process, so a run that must land in a folder of the
    test's own is made in a process of its own. Returns the command's stdout and the runs it made,
    read back with helpers.tracking.read_run, oldest first.
    """
    from helpers.tracking import find_runs, read_run

    env = offline_process_environment(folder)
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the run failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout, [read_run(path) for path in find_runs(folder)]  # wherever under it W&B wrote


SLOW_FIXTURES = {"run_offline"}
# The benchmarks' tests run the benchmarks (on MNIST, in processes of their own) and time things.
SLOW_FILES = {"test_benchmarks.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test in `SLOW_FILES` or that uses a fixture in `SLOW_FIXTURES` (even indirectly)."""
    for item in items:
        if item.path.name in SLOW_FILES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def run_offline():
    """`run_offline(command, folder)`: see `_run_offline`."""
    return _run_offline


@pytest.fixture(scope="session")  # session: before any module fixture that loads MNIST
def real_mnist() -> Path:
    """The real MNIST's raw files, or a skip saying where to put them."""
    raw = data_dir() / "MNIST" / "raw"
    if not all((raw / name).is_file() for name in RAW_FILES_MD5):
        pytest.skip("MNIST is not in data/MNIST/raw (copy ../shared/data/MNIST there, as .ci/run does)")
    return raw
