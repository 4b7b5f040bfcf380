"""Run the benchmarks and rewrite their tables in README.md, all from one run.

Run from the repository root:  python -m benchmarks.readme  (--threads N passes through to every benchmark)

Each table sits between `<!-- benchmarks.NAME: ... -->` and `<!-- end of benchmarks.NAME -->` in the README;
everything between the two is replaced, the prose around them is left alone.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Callable
from pathlib import Path

from benchmarks import data_loading, harness, model_speed, overhead

README = Path(__file__).resolve().parents[1] / "README.md"


def _measured(results: dict) -> str:
    info = results["machine"]
    start, end = info["load_average"], info["load_average_end"]
    load = f"load average {start[0]} at the start, {end[0]} at the end" if start and end else "load unknown"
    busy = start and end and max(start[0], end[0]) > info["cores"]  # more runnable threads than cores
    busy = " (other jobs were running: the figures are indicative)" if busy else ""
    return (
        f"Measured {info['date'][:10]} on {info['cpu']} ({', '.join(info['cpu_flags'])}), "
        f"{info['cores']} cores, {info['torch_threads']} torch threads, {load}{busy}; torch {info['torch']}, "
        f"Lightning {info['pytorch-lightning']}, torchmetrics {info['torchmetrics']}, wandb {info['wandb']}."
    )


def data_loading_block(results: dict) -> str:
    return (
        f"Measured with `python -m benchmarks.data_loading` (one epoch of batches of {harness.BATCH_SIZE}, "
        f"no model, median of {results['rounds']} interleaved rounds):\n\n{results['table']}\n\n"
        f"{_measured(results)}"
    )


def model_speed_block(results: dict) -> str:
    return (
        f"Measured with `python -m benchmarks.model_speed` (the ConvNet's training step, batch "
        f"{harness.BATCH_SIZE}, median of {results['rounds']} interleaved rounds of {results['steps']} "
        f"steps):\n\n{results['table']}\n\n{_measured(results)}"
    )


def overhead_block(results: dict) -> str:
    init = statistics.median(results["wandb_init_s"])
    return (
        f"Measured with `python -m benchmarks.overhead`: {results['steps']} steps per run, median of "
        f"{results['rounds']} interleaved rounds, median ms per training step:\n\n{results['table']}\n\n"
        f"`lightning_overhead={results['lightning_overhead']:.3f} "
        f"wandb_overhead={results['wandb_overhead']:.3f}` (Lightning over plain, Lightning + `WandbLogger` "
        f"over Lightning). Each `wandb.init` adds {init:.2f} s once per run. {_measured(results)}"
    )


BENCHMARKS: dict[str, tuple[Callable[[list[str]], dict], Callable[[dict], str]]] = {
    "data_loading": (data_loading.main, data_loading_block),
    "model_speed": (model_speed.main, model_speed_block),
    "overhead": (overhead.main, overhead_block),
}


def replace_block(text: str, name: str, block: str) -> str:
    """`text` with what lies between benchmark `name`'s two markers replaced by `block`."""
    pattern = re.compile(
        rf"(<!-- benchmarks\.{name}:[^\n]*-->\n).*?(<!-- end of benchmarks\.{name} -->)", re.DOTALL
    )
    if len(pattern.findall(text)) != 1:
        raise ValueError(
            f"README.md must hold exactly one pair of markers for benchmarks.{name}: "
            f"`<!-- benchmarks.{name}: ... -->` and `<!-- end of benchmarks.{name} -->`."
        )
    return pattern.sub(lambda match: match[1] + (block + "\n" if block else "") + match[2], text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch threads for every benchmark (default: torch's)")
    parser.add_argument("--readme", type=Path, default=README, help="the file to rewrite (default README.md)")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    for name in BENCHMARKS:  # fail before an hour of benchmarks, not after
        replace_block(text, name, "")
    passed = [] if args.threads is None else ["--threads", str(args.threads)]
    blocks = {}
    for name, (run, block) in BENCHMARKS.items():
        print(f"\n=== python -m benchmarks.{name} {' '.join(passed)}".rstrip())
        blocks[name] = block(run(passed))
    text = args.readme.read_text()  # again: the README may have been edited while the benchmarks ran
    for name, block in blocks.items():
        text = replace_block(text, name, block)
    args.readme.write_text(text)
    print(f"\n{args.readme} rewritten.")


if __name__ == "__main__":
    main()
