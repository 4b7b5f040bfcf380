"""W&B without an account: choose the mode, keep run files in `runs/`, and read offline runs back.

An offline run keeps everything it logged in one `.wandb` file. `read_run` reads it with W&B's
own reader, `wandb leet inspect --json` (wandb >= 0.31), so notebooks can show what was logged
and tests can assert on it without a server. `collect_runs` puts every run on disk in one table.
"""

from __future__ import annotations

import functools
import json
import netrc
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from helpers.paths import display_path, runs_dir

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
    run (or, for a resumed run's later folder, that part) started.
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

    @property
    def files_dir(self) -> Path:
        """The run's `files/` folder, where logged media (images, tables) are written."""
        return self.path / "files"


@functools.cache
def _wandb_core() -> str | None:
    """The path of `wandb-core`, the program that `wandb leet` runs, or None if it cannot be found."""
    try:
        from wandb.util import get_core_path

        return get_core_path()
    except Exception:  # no wandb-core for this platform, or another wandb: use the command below
        return None


def _inspect(run_dir: Path, *options: str) -> str:
    # `wandb leet inspect` starts Python and imports wandb (about a second) only to run `wandb-core
    # leet inspect`; running that directly takes milliseconds, which matters for tables of many runs.
    # Same reader, same output; if the direct call fails for any reason, the command below decides.
    core, wandb_files = _wandb_core(), sorted(run_dir.glob("run-*.wandb"))
    if core is not None and len(wandb_files) == 1:
        direct = [core, "leet", "inspect", "--no-observability", "--json", *options]
        direct += ["--run-file", str(wandb_files[0]), str(run_dir.parent)]
        result = subprocess.run(direct, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return result.stdout
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(run_dir)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`wandb leet inspect` could not read {run_dir}: {result.stderr.strip()}")
    return result.stdout


def _run_folder(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.suffix == ".wandb":
        return path.parent
    if path.is_dir() and any(path.glob("*.wandb")):
        return path.resolve()
    raise ValueError(f"{path} is not a W&B run folder (one holding a .wandb file) nor a .wandb file.")


def find_runs(directory: str | Path | None = None) -> list[Path]:
    """Run folders under `directory` (default: the W&B folder in `runs/`), oldest first."""
    directory = Path(directory) if directory is not None else runs_dir() / "wandb"
    folders = {p.parent for p in directory.rglob("*.wandb")}
    return sorted(folders, key=lambda folder: folder.stat().st_mtime)


def read_run(path: str | Path) -> RunRecord:
    """Read a finished or running W&B run from disk: a run folder or its `.wandb` file.

    Uses W&B's own reader (`wandb leet inspect --json`): the summary (with `define_metric`
    min/max applied) from its `--summary` view, history, system metrics and artifacts from its
    records. History columns of nested values are flattened with dots (`image.path`).
    """
    run_dir = _run_folder(path)
    overview = json.loads(_inspect(run_dir, "--summary"))
    history, stats, artifacts, files = [], [], [], []
    run_info: dict = {}
    for line in _inspect(run_dir).splitlines():
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
                    aliases=list(artifact.get("aliases", [])),
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


RUN_COLUMNS = ("id", "name", "project", "group", "job_type", "state", "tags", "start_time", "parts", "path")


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
        "path": last.path,
        **_flatten(config, "config."),
        **_flatten(_merge_summaries([part.summary for part in parts]), "summary."),
    }


def _read_or_error(folder: Path) -> RunRecord | Exception:
    try:
        record = read_run(folder)
    except (RuntimeError, ValueError, KeyError, json.JSONDecodeError) as error:
        return error
    if not record.id:  # only the file's header: W&B had written nothing else when the process ended
        return RuntimeError("its .wandb file holds no run yet (the process stopped before W&B wrote one)")
    return record


def collect_runs(directory: str | Path | None = None) -> pd.DataFrame:
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
    process died before `finish` reads as "running", with what W&B had written to disk by then. A
    folder that W&B's reader cannot read (a damaged file) or that holds no run yet (its process
    ended before W&B wrote anything) is skipped with a warning, so that one bad folder does not
    hide the others.
    """
    folders = find_runs(directory)
    # Reading is mostly waiting for W&B's reader, a process of its own: read a few folders at a time.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_read_or_error, folders))
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
