"""The series where readers meet it: JupyterLab in headless Chromium, on loopback, on copies of the notebooks.

A training notebook is run top to bottom from the browser; every stored notebook is opened and its saved
outputs are looked at; and two broken setups (no widgets extension in the lab, no ipywidgets in the
kernel) are shown to be caught by the same checks. Needs Debian's `chromium`: `.ci/run` installs it;
elsewhere these tests skip without it, in CI (`CI` set) they fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scripts.jupyterlab_browser import (
    NOTEBOOKS_DIR,
    TRAINING_NOTEBOOK,
    CellView,
    Lab,
    chromium,
    close_all,
    execution_problems,
    find_chromium,
    jupyterlab,
    new_page,
    open_in_loaded_lab,
    open_notebook,
    read_cells,
    run_notebook,
    saved_outputs,
    screenshot,
    scroll_through,
    widget_problems,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_TIMEOUT = 900
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_NAMES = sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb"))

# A tiny Lightning model and its data: enough to see how a setup renders Lightning's bar, without the
# cost of a real training run.
TINY_MODEL = (
    "class Tiny(pl.LightningModule):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.layer = torch.nn.Linear(4, 1)\n"
    "\n"
    "    def training_step(self, batch, batch_idx):\n"
    "        x, y = batch\n"
    "        loss = torch.nn.functional.mse_loss(self.layer(x), y)\n"
    '        self.log("loss", loss, prog_bar=True)\n'
    "        return loss\n"
    "\n"
    "    def validation_step(self, batch, batch_idx):\n"
    "        x, y = batch\n"
    '        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), prog_bar=True)\n'
    "\n"
    "    def configure_optimizers(self):\n"
    "        return torch.optim.SGD(self.parameters(), lr=0.1)\n"
    "\n"
    "\n"
    "data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)\n"
)
TINY_IMPORTS = (
    "import torch\nimport pytorch_lightning as pl\nfrom torch.utils.data import DataLoader, TensorDataset\n"
)

# A two-cell notebook that trains the tiny model for a few steps with Lightning's own progress bar.
TINY_TRAINING = [
    TINY_IMPORTS + "from pytorch_lightning.callbacks import TQDMProgressBar",
    TINY_MODEL + "trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,\n"
    "                     enable_model_summary=False, callbacks=[TQDMProgressBar(refresh_rate=2)])\n"
    "trainer.fit(Tiny(), data)",
]

# The same with helpers.progress.NotebookProgressBar, and a validation loop (whose bar a fit hides).
TINY_TRAINING_NOTEBOOK_BAR = [
    TINY_IMPORTS + "from helpers.progress import NotebookProgressBar",
    TINY_MODEL + "trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,\n"
    "                     enable_model_summary=False, callbacks=[NotebookProgressBar(refresh_rate=3)])\n"
    "trainer.fit(Tiny(), data, data)",
]


def require_browser() -> None:
    """Skip (or, in CI, fail) when Chromium or Playwright is missing."""
    missing = []
    if find_chromium() is None:
        missing.append("Debian's chromium (apt-get install chromium; .ci/run does it as root)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright's Python package (pip install -r requirements.txt)")
    if missing:
        message = "the browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """A working JupyterLab on trusted copies of the notebooks."""
    require_browser()
    with jupyterlab(tmp_path_factory.mktemp("lab"), trust=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, started once for the module's tests."""
    require_browser()
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser) -> Iterator[Page]:
    """A fresh page (a page per test: no tab or unsaved notebook carries over)."""
    page = new_page(browser)
    yield page
    page.close()


@pytest.fixture(scope="module")
def loaded_lab(lab, browser) -> Iterator[Page]:
    """A page with the working lab loaded once; each test that uses it opens its notebook and closes it."""
    page = new_page(browser)
    page.goto(lab.url("lab?reset"))
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("() => window.jupyterapp.restored")  # its layout restored: nothing replaces what opens next
    yield page
    page.close()


def test_training_notebook_runs_in_the_browser_with_live_progress_bars(lab, page, tmp_path):
    committed = NOTEBOOKS_DIR / Path(TRAINING_NOTEBOOK).name
    before = digest(committed)

    cells = run_notebook(page, lab, TRAINING_NOTEBOOK, timeout=RUN_TIMEOUT)

    assert [c for c in cells if c.source.strip()], "the page shows no code cell"
    assert not execution_problems(cells), execution_problems(cells)
    assert not widget_problems(cells), widget_problems(cells)
    # Every fit that keeps Lightning's progress bar shows it live (a cell may turn it off on purpose).
    fit = [c for c in cells if ".fit(" in c.source and "enable_progress_bar=False" not in c.source]
    assert fit and all(c.live_progress_bars for c in fit), "trainer.fit shows no live progress bar"
    plots = [c for c in cells if c.images]
    assert plots and not any(c.broken_images for c in plots), "the curves are not drawn"

    # The checks nbval makes of this notebook, made here (the root conftest.py then leaves nbval's run out).
    stored = [cell for cell in json.loads(committed.read_text())["cells"] if cell["cell_type"] == "code"]
    checked = [i for i, cell in enumerate(stored) if "nbval-check-output" in cell["metadata"].get("tags", [])]
    now = saved_outputs(page)
    assert checked and len(now) == len(stored)
    for i in checked:
        assert checked_outputs(now[i]) == checked_outputs(stored[i]["outputs"]), "".join(stored[i]["source"])

    picture = tmp_path / "jupyterlab.png"
    screenshot(page, picture, cells)
    header = picture.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1280, 800)

    lab.shutdown_kernels()
    assert digest(committed) == before, "the browser run changed the committed notebook"


def test_nbval_leaves_out_the_training_notebook_only_where_the_browser_test_runs_it():
    require_browser()
    notebook = NOTEBOOKS_DIR / Path(TRAINING_NOTEBOOK).name
    browser_run = "tests/test_browser.py::test_training_notebook_runs_in_the_browser_with_live_progress_bars"
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", str(notebook), browser_run]
    # Both collections at once: each spends most of its time importing the suite's conftest files.
    collections = [
        subprocess.Popen(command + options, cwd=NOTEBOOKS_DIR.parent, stdout=subprocess.PIPE, text=True)
        for options in ([], ["-m", "not browser"])
    ]
    with_browser, without_browser = (
        sum(f"{notebook.name}::" in line for line in process.communicate(timeout=300)[0].splitlines())
        for process in collections
    )
    code_cells = sum(cell["cell_type"] == "code" for cell in json.loads(notebook.read_text())["cells"])
    assert (with_browser, without_browser) == (0, code_cells)


def checked_outputs(outputs: list[dict]) -> dict[str, str]:
    """What nbval compares of a checked cell: each stream's text, and each other output's plain text."""
    texts: dict[str, str] = {}
    for output in outputs:
        if output["output_type"] == "stream":
            key, text = output["name"], output["text"]
        elif "text/plain" in output.get("data", {}):
            key, text = "text/plain", output["data"]["text/plain"]
        else:
            continue
        texts[key] = texts.get(key, "") + ("".join(text) if isinstance(text, list) else text)
    return texts


def test_notebook_progress_bar_is_live_in_the_lab_and_saved_with_its_final_line(lab, page):
    """NotebookProgressBar: the widget stays live, and the text JupyterLab would save is the final line."""
    write_notebook(lab.root / "tiny_notebook_bar.ipynb", TINY_TRAINING_NOTEBOOK_BAR)
    cells = run_notebook(page, lab, "tiny_notebook_bar.ipynb", timeout=RUN_TIMEOUT)
    fit_outputs = saved_outputs(page)[-1]
    lab.shutdown_kernels()

    assert not execution_problems(cells), execution_problems(cells)
    assert not widget_problems(cells), widget_problems(cells)
    # The training bar stays live; the sanity-check and validation bars are hidden when done.
    assert cells[-1].live_progress_bars == 1, cells[-1]
    bars = [o["data"] for o in fit_outputs if WIDGET_VIEW in o.get("data", {})]
    texts = ["".join(bar["text/plain"]) for bar in bars]
    assert len(texts) == 1 and texts[0].startswith("Epoch 0: 100%|██████████| 8/8 ["), texts
    assert not any("0/?" in json.dumps(output, ensure_ascii=False) for output in fit_outputs), fit_outputs


def expected_outputs(notebook: Path) -> tuple[int, int]:
    """How many image and widget outputs the stored notebook holds."""
    outputs = [
        output
        for cell in json.loads(notebook.read_text())["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    ]
    data = [output.get("data", {}) for output in outputs]
    images = sum(any(mime.startswith("image/") for mime in d) for d in data)
    widgets = sum(WIDGET_VIEW in d for d in data)
    return images, widgets


def stored_output_problems(cells: list[CellView], notebook: Path) -> list[str]:
    """Saved outputs of `notebook` that did not render: missing or broken images, widgets not drawn."""
    images, widgets = expected_outputs(notebook)
    problems = [f"{c.label} shows {c.widget_failures}" for c in cells if c.widget_failures]
    problems += [f"{c.label} has {c.broken_images} broken image(s)" for c in cells if c.broken_images]
    if sum(c.images for c in cells) != images:
        problems.append(f"{sum(c.images for c in cells)} images shown, {images} stored")
    if sum(c.widgets for c in cells) != widgets:
        problems.append(f"{sum(c.widgets for c in cells)} widgets shown, {widgets} stored")
    return problems


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_stored_notebook_renders_its_saved_outputs(lab, loaded_lab, name):
    copy = lab.root / "notebooks" / name  # what the lab shows: the notebook as the lab started
    open_in_loaded_lab(loaded_lab, f"notebooks/{name}")
    try:
        scroll_through(loaded_lab)
        cells = read_cells(loaded_lab)
    finally:
        close_all(loaded_lab)
    assert len(cells) == sum(c["cell_type"] == "code" for c in json.loads(copy.read_text())["cells"])
    assert not stored_output_problems(cells, copy), stored_output_problems(cells, copy)


def write_notebook(path: Path, sources: list[str]) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.mark.parametrize(
    "setup", ["working", "widgets extension disabled", "ipywidgets missing from the kernel"]
)
def test_a_broken_widget_setup_is_caught(setup, tmp_path, request, page):
    """The checks above fail when Lightning's bar cannot render as a widget, though every cell runs.

    The same tiny training shows a live bar in the working lab, so the failures are the setup's.
    """
    require_browser()
    if setup == "working":
        context = contextlib.nullcontext(request.getfixturevalue("lab"))
    elif setup == "widgets extension disabled":
        context = jupyterlab(tmp_path / "lab", widgets_extension=False, trust=True)
    else:
        # Shadows the installed package: `import ipywidgets` fails in the kernel, as when it is not installed.
        hidden = tmp_path / "hide-ipywidgets"
        hidden.mkdir()
        (hidden / "ipywidgets.py").write_text('raise ImportError("ipywidgets is hidden from this kernel")\n')
        context = jupyterlab(tmp_path / "lab", python_path=hidden, trust=True)
    with context as lab:
        write_notebook(lab.root / "tiny_training.ipynb", TINY_TRAINING)
        cells = run_notebook(page, lab, "tiny_training.ipynb", timeout=RUN_TIMEOUT)
        assert not execution_problems(cells), execution_problems(cells)
        if setup == "working":
            assert not widget_problems(cells), widget_problems(cells)
        else:
            assert widget_problems(cells), "a live progress bar rendered although the setup is broken"
        if setup == "widgets extension disabled":
            # The stored notebooks' saved bars show as text too, and the stored-output check says so.
            open_notebook(page, lab, TRAINING_NOTEBOOK)
            stored = read_cells(page)
            problems = stored_output_problems(stored, lab.root / TRAINING_NOTEBOOK)
            assert any("widgets shown" in problem for problem in problems), problems
            assert not any(c.widgets for c in stored)
        lab.shutdown_kernels()
