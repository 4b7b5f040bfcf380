"""The benchmarks' harness and scripts: what they run, compare and print; no timing is checked here."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import TensorDataset

from benchmarks import harness, model_speed, overhead, readme

ROOT = Path(__file__).resolve().parents[1]


def test_the_plain_loop_is_notebook_01s_code():
    notebook = json.loads((ROOT / "notebooks" / "01_pytorch_training_loop.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert any(inspect.getsource(overhead.train_one_epoch).strip() in cell for cell in cells)


def test_interleave_warms_up_then_rotates_the_order_each_round():
    calls = []
    variants = {
        name: (lambda round_, name=name: calls.append((name, round_)) or harness.Timing(1, 1))
        for name in "abc"
    }
    samples = harness.interleave(variants, rounds=3)
    assert calls[:3] == [("a", -1), ("b", -1), ("c", -1)]
    assert [name for name, _ in calls[3:]] == list("abcbcacab")
    assert [round_ for _, round_ in calls[3:]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert {name: len(timings) for name, timings in samples.items()} == {"a": 3, "b": 3, "c": 3}
    calls.clear()
    harness.interleave(variants, rounds=1, warm_up=False)
    assert calls == [("a", 0), ("b", 0), ("c", 0)]
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        harness.interleave(variants, rounds=0)


def test_compare_gives_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    reference = [harness.Timing(1.0, 2.0), harness.Timing(2.0, 2.0), harness.Timing(4.0, 2.0)]
    other = [harness.Timing(1.5, 3.0), harness.Timing(2.0, 2.0), harness.Timing(4.4, 4.0)]
    results = harness.compare({"ref": reference, "other": other}, "ref", per=2)
    assert results["other"]["median"] == pytest.approx(2.0 / 2)
    assert results["other"]["ratio"] == pytest.approx(1.1)  # per round 1.5, 1.0, 1.1; medians' ratio is 1.0
    assert results["other"]["difference"] == pytest.approx(0.2)  # per round (0.5, 0.0, 0.4) / 2
    assert results["other"]["cpu_ratio"] == pytest.approx(1.5)  # per round 1.5, 1.0, 2.0
    assert results["other"]["wall_s"] == [1.5, 2.0, 4.4]


def test_options_below_one_are_refused(capsys):
    parser = harness.arguments("a benchmark", rounds=3)
    parser.add_argument("--steps", type=int, default=5)
    assert harness.parse(parser, [], "steps").rounds == 3
    for wrong in (["--rounds", "0"], ["--steps", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            harness.parse(parser, wrong, "steps")
        assert f"{wrong[0]} must be at least 1, got 0" in capsys.readouterr().err


def test_machine_says_which_cpu_threads_and_versions():
    info = harness.machine()
    assert info["torch"] == torch.__version__ and info["pytorch-lightning"] == pl.__version__
    assert info["torch_threads"] == torch.get_num_threads() and info["cores"] >= 1
    assert set(info["cpu_flags"]) <= set(harness.CPU_FLAGS) or info["cpu_flags"] == "unknown"
    line = harness.describe(info)
    assert info["cpu"] in line and f"torch {torch.__version__}" in line


def test_seeded_batches_repeat_their_order_per_seed_and_cover_the_dataset():
    data = TensorDataset(torch.arange(300).float(), torch.arange(300))
    first, again, other = (list(harness.seeded_batches(data, seed)) for seed in (1, 1, 2))
    assert [len(labels) for _, labels in first] == [128, 128, 44]
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][1], other[0][1])
    assert sorted(torch.cat([labels for _, labels in first]).tolist()) == list(range(300))


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_loop_timer_times_lightnings_loop_within_the_fit(tmp_path):
    timer = harness.LoopTimer(torch.device("cpu"))
    data = TensorDataset(torch.randn(64, 4))
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[timer], default_root_dir=tmp_path,
    )  # fmt: skip
    stopwatch = harness.Stopwatch(torch.device("cpu"))
    stopwatch.start()
    trainer.fit(_Tiny(), torch.utils.data.DataLoader(data, batch_size=16))
    whole = stopwatch.stop()
    assert trainer.global_step == 4
    assert 0 < timer.timing.wall < whole.wall and timer.timing.cpu >= 0


def test_readme_rewrites_only_between_its_markers():
    start, end = "<!-- benchmarks.overhead: keep -->", "<!-- end of benchmarks.overhead -->"
    text = f"before\n{start}\nold table\n{end}\nafter\n"
    new = readme.replace_block(text, "overhead", "new table")
    assert new == f"before\n{start}\nnew table\n{end}\nafter\n"
    with pytest.raises(ValueError, match=r"exactly one pair of markers for benchmarks\.model_speed"):
        readme.replace_block(text, "model_speed", "x")
    with pytest.raises(ValueError, match="exactly one pair"):
        readme.replace_block(text + text, "overhead", "x")


def test_the_readme_has_markers_for_every_benchmark():
    text = readme.README.read_text()
    for name in readme.BENCHMARKS:
        readme.replace_block(text, name, "")  # raises if a pair of markers is missing or doubled


@pytest.mark.usefixtures("real_mnist")
def test_model_speed_times_every_variant(capsys):
    results = model_speed.main(["--steps", "1", "--rounds", "1", "--threads", "1"])
    assert list(results["variants"]) == list(model_speed.VARIANTS)
    assert results["variants"][model_speed.REFERENCE]["ratio"] == 1.0
    assert all(len(r["wall_s"]) == 1 and r["wall_s"][0] > 0 for r in results["variants"].values())
    printed = capsys.readouterr().out
    assert "| conv -> BatchNorm -> ReLU -> pool, fp32 |" in printed and "1 torch threads" in printed
    old, new = model_speed.ConvFirstConvNet(), model_speed.ConvNet()
    assert [p.shape for p in old.parameters()] == [p.shape for p in new.parameters()]
    assert isinstance(old.features[1], torch.nn.BatchNorm2d) and isinstance(
        new.features[1], torch.nn.MaxPool2d
    )


@pytest.mark.usefixtures("real_mnist")
def test_overhead_prints_its_table_and_ends_with_the_two_ratios(tmp_path):
    out = tmp_path / "overhead.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.overhead",
        "--steps",
        "3",
        "--rounds",
        "1",
        "--json",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    results = json.loads(out.read_text())
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"lightning_overhead=(\d+\.\d{3}) wandb_overhead=(\d+\.\d{3})", last)
    assert match, last
    assert float(match[1]) == round(results["lightning_overhead"], 3)
    assert float(match[2]) == round(results["wandb_overhead"], 3)
    rows = {row["key"]: row for row in results["variants"]}
    assert list(rows) == ["plain", "lightning", "wandb", "wandb_every_step"]
    assert all(len(row["wall_s"]) == 1 and row["wall_s"][0] > 0 for row in rows.values())
    lightning, plain = rows["lightning"]["wall_s"][0], rows["plain"]["wall_s"][0]
    assert results["lightning_overhead"] == pytest.approx(lightning / plain)
    assert results["wandb_overhead"] == pytest.approx(rows["wandb"]["wall_s"][0] / lightning)
    assert len(results["wandb_init_s"]) == len(results["wandb_finish_s"]) == 4  # 2 W&B variants, warm-up + 1
    assert "| plain PyTorch loop (notebook 01) |" in result.stdout
    assert results["machine"]["torch"] == torch.__version__
