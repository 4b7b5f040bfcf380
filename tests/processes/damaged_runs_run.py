"""A run large enough to span several of the `.wandb` file's 32 KiB blocks, for tests/test_damaged_runs.py.

A long config and long text values make records that cross block boundaries, so that cutting or corrupting
the file hits records stored in several chunks.
"""

from __future__ import annotations

import argparse

import wandb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="how many history rows to log")
    rows = parser.parse_args().rows
    run = wandb.init(project="tests", name="damage", config={"notes": "n" * 40_000, "lr": 0.1})
    for step in range(rows):
        run.log({"loss": 1 / (step + 1), "text": "t" * 200})
    run.finish()


if __name__ == "__main__":
    main()
