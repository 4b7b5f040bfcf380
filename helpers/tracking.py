"""W&B without an account: choose the mode, keep run files in `runs/`, and read offline runs back.

An offline run keeps everything it logged in one `.wandb` file. `read_run` reads it with W&B's
own reader, `wandb leet inspect --json` (wandb >= 0.31), so notebooks can show what was logged
and tests can assert on it without a server.
"""

from __future__ import annotations

import json
import netrc
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from helpers.paths import runs_dir

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
    """What one W&B run logged, read back from its local `.wandb` file."""

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

    @property
    def files_dir(self) -> Path:
        """The run's `files/` folder, where logged media (images, tables) are written."""
        return self.path / "files"


def _inspect(run_dir: Path, *options: str) -> str:
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
    for line in _inspect(run_dir).splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if kind == "history":
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
