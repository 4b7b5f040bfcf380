"""The kill test's driver: imports helpers.resumable once, then runs each start in a forked process.

    python tests/processes/kill_driver.py RESULTS STARTS FLUSH_SECONDS

STARTS is a JSON list of (signal, moment, step, whom, arguments): each start runs `helpers.resumable.main`
with `arguments` and a callback that stops it at one moment, with SIGKILL (after W&B's service has written
what was logged so far; with `whom` "service-too", W&B's service is killed first) or SIGTERM. A forked start
skips the seconds a fresh `python -m helpers.resumable` spends importing Lightning, torch and W&B. After each
start the driver waits until every process of it is gone, then writes each start's exit status and output
to RESULTS (JSON). tests/test_kill_and_resume.py reads them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytorch_lightning as pl

from helpers import resumable
from helpers.runfile import check_run_file


def descendants() -> list[int]:
    """The process ids of this process's children, grandchildren and so on (W&B's service among them)."""
    return [child.pid for child in psutil.Process().children(recursive=True)]


def run(
    stop: str,
    moment: str,
    at: int,
    whom: str,
    arguments: list[str],
    output: str,
    pids_file: str,
    flush_seconds: float,
) -> NoReturn:
    """One start, in the forked process: train, stopping at `moment` (and step `at`) with `stop`."""

    def die() -> None:
        sys.stdout.flush()
        # Wait until W&B's service stops adding to the run's file: it then holds what was logged so far.
        import wandb

        run_folder = Path(wandb.run.dir).parent if wandb.run is not None else None
        run_file = next(iter(run_folder.glob("*.wandb")), None) if run_folder is not None else None
        seen, settled, deadline = None, time.monotonic(), time.monotonic() + 10
        while run_file is not None and time.monotonic() < deadline:
            records = check_run_file(run_file).records
            if records != seen:
                seen, settled = records, time.monotonic()
            elif time.monotonic() - settled > max(1.0, 5 * flush_seconds):
                break
            time.sleep(flush_seconds / 4)
        with open(pids_file, "w") as file:
            json.dump(descendants(), file)
        if whom == "service-too":  # W&B's service runs in a session of its own
            for pid in descendants():
                os.kill(pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    def act(now: str, at_step: int | None = None) -> None:
        if moment != now or (at_step is not None and at_step != at):
            return
        if stop == "SIGKILL":
            die()
        elif stop == "SIGTERM":  # as from outside: Lightning's handler notes it and the training goes on
            os.kill(os.getpid(), signal.SIGTERM)

    class StopAt(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            act("train_start")

        def on_train_batch_start(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
        ) -> None:
            act("batch_start", trainer.global_step)

        def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
            act("validation", trainer.global_step)

        def on_save_checkpoint(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
        ) -> None:
            act("saving", trainer.global_step)

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            act("epoch_end", trainer.global_step)

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            act("train_end")

    log_metrics = resumable.ResumedWandbLogger.log_metrics

    def log_or_die(
        self: resumable.ResumedWandbLogger, metrics: dict[str, float], step: int | None = None
    ) -> None:
        # "logging": after the checkpoint of the batch that makes step N is saved, before its metrics are
        # logged (Lightning logs them with trainer/global_step N - 1).
        if moment == "logging" and step == at - 1 and "train/loss_step" in metrics:
            die()
        log_metrics(self, metrics, step)

    resumable.ResumedWandbLogger.log_metrics = log_or_die  # type: ignore[method-assign,assignment]

    with open(output, "w") as out, open(output + ".err", "w") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    code = 0
    try:
        resumable.main(arguments, callbacks=[StopAt()])
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else 1
        if isinstance(stopped.code, str):
            print(stopped.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with open(pids_file, "w") as file:
            json.dump(descendants(), file)
        os._exit(code)


def main() -> None:
    results_file, starts, flush_seconds = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
    results = []
    for number, (stop, moment, step, whom, arguments) in enumerate(starts):
        output, pids_file = f"{results_file}.{number}.out", f"{results_file}.{number}.pids"
        pid = os.fork()
        if pid == 0:
            run(stop, moment, step, whom, arguments, output, pids_file, flush_seconds)
        _, status = os.waitpid(pid, 0)
        deadline = time.monotonic() + 60  # W&B's service outlives a killed training for a moment
        services = json.loads(Path(pids_file).read_text()) if os.path.exists(pids_file) else []
        for service in services:
            while psutil.pid_exists(service) and psutil.Process(service).status() != psutil.STATUS_ZOMBIE:
                if time.monotonic() > deadline:
                    sys.exit(f"process {service} of start {number} did not end within 60 s")
                time.sleep(0.1)
        results.append(
            {
                "status": os.waitstatus_to_exitcode(status),
                "stdout": Path(output).read_text(),
                "stderr": Path(output + ".err").read_text()[-3000:],
            }
        )
    Path(results_file).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
