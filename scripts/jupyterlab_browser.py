"""Drive the series the way a reader meets it: JupyterLab in headless Chromium.

`jupyterlab()` starts a lab server on loopback with a token, on a temporary copy of `notebooks/` (the
committed notebooks are never opened, so nothing can save over them) and with every Jupyter and W&B
folder inside that temporary folder. `chromium_page()` opens Debian's Chromium through Playwright
(no browser download). The functions below open a notebook, run all its cells and read back, cell by
cell, what the page shows. `tests/test_browser.py` asserts on that, `python -m scripts.make_images`
takes the README's screenshot with it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.wandb_setup import offline_process_environment

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
# The quickest Lightning notebook with a progress bar and a plot (about 50 s on a 2-core CPU): the one the
# browser test runs and the README's screenshot shows.
TRAINING_NOTEBOOK = "notebooks/03_lightning_translation.ipynb"
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"

# Headless, and nothing that phones home: the machines this runs on reach no network, and Chromium's
# background connections would only be refused.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

# User settings for the temporary lab: never save on its own, never ask about or fetch Jupyter news
# (a toast that would also cover the screenshot).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

# Text that means a widget did not render: the plain-text fallback of a widget (what a front end without
# the widgets extension shows), and the widget manager's own error.
WIDGET_FAILURE_TEXTS = ("HBox(children=", "Error displaying widget", "Loading widget...")


def find_chromium() -> str | None:
    """The path of Debian's Chromium (or a `chromium` on PATH), or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab server: where it listens, its token, and the folder it serves."""

    port: int
    token: str
    root: Path
    log: Path

    def url(self, path: str = "lab") -> str:
        """The address of `path` on this server, with the token."""
        separator = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{separator}token={self.token}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel the server runs (each opened notebook starts one)."""
        with urllib.request.urlopen(self.url("api/kernels"), timeout=10) as response:
            kernels = json.load(response)
        for kernel in kernels:
            request = urllib.request.Request(self.url(f"api/kernels/{kernel['id']}"), method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, to explain a failure."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


def _lab_environment(workdir: Path, python_path: Path | None) -> dict[str, str]:
    """The server's (and so its kernels') environment: Jupyter's and W&B's folders inside `workdir`."""
    env = {
        k: v for k, v in offline_process_environment(workdir / "runs").items() if not k.startswith("JUPYTER")
    }
    jupyter = workdir / ".jupyter"
    env.update(
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "lab-workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
    )
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
    return env


def _write_settings(workdir: Path, widgets_extension: bool) -> None:
    jupyter = workdir / ".jupyter"
    for name, values in LAB_SETTINGS.items():
        path = jupyter / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    if not widgets_extension:
        # What `jupyter labextension disable --level=user` writes: the lab then runs as one without the
        # widgets extension. (Without --level, JupyterLab 4 writes into the environment's own config.)
        page_config = jupyter / "config" / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {WIDGETS_EXTENSION: True}}))


def _wait_until_up(lab: Lab, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url("api/status"), timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{lab.log_tail()}")


@contextmanager
def jupyterlab(
    workdir: Path,
    *,
    widgets_extension: bool = True,
    python_path: Path | None = None,
    trust: bool = False,
    timeout: float = 120,
) -> Iterator[Lab]:
    """A JupyterLab server on a copy of `notebooks/` in `workdir`, stopped on exit.

    It listens on 127.0.0.1 only, on a free port, behind a random token, with its config, data,
    runtime, settings and workspace folders and the W&B runs of its kernels all inside `workdir`.
    `widgets_extension=False` disables the ipywidgets extension, as on a reader's lab that lacks it;
    `python_path` is put in front of the kernels' `PYTHONPATH`. With `trust`, the copies are signed
    as trusted (`jupyter trust`), as a reader's own runs are: only then does JupyterLab render their
    saved widgets; an untrusted notebook shows each widget's plain-text fallback instead.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(NOTEBOOKS_DIR, workdir / "notebooks", dirs_exist_ok=True)
    _write_settings(workdir, widgets_extension)
    env = _lab_environment(workdir, python_path)
    if trust:
        copies = sorted(str(path) for path in (workdir / "notebooks").glob("*.ipynb"))
        subprocess.run(
            [sys.executable, "-m", "jupyter", "trust", *copies], env=env, capture_output=True, check=True
        )
    lab = Lab(port=_free_port(), token=secrets.token_hex(24), root=workdir, log=workdir / "jupyterlab.log")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={lab.port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={lab.token}",
        f"--ServerApp.root_dir={workdir}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read cell models
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    with lab.log.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        _wait_until_up(lab, process, timeout)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium, driven by Playwright, closed on exit: open pages with `new_page`."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("Chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, viewport: tuple[int, int] = (1280, 800)) -> Page:
    """A fresh page (its own tab, nothing shared with other pages but the browser process)."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(120_000)  # JupyterLab's first load on a busy 2-core machine
    return page


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1280, 800)) -> Iterator[Page]:
    """A page in a Chromium of its own, closed on exit."""
    with chromium() as browser:
        yield new_page(browser, viewport)


# The notebook panel JupyterLab shows, and whether its kernel is up and idle.
_KERNEL_IDLE = """() => {
    const panel = window.jupyterapp?.shell.currentWidget;
    return Boolean(panel?.content?.widgets?.length && panel.context?.isReady
        && panel.sessionContext?.session?.kernel?.status === 'idle');
}"""


_WIDGETS_SETTLED = """() => ![...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]
    .some(output => output.textContent.includes('Loading widget...'))"""


def _wait_quietly(page: Page, predicate: str, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `predicate` (JavaScript) to hold; whether it did."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(predicate, timeout=timeout * 1000, polling=250)
    except PlaywrightTimeoutError:
        return False
    return True


def open_notebook(page: Page, lab: Lab, relative: str, timeout: float = 120) -> None:
    """Load the lab with `relative` (a path under the lab's folder) open; wait until its kernel is idle."""
    page.goto(lab.url(f"lab/tree/{relative}?reset"))  # reset: none of an earlier page's tabs
    _wait_until_shown(page, timeout)


def open_in_loaded_lab(page: Page, relative: str, timeout: float = 120) -> None:
    """Open `relative` in the lab the page has loaded already, as a reader opens a second notebook.

    Quicker than `open_notebook`, which loads the whole lab again; close it with `close_all`.
    """
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", relative)
    page.wait_for_function(
        "path => window.jupyterapp.shell.currentWidget?.context?.path === path",
        arg=relative,
        timeout=timeout * 1000,
    )
    _wait_until_shown(page, timeout)


def close_all(page: Page) -> None:
    """Close every tab of the lab (without saving: the lab never saves on its own here)."""
    page.evaluate(
        """async () => {
            for (const widget of [...window.jupyterapp.shell.widgets('main')]) {
                if (widget.context) await widget.context.sessionContext.shutdown();
                widget.dispose();
            }
        }"""
    )


def _wait_until_shown(page: Page, timeout: float) -> None:
    page.wait_for_function(_KERNEL_IDLE, timeout=timeout * 1000)
    # Saved widget views are restored from the notebook's metadata once the widget manager is ready;
    # one that never is keeps saying "Loading widget...", which `read_cells` reports.
    _wait_quietly(page, _WIDGETS_SETTLED, timeout=30)


def run_all_cells(page: Page, timeout: float) -> None:
    """Run every cell from the Run menu's command and wait until JupyterLab says the run ended."""
    page.evaluate(
        """() => {
            window.__runAll = null;
            window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                ok => { window.__runAll = {ok}; },
                err => { window.__runAll = {ok: false, error: String(err)}; });
        }"""
    )
    page.wait_for_function("() => window.__runAll !== null", timeout=timeout * 1000, polling=1000)
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)


@dataclass(frozen=True)
class CellView:
    """What the page shows for one code cell: its prompt, its errors, and how its outputs rendered."""

    index: int
    source: str
    execution_count: int | None
    errors: list[str]
    text: str
    widgets: int
    progress_bars: int
    live_progress_bars: int
    widget_failures: list[str]
    images: int
    broken_images: int

    @property
    def label(self) -> str:
        """Which cell this is, for messages: its index and first line."""
        first_line = self.source.splitlines()[0] if self.source else ""
        return f"cell {self.index} ({first_line!r})"


# ipywidgets 8 draws a progress bar as .widget-hprogress > .progress > .progress-bar; a view restored
# from saved state, with no kernel-side model behind it, also carries .jupyter-widgets-disconnected.
_READ_CELLS = """(failureTexts) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== 'code') return;
        const outputs = cell.model.outputs.toJSON();
        const area = cell.node.querySelector('.jp-OutputArea');
        const all = (selector) => area ? [...area.querySelectorAll(selector)] : [];
        const text = area ? area.textContent : '';
        const bars = all('.jp-OutputArea-output :is(.widget-hprogress, .widget-vprogress) .progress-bar');
        const images = all('.jp-OutputArea-output img');
        cells.push({
            index,
            source: cell.model.sharedModel.getSource(),
            execution_count: cell.model.executionCount,
            errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
            text,
            widgets: all('.jp-OutputArea-output').filter(o => o.querySelector('.jupyter-widgets')).length,
            progress_bars: bars.length,
            live_progress_bars: bars.filter(b => !b.closest('.jupyter-widgets-disconnected')).length,
            widget_failures: failureTexts.filter(t => text.includes(t)),
            images: images.length,
            broken_images: images.filter(img => !(img.complete && img.naturalWidth > 0)).length,
        });
    });
    return cells;
}"""


def read_cells(page: Page) -> list[CellView]:
    """Every code cell of the open notebook, as the page shows it now."""
    return [CellView(**cell) for cell in page.evaluate(_READ_CELLS, list(WIDGET_FAILURE_TEXTS))]


def saved_outputs(page: Page) -> list[list[dict]]:
    """Every code cell's outputs as JupyterLab holds them now: what saving the notebook would write."""
    return page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
            .filter(cell => cell.model.type === 'code')
            .map(cell => cell.model.outputs.toJSON())"""
    )


def scroll_through(page: Page) -> None:
    """Bring every cell into view once, so that lazily rendered outputs (images) are drawn."""
    page.evaluate(
        """async () => {
            const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
            for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) {
                cell.node.scrollIntoView();
                await frame();
                await frame();
            }
        }"""
    )
    _wait_quietly(
        page,
        "() => [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output img')]"
        ".every(img => img.complete)",
        timeout=30,
    )


def widget_problems(cells: list[CellView]) -> list[str]:
    """Why the progress bars did not render as live widgets; empty when at least one did and none failed."""
    problems = [f"{cell.label} shows {cell.widget_failures}" for cell in cells if cell.widget_failures]
    if not any(cell.live_progress_bars for cell in cells):
        problems.append("no output shows a live progress bar element")
    return problems


def execution_problems(cells: list[CellView]) -> list[str]:
    """Cells that never ran or ended in an error."""
    problems = []
    for cell in cells:
        if not cell.source.strip():
            continue
        if cell.execution_count is None:
            problems.append(f"{cell.label} did not run")
        problems.extend(f"{cell.label} raised {error}" for error in cell.errors)
    return problems


def run_notebook(page: Page, lab: Lab, relative: str, timeout: float) -> list[CellView]:
    """Open `relative`, run all its cells as a reader would, and read back what every cell shows."""
    open_notebook(page, lab, relative)
    run_all_cells(page, timeout)
    scroll_through(page)
    return read_cells(page)


def screenshot(page: Page, path: Path, cells: list[CellView]) -> None:
    """Save a screenshot of the open notebook after a run: its progress bar above, its last plot below.

    The last cell with an image is opened in JupyterLab's own "Create New View for Cell Output" panel,
    which the lab places below the notebook; the notebook is scrolled so that the last live progress
    bar sits at the bottom of its half.
    """
    bar_cell = next(cell.index for cell in cells if cell.live_progress_bars)
    plot_cell = next(cell.index for cell in reversed(cells) if cell.images)
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
    page.evaluate(
        """(i) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i;
            return window.jupyterapp.commands.execute('notebook:create-output-view'); }""",
        plot_cell,
    )
    # Scroll by hand until the bar stays put: cells above it are laid out lazily and grow as they are.
    for _ in range(10):
        moved = page.evaluate(
            """(i) => {
                const notebook = document.querySelector('.jp-NotebookPanel');
                const bars = notebook.querySelectorAll('.jp-Cell')[i]
                    .querySelectorAll('.widget-hprogress:not(.jupyter-widgets-disconnected)');
                const scroller = notebook.querySelector('.jp-WindowedPanel-outer');
                const shift = bars[bars.length - 1].getBoundingClientRect().bottom
                    - scroller.getBoundingClientRect().bottom + 40;
                scroller.scrollTop += shift;
                return Math.abs(shift) > 1;
            }""",
            bar_cell,
        )
        page.wait_for_timeout(300)
        if not moved:
            break
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-LinkedOutputView img')].some(img => img.naturalWidth > 0)",
        timeout=30_000,
    )
    page.screenshot(path=str(path))
