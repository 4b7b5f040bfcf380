"""Reading runs back from damaged files: never half-read without saying so.

One small offline run (200 history rows, a config record longer than a 32 KiB block so that records
are split across blocks) is made in a process of its own; copies of its `.wandb` file are then cut
off, bit-flipped, emptied or given another format version, and read back.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import runfile, tracking
from helpers.run_tables import collect_runs
from helpers.runfile import BLOCK_SIZE, DamagedRunFileError, check_run_file
from helpers.tracking import NoRunYetError, RunRecord, find_runs, read_run
from tests.processes import command

ROWS = 200


@pytest.fixture(scope="module")
def original(tmp_path_factory, run_offline) -> RunRecord:
    _, (record,) = run_offline(command("damaged_runs_run", "--rows", ROWS), tmp_path_factory.mktemp("damage"))
    return record


def run_file(record: RunRecord) -> Path:
    return next(record.path.glob("*.wandb"))


def damaged_copy(record: RunRecord, folder: Path, change) -> Path:
    """A copy of the run folder whose `.wandb` file is `change(bytes)`: returns that file."""
    copy = folder / record.path.name
    shutil.copytree(record.path, copy, symlinks=True)
    target = copy / run_file(record).name
    target.write_bytes(change(target.read_bytes()))
    return target


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def flip(position: int):
    return lambda data: data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1 :]


def test_the_original_is_whole_and_spans_blocks(original):
    check = check_run_file(run_file(original))
    assert check.intact and check.intact_bytes == check.size > 2 * BLOCK_SIZE
    assert not original.partial and original.damage == ""
    assert original.history["_step"].tolist() == list(range(ROWS))
    assert original.config["lr"] == 0.1 and original.state == "finished"
    assert len(original.config["notes"]) > BLOCK_SIZE  # so its record is split across blocks


@pytest.mark.parametrize("cut", [0.5, 0.75, 0.9, 0.999])
def test_a_cut_off_file_is_refused_naming_it_and_how_far_it_reads(original, tmp_path, cut):
    size = run_file(original).stat().st_size
    target = damaged_copy(original, tmp_path, lambda data: data[: int(size * cut)])
    before = digest(tmp_path)
    with pytest.raises(DamagedRunFileError) as caught:
        read_run(target.parent)
    message = str(caught.value)
    assert message.startswith(f"{target} is damaged: it is cut off inside a record; only its first ")
    assert f" of {int(size * cut):,} bytes) can be read: pass partial=True" in message
    assert digest(tmp_path) == before  # nothing changed or deleted


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_with_partial_the_intact_records_are_read_and_flagged(original, tmp_path, cut):
    size = run_file(original).stat().st_size
    target = damaged_copy(original, tmp_path, lambda data: data[: int(size * cut)])
    record = read_run(target, partial=True)
    check = check_run_file(target)
    assert record.partial and record.damage.startswith(f"{target} is damaged: it is cut off")
    assert record.path == target.parent.resolve()  # the run's folder, not the reader's temporary copy
    rows = len(record.history)
    assert 0 < rows < ROWS and record.history["_step"].tolist() == list(range(rows))
    assert record.history["loss"].tolist() == original.history["loss"].iloc[:rows].tolist()
    assert record.state == "running"  # the exit record is past the cut
    # Every intact record was read: W&B's reader prints one line per record of the intact part.
    copy = tmp_path / "intact" / target.parent.name / target.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(target.read_bytes()[: check.intact_bytes])
    assert len(tracking._inspect(copy).splitlines()) == check.records
    assert check.intact_bytes > int(size * cut) - BLOCK_SIZE  # no more than one record lost to the cut


def test_every_single_bit_flip_is_found(original, tmp_path):
    """A CRC-32 finds any one flipped bit in a record; the header and the padding are checked too."""
    data = run_file(original).read_bytes()
    target = tmp_path / "run-flipped.wandb"
    missed = []
    for position in range(0, len(data), 37):
        target.write_bytes(flip(position)(data))
        check = check_run_file(target)
        if check.intact or check.intact_bytes > position:
            missed.append(position)
    assert missed == []


@pytest.mark.parametrize("where", [0.05, 0.5, 0.95])
def test_a_flipped_bit_is_refused_not_read_as_a_shorter_run(original, tmp_path, where):
    size = run_file(original).stat().st_size
    target = damaged_copy(original, tmp_path, flip(int(size * where)))
    with pytest.raises(
        DamagedRunFileError, match=r"does not match its checksum|has a damaged header"
    ) as caught:
        read_run(target.parent)
    assert str(caught.value).startswith(f"{target} is damaged: the record at byte ")
    if where < 0.1:  # inside the run's own record, split over the first blocks
        assert str(caught.value).endswith("; nothing of the run in it can be read.")
    else:
        assert "can be read: pass partial=True" in str(caught.value)
        partial = read_run(target.parent, partial=True)
        assert partial.partial and 0 < len(partial.history) < ROWS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: b"", "is damaged: it is empty; nothing of the run in it can be read."),
        (lambda data: data[: len(data) // 10], "it is cut off inside a record; nothing of the run in it can"),
        (lambda data: data[:5], "is damaged: it is only 5 bytes long, shorter than W&B's header; nothing"),
        (lambda data: b"PK\x03\x04" + data[4:], "it does not start with W&B's header (not a .wandb file?)"),
        (
            lambda data: data[:6] + b"\x01" + data[7:],
            "it is in version 1 of W&B's format, and this reader knows",
        ),
    ],
    ids=["empty", "cut-inside-the-run-record", "shorter-than-header", "not-wandb", "newer-format"],
)
def test_files_with_no_readable_records(original, tmp_path, change, message):
    target = damaged_copy(original, tmp_path, change)
    for partial in (False, True):
        with pytest.raises(DamagedRunFileError, match=re.escape(message)):
            read_run(target, partial=partial)
    assert target.is_file()


def test_a_file_with_only_the_header_holds_no_run_yet(original, tmp_path):
    target = damaged_copy(original, tmp_path, lambda data: data[:7])
    with pytest.raises(NoRunYetError, match=f"{target} holds no run yet"):
        read_run(target)


def test_collect_runs_refuses_a_damaged_part_and_flags_it_with_partial(original, tmp_path):
    damaged_copy(original, tmp_path, lambda data: data[: len(data) // 2])
    with pytest.raises(DamagedRunFileError, match="pass partial=True to collect_runs"):
        collect_runs(tmp_path)
    (row,) = collect_runs(tmp_path, partial=True).to_dict("records")
    assert row["partial"] and row["id"] == original.id and row["state"] == "running"


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("missing", FileNotFoundError, "does not exist: pass a run folder"),
        ("notes.txt", ValueError, "is not a .wandb file"),
        (".", ValueError, "is a folder of runs, not one run"),
        ("empty-folder", ValueError, "is not a W&B run folder"),
        ("two-files", ValueError, "holds 2 .wandb files: pass the one to read"),
        (42, ValueError, "path must be a run folder or a .wandb file"),
    ],
)
def test_paths_that_are_not_a_run(original, tmp_path, path, error, message):
    shutil.copytree(original.path, tmp_path / "run", symlinks=True)
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "two-files").mkdir()
    for name in ("run-a.wandb", "run-b.wandb"):
        shutil.copy(run_file(original), tmp_path / "two-files" / name)
    with pytest.raises(error, match=message):
        read_run(tmp_path / path if isinstance(path, str) else path)


def test_find_runs_by_id_finds_every_part_whatever_the_folder_is_called(original, tmp_path):
    """W&B adds `-1` to a folder name when two parts of a run start within one second."""
    shutil.copytree(original.path, tmp_path / original.path.name, symlinks=True)
    shutil.copytree(original.path, tmp_path / f"{original.path.name}-1", symlinks=True)
    for name, content in (("empty", b""), ("header-only", run_file(original).read_bytes()[:7])):
        (tmp_path / name).mkdir()  # a part killed before W&B wrote its run: nothing to find in it
        (tmp_path / name / run_file(original).name).write_bytes(content)
    parts = find_runs(tmp_path, run_id=original.id)
    assert sorted(p.name for p in parts) == sorted([original.path.name, f"{original.path.name}-1"])
    assert find_runs(tmp_path, run_id="nosuchid") == []
    with pytest.raises(FileNotFoundError, match="does not exist: pass the folder that holds the run folders"):
        find_runs(tmp_path / "missing")


def test_a_wandb_older_than_the_reader_is_refused_and_a_newer_one_named(recwarn):
    with pytest.raises(
        RuntimeError, match=r"needs wandb 0\.31 or newer .* wandb 0\.30\.2 is installed: upgrade"
    ):
        tracking.check_wandb_version("0.30.2")
    tracking.check_wandb_version("0.31.0")
    assert not recwarn.list
    with pytest.warns(
        UserWarning,
        match=r"read_run knows wandb 0\.31 and this is 0\.33\.1: pip install 'wandb>=0\.31,<0\.32'",
    ):
        tracking.check_wandb_version("0.33.1")


def test_a_reader_that_does_not_finish_is_stopped(original, monkeypatch):
    monkeypatch.setattr(tracking, "READ_TIMEOUT_S", 0.001)
    with pytest.raises(RuntimeError, match=r"W&B's reader did not finish reading .* within 0\.001 s"):
        read_run(original.path)


def test_before_any_run_the_default_folder_gives_nothing_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_RUNS_DIR", str(tmp_path / "runs"))
    assert find_runs() == [] and find_runs(run_id="abc") == []
    assert collect_runs().empty
    assert not (tmp_path / "runs").exists()  # reading made no folder


def read_while_written(target: Path, whole: bytes, delay: float) -> RunRecord:
    """`read_run` on `target`'s folder while another thread writes the whole file into it after `delay` s."""
    import threading
    import time

    def finish_writing() -> None:
        time.sleep(delay)
        target.write_bytes(whole)

    writer = threading.Thread(target=finish_writing)
    writer.start()
    try:
        return read_run(target.parent)
    finally:
        writer.join()


def test_a_file_still_being_written_is_read_once_it_is_complete(original, tmp_path):
    """`wandb.finish()` can return before W&B has written a run's last records: read_run waits for them."""
    target = damaged_copy(original, tmp_path, lambda data: data[: len(data) - 100])
    assert check_run_file(target).problem  # cut off, as W&B's file looks while it is being written
    record = read_while_written(target, run_file(original).read_bytes(), delay=0.3)
    assert not record.partial and len(record.history) == ROWS


def header_only(data: bytes) -> bytes:
    """The start of a `.wandb` file up to the end of its first record, W&B's header: a run not yet written."""
    for length in range(1, len(data)):
        with tempfile.NamedTemporaryFile(suffix=".wandb") as probe:
            probe.write(data[:length])
            probe.flush()
            check = check_run_file(probe.name)
        if check.intact and check.records == 1:
            return data[:length]
    raise AssertionError("no prefix of the file holds exactly W&B's header")


def test_a_file_holding_only_the_header_a_moment_after_finish_is_read_once_written(original, tmp_path):
    """Seen under load: `wandb.finish()` returned while the file held W&B's header alone, for seconds."""
    target = damaged_copy(original, tmp_path, header_only)
    assert check_run_file(target).records == 1
    # Longer than a cut-off file is waited for.
    record = read_while_written(target, run_file(original).read_bytes(), delay=2 * runfile.SETTLE_S)
    assert not record.partial and len(record.history) == ROWS


def test_a_file_cut_off_long_ago_is_refused_at_once(original, tmp_path):
    import os
    import time

    target = damaged_copy(original, tmp_path, lambda data: data[: len(data) - 100])
    an_hour_ago = time.time() - 3600
    os.utime(target, (an_hour_ago, an_hour_ago))
    start = time.monotonic()
    with pytest.raises(DamagedRunFileError, match="cut off"):
        read_run(target.parent)
    assert time.monotonic() - start < runfile.SETTLE_S
