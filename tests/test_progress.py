"""helpers.progress.NotebookProgressBar: stored notebooks show each finished bar's final line as text.

One tiny notebook (a one-layer Lightning model on random tensors, tests/processes/progress_notebook.py) is
executed with `jupyter nbconvert --to notebook --execute`, as the series is, and the stored file is read
back: what GitHub and nbviewer show of a widget output is its `text/plain`. Its last cell trains with
Lightning's own TQDMProgressBar, whose stored text is `0/?`, so that the same check is seen to fail on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A finished bar: 100%, then n/n with the same n > 0.
FINISHED_BAR = re.compile(r"100%\|█+\| ([1-9]\d*)/\1 \[")

# The notebook's first cell: the model, data and Trainer come from a module (its kernel gets the repository
# on its path); the cells stay strings, being the notebook under test.
SETUP = """\
import warnings

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from helpers.notebook import quiet_lightning
from helpers.progress import NotebookProgressBar
from tests.processes.progress_notebook import Interrupt, Tiny, data, trainer

quiet_lightning()  # as the series' setup cells: no device lines, tips or LeafSpec warning
# The interrupted fit passes no validation data, on purpose.
warnings.filterwarnings("ignore", "You defined a `validation_step` but have no", PossibleUserWarning)
pl.seed_everything(0, verbose=False)
model = Tiny()"""

# Cell sources by name; each bar redraws every 3 steps, so a final line is not just the last redraw.
CELLS = {
    "setup": SETUP,
    "fit": "trainer(NotebookProgressBar(refresh_rate=3)).fit(model, data(40), data(24))",
    "test": "results = trainer(NotebookProgressBar(refresh_rate=3)).test(model, data(16), verbose=False)",
    "validate and predict": (
        "evaluator = trainer(NotebookProgressBar(refresh_rate=3))\n"
        "results = evaluator.validate(model, data(16), verbose=False)\n"
        "predictions = evaluator.predict(model, data(16))"
    ),
    "interrupted fit": (
        "interrupted = trainer(NotebookProgressBar(refresh_rate=2), Interrupt())  # redrawn at 2, not 3\n"
        "try:\n"
        "    interrupted.fit(model, data(40))\n"
        "except RuntimeError as error:\n"
        "    print(error)"
    ),
    "resumed fit": (
        "interrupted.save_checkpoint('mid_epoch.ckpt')  # after step 3 of 5\n"
        "warnings.filterwarnings('ignore', \"You're resuming from a checkpoint that ended before\")\n"
        "trainer(NotebookProgressBar(refresh_rate=3)).fit(model, data(40), ckpt_path='mid_epoch.ckpt')"
    ),
    "lightning's bar": "trainer(TQDMProgressBar(refresh_rate=3)).fit(model, data(40), data(24))",
}
FINISHED_CELLS = ["fit", "test", "validate and predict", "resumed fit"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> nbformat.NotebookNode:
    """The tiny notebook as `jupyter nbconvert --to notebook --execute` stores it."""
    folder = tmp_path_factory.mktemp("progress")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in CELLS.values()])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "tiny.ipynb")
    command = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "tiny.ipynb"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [*command, "--output", "executed.ipynb"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return nbformat.read(folder / "executed.ipynb", as_version=4)


def outputs(stored: nbformat.NotebookNode, name: str) -> list[dict]:
    """The stored outputs of the cell called `name` in CELLS."""
    return stored.cells[list(CELLS).index(name)].outputs


def texts(cell_outputs: list[dict]) -> list[str]:
    """Every text a cell stored: streams, and the text/plain of its displays and results."""
    return [
        output["text"] if output["output_type"] == "stream" else output.get("data", {}).get("text/plain", "")
        for output in cell_outputs
        if output["output_type"] != "error"
    ]


def bars(cell_outputs: list[dict]) -> list[str]:
    """The stored text/plain of each widget output (a progress bar's text form)."""
    return [o["data"]["text/plain"] for o in cell_outputs if WIDGET_VIEW in o.get("data", {})]


def bar_problems(cell_outputs: list[dict]) -> list[str]:
    """Stored bars that do not show a finished bar, and any `0/?` text, in one cell's outputs."""
    problems = [f"a widget stores {text!r}" for text in bars(cell_outputs) if not FINISHED_BAR.search(text)]
    problems += [f"{text!r} is stored" for text in texts(cell_outputs) if "0/?" in text]
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("name", FINISHED_CELLS)
def test_every_stored_bar_shows_a_finished_bar_or_nothing(stored, name):
    cell_outputs = outputs(stored, name)
    assert bars(cell_outputs), f"{name}: no widget output stored"
    assert not bar_problems(cell_outputs), bar_problems(cell_outputs)
    # Outputs that are not widgets are hidden bars (stored as empty text) or the cell's own prints.
    others = [o for o in cell_outputs if WIDGET_VIEW not in o.get("data", {})]
    assert all(o["output_type"] == "stream" or o["data"] == {"text/plain": ""} for o in others), others


@pytest.mark.slow
def test_a_fit_keeps_the_training_bar_and_hides_sanity_and_validation_bars(stored):
    cell_outputs = outputs(stored, "fit")
    [train] = bars(cell_outputs)
    assert train.startswith("Epoch 0: 100%|██████████| 5/5 ["), train
    assert "loss=" in train and "val_loss=" in train, train
    hidden = [o for o in cell_outputs if o.get("data") == {"text/plain": ""}]
    assert len(hidden) == 2, cell_outputs  # sanity check and validation


@pytest.mark.slow
def test_test_validate_and_predict_bars_show_their_final_lines(stored):
    [test] = bars(outputs(stored, "test"))
    assert test.startswith("Testing DataLoader 0: 100%|██████████| 2/2 ["), test
    validate, predict = bars(outputs(stored, "validate and predict"))
    assert validate.startswith("Validation DataLoader 0: 100%|██████████| 2/2 ["), validate
    assert predict.startswith("Predicting DataLoader 0: 100%|██████████| 2/2 ["), predict


@pytest.mark.slow
def test_an_interrupted_fit_stores_where_the_bar_stopped(stored):
    cell_outputs = outputs(stored, "interrupted fit")
    [train] = bars(cell_outputs)
    assert train.startswith("Epoch 0:  60%|██████    | 3/5 ["), train
    assert "interrupted after step 3\n" in texts(cell_outputs)
    assert not any("0/?" in text for text in texts(cell_outputs))


@pytest.mark.slow
def test_lightnings_own_bar_stores_0_of_unknown_and_the_check_says_so(stored):
    cell_outputs = outputs(stored, "lightning's bar")
    assert len(bars(cell_outputs)) == 3  # sanity check, training, validation: all kept as widget outputs
    assert all("0/?" in text for text in bars(cell_outputs)), bars(cell_outputs)
    assert bar_problems(cell_outputs), "the check passed Lightning's 0/? bars"


@pytest.mark.slow
def test_widget_state_holds_only_the_bars_widgets_and_stays_small(stored):
    state = stored.metadata.widgets[WIDGET_STATE]["state"]
    size = len(json.dumps(state))
    kinds = {model["model_name"] for model in state.values()}
    assert kinds <= {
        "HBoxModel",
        "HTMLModel",
        "FloatProgressModel",
        "LayoutModel",
        "HTMLStyleModel",
        "DescriptionStyleModel",
        "ProgressStyleModel",
    }, kinds
    shown = sum(len(bars(cell.outputs)) for cell in stored.cells)
    hidden = sum(o.get("data") == {"text/plain": ""} for cell in stored.cells for o in cell.outputs)
    made = sum(model["model_name"] == "HBoxModel" for model in state.values())
    assert made == shown + hidden, (made, shown, hidden)  # one HBox per bar, nothing else kept
    print(f"widget state: {size} bytes, {len(state)} models for {made} bars")
    assert size < 10_000 * made


def test_outside_a_notebook_the_bars_are_lightnings(tmp_path):
    """In this process (no notebook kernel) every init_*_tqdm makes the bar TQDMProgressBar makes."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import TQDMProgressBar

    from helpers import progress

    assert not progress.IN_NOTEBOOK

    def settings(bar) -> dict:
        """What the bar was made with (a disabled bar keeps only some of it)."""
        names = ("desc", "pos", "leave", "disable", "ncols", "smoothing", "bar_format", "fp")
        made_with = {name: getattr(bar, name, None) for name in names}
        made_with["dynamic_ncols"] = bool(getattr(bar, "dynamic_ncols", None))  # a function when True
        return made_with

    for refresh_rate in (0, 20):
        for bar_class in (progress.NotebookProgressBar, TQDMProgressBar):
            assert bar_class(refresh_rate=refresh_rate).refresh_rate == refresh_rate
        ours, lightnings = progress.NotebookProgressBar(refresh_rate), TQDMProgressBar(refresh_rate)
        trainer = pl.Trainer(logger=False, default_root_dir=tmp_path, callbacks=[ours])
        for callback in (ours, lightnings):
            callback.setup(trainer, pl.LightningModule(), "fit")
        for stage in ("sanity", "train", "validation", "test", "predict"):
            made = [getattr(callback, f"init_{stage}_tqdm")() for callback in (ours, lightnings)]
            assert [type(bar) for bar in made] == [type(made[1])] * 2, stage
            assert settings(made[0]) == settings(made[1]), stage
            for bar in made:
                bar.close()
