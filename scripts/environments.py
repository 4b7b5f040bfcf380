"""The environments a reader installs the series into, built as virtual environments and checked.

Two of them, each a Python virtual environment built from the package registries:

- `colab`: Python 3.13 with Colab's versions of the packages the notebooks use (read from
  `../shared/colab/pip-freeze.txt`), then the series installed exactly as each notebook's Colab cell
  installs it, from a copy of this checkout instead of the repository's URL. `replaced` lists what the
  install changed of Colab's packages: it must change nothing in `COLAB_KEPT`.
- `lowest`: Python 3.10 (the oldest `requires-python` allows) with every dependency at the lower bound
  pyproject.toml gives it (a constraints file made from the bounds), for the unit tests and a few notebooks.

PyPI has no CPU-only torch (Colab's comes from download.pytorch.org/whl/cpu, which the test machines
cannot reach): both environments get PyPI's torch 2.11.0 wheel (531 MB) and the CUDA 13 libraries it
depends on: 2.1 GB of downloads, 5.5 GB on disk per environment. pip's cache (PIP_CACHE_DIR, a folder
CI can keep between runs) saves them where the registry sends caching headers; the registry proxy of the
test machines sends none.
tests/environments/test_environments.py builds them under the `environments` marker; by hand:

    python -m scripts.environments colab [--dir /tmp/colab-env]
    python -m scripts.environments lowest [--dir /tmp/lowest-env]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLAB_FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.txt"
SETUP_NOTEBOOK = ROOT / "notebooks" / "10_profiling_and_speed.ipynb"  # the Colab cell's model (see README)

# Colab's packages that the notebooks (or their kernel) use: installing the series must keep every one.
COLAB_KEPT = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "matplotlib",
    "seaborn",
    "scikit-learn",
    "tqdm",
    "psutil",
    "tensorboard",
    "protobuf",
    "ipywidgets",
    "widgetsnbextension",
    "ipython",
    "ipykernel",
    "jupyter-client",
    "traitlets",
    "notebook",
)
# Colab's packages that the series may upgrade, and why: none is imported before the first cell runs.
WANDB_NEEDS = "wandb 0.31 needs it newer than Colab's"
COLAB_UPGRADES = {
    "wandb": "helpers.tracking.read_run reads runs with `wandb leet inspect --json`, new in wandb 0.31",
    "opentelemetry-api": WANDB_NEEDS,
    "opentelemetry-sdk": WANDB_NEEDS,
    "opentelemetry-semantic-conventions": WANDB_NEEDS,
}
# What the tests run with, beside Colab's set: nbval (pytest is Colab's own 8.4.2).
COLAB_TEST_TOOLS = ("nbval",)
COLAB_PYTHON = "3.13"
LOWEST_PYTHON = "3.10"
# PyPI's torch brings CUDA libraries as dependencies; Colab's CPU torch has none, so the freeze's pins of
# them (for other packages) are left out of the constraints.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a widget output's MIME type
NOT_CONSTRAINED = re.compile(r"^(nvidia-|cuda-|triton$)")


def canonical(name: str) -> str:
    """A distribution's name as pip compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_versions(freeze: Path = COLAB_FREEZE) -> dict[str, str]:
    """Every package of Colab's pip freeze with its version (a local `+cpu` suffix dropped)."""
    versions = {}
    for line in freeze.read_text().splitlines():
        line = line.strip()
        if line.startswith("#") or not line:
            continue
        if " @ " in line:  # torch and friends name their download URL; the version is in the file name
            name, url = line.split(" @ ", 1)
            wheel = re.fullmatch(
                rf"{re.escape(name.replace('-', '_'))}-([0-9][0-9a-z.]*)\S*\.whl", url.split("/")[-1]
            )
            if wheel:
                versions[canonical(name)] = wheel.group(1)
            continue
        name, _, version = line.partition("==")
        versions[canonical(name)] = version
    return versions


def colab_constraints(versions: Mapping[str, str]) -> str:
    """A pip constraints file pinning every Colab package (but PyPI torch's CUDA libraries)."""
    return "".join(f"{n}=={v}\n" for n, v in sorted(versions.items()) if not NOT_CONSTRAINED.match(n))


def find_python(version: str) -> Path | None:
    """An interpreter of `version` ("3.13"): pyenv's build of it, else one on PATH that runs."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = sorted(Path(root).glob(f"versions/{version}*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    candidates += [Path(on_path)] if on_path else []
    for candidate in candidates:  # pyenv's shim is on PATH too, and refuses without PYENV_VERSION
        check = subprocess.run([candidate, "--version"], capture_output=True, text=True)
        if check.returncode == 0 and check.stdout.split()[-1].startswith(version + "."):
            return candidate
    return None


def missing_python_reason(version: str) -> str:
    """The one sentence a test skips with when no Python `version` is installed."""
    return (
        f"no Python {version} is installed (pyenv install {version}, or put python{version} on PATH), "
        f"so the environment that needs it cannot be built."
    )


@dataclass
class Venv:
    """A virtual environment and the seconds each step of building it took."""

    path: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @classmethod
    def create(cls, path: Path, python: Path) -> Venv:
        """A new, empty environment at `path` (anything there is removed first)."""
        shutil.rmtree(path, ignore_errors=True)
        venv = cls(path)
        with venv.timed("create"):
            subprocess.run([python, "-m", "venv", path], check=True)
        return venv

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[step] = round(time.perf_counter() - start, 1)

    def run(self, *args: str | Path, **kwargs) -> subprocess.CompletedProcess:
        """Run this environment's Python with `args`; a failure raises with its output."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run([self.python, *args], **kwargs)
        if result.returncode != 0:
            output = (result.stdout or "") + (result.stderr or "")
            raise RuntimeError(f"{self.path.name}: {' '.join(map(str, args))} failed:\n{output[-4000:]}")
        return result

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess:
        return self.run("-m", "pip", *args)

    def versions(self) -> dict[str, str]:
        """Every distribution installed here, by canonical name."""
        listed = json.loads(self.pip("list", "--format=json").stdout)
        return {canonical(d["name"]): d["version"] for d in listed}

    def would_install(self, *requirements: str, constraints: Path | None = None) -> dict[str, str]:
        """What `pip install requirements` would install here (without installing it), by name."""
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            extra = ["-c", str(constraints)] if constraints else []
            self.pip("install", "--dry-run", "-q", "--report", report, *extra, *requirements)
            installs = json.loads(report.read_text())["install"]
        return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Packages present before whose version differs after: {name: (before, after)}."""
    return {n: (v, after[n]) for n, v in before.items() if n in after and after[n] != v}


def replaced_in_colab(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Of Colab's packages, those an install replaced without being allowed to (`COLAB_UPGRADES`)."""
    return {n: c for n, c in changed(before, after).items() if n not in COLAB_UPGRADES}


def series_copy(checkout: Path, dest: Path) -> Path:
    """What `pip install git+<repository>` builds from: the package's files, copied to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(checkout / name, dest / name)
    shutil.copytree(checkout / "helpers", dest / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def colab_cell(notebook: Path = SETUP_NOTEBOOK) -> str:
    """The source of a notebook's Colab cell (its second cell)."""
    return "".join(json.loads(notebook.read_text())["cells"][1]["source"])


def colab_cell_calls(cell: str) -> list[list[str]]:
    """What the Colab cell runs in Colab: its subprocess commands, and `output.<name>` for Colab calls."""
    calls: list[list[str]] = []

    def record(command: list[str], **_: object) -> subprocess.CompletedProcess:
        calls.append([str(part) for part in command])
        return subprocess.CompletedProcess(command, 0)

    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(  # type: ignore[attr-defined]
        enable_custom_widget_manager=lambda: calls.append(["output.enable_custom_widget_manager"])
    )
    real_run, saved = subprocess.run, sys.modules.get("google.colab")
    subprocess.run, sys.modules["google.colab"] = record, colab  # type: ignore[assignment]
    try:
        exec(compile(cell, "colab-cell", "exec"), {})
    finally:
        subprocess.run = real_run
        if saved is None:
            sys.modules.pop("google.colab", None)
        else:
            sys.modules["google.colab"] = saved
    return calls


def repository_url(checkout: Path) -> str:
    text = (checkout / "pyproject.toml").read_text()
    return re.search(r'^Repository = "([^"]+)"', text, re.MULTILINE).group(1)


def colab_install(venv: Venv, checkout: Path, source: Path, cell: str | None = None) -> list[list[str]]:
    """Run the Colab cell's pip commands in `venv`, installing from `source` instead of the repository.

    Returns the commands run; `output.*` calls (Colab's widget manager) are left out and returned too.
    """
    url = f"git+{repository_url(checkout)}"
    calls = colab_cell_calls(cell if cell is not None else colab_cell())
    for command in calls:
        if command[0].startswith("output."):
            continue
        assert command[:3] == [sys.executable, "-m", "pip"], f"the Colab cell runs {command}, not pip"
        args = [part.replace(url, source.resolve().as_uri()) for part in command[3:]]
        assert args != command[3:] or "install" not in args, f"{command} does not install from {url}"
        venv.pip(*args)
    return calls


def add_colab_packages_the_install_touches(venv: Venv, series: Path, colab: Mapping[str, str]) -> None:
    """Install at Colab's version every package of Colab's that installing `series` would add or change.

    Colab has 600 packages; pip keeps an installed one that satisfies a requirement, and picks the newest
    release of one that is missing (which can then raise another). So the environment needs, beside the
    packages the notebooks use, each of Colab's packages that the series' install would touch.
    """
    for _ in range(5):
        installed = venv.versions()
        touched = {n: v for n, v in venv.would_install(str(series)).items() if n in colab}
        missing = sorted(f"{n}=={colab[n]}" for n in touched if installed.get(n) != colab[n])
        if not missing:
            return
        venv.pip("install", "-q", "-c", venv.path / "colab-constraints.txt", *missing)
    raise RuntimeError(f"Colab's packages for the install did not settle after 5 rounds: {missing}")


def build_colab(path: Path, checkout: Path = ROOT, install_series: bool = True) -> tuple[Venv, dict]:
    """Colab's package set in a Python 3.13 environment at `path`, then the series as Colab installs it.

    Returns the environment and a record: Colab's versions there before the install, after it, what it
    replaced, and the Colab cell's calls.
    """
    python = find_python(COLAB_PYTHON)
    if python is None:
        raise RuntimeError(missing_python_reason(COLAB_PYTHON))
    colab = colab_versions()
    venv = Venv.create(path, python)
    constraints = path / "colab-constraints.txt"
    constraints.write_text(colab_constraints(colab))
    with venv.timed("colab packages"):
        venv.pip("install", "-q", f"pip=={colab['pip']}")
        pins = [f"{name}=={colab[name]}" for name in (*COLAB_KEPT, *COLAB_UPGRADES)]
        venv.pip("install", "-q", "-c", constraints, *pins, *COLAB_TEST_TOOLS)
    with tempfile.TemporaryDirectory() as tmp, venv.timed("colab packages the install touches"):
        add_colab_packages_the_install_touches(venv, series_copy(checkout, Path(tmp) / "series"), colab)
    before = venv.versions()
    record = {"before": {n: before[n] for n in (*COLAB_KEPT, *COLAB_UPGRADES) if n in before}}
    if install_series:
        with tempfile.TemporaryDirectory() as tmp, venv.timed("series install"):
            record["calls"] = colab_install(venv, checkout, series_copy(checkout, Path(tmp) / "series"))
        after = venv.versions()
        record["after"] = {n: after[n] for n in record["before"]}
        record["changed"] = changed(before, after)
        record["replaced"] = replaced_in_colab(record["before"], after)
        record["added"] = sorted(set(after) - set(before))
    return venv, record


def lowest_pins(pyproject: Path) -> list[str]:
    """Each dependency of pyproject.toml pinned to its lower bound: `name[extras]==bound`."""
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", pyproject.read_text(), re.MULTILINE | re.DOTALL)
    pins = []
    for line in dependencies.group(1).splitlines():
        requirement = re.match(r'\s*"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?>=([^",;]+)"', line)
        if requirement:
            name, _, bound = requirement.groups()
            pins.append(f"{name}=={bound}")
        elif line.strip().startswith('"'):
            raise ValueError(f"pyproject.toml: {line.strip()} has no `>=` lower bound to test.")
    return pins


def test_tools(requirements: Path, dependencies: Iterable[str]) -> list[str]:
    """The tools the tests use (requirements.txt's lines but the series' own dependencies), unpinned.

    Unpinned because requirements.txt pins them for Python 3.11, and some of those releases have no wheel
    for an older Python; the tools' versions are not what the environment tests.
    """
    names = {canonical(re.split(r"[\[=<>]", d)[0]) for d in dependencies}
    tools = []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-") and canonical(re.split(r"[\[=<>]", line)[0]) not in names:
            tools.append(re.split(r"[=<>~!]", line)[0])
    return tools


def build_lowest(path: Path, checkout: Path = ROOT) -> tuple[Venv, list[str]]:
    """A Python 3.10 environment with every dependency at its lower bound, the series and the test tools."""
    python = find_python(LOWEST_PYTHON)
    if python is None:
        raise RuntimeError(missing_python_reason(LOWEST_PYTHON))
    pins = lowest_pins(checkout / "pyproject.toml")
    venv = Venv.create(path, python)
    constraints = path / "lowest-constraints.txt"
    constraints.write_text("".join(pin + "\n" for pin in pins))
    tools = test_tools(checkout / "requirements.txt", pins)
    with tempfile.TemporaryDirectory() as tmp, venv.timed("install"):
        venv.pip("install", "-q", "-c", constraints, series_copy(checkout, Path(tmp) / "series"), *tools)
    return venv, pins


def notebook_environment(runs: Path) -> dict[str, str]:
    """The variables a notebook runs with in a built environment: this checkout's MNIST, runs apart."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(TUTORIAL_DATA_DIR=str(ROOT / "data"), TUTORIAL_RUNS_DIR=str(runs), WANDB_MODE="offline")
    env.pop("WANDB_API_KEY", None)
    return env


def run_notebooks(venv: Venv, notebooks: Iterable[Path], runs: Path, *options: str) -> tuple[int, str]:
    """nbval over `notebooks` with `venv`'s Python and kernel; returns pytest's exit code and output."""
    command = [venv.python, "-m", "pytest", "-p", "no:cacheprovider", *options, *map(str, notebooks)]
    result = subprocess.run(command, cwd=ROOT, env=notebook_environment(runs), capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("environment", choices=["colab", "lowest"])
    parser.add_argument("--dir", type=Path, help="where to build it (default: a folder under /tmp)")
    args = parser.parse_args(argv)
    path = args.dir or Path(tempfile.gettempdir()) / f"lightning-wandb-{args.environment}-env"
    start = time.perf_counter()
    if args.environment == "colab":
        venv, record = build_colab(path)
        for name, (old, new) in record["changed"].items():
            kind = "allowed" if name in COLAB_UPGRADES else "REPLACED"
            print(f"{kind}: {name} {old} -> {new}")
        print(f"added: {len(record['added'])} packages")
    else:
        venv, pins = build_lowest(path)
        print("lower bounds installed:", " ".join(pins))
    print(f"built {venv.path} in {time.perf_counter() - start:.0f} s: {venv.timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
