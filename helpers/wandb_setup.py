"""W&B without an account: choose the mode, name the project, and keep every W&B folder in `runs/`.

`setup_wandb` goes online when the reader configured an API key and offline otherwise, so no notebook stops
at a login prompt; `offline_environment` gives a process of its own (a test, a benchmark) W&B offline in a
folder of its own.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from helpers.paths import runs_dir

WANDB_PROJECT = "lightning-wandb-tutorials"  # the W&B project every run of the series logs to
WANDB_MODES = ("online", "offline", "disabled", "shared")
DEFAULT_BASE_URL = "https://api.wandb.ai"
# Where a process that has started W&B's service (at its first `wandb.init`) leaves the service's address:
# the processes it starts inherit the variable and log through that service instead of starting their own.
SERVICE_VARIABLE = "WANDB_SERVICE"


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


def own_wandb_service() -> None:
    """Forget a W&B service inherited from the parent process: this process's runs get one of their own.

    A training that may be killed needs its own: the parent's service would keep a killed training's run
    open, and the next start could not resume it ("run ID ... is in use"). Call it before `wandb.init`.
    """
    os.environ.pop(SERVICE_VARIABLE, None)


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


def offline_process_environment(folder: str | os.PathLike) -> dict[str, str]:
    """The whole environment for a process of its own with W&B offline in `folder`: this process's variables
    without any `WANDB_*` one (an API key, the mode, a parent's service), plus `offline_environment(folder)`.
    """
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("WANDB_")}
    return inherited | offline_environment(folder)


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
