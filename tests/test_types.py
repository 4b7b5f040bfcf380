"""mypy over helpers/, the code readers import: every function typed, and a wrong type at a call is caught.

One mypy run checks helpers/ and a small caller beside it that passes wrong types to public helpers, so
the test shows both that helpers/ is clean and that the configuration is strict enough to see a mistake.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed: pip install -r requirements.txt")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # about 25 s: mypy starts without a cache each time

# Each line passes a wrong type across a public boundary; mypy must report each one, on that line.
WRONG_CALLS = textwrap.dedent(
    """
    from helpers.data import tensor_batches
    from helpers.models import ConvNet
    from helpers.tracking import read_run

    ConvNet(channels="16")  # str for int
    read_run(42)  # int for a path
    tensor_batches([1, 2, 3], batch_size=128)  # a list for a TensorDataset
    """
)


def test_helpers_are_typed_and_a_wrong_call_is_caught(tmp_path):
    caller = tmp_path / "wrong_calls.py"
    caller.write_text(WRONG_CALLS)
    # A cache of its own: mypy's cache (.mypy_cache/) can hold a caller of the same content from an earlier
    # run's temporary folder and report that file's errors, under that folder's path.
    cache = tmp_path / "mypy-cache"
    report, errors, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            str(ROOT / "helpers"),
            str(caller),
        ]
    )
    problems = [line for line in report.splitlines() if ": error:" in line]
    in_helpers = [line for line in problems if not line.startswith(str(caller))]
    assert not in_helpers, "mypy finds errors in helpers/:\n" + "\n".join(in_helpers)
    lines = WRONG_CALLS.splitlines()
    expected = {number for number, line in enumerate(lines, start=1) if "# " in line and "(" in line}
    found = {int(re.match(rf"{re.escape(str(caller))}:(\d+):", line)[1]) for line in problems}
    assert found == expected, f"mypy should flag lines {sorted(expected)} of the caller:\n{report}{errors}"
    assert status == 1
