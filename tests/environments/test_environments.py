"""The series installed where readers install it: Colab's package set, and the lowest versions it allows.

Each test here builds a virtual environment from the package registries (scripts/environments.py):
minutes of installing, 2.1 GB of downloads and 5.5 GB of disk each (PyPI's torch and its CUDA
libraries), so they carry the `environments` marker besides `slow` and run only when asked:
`pytest -m environments`. A Python that is not installed (3.13 for Colab, 3.10 for the lower bounds)
skips its tests with one sentence.

Colab: Python 3.13 with Colab's versions, then the series installed by the Colab cell itself, in the
kernel that goes on to run the notebook (as a reader's does, with no restart in between), from a copy of
this checkout instead of the repository's URL. Nothing Colab ships may change but what
`COLAB_UPGRADES` names. Lowest: Python 3.10 with every dependency at pyproject.toml's lower bound runs
the fast tests and two notebooks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from packaging.version import Version

from scripts import environments as envs

pytestmark = [pytest.mark.slow, pytest.mark.environments]

ROOT = envs.ROOT
NOTEBOOKS = ROOT / "notebooks"
COLAB_NOTEBOOKS = ["01_pytorch_training_loop.ipynb", "03_lightning_translation.ipynb"]
COLAB_INSTALL_NOTEBOOK = "02_tracking_with_wandb.ipynb"  # W&B, read back with read_run: runs the install
LOWEST_NOTEBOOKS = ["01_pytorch_training_loop.ipynb", "03_lightning_translation.ipynb"]
STAND_IN_COLAB = """import sys, types  # the test's stand-in for Colab: the cell below takes its Colab branch
sys.modules["google.colab"] = types.ModuleType("google.colab")
sys.modules["google.colab"].output = types.SimpleNamespace(enable_custom_widget_manager=lambda: None)
"""
LEAVE_COLAB = '\ndel sys.modules["google.colab"]  # the stand-in leaves: later cells run as outside Colab\n'


def require_python(version: str) -> None:
    if envs.find_python(version) is None:
        pytest.skip(envs.missing_python_reason(version))


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> Iterator[envs.Venv]:
    """Colab's package set in Python 3.13, the series not yet installed."""
    require_python(envs.COLAB_PYTHON)
    venv, _ = envs.build_colab(tmp_path_factory.mktemp("colab") / "venv", install_series=False)
    yield venv
    print(f"\nColab environment, seconds per step: {venv.timings}")
    shutil.rmtree(venv.path, ignore_errors=True)  # 5.5 GB; pytest would keep three runs' worth


@pytest.fixture(scope="module")
def colab_before(colab) -> dict[str, str]:
    return colab.versions()


def colab_notebook(name: str, series: Path, dest: Path) -> Path:
    """A copy of a notebook whose Colab cell runs in its kernel, with a stand-in Colab and `series` as URL."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cell = "".join(nb["cells"][1]["source"])
    url = f"git+{envs.repository_url(ROOT)}"
    assert url in cell, f"{name}'s Colab cell does not install {url}"
    cell = cell.replace(url, series.resolve().as_uri())
    nb["cells"][1]["source"] = STAND_IN_COLAB + cell + LEAVE_COLAB
    dest.mkdir(parents=True, exist_ok=True)
    (dest / name).write_text(json.dumps(nb))
    return dest / name


@pytest.fixture(scope="module")
def colab_installed(colab, colab_before, tmp_path_factory) -> tuple[int, str, float]:
    """The W&B notebook run in the Colab environment, its first cell installing the series in its kernel."""
    tmp = tmp_path_factory.mktemp("colab-run")
    series = envs.series_copy(ROOT, tmp / "series")
    notebook = colab_notebook(COLAB_INSTALL_NOTEBOOK, series, tmp / "notebooks")
    options = ["-c", str(tmp / "none.ini"), "--rootdir", str(tmp), "--nbval-lax", "--nbval-current-env"]
    (tmp / "none.ini").write_text("[pytest]\n")
    with colab.timed("install and run " + COLAB_INSTALL_NOTEBOOK):
        code, output = envs.run_notebooks(colab, [notebook], tmp / "runs", *options)
    return code, output, colab.timings["install and run " + COLAB_INSTALL_NOTEBOOK]


def test_colab_cell_installs_and_the_notebook_runs_on_in_the_same_kernel(colab_installed):
    code, output, _ = colab_installed
    assert code == 0, output[-6000:]


def test_colab_install_replaces_none_of_colab_packages(colab, colab_before, colab_installed):
    after = colab.versions()
    kept = {n: colab_before[n] for n in envs.COLAB_KEPT}
    assert envs.replaced_in_colab(kept, after) == {}
    assert {"pytorch-lightning", "torchmetrics", "optuna", "jsonargparse"} <= set(after) - set(colab_before)
    assert set(envs.changed(colab_before, after)) <= set(envs.COLAB_UPGRADES)


def test_colab_cell_leaves_colab_widget_manager_alone():
    """Colab's own ipywidgets 7 draws Lightning's bars: the cell turns on no custom widget manager."""
    calls = envs.colab_cell_calls(envs.colab_cell())
    assert not [c for c in calls if c[0].startswith("output.")], calls


KERNEL_MODULES = """
import json
from jupyter_client.manager import start_new_kernel
manager, client = start_new_kernel()
out = []
code = "import importlib.metadata as m, json, sys\\n"
code += "print(json.dumps([m.packages_distributions(), list(sys.modules)]))"
client.execute_interactive(code, output_hook=lambda msg: out.append(msg["content"].get("text", "")))
client.stop_channels()
manager.shutdown_kernel(now=True)
providers, modules = json.loads("".join(out))
print(json.dumps(sorted({d for module in modules for d in providers.get(module.split(".")[0], [])})))
"""


def test_no_upgraded_package_is_imported_before_the_colab_cell(colab):
    """A package a fresh kernel has imported before the install runs would need a restart to be replaced."""
    imported = {envs.canonical(d) for d in json.loads(colab.run("-c", KERNEL_MODULES, timeout=180).stdout)}
    assert {"ipykernel", "ipython"} <= imported  # what a fresh kernel holds, so the check can see it
    assert imported.isdisjoint(envs.COLAB_UPGRADES), imported & set(envs.COLAB_UPGRADES)


def test_colab_notebooks_run_with_colab_packages(colab, colab_installed, tmp_path):
    notebooks = [NOTEBOOKS / name for name in COLAB_NOTEBOOKS]
    with colab.timed("nbval " + " ".join(COLAB_NOTEBOOKS)):
        code, output = envs.run_notebooks(colab, notebooks, tmp_path / "runs")
    assert code == 0, output[-6000:]


BAR_CELLS = [
    "import pytorch_lightning as pl\n"
    "from helpers.notebook import quiet_lightning\n"
    "from helpers.progress import NotebookProgressBar\n"
    "from progress_notebook import Tiny, data, trainer\n"
    "quiet_lightning()\n"
    "pl.seed_everything(0, verbose=False)\n"
    "model = Tiny()",
    "trainer(NotebookProgressBar(refresh_rate=3)).fit(model, data(40), data(24))",
    "results = trainer(NotebookProgressBar(refresh_rate=3)).test(model, data(16), verbose=False)",
]
FINISHED_BAR = re.compile(r"100%\|█+\| ([1-9]\d*)/\1 \[")  # as tests/test_progress.py reads a bar


def test_progress_bars_are_stored_finished_with_colab_ipywidgets(colab, colab_installed, tmp_path):
    """Lightning's bars through helpers.progress under Colab's ipywidgets 7, tqdm and ipykernel 6.17."""
    shutil.copy(ROOT / "tests" / "processes" / "progress_notebook.py", tmp_path)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in BAR_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "bars.ipynb")
    env = envs.notebook_environment(tmp_path / "runs") | {"PYTHONPATH": str(ROOT)}
    with colab.timed("progress bars"):
        colab.run("-m", "nbconvert", "--to", "notebook", "--execute", "bars.ipynb", cwd=tmp_path, env=env)
    stored = json.loads((tmp_path / "bars.nbconvert.ipynb").read_text())
    outputs = [o for c in stored["cells"] for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    bars = ["".join(o["data"]["text/plain"]) for o in outputs if envs.WIDGET_VIEW in o.get("data", {})]
    assert len(bars) == 2 and all(FINISHED_BAR.search(bar) for bar in bars), bars
    versions = colab.versions()
    assert (versions["ipywidgets"], versions["tqdm"]) == (colab_version("ipywidgets"), colab_version("tqdm"))


def colab_version(name: str) -> str:
    return envs.colab_versions()[name]


def test_the_old_colab_setup_is_caught(colab, colab_before, tmp_path):
    """The install that forced ipywidgets 8 onto Colab (`ipywidgets>=8.0`) is reported as replacing it."""
    series = envs.series_copy(ROOT, tmp_path / "series")
    pyproject = series / "pyproject.toml"
    text = re.sub(r'\n\s*"ipywidgets[^"]*",[^\n]*', "", pyproject.read_text())
    pyproject.write_text(text.replace("dependencies = [", 'dependencies = [\n    "ipywidgets>=8.0",', 1))
    would = colab.would_install(str(series))
    replaced = envs.replaced_in_colab(colab_before, {**colab_before, **would})
    assert {"ipywidgets", "widgetsnbextension"} <= set(replaced), replaced


@pytest.fixture(scope="module")
def lowest(tmp_path_factory) -> Iterator[envs.Venv]:
    require_python(envs.LOWEST_PYTHON)
    venv, _ = envs.build_lowest(tmp_path_factory.mktemp("lowest") / "venv")
    yield venv
    print(f"\nLowest environment, seconds per step: {venv.timings}")
    shutil.rmtree(venv.path, ignore_errors=True)


def test_lowest_environment_holds_the_lower_bounds(lowest):
    versions = lowest.versions()
    for pin in envs.lowest_pins(ROOT / "pyproject.toml"):
        name, version = pin.split("==")
        assert Version(versions[envs.canonical(re.sub(r"\[.*\]", "", name))]) == Version(version), pin
    python = lowest.run("-c", "import sys; print(sys.version_info[:2])").stdout.strip()
    assert python == str(tuple(map(int, envs.LOWEST_PYTHON.split("."))))


def test_fast_tests_pass_at_the_lower_bounds(lowest, tmp_path):
    command = [lowest.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests"]
    with lowest.timed("fast tests"):
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=envs.notebook_environment(tmp_path / "runs"),
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_notebooks_run_at_the_lower_bounds(lowest, tmp_path):
    notebooks = [NOTEBOOKS / name for name in LOWEST_NOTEBOOKS]
    with lowest.timed("nbval"):
        code, output = envs.run_notebooks(lowest, notebooks, tmp_path / "runs")
    assert code == 0, output[-6000:]
