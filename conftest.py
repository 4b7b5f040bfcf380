"""The suite's collection rules: notebooks on another CPU, 03 run once, no W&B service shared between tests.

Notebooks: every cell nbval collects from a `.ipynb` file is marked `slow` (each notebook trains), so that
`pytest -m "not slow"` leaves them out. Under `--lf` a notebook that had a failing cell is rerun whole: a
cell run alone, without the cells above it in the same kernel, would only fail for want of them.

Another CPU: PyTorch chooses its CPU kernels by processor (AVX-512, AVX2 or generic code), and each rounds
the last digits of a float its own way: a checked cell that prints an exact loss or accuracy passes on the
machine that stored it and fails on a reader's. The kernel of `OTHER_CPU_NOTEBOOK` starts with PyTorch's
generic kernels, which no machine uses by default, so such a cell fails here too.

Run once: the browser test runs the training notebook (03) in JupyterLab and compares its checked cells'
outputs with the stored ones, as nbval does; where that test runs, nbval's run of 03 is left out.

Workers: `-n auto` starts one pytest-xdist worker more than the machine has cores, since each spends part of
its time waiting (for JupyterLab to draw, for W&B's service, for a process to start): on 2 cores, 3 workers
kept the CPUs 86% busy. Each worker gets its share of the cores for its torch threads, at least one, and so do
the notebook kernels and training processes it starts: with 2 workers of 2 threads each on 2 cores, the
threads waited for each other, and notebook 03 took 303 s instead of 28.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from helpers.notebook import LEAFSPEC_WARNING
from helpers.wandb_setup import SERVICE_VARIABLE

OTHER_CPU_NOTEBOOK = "01_pytorch_training_loop.ipynb"
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default"}
BROWSER_RUN_TEST = "test_training_notebook_runs_in_the_browser"
XDIST_WORKERS_VARIABLE = "PYTEST_XDIST_WORKER_COUNT"  # set by pytest-xdist in each of its workers
THREADS_VARIABLE = "OMP_NUM_THREADS"


def threads_per_worker(cores: int, workers: int) -> int:
    """Each worker's share of the cores, at least one thread."""
    return max(1, cores // workers)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: ignored where xdist is not installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """The number of workers `-n auto` starts: one more than the cores."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    """Ignore in tests the Lightning deprecation warning that notebooks hide too (stated once, in helpers);
    run the training notebook once; share the cores between xdist's workers."""
    config.addinivalue_line("filterwarnings", f"ignore:{LEAFSPEC_WARNING}:FutureWarning")
    workers = os.environ.get(XDIST_WORKERS_VARIABLE)
    if workers and THREADS_VARIABLE not in os.environ:  # a thread count set by hand is kept
        threads = threads_per_worker(os.cpu_count() or 1, int(workers))
        # Read by torch in this worker and by every process it starts (kernels, trainings).
        os.environ[THREADS_VARIABLE] = str(threads)
        if "torch" in sys.modules:  # imported already: tell it too
            sys.modules["torch"].set_num_threads(threads)
    config.pluginmanager.register(TrainingNotebookRunOnce(), "training-notebook-run-once")


class TrainingNotebookRunOnce:
    """Leave out nbval's run of the notebook that the browser test runs (and checks as nbval does)."""

    @pytest.hookimpl(trylast=True)  # after -m and -k have chosen the items
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not any(item.name.startswith(BROWSER_RUN_TEST) for item in items):
            return  # the browser test is not selected: nbval runs the notebook
        from scripts.jupyterlab_browser import TRAINING_NOTEBOOK, find_chromium

        if not (find_chromium() and importlib.util.find_spec("playwright")):
            return  # the browser test skips: nbval runs the notebook
        name = Path(TRAINING_NOTEBOOK).name
        left_out = [item for item in items if is_notebook_cell(item) and item.path.name == name]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item not in left_out]


def is_notebook_cell(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every notebook cell `slow`."""
    for item in items:
        if is_notebook_cell(item):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under `--lf` (or `--ff`), count every cell of a notebook that had a failed cell as failed.

    pytest keeps, of a file's items, only those that failed last time; this runs just before it does.
    """
    report = yield
    last_failed = collector.config.pluginmanager.get_plugin("lfplugin")  # None without the cache plugin
    if collector.path.suffix == ".ipynb" and isinstance(collector, pytest.File) and last_failed is not None:
        cells = [node.nodeid for node in report.result]
        if last_failed.active and any(cell in last_failed.lastfailed for cell in cells):
            last_failed.lastfailed.update(dict.fromkeys(cells, True))
    return report


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Forget the W&B service a test started here: `wandb.init` leaves its address in the environment.

    Else nbval's kernels, and the processes later tests start, would log through it, as no reader's do.
    """
    os.environ.pop(SERVICE_VARIABLE, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """Start the kernel of `OTHER_CPU_NOTEBOOK` (nbval does it in its first cell's setup) with `OTHER_CPU`."""
    if item.path.name != OTHER_CPU_NOTEBOOK:
        return (yield)
    saved = {name: os.environ.get(name) for name in OTHER_CPU}
    os.environ.update(OTHER_CPU)
    try:
        return (yield)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
