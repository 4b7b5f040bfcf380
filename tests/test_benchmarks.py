"""The throughput benchmark runs and reports in the shape notebook 08 reads; no timing is checked here."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from helpers import throughput
from helpers.data import RAW_FILES_MD5
from helpers.paths import data_dir

needs_mnist = pytest.mark.skipif(
    not all((data_dir() / "MNIST" / "raw" / name).is_file() for name in RAW_FILES_MD5),
    reason="MNIST is not in data/MNIST/raw (copy ../shared/data/MNIST there, as .ci/run does)",
)


def test_throughput_options():
    full, short = throughput.parse_args([]), throughput.parse_args(["--short"])
    assert (full.steps, full.rounds) == (430, 5)
    assert (short.steps, short.rounds) == (80, 3)
    assert throughput.parse_args(["--short", "--steps", "7"]).steps == 7
    for wrong in (["--steps", "0"], ["--steps", "431"], ["--rounds", "0"]):
        with pytest.raises(SystemExit):
            throughput.parse_args(wrong)


@needs_mnist
def test_throughput_benchmark_writes_every_variant_to_json(tmp_path):
    out = tmp_path / "throughput.json"
    command = [
        sys.executable,
        "-m",
        "helpers.throughput",
        "--steps",
        "3",
        "--rounds",
        "1",
        "--json",
        str(out),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    results = json.loads(out.read_text())
    assert results["config"]["steps"] == 3 and results["config"]["rounds"] == 1
    variants = {row["key"]: row for row in results["variants"]}
    assert list(variants) == ["plain", "lightning", "wandb", "wandb_every_step"]
    for row in variants.values():
        assert len(row["loop_s"]) == len(row["total_s"]) == 1
        assert 0 < row["loop_s"][0] <= row["total_s"][0]
        numbers = [value for value in row.values() if isinstance(value, float)]
        assert numbers and all(math.isfinite(value) for value in numbers)
    assert variants["plain"]["ratio_to_plain"] == 1.0
    assert len(results["one_off"]["wandb_init_s"]) == len(results["one_off"]["wandb_finish_s"]) >= 2

    assert "| plain PyTorch loop (notebook 01) |" in result.stdout
    assert "Lightning's overhead over the plain loop" in result.stdout
    # W&B runs and Lightning's folders went to a temporary folder that is gone: nothing left here.
    assert [path.name for path in tmp_path.iterdir()] == [out.name]
