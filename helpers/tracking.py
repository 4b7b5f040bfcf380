"""W&B without an account: choose the mode, keep run files in `runs/`, and read offline runs back.

An offline run keeps everything it logged in one `.wandb` file. `read_run` checks every record's
checksum (`helpers.runfile`) and reads it with W&B's own reader, `wandb leet inspect --json` (wandb
>= 0.31), so notebooks can show what was logged and tests can assert on it without a server.
`find_runs` lists run folders (with `run_id`, the parts of one resumed run) and `collect_runs` puts
every run on disk in one table.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import netrc
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from helpers.paths import display_path, runs_dir
from helpers.runfile import CUT_OFF, DamagedRunFileError, RunFileCheck, check_run_file

WANDB_PROJECT = "lightning-wandb-tutorials"  # the W&B project every run of the series logs to
WANDB_MODES = ("online", "offline", "disabled", "shared")
DEFAULT_BASE_URL = "https://api.wandb.ai"


def _netrc_has_key(base_url: str) -> bool:
    """Whether `wandb login` stored a key for this server in the netrc file wandb reads."""
    path = os.environ.get("NETRC") or Path.home() / ".netrc"
    try:
        return netrc.netrc(path).authenticators(urlsplit(base_url).netloc) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _colab_secret_key() -> str | None:
    """The `WANDB_API_KEY` Colab secret, if this is Colab and the notebook may read it."""
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata

        return userdata.get("WANDB_API_KEY")
    except Exception:  # secret missing or access not granted: both mean "no key"
        return None


def use_repo_folders() -> Path:
    """Point W&B's run, staging, cache and artifact folders into `runs/`, unless already set.

    Without this, artifact staging copies and caches land in the home folder. Call it before the
    first `wandb.init` of the process: W&B reads these variables once.
    """
    base = runs_dir()
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_DIR", str(base))
    os.environ.setdefault("WANDB_DATA_DIR", str(base / "wandb-data"))
    os.environ.setdefault("WANDB_CACHE_DIR", str(base / "wandb-cache"))
    os.environ.setdefault("WANDB_ARTIFACT_DIR", str(base / "artifacts"))
    return base


def offline_environment(folder: str | os.PathLike) -> dict[str, str]:
    """Environment variables for W&B offline and silent, with all its folders (runs, staging copies,
    cache, settings, artifacts) and the series' `runs_dir()` inside `folder`.

    For a process whose runs must stay out of `runs/`: tests, benchmarks, the README's pictures.
    W&B reads these once per process, so set them before the process's first `wandb.init`.
    """
    folder = Path(folder)
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(folder),
        "WANDB_DATA_DIR": str(folder / "wandb-data"),
        "WANDB_CACHE_DIR": str(folder / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(folder / "wandb-config"),
        "WANDB_ARTIFACT_DIR": str(folder / "artifacts"),
        "TUTORIAL_RUNS_DIR": str(folder),
    }


def setup_wandb(silent: bool = True) -> str:
    """Decide W&B's mode, export it as `WANDB_MODE` and say in one line which mode and why.

    The reader's own `WANDB_MODE` wins; otherwise runs go online when an API key is configured
    (`WANDB_API_KEY`, `wandb login`, or a Colab secret) and offline when not, so no notebook
    ever stops at a login prompt. `wandb.init` and `WandbLogger` both follow `WANDB_MODE`.
    With `silent`, W&B's own banner (which names this machine's folders) is switched off through
    `WANDB_SILENT`, unless the reader set that variable; notebooks print the run's folder or URL.
    """
    use_repo_folders()
    if silent:
        os.environ.setdefault("WANDB_SILENT", "true")
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode:
        if mode not in WANDB_MODES + ("dryrun", "run"):
            raise ValueError(f"WANDB_MODE must be one of {', '.join(WANDB_MODES)}, got {mode!r}.")
        reason = "WANDB_MODE is set"
    elif os.environ.get("WANDB_API_KEY"):
        mode, reason = "online", "WANDB_API_KEY is set"
    elif _netrc_has_key(os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)):
        mode, reason = "online", "`wandb login` stored an API key"
    elif key := _colab_secret_key():
        os.environ["WANDB_API_KEY"] = key
        mode, reason = "online", "the Colab secret WANDB_API_KEY is set"
    else:
        mode, reason = "offline", "no API key found; runs stay on disk and `wandb sync` can upload them later"
    os.environ["WANDB_MODE"] = mode
    import wandb  # here, not at the top: reading runs back needs no wandb import

    # W&B applies WANDB_SILENT to its terminal output when its first run is set up, and Lightning's
    # WandbLogger triggers a warning before that ("the anonymous setting has no effect"): apply it now.
    # Only the terminal output: `wandb.setup()` would also fix the process's settings and start a W&B
    # service that scripts launched from here (torchrun, Optuna workers) would share.
    silent = os.environ.get("WANDB_SILENT", "").strip().lower() in ("true", "1")
    wandb.termsetup(wandb.Settings(silent=silent), None)
    print(f"W&B mode: {mode} ({reason}).")
    return mode


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


def _inspect(run_file: Path, *options: str) -> str:
    """The JSON that W&B's reader prints for one `.wandb` file, with a time limit.

    `wandb leet inspect` starts Python and imports wandb (about a second) only to run `wandb-core leet
    inspect`; running that directly takes milliseconds, which matters for tables of many runs. Same
    reader, same output; if the direct call fails, the public command decides.
    """
    check_wandb_version()
    commands = [[sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(run_file)]]
    if (core := _wandb_core()) is not None:
        direct = [core, "leet", "inspect", "--no-observability", "--json", *options]
        commands.insert(0, [*direct, "--run-file", str(run_file), str(run_file.parent.parent)])
    for command in commands:
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


# `wandb.finish()` can return a moment before W&B's service has written a run's last records (seen with
# wandb 0.31, more often on a busy machine): a file that ends cut off while it is still being written is
# read again until it stops changing for SETTLE_S seconds, for at most SETTLE_MAX_S.
SETTLE_S, SETTLE_MAX_S = 0.5, 30.0


def _settled_check(run_file: Path) -> RunFileCheck:
    """`check_run_file`, after waiting for a file W&B was writing a moment ago to be complete."""
    check = check_run_file(run_file)
    start = last_change = time.monotonic()
    last_stat = run_file.stat()
    if time.time() - last_stat.st_mtime > SETTLE_MAX_S:
        return check  # written long ago: cut off for good
    while check.problem == CUT_OFF and time.monotonic() - last_change < SETTLE_S:
        if time.monotonic() - start > SETTLE_MAX_S:
            break
        time.sleep(0.05)
        stat = run_file.stat()
        if (stat.st_size, stat.st_mtime_ns) != (last_stat.st_size, last_stat.st_mtime_ns):
            last_change, last_stat = time.monotonic(), stat
        check = check_run_file(run_file)
    return check


def _check_readable(run_file: Path, partial: bool) -> RunFileCheck:
    """Check the file's records; raise if it is damaged and the caller did not ask for the intact part."""
    check = check_run_file(run_file) if partial else _settled_check(run_file)
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
    history, stats, artifacts, files = [], [], [], []
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


def artifact_versions(run: RunRecord, type: str = "model") -> pd.DataFrame:
    """The artifacts of `type` the run logged, in order, numbered as the W&B server numbers them.

    The server gives a new version (v0, v1, ...) only to new contents: a record whose digest was
    seen before is that version again and only moves its aliases. Columns: `version`, `aliases`,
    `digest`, then the artifact's scalar metadata (for Lightning's checkpoints `score` and
    `original_filename`).
    """
    versions: dict[tuple[str, str], str] = {}
    rows = []
    for artifact in run.artifacts:
        if artifact.type != type:
            continue
        same_name = sum(name == artifact.name for name, _ in versions)
        version = versions.setdefault((artifact.name, artifact.digest), f"v{same_name}")
        scalars = {k: v for k, v in artifact.metadata.items() if isinstance(v, (str, int, float, bool))}
        rows.append(
            {
                "name": artifact.name,
                "version": version,
                "aliases": artifact.aliases,
                "digest": artifact.digest,
                **scalars,
            }
        )
    return pd.DataFrame(rows)


RUN_COLUMNS = (
    "id",
    "name",
    "project",
    "group",
    "job_type",
    "state",
    "tags",
    "start_time",
    "parts",
    "partial",
    "path",
)


def _flatten(values: dict, prefix: str) -> dict:
    """Nested dicts as dotted keys (`summary.val/loss.min`); logged media and tables (dicts with a
    `_type`: files, not values to compare) are left out."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            if "_type" not in value:
                flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _merge_summaries(summaries: list[dict]) -> dict:
    """The summaries of a run's parts, oldest first, as one: a later value replaces an earlier one,
    except a `define_metric` minimum or maximum, which stays the minimum or maximum of all parts."""
    merged: dict = {}
    for summary in summaries:
        for key, value in summary.items():
            earlier = merged.get(key)
            if isinstance(earlier, dict) and isinstance(value, dict) and "_type" not in value:
                combined = {**earlier, **value}
                for statistic, pick in (("min", min), ("max", max)):
                    if statistic in earlier and statistic in value:
                        combined[statistic] = pick(earlier[statistic], value[statistic])
                value = combined
            merged[key] = value
    return merged


def _run_row(parts: list[RunRecord]) -> dict:
    """One table row for one run, from the folders of its parts, oldest first."""
    last = parts[-1]
    config: dict = {}
    for part in parts:
        config.update(part.config)
    return {
        "id": last.id,
        "name": last.name,
        "project": last.project,
        "group": last.group,
        "job_type": last.job_type,
        "state": last.state,
        "tags": last.tags,
        "start_time": pd.Timestamp(parts[0].start_time) if parts[0].start_time else pd.NaT,
        "parts": len(parts),
        "partial": any(part.partial for part in parts),
        "path": last.path,
        **_flatten(config, "config."),
        **_flatten(_merge_summaries([part.summary for part in parts]), "summary."),
    }


def _read_or_error(folder: Path, partial: bool) -> RunRecord | Exception:
    try:
        return read_run(folder, partial=partial)
    except NoRunYetError as error:
        return error
    except DamagedRunFileError as error:
        if partial:  # nothing of the run could be read: skip it as a folder with no run
            return error
        raise DamagedRunFileError(
            f"{error.check.describe()}: pass partial=True to collect_runs to use the intact part of such "
            f"files (flagged in the `partial` column).",
            error.check,
        ) from None


def collect_runs(directory: str | Path | None = None, partial: bool = False) -> pd.DataFrame:
    """Every W&B run under `directory` (default: the W&B folder in `runs/`) as one row of a table.

    Comparing runs means looking at their hyperparameters and results side by side, which the W&B
    website does for synced runs; this does it from the run folders on disk, with no server. The
    columns are `RUN_COLUMNS` (identity, `state`, when it started, where it is), then the run's
    config as `config.<key>` and its summary as `summary.<key>`, nested values with dotted names
    (`summary.val/loss.min` after `define_metric(..., summary="min")`). Logged media and tables are
    left out of the summary: they are files, not values to compare. Rows are oldest first.

    A run resumed offline leaves one folder per part, all with the run's id (notebook 06). Its parts
    make one row, as `wandb sync --id` makes them one run on the server: `state`, names and `path`
    come from the newest part, `start_time` from the first, config and summary are merged with
    later parts winning (a `define_metric` min or max stays the min or max of all parts), and
    `parts` says how many folders there were. A run that failed has `state` "failed"; one whose
    process died before `finish` reads as "running", with what W&B had written to disk by then.

    A damaged `.wandb` file (cut off, or a record that fails its checksum) raises
    `DamagedRunFileError` naming it, as `read_run` does: a table that silently lacks part of a run
    would compare wrong numbers. With `partial`, the intact part of such a file is used and its row
    has `partial` True, and a file with nothing readable is skipped with a warning. A folder whose
    file holds no run yet (its process ended before W&B wrote one) is always skipped with a warning.
    A `directory` that does not exist raises `FileNotFoundError`; the default one, before any run,
    gives an empty table.
    """
    folders = find_runs(directory)
    # Reading is mostly waiting for W&B's reader, a process of its own: read a few folders at a time.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_read_or_error, folders, [partial] * len(folders)))
    parts: dict[tuple[str, str], list[RunRecord]] = {}
    for folder, record in zip(folders, results, strict=True):
        if isinstance(record, Exception):
            message = str(record).replace(str(folder), display_path(folder))
            warnings.warn(f"skipped {display_path(folder)}: {message}", stacklevel=2)
        else:
            parts.setdefault((record.project, record.id), []).append(record)
    rows = [_run_row(sorted(run, key=lambda part: part.start_time)) for run in parts.values()]
    table = pd.DataFrame(rows, columns=None if rows else list(RUN_COLUMNS))
    return table.sort_values("start_time", ignore_index=True, kind="stable")
