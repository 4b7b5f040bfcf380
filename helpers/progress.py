"""Lightning's progress bar for notebooks whose saved outputs show the finished bar, not `0/?`.

A notebook stores a widget output twice: as the widget (what JupyterLab and Colab draw) and as a text
fallback (what GitHub and nbviewer show). tqdm's widget bar gets its text fallback once, when it is
first displayed, so every stored Lightning bar reads `Training: |          | 0/? [00:00<?, ?it/s]`.
`NotebookProgressBar` displays each bar under a display id and, when the bar closes, replaces that
output with the same widget plus the bar's final line as text, or with nothing for a bar that Lightning
hides when done (the sanity-check and validation bars of a fit). Outside a notebook kernel it is
Lightning's `TQDMProgressBar`.

    from helpers.progress import NotebookProgressBar
    trainer = pl.Trainer(callbacks=[NotebookProgressBar(refresh_rate=20)])
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from IPython.display import DisplayHandle, display
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from tqdm.notebook import tqdm_notebook

# Lightning's Tqdm is tqdm's widget bar when Lightning was imported in a notebook kernel with ipywidgets
# installed (tqdm.auto decides), and tqdm's text bar everywhere else.
IN_NOTEBOOK = issubclass(Tqdm, tqdm_notebook)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class StoredLineTqdm(Tqdm):
    """Lightning's widget bar, displayed under a display id so that its final line can replace its text.

    Only for a notebook kernel (`IN_NOTEBOOK`): it passes tqdm.notebook's `display=False` and displays
    the widget itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the bar without displaying it, then display it with a handle to update on close."""
        super().__init__(*args, display=False, **kwargs)
        self.handle: DisplayHandle | None = None
        if not self.disable:
            # A raw bundle, not display(self.container): ipywidgets 7 displays a widget through
            # _ipython_display_, which ignores display ids.
            self.handle = display(self.bundle(), raw=True, display_id=True)

    def bundle(self) -> dict[str, Any]:
        """The widget's output, with the bar's current line as its text form (what GitHub shows)."""
        view = {"version_major": 2, "version_minor": 0, "model_id": self.container.model_id}
        return {WIDGET_VIEW: view, "text/plain": str(self)}

    def close(self) -> None:
        """Close the bar as tqdm does, then store its final line, or nothing if tqdm hid the bar."""
        finished = self.total is None or self.n >= self.total
        super().close()
        if self.handle is None:
            return
        if finished and not self.leave:
            # tqdm closed the widget: keep no stale text of it either.
            self.handle.update({"text/plain": ""}, raw=True)
        else:
            self.handle.update(self.bundle(), raw=True)
        self.handle = None


class NotebookProgressBar(TQDMProgressBar):
    """`TQDMProgressBar` whose bars, in a notebook, are stored with their final line as text.

    In JupyterLab and Colab each bar is the usual live widget; in the saved notebook, the text that
    GitHub and nbviewer show is the line the bar ended on. Outside a notebook kernel it is exactly
    `TQDMProgressBar`. Bars left open by an exception are closed, so they show where the run stopped.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False) -> None:
        """Take TQDMProgressBar's arguments; remember the bars made so an exception can close them."""
        super().__init__(refresh_rate=refresh_rate, process_position=process_position, leave=leave)
        self._bars: list[StoredLineTqdm] = []
        self._training_bar: Tqdm | None = None
        self._train_batches_done = 0

    def __getstate__(self) -> dict:
        """Pickle without the bars, as TQDMProgressBar does (tqdm objects cannot be pickled)."""
        state = super().__getstate__()
        state["_bars"] = []
        state["_training_bar"] = None
        return state

    def _new_bar(self, desc: str, position: int, leave: bool, **kwargs: Any) -> Tqdm:
        """A bar with the settings TQDMProgressBar gives every bar, a StoredLineTqdm in a notebook."""
        bar_class = StoredLineTqdm if IN_NOTEBOOK else Tqdm
        bar = bar_class(
            desc=desc,
            position=position,
            disable=self.is_disabled,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stdout,
            bar_format=self.BAR_FORMAT,
            **kwargs,
        )
        if IN_NOTEBOOK:
            self._bars = [b for b in self._bars if b.handle is not None] + [bar]
        return bar

    def init_sanity_tqdm(self) -> Tqdm:
        """The sanity-check bar, as TQDMProgressBar makes it (hidden when done)."""
        return self._new_bar(self.sanity_check_description, 2 * self.process_position, leave=False)

    def init_train_tqdm(self) -> Tqdm:
        """The training bar, as TQDMProgressBar makes it (kept when done)."""
        self._training_bar = self._new_bar(
            self.train_description, 2 * self.process_position, leave=True, smoothing=0
        )
        return self._training_bar

    def init_predict_tqdm(self) -> Tqdm:
        """The prediction bar, as TQDMProgressBar makes it (kept when done)."""
        return self._new_bar(self.predict_description, 2 * self.process_position, leave=True, smoothing=0)

    def init_validation_tqdm(self) -> Tqdm:
        """The validation bar, as TQDMProgressBar makes it: below the training bar and hidden in a fit."""
        has_main_bar = self.trainer.state.fn != "validate"
        position = 2 * self.process_position + has_main_bar
        return self._new_bar(self.validation_description, position, leave=not has_main_bar)

    def init_test_tqdm(self) -> Tqdm:
        """The test bar, as TQDMProgressBar makes it (kept when done)."""
        return self._new_bar("Testing", 2 * self.process_position, leave=True)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Give the training bar its total and epoch when a fit resumed in the middle of an epoch.

        Lightning then skips `on_train_epoch_start`, where TQDMProgressBar sets both, and the bar would end
        as `Training: 420/?`: not finished, and with no epoch.
        """
        bar = self.train_progress_bar
        total = self.total_train_batches
        if bar.total is None and not bar.disable and total != float("inf"):
            bar.total = int(total)
            bar.set_description(f"Epoch {trainer.current_epoch}")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Update the bar as TQDMProgressBar does (every `refresh_rate` batches); count every batch done."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._train_batches_done = batch_idx + 1

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Close the bars an exception left open, so that their stored text shows where the run stopped.

        The training bar first counts the batches done since its last redraw (every `refresh_rate` batches).
        """
        bar = self._training_bar
        if bar is not None and not bar.disable and bar.n < self._train_batches_done:
            bar.n = self._train_batches_done
            bar.refresh()
        for bar in self._bars:
            bar.close()
        self._bars = []
