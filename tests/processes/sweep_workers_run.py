"""Two workers of notebook 07's search (`python -m helpers.sweeps`) sharing one study, side by side.

They write `study.log` in the current folder and one offline W&B run each; any failure stops this process.
"""

from __future__ import annotations

import subprocess
import sys

WORKER = [sys.executable, "-m", "helpers.sweeps", "--study", "shared", "--storage", "study.log"]
BUDGET = ["--trials", "1", "--max-steps", "4", "--val-every", "2"]

if __name__ == "__main__":
    workers = [subprocess.Popen([*WORKER, *BUDGET], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate()
        if worker.returncode != 0:
            sys.exit(f"a worker failed:\n{errors[-3000:]}")
