"""Offline W&B runs read back from disk: what a run logged, as Python values and pandas tables.

An offline run keeps everything it logged in one `.wandb` file. `read_run` checks every record's
checksum (`helpers.runfile`) and reads it with W&B's own reader, `wandb leet inspect --json` (wandb
>= 0.31), so notebooks can show what was logged and tests can assert on it without a server.
`find_runs` lists run folders (with `run_id`, the parts of one resumed run); `helpers.run_tables`
puts runs and artifact versions in tables.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from helpers.paths import runs_dir
from helpers.runfile import DamagedRunFileError, RunFileCheck, check_run_file, settled_check


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact the run logged: `files` maps each path inside the artifact to its local copy.

    `digest` is the checksum of the contents: two records with the same digest are one version on
    the server. `metadata` is what the logger attached (Lightning: score and checkpoint filename).
    """

    name: str
    type: str
    aliases: list[str]
    digest: str
    files: dict[str, Path]
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """What one W&B run logged, read back from its local `.wandb` file.

    `group` and `job_type` are what `wandb.init` was given (empty if nothing), `start_time` when the
    run (or, for a resumed run's later folder, that part) started. `damage` is empty for a whole
    file; for a damaged file read with `partial=True` it says what is wrong and how much was read.
    """

    path: Path
    id: str
    name: str
    project: str
    state: str
    tags: list[str]
    config: dict
    summary: dict
    history: pd.DataFrame
    system_metrics: pd.DataFrame
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    group: str = ""
    job_type: str = ""
    start_time: str = ""  # ISO 8601, UTC, as W&B wrote it
    damage: str = ""

    @property
    def files_dir(self) -> Path:
        """The run's `files/` folder, where logged media (images, tables) are written."""
        return self.path / "files"

    @property
    def partial(self) -> bool:
        """Whether this is only the intact part of a damaged file."""
        return bool(self.damage)


class NoRunYetError(RuntimeError):
    """A `.wandb` file holds W&B's header and nothing else: its process stopped (or is starting) before
    W&B wrote the run."""


WANDB_TESTED = (0, 31)  # the wandb release whose reader's output `read_run` was written against
READ_TIMEOUT_S = 120  # W&B's reader takes milliseconds on a notebook's run; this is for a hung reader


def _wandb_version() -> str:
    return importlib.metadata.version("wandb")


def _downgrade_hint(version: str) -> str:
    tested = ".".join(map(str, WANDB_TESTED))
    upper = f"{WANDB_TESTED[0]}.{WANDB_TESTED[1] + 1}"
    return f"read_run knows wandb {tested} and this is {version}: pip install 'wandb>={tested},<{upper}'"


@functools.cache
def check_wandb_version(version: str | None = None) -> None:
    """Refuse a wandb older than the reader `read_run` uses, and warn once about a newer one.

    `read_run` runs W&B's own reader, `wandb leet inspect --json` (new in 0.31), and interprets its
    output; a later release may change that output, so it works there but says which version it knows.
    """
    version = version or _wandb_version()
    match = re.match(r"(\d+)\.(\d+)", version)
    found = (int(match[1]), int(match[2])) if match else (0, 0)
    if found < WANDB_TESTED:
        raise RuntimeError(
            f"read_run needs wandb {'.'.join(map(str, WANDB_TESTED))} or newer (for its `wandb leet inspect` "
            f"reader), but wandb {version} is installed: upgrade it with pip install -U 'wandb>=0.31'."
        )
    if found > WANDB_TESTED:
        warnings.warn(f"if a run reads wrongly: {_downgrade_hint(version)}.", stacklevel=3)


@functools.cache
def _wandb_core() -> str | None:
    """The path of `wandb-core`, the program that `wandb leet` runs, or None if it cannot be found."""
    try:
        from wandb.util import get_core_path

        return get_core_path()
    except Exception:  # no wandb-core for this platform, or another wandb: use the command below
        return None


def _reader_commands(run_file: Path, *options: str) -> list[list[str]]:
    """W&B's reader of one `.wandb` file: `wandb-core` run directly where found, then the public command."""
    commands = [[sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(run_file)]]
    if (core := _wandb_core()) is not None:
        direct = [core, "leet", "inspect", "--no-observability", "--json", *options]
        commands.insert(0, [*direct, "--run-file", str(run_file), str(run_file.parent.parent)])
    return commands


def _inspect(run_file: Path, *options: str) -> str:
    """The JSON that W&B's reader prints for one `.wandb` file, with a time limit.

    `wandb leet inspect` starts Python and imports wandb (about a second) only to run `wandb-core leet
    inspect`; running that directly takes milliseconds, which matters for tables of many runs. Same
    reader, same output; if the direct call fails, the public command decides.
    """
    check_wandb_version()
    for command in _reader_commands(run_file, *options):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=READ_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"W&B's reader did not finish reading {run_file} ({run_file.stat().st_size:,} bytes) within "
                f"{READ_TIMEOUT_S} s: if the file is that large, raise helpers.tracking.READ_TIMEOUT_S."
            ) from None
        if result.returncode == 0:
            return result.stdout
    error = (result.stderr.strip().splitlines() or ["no message"])[-1]
    raise RuntimeError(
        f"W&B's reader could not read {run_file} ({error}); {_downgrade_hint(_wandb_version())}."
    )


def _run_file(path: str | os.PathLike) -> Path:
    """The `.wandb` file of a run folder (or the file itself), or one sentence on why `path` is not one."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a run folder or a .wandb file (a str or Path), got {path!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: pass a run folder (find_runs lists them) or its .wandb file."
        )
    if path.is_file():
        if path.suffix != ".wandb":
            raise ValueError(f"{path} is not a .wandb file: pass a run folder or the .wandb file in it.")
        return path
    files = sorted(path.glob("*.wandb"))
    if len(files) > 1:
        raise ValueError(f"{path} holds {len(files)} .wandb files: pass the one to read.")
    if not files:
        if any(path.glob("*/*.wandb")):
            raise ValueError(
                f"{path} is a folder of runs, not one run: pass one of its run folders (find_runs)."
            )
        raise ValueError(f"{path} is not a W&B run folder (one holding a .wandb file) nor a .wandb file.")
    return files[0]


def _check_readable(run_file: Path, partial: bool) -> RunFileCheck:
    """Check the file's records; raise if it is damaged and the caller did not ask for the intact part."""
    check = check_run_file(run_file) if partial else settled_check(run_file)
    if check.intact and check.records < 2:  # the first record is W&B's version header
        raise NoRunYetError(
            f"{run_file} holds no run yet (its process stopped, or is starting, before W&B wrote one)."
        )
    if check.records < 2:
        raise DamagedRunFileError(f"{check.describe()}.", check)
    if not check.intact and not partial:
        raise DamagedRunFileError(
            f"{check.describe()}: pass partial=True to read those (flagged partial; a run that W&B is still "
            f"writing can end this way too).",
            check,
        )
    return check


def find_runs(directory: str | Path | None = None, run_id: str | None = None) -> list[Path]:
    """Run folders under `directory` (default: the W&B folder in `runs/`), oldest first.

    With `run_id`, only that run's folders: a run resumed offline leaves one folder per part. They
    are found by the id W&B recorded in each file, not by the folder's name (which gets a `-1` when
    two parts start within one second), and ordered by when each part started.
    """
    if directory is None:
        directory = runs_dir() / "wandb"
        if not directory.exists():
            return []  # no run made yet
    directory = Path(directory)
    if not directory.is_dir():
        problem = "does not exist" if not directory.exists() else "is a file, not a folder"
        raise FileNotFoundError(f"{directory} {problem}: pass the folder that holds the run folders.")
    folders = {p.parent for p in directory.rglob("*.wandb")}
    if run_id is None:
        return sorted(folders, key=lambda folder: folder.stat().st_mtime)
    parts = []
    for folder in folders:
        for run_file in folder.glob(f"run-{run_id}.wandb"):  # W&B names the file after the run: a first sieve
            if check_run_file(run_file).records < 2:  # only the file's header: no run recorded in it yet
                continue
            overview = json.loads(_inspect(run_file, "--summary"))
            if overview.get("run_id") == run_id:
                parts.append((overview.get("start_time") or "", folder))
    return [folder for _, folder in sorted(parts)]


def read_run(path: str | Path, partial: bool = False) -> RunRecord:
    """Read a finished or running W&B run from disk: a run folder or its `.wandb` file.

    Uses W&B's own reader (`wandb leet inspect --json`): the summary (with `define_metric`
    min/max applied) from its `--summary` view, history, system metrics and artifacts from its
    records. History columns of nested values are flattened with dots (`image.path`).

    Every record's checksum is checked first (`helpers.runfile`): a cut-off or damaged file raises
    `DamagedRunFileError`, naming the file and how far it is intact, unless `partial` is set; then the
    intact records are read and the record says so in `damage`.
    """
    run_file = _run_file(path)
    check = _check_readable(run_file, partial)
    if check.intact:
        return _parse(run_file.parent.resolve(), run_file, "")
    with tempfile.TemporaryDirectory() as folder:  # W&B's reader gets a copy of the intact part
        copy = Path(folder) / run_file.parent.name / run_file.name
        copy.parent.mkdir()
        with run_file.open("rb") as source:
            copy.write_bytes(source.read(check.intact_bytes))
        return _parse(run_file.parent.resolve(), copy, check.describe())


def _parse(run_dir: Path, run_file: Path, damage: str) -> RunRecord:
    """A `RunRecord` from what W&B's reader prints for `run_file`."""
    try:
        return _parse_records(
            run_dir, json.loads(_inspect(run_file, "--summary")), _inspect(run_file), damage
        )
    except (KeyError, TypeError, json.JSONDecodeError) as error:  # the reader's output changed
        raise RuntimeError(
            f"W&B's reader printed what read_run cannot interpret for {run_file} ({type(error).__name__}: "
            f"{error}); {_downgrade_hint(_wandb_version())}."
        ) from None


def _parse_records(run_dir: Path, overview: dict, records: str, damage: str) -> RunRecord:
    history: list[dict] = []
    stats: list[dict] = []
    artifacts: list[ArtifactRecord] = []
    files: list[str] = []
    run_info: dict = {}
    for line in records.splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run_info = record["run"]  # what wandb.init was given: group, job_type, ...
        elif kind == "history":
            history.append(record["history"]["item"])
        elif kind == "stats":
            stats.append({"timestamp": record["stats"]["timestamp"], **record["stats"]["item"]})
        elif kind == "files":
            files.extend(f["path"] for f in record["files"]["files"])
        elif kind == "artifact":
            artifact = record["artifact"]
            artifacts.append(
                ArtifactRecord(
                    name=artifact["name"],
                    type=artifact["type"],
                    aliases=sorted(artifact.get("aliases", [])),  # W&B records them in no fixed order
                    digest=artifact["digest"],
                    files={
                        e["path"]: Path(e["local_path"]) for e in artifact["manifest"].get("contents", [])
                    },
                    metadata=json.loads(artifact.get("metadata") or "{}"),
                )
            )
    system_metrics = pd.DataFrame(stats)
    if not system_metrics.empty:
        system_metrics["timestamp"] = pd.to_datetime(system_metrics["timestamp"], format="ISO8601")
    return RunRecord(
        path=run_dir,
        id=overview["run_id"],
        name=overview.get("name", ""),
        project=overview.get("project", ""),
        state=overview.get("state", ""),
        tags=list(overview.get("tags", [])),
        config={k: v for k, v in overview.get("config", {}).items() if k != "_wandb"},
        summary={k: v for k, v in overview.get("summary", {}).items() if not k.startswith("_")},
        history=pd.DataFrame(history),
        system_metrics=system_metrics,
        artifacts=artifacts,
        files=sorted(set(files)),
        group=run_info.get("run_group", ""),
        job_type=run_info.get("job_type", ""),
        start_time=overview.get("start_time") or "",
        damage=damage,
    )
