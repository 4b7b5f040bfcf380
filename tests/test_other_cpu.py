"""The root conftest.py starts one notebook's kernel with PyTorch's generic CPU kernels: check it does."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GUARD = runpy.run_path(str(ROOT / "conftest.py"))


def notebook_printing_cpu_capability(path: Path, stored: str) -> None:
    """A one-cell notebook whose checked output says which kernels PyTorch chose, stored as `stored`."""
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "capability",
        "metadata": {"tags": ["nbval-check-output"]},
        "outputs": [{"name": "stdout", "output_type": "stream", "text": [stored + "\n"]}],
        "source": ["import torch\n", "print(torch.backends.cpu.get_cpu_capability())"],
    }
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


@pytest.mark.slow
def test_the_other_cpu_notebook_computes_with_generic_kernels(tmp_path):
    machine = torch.backends.cpu.get_cpu_capability()
    if machine == "DEFAULT":
        pytest.skip("this machine computes with the generic kernels itself: nothing to tell apart")
    assert GUARD["OTHER_CPU"] == {"ATEN_CPU_CAPABILITY": "default"}
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    notebook_printing_cpu_capability(tmp_path / GUARD["OTHER_CPU_NOTEBOOK"], "DEFAULT")
    notebook_printing_cpu_capability(tmp_path / "02_any_other.ipynb", machine)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-q",
            ".",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout, result.stdout[-3000:]
    assert machine != "DEFAULT", (
        "this machine uses the generic kernels itself, so the check proves nothing here"
    )
