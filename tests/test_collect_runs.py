"""What notebook 09 relies on: every run on disk collected into one table, whatever state each is in.

Tiny offline runs (no training) are made in a process of their own, tests/processes/collect_runs_run.py
(W&B reads its settings once per process): a finished run with nested config, a `define_metric` minimum
and an image, a failed run, and a run resumed offline into a second folder. Then a damaged folder is added
next to them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers.run_tables import RUN_COLUMNS, collect_runs
from helpers.runfile import DamagedRunFileError
from helpers.tracking import RunRecord, _reader_commands
from tests.processes import command


@pytest.fixture(scope="module")
def made(tmp_path_factory, run_offline) -> tuple[Path, dict, list[RunRecord]]:
    folder = tmp_path_factory.mktemp("collect")
    stdout, records = run_offline(command("collect_runs_run"), folder)
    return folder / "wandb", json.loads(stdout.strip().splitlines()[-1]), records


@pytest.fixture(scope="module")
def table(made) -> pd.DataFrame:
    return collect_runs(made[0])


def row(table: pd.DataFrame, run_id: str) -> pd.Series:
    (index,) = table.index[table["id"] == run_id]
    return table.loc[index]


def test_one_row_per_run_oldest_first_identity_columns_first(made, table):
    _, ids, records = made
    assert len(records) == 4  # four folders: the resumed run has two
    assert table["id"].tolist() == [ids["finished"], ids["failed"], ids["resumed"]]
    assert tuple(table.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert table["start_time"].is_monotonic_increasing
    assert str(table["start_time"].dt.tz) == "UTC"


def test_identity_group_job_type_and_state(made, table):
    _, ids, records = made
    finished = row(table, ids["finished"])
    assert (finished["name"], finished["project"], finished["group"], finished["job_type"]) == (
        "finished",
        "tests",
        "grid",
        "train",
    )
    assert finished["state"] == "finished" and finished["parts"] == 1
    assert row(table, ids["failed"])["state"] == "failed"
    assert row(table, ids["resumed"])["group"] == ""  # no group given
    (record,) = [r for r in records if r.id == ids["finished"]]
    assert (record.group, record.job_type) == ("grid", "train")
    assert record.start_time.endswith("Z")


def test_config_and_summary_are_flattened_without_media(made, table):
    _, ids, _ = made
    finished = row(table, ids["finished"])
    assert finished["config.lr"] == 0.1 and finished["config.model.width"] == 8
    assert finished["summary.val/loss.min"] == pytest.approx(0.3)  # define_metric's minimum
    assert finished["summary.test/accuracy"] == pytest.approx(0.9)
    assert not [c for c in table.columns if c.startswith("summary.digits")]  # an image: a file
    assert not [c for c in table.columns if c.startswith(("config._", "summary._"))]
    # A run without a key has NaN there, as in any DataFrame built from rows.
    assert pd.isna(row(table, ids["failed"])["config.model.width"])
    assert row(table, ids["failed"])["summary.val/loss"] == 2.0  # no define_metric: the last value


def test_a_resumed_run_is_one_row_from_its_parts(made, table):
    _, ids, records = made
    first, second = sorted((r for r in records if r.id == ids["resumed"]), key=lambda r: r.start_time)
    resumed = row(table, ids["resumed"])
    assert resumed["parts"] == 2 and resumed["state"] == "finished"  # the newest part's state
    assert resumed["path"] == second.path and first.state == "failed"
    assert resumed["start_time"] == pd.Timestamp(first.start_time)
    assert (resumed["config.lr"], resumed["config.epochs"]) == (0.05, 2)  # both parts' config
    assert resumed["summary.only_in_part_1"] == 1
    # The minimum over both parts (0.2 in part 1), not part 2's own minimum (0.25).
    assert second.summary["val/loss"] == {"min": pytest.approx(0.25)}
    assert resumed["summary.val/loss.min"] == pytest.approx(0.2)


@pytest.fixture
def with_bad_folders(made, tmp_path) -> Path:
    """A copy of the runs with a folder whose file is not a W&B file and one whose file holds no run yet."""
    directory, _, records = made
    copy = tmp_path / "wandb"
    shutil.copytree(directory, copy, symlinks=True)
    damaged = copy / "offline-run-20990101_000000-damaged"
    damaged.mkdir()
    (damaged / "run-damaged.wandb").write_bytes(b"not a W&B file")
    # A process killed right after wandb.init leaves a file with nothing but the 7-byte header.
    empty = copy / "offline-run-20990101_000001-empty"
    empty.mkdir()
    header = next(records[0].path.glob("*.wandb")).read_bytes()[:7]
    (empty / "run-empty.wandb").write_bytes(header)
    return copy


def test_a_damaged_folder_stops_the_table_naming_its_file(with_bad_folders):
    with pytest.raises(DamagedRunFileError) as caught:
        collect_runs(with_bad_folders)
    message = str(caught.value)
    assert (
        "20990101_000000-damaged/run-damaged.wandb is damaged: it does not start with W&B's header" in message
    )
    assert (
        "; nothing of the run in it can be read: pass partial=True to collect_runs to use the intact part"
        in message
    )
    assert message.endswith("of such files (flagged in the `partial` column).")


def test_with_partial_unreadable_and_empty_folders_are_skipped_with_a_warning(made, table, with_bad_folders):
    with pytest.warns(UserWarning) as caught:
        again = collect_runs(with_bad_folders, partial=True)
    messages = sorted(str(warning.message) for warning in caught)
    assert len(messages) == 2
    assert messages[0].startswith("skipped ") and "20990101_000000-damaged" in messages[0]
    assert "20990101_000001-empty" in messages[1] and "holds no run yet" in messages[1]
    assert again["id"].tolist() == table["id"].tolist() and not again["partial"].any()


def test_no_runs_gives_an_empty_table_with_the_identity_columns(tmp_path):
    empty = collect_runs(tmp_path)
    assert empty.empty and tuple(empty.columns) == RUN_COLUMNS


def test_a_folder_that_does_not_exist_is_an_error_not_an_empty_table(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'wandb'} does not exist: pass the folder"):
        collect_runs(tmp_path / "wandb")


def test_the_direct_reader_gives_what_the_wandb_command_gives(made):
    """`_inspect` runs wandb-core directly, skipping a Python start; its output must be the public command's.

    Each command runs on its own here: `_inspect` would fall back to the public command if the direct one
    failed, and so could not show a difference.
    """
    _, _, records = made
    run_file = next(records[0].path.glob("*.wandb"))
    for options in ((), ("--summary",)):
        direct, public = _reader_commands(run_file, *options)
        assert direct[0] != sys.executable, "wandb-core was not found: the direct reader is not used here"
        direct_output, public_output = (
            subprocess.run(command, capture_output=True, text=True, check=True).stdout
            for command in (direct, public)
        )
        assert direct_output and direct_output == public_output


def test_flattening_keeps_lists_and_numbers_as_they_are():
    from helpers.run_tables import _flatten, _merge_summaries

    assert _flatten({"a": {"b": 1, "c": [1, 2]}, "img": {"_type": "image-file"}}, "x.") == {
        "x.a.b": 1,
        "x.a.c": [1, 2],
    }
    parts = [{"loss": {"min": 0.2, "max": 0.9}, "n": 1}, {"loss": {"min": 0.3, "max": 1.0}}]
    assert _merge_summaries(parts) == {"loss": {"min": 0.2, "max": 1.0}, "n": 1}
