"""Runs and artifact versions as pandas tables, read from disk: compare runs without a W&B server.

`collect_runs` makes one row per run under a folder (a run resumed offline, in several folders, is one
row); `artifact_versions` lists the versions of a run's artifacts as the W&B server would number them.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from helpers.paths import display_path
from helpers.runfile import DamagedRunFileError
from helpers.tracking import NoRunYetError, RunRecord, find_runs, read_run


def artifact_versions(run: RunRecord, type: str = "model") -> pd.DataFrame:
    """The artifacts of `type` the run logged, in order, numbered as the W&B server numbers them.

    The server gives a new version (v0, v1, ...) only to new contents: a record whose digest was
    seen before is that version again and only moves its aliases. Columns: `version`, `aliases`,
    `digest`, then the artifact's scalar metadata (for Lightning's checkpoints `score` and
    `original_filename`).
    """
    versions: dict[tuple[str, str], str] = {}
    rows = []
    for artifact in run.artifacts:
        if artifact.type != type:
            continue
        same_name = sum(name == artifact.name for name, _ in versions)
        version = versions.setdefault((artifact.name, artifact.digest), f"v{same_name}")
        scalars = {k: v for k, v in artifact.metadata.items() if isinstance(v, (str, int, float, bool))}
        rows.append(
            {
                "name": artifact.name,
                "version": version,
                "aliases": artifact.aliases,
                "digest": artifact.digest,
                **scalars,
            }
        )
    return pd.DataFrame(rows)


RUN_COLUMNS = (
    "id",
    "name",
    "project",
    "group",
    "job_type",
    "state",
    "tags",
    "start_time",
    "parts",
    "partial",
    "path",
)


def _flatten(values: dict, prefix: str) -> dict:
    """Nested dicts as dotted keys (`summary.val/loss.min`); logged media and tables (dicts with a
    `_type`: files, not values to compare) are left out."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            if "_type" not in value:
                flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _merge_summaries(summaries: list[dict]) -> dict:
    """The summaries of a run's parts, oldest first, as one: a later value replaces an earlier one,
    except a `define_metric` minimum or maximum, which stays the minimum or maximum of all parts."""
    merged: dict = {}
    for summary in summaries:
        for key, value in summary.items():
            earlier = merged.get(key)
            if isinstance(earlier, dict) and isinstance(value, dict) and "_type" not in value:
                combined = {**earlier, **value}
                for statistic, pick in (("min", min), ("max", max)):
                    if statistic in earlier and statistic in value:
                        combined[statistic] = pick(earlier[statistic], value[statistic])
                value = combined
            merged[key] = value
    return merged


def _run_row(parts: list[RunRecord]) -> dict:
    """One table row for one run, from the folders of its parts, oldest first."""
    last = parts[-1]
    config: dict = {}
    for part in parts:
        config.update(part.config)
    return {
        "id": last.id,
        "name": last.name,
        "project": last.project,
        "group": last.group,
        "job_type": last.job_type,
        "state": last.state,
        "tags": last.tags,
        "start_time": pd.Timestamp(parts[0].start_time) if parts[0].start_time else pd.NaT,
        "parts": len(parts),
        "partial": any(part.partial for part in parts),
        "path": last.path,
        **_flatten(config, "config."),
        **_flatten(_merge_summaries([part.summary for part in parts]), "summary."),
    }


def _read_or_error(folder: Path, partial: bool) -> RunRecord | Exception:
    try:
        return read_run(folder, partial=partial)
    except NoRunYetError as error:
        return error
    except DamagedRunFileError as error:
        if partial:  # nothing of the run could be read: skip it as a folder with no run
            return error
        raise DamagedRunFileError(
            f"{error.check.describe()}: pass partial=True to collect_runs to use the intact part of such "
            f"files (flagged in the `partial` column).",
            error.check,
        ) from None


def collect_runs(directory: str | Path | None = None, partial: bool = False) -> pd.DataFrame:
    """Every W&B run under `directory` (default: the W&B folder in `runs/`) as one row of a table.

    Comparing runs means looking at their hyperparameters and results side by side, which the W&B
    website does for synced runs; this does it from the run folders on disk, with no server. The
    columns are `RUN_COLUMNS` (identity, `state`, when it started, where it is), then the run's
    config as `config.<key>` and its summary as `summary.<key>`, nested values with dotted names
    (`summary.val/loss.min` after `define_metric(..., summary="min")`). Logged media and tables are
    left out of the summary: they are files, not values to compare. Rows are oldest first.

    A run resumed offline leaves one folder per part, all with the run's id (notebook 06). Its parts
    make one row, as `wandb sync --id` makes them one run on the server: `state`, names and `path`
    come from the newest part, `start_time` from the first, config and summary are merged with
    later parts winning (a `define_metric` min or max stays the min or max of all parts), and
    `parts` says how many folders there were. A run that failed has `state` "failed"; one whose
    process died before `finish` reads as "running", with what W&B had written to disk by then.

    A damaged `.wandb` file (cut off, or a record that fails its checksum) raises
    `DamagedRunFileError` naming it, as `read_run` does: a table that silently lacks part of a run
    would compare wrong numbers. With `partial`, the intact part of such a file is used and its row
    has `partial` True, and a file with nothing readable is skipped with a warning. A folder whose
    file holds no run yet (its process ended before W&B wrote one) is always skipped with a warning.
    A `directory` that does not exist raises `FileNotFoundError`; the default one, before any run,
    gives an empty table.
    """
    folders = find_runs(directory)
    # Reading is mostly waiting for W&B's reader, a process of its own: read a few folders at a time.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_read_or_error, folders, [partial] * len(folders)))
    parts: dict[tuple[str, str], list[RunRecord]] = {}
    for folder, record in zip(folders, results, strict=True):
        if isinstance(record, Exception):
            message = str(record).replace(str(folder), display_path(folder))
            warnings.warn(f"skipped {display_path(folder)}: {message}", stacklevel=2)
        else:
            parts.setdefault((record.project, record.id), []).append(record)
    rows = [_run_row(sorted(run, key=lambda part: part.start_time)) for run in parts.values()]
    table = pd.DataFrame(rows, columns=None if rows else list(RUN_COLUMNS))
    return table.sort_values("start_time", ignore_index=True, kind="stable")
