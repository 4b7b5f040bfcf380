"""The `.wandb` file of an offline run, checked record by record before anything is read from it.

W&B writes everything a run logs into one `.wandb` file: a 7-byte header (`:W&B`, a magic number, a
format version), then records in LevelDB's log format. The file is cut into 32 KiB blocks; each
record is stored as one or more chunks (the whole record, or its first, middle and last pieces), and
each chunk starts with a CRC-32 checksum of its type and data, its length and its type. A block whose
last bytes cannot hold a chunk header is padded with zeros.

W&B's own reader (`wandb leet inspect`) skips a chunk whose checksum does not match and stops quietly
at a cut-off end, so a damaged file reads as a shorter run without a word. `check_run_file` walks the
chunks itself and says how far the file is intact; `settled_check` first waits for a file that W&B was
writing a moment ago; `helpers.tracking.read_run` refuses a damaged file unless its caller asks for the
intact part.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER = struct.Struct("<4sHB")  # ident, magic, format version
FORMAT_VERSION = 0  # the version of W&B's format that this reader knows
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # checksum, data length, chunk type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
# A chunk's checksum covers its type byte, then its data: start each CRC from the type byte's.
_TYPE_CRC = {kind: zlib.crc32(bytes([kind])) for kind in (FULL, FIRST, MIDDLE, LAST)}


class DamagedRunFileError(ValueError):
    """A `.wandb` file is cut off or damaged; `check` says how far it is intact."""

    def __init__(self, message: str, check: RunFileCheck) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class RunFileCheck:
    """How much of a `.wandb` file is intact: `records` whole records in its first `intact_bytes` bytes.

    `problem` is empty when the whole file is intact, else what is wrong right after the intact part.
    """

    path: Path
    size: int
    intact_bytes: int
    records: int
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.problem

    def describe(self) -> str:
        """One sentence: which file, what is wrong, and how far it can be read."""
        if self.records < 2:  # the first record is W&B's version header: nothing of the run
            return f"{self.path} is damaged: {self.problem}; nothing of the run in it can be read"
        return (
            f"{self.path} is damaged: {self.problem}; only its first {self.records:,} records "
            f"({self.intact_bytes:,} of {self.size:,} bytes) can be read"
        )


CUT_OFF = "it is cut off inside a record"  # also what a file still being written looks like


def check_run_file(path: str | Path) -> RunFileCheck:
    """Walk every chunk of a `.wandb` file, checking its checksum, and say how far the file is intact."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < HEADER.size:
        problem = (
            "it is empty" if not data else f"it is only {len(data)} bytes long, shorter than W&B's header"
        )
        return RunFileCheck(path, len(data), 0, 0, problem)
    ident, magic, version = HEADER.unpack_from(data)
    if ident != HEADER_IDENT or magic != HEADER_MAGIC:
        return RunFileCheck(path, len(data), 0, 0, "it does not start with W&B's header (not a .wandb file?)")
    if version != FORMAT_VERSION:
        problem = (
            f"it is in version {version} of W&B's format, and this reader knows version {FORMAT_VERSION}"
        )
        return RunFileCheck(path, len(data), 0, 0, problem)

    position = intact = HEADER.size
    records, in_record = 0, False
    while position < len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER.size:  # the block's tail: zero padding
            if data[position : position + left_in_block].strip(b"\0"):
                return RunFileCheck(path, len(data), intact, records, f"byte {position:,} should be padding")
            position += left_in_block
            continue
        if position + CHUNK_HEADER.size > len(data):
            return RunFileCheck(path, len(data), intact, records, CUT_OFF)
        checksum, length, kind = CHUNK_HEADER.unpack_from(data, position)
        end = position + CHUNK_HEADER.size + length
        if length > left_in_block - CHUNK_HEADER.size or kind not in _TYPE_CRC:
            problem = f"the record at byte {position:,} has a damaged header"
            return RunFileCheck(path, len(data), intact, records, problem)
        if end > len(data):
            return RunFileCheck(path, len(data), intact, records, CUT_OFF)
        if zlib.crc32(data[position + CHUNK_HEADER.size : end], _TYPE_CRC[kind]) != checksum:
            problem = f"the record at byte {position:,} does not match its checksum"
            return RunFileCheck(path, len(data), intact, records, problem)
        if in_record != (kind in (MIDDLE, LAST)):  # pieces of one record must come in order
            problem = f"the record at byte {position:,} is out of order"
            return RunFileCheck(path, len(data), intact, records, problem)
        in_record = kind in (FIRST, MIDDLE)
        position = end
        if not in_record:
            records, intact = records + 1, position
    if in_record:
        return RunFileCheck(path, len(data), intact, records, CUT_OFF)
    return RunFileCheck(path, len(data), intact, records)


# `wandb.finish()` can return a moment before W&B's service has written a run's last records (seen with
# wandb 0.31, more often on a busy machine): a file that ends cut off while it is still being written is
# read again until it stops changing for SETTLE_S seconds, for at most SETTLE_MAX_S. A file that holds only
# W&B's header a moment after `finish()` (seen under load: its records came seconds later) is given
# HEADER_SETTLE_S seconds without a change before it counts as a run that never started.
SETTLE_S, HEADER_SETTLE_S, SETTLE_MAX_S = 0.5, 5.0, 30.0


def _quiet_time_needed(check: RunFileCheck) -> float:
    """How long a recently written file must stay unchanged before it is taken as it is (0: at once)."""
    if check.problem == CUT_OFF:
        return SETTLE_S
    if check.intact and check.records < 2:  # W&B's header alone
        return HEADER_SETTLE_S
    return 0.0


def settled_check(run_file: Path) -> RunFileCheck:
    """`check_run_file`, after waiting for a file W&B was writing a moment ago to be complete."""
    check = check_run_file(run_file)
    start = last_change = time.monotonic()
    last_stat = run_file.stat()
    if time.time() - last_stat.st_mtime > SETTLE_MAX_S:
        return check  # written long ago: as it is for good
    while time.monotonic() - last_change < _quiet_time_needed(check):
        if time.monotonic() - start > SETTLE_MAX_S:
            break
        time.sleep(0.05)
        stat = run_file.stat()
        if (stat.st_size, stat.st_mtime_ns) != (last_stat.st_size, last_stat.st_mtime_ns):
            last_change, last_stat = time.monotonic(), stat
        check = check_run_file(run_file)
    return check
