"""Notebook hygiene: what a reader (and nbval) would trip over in a stored notebook."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, the oldest requires-python allows: pytest brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = PROJECT["urls"]["Repository"]
ALLOWED_TAGS = {"nbval-check-output", "nbval-ignore-output", "nbval-skip", "raises-exception"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def source(cell: dict) -> str:
    return "".join(cell["source"])


def code_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks_numbered_from_01_without_gaps():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d{2}_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name), path.name
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(NOTEBOOKS) + 1))


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, dict]:
    return request.param, load(request.param)


def test_first_cell_has_title_badge_and_runtime(notebook):
    path, nb = notebook
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown"
    text = source(first)
    assert text.startswith(f"# {path.name[:2]} · ")
    slug = REPOSITORY.removeprefix("https://github.com/")
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", text)
    assert badges == [f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}"]
    assert re.search(r"\*\*Runtime:\*\* about \d+ s on a 2-core CPU", text)


def test_second_cell_installs_the_helpers_only_in_colab(notebook):
    _, nb = notebook
    setup = source(nb["cells"][1])
    assert '"google.colab" in sys.modules' in setup
    assert f"git+{REPOSITORY}" in setup


def run_setup_cell(nb: dict, monkeypatch, in_colab: bool) -> tuple[list[tuple[list[str], dict]], dict]:
    """Execute the setup cell with subprocess.run recorded, with or without a stand-in Colab.

    Returns what it ran, as (command, keyword arguments) pairs in order, and the names it defined.
    """
    calls: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append((command, kwargs)))
    if in_colab:
        colab = types.ModuleType("google.colab")
        colab.output = types.SimpleNamespace(
            enable_custom_widget_manager=lambda: calls.append((["enable_custom_widget_manager"], {}))
        )
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace: dict = {}
    exec(compile(source(nb["cells"][1]), "setup-cell", "exec"), namespace)
    return calls, namespace


def test_setup_cell_does_nothing_outside_colab(notebook, monkeypatch):
    _, nb = notebook
    calls, namespace = run_setup_cell(nb, monkeypatch, in_colab=False)
    assert calls == []
    assert set(namespace) - {"__builtins__"} <= {"subprocess", "sys"}, sorted(namespace)


def test_setup_cell_in_colab_installs_the_helpers_and_nothing_else(notebook, monkeypatch):
    _, nb = notebook
    calls, _ = run_setup_cell(nb, monkeypatch, in_colab=True)
    install = [sys.executable, "-m", "pip", "install", "-q", f"{PROJECT['name']} @ git+{REPOSITORY}"]
    # check=True: a failed install stops the notebook. No custom widget manager: Colab's ipywidgets 7 draws
    # Lightning's bars, and the stand-in records a call to it if the cell made one.
    assert calls == [(install, {"check": True})]


def test_colab_install_names_this_package_and_leaves_colab_torch_alone(monkeypatch):
    """The helpers install as the package pyproject.toml builds, and nothing in it can replace Colab's torch.

    pip keeps an installed package that satisfies a requirement (without --upgrade), so dependencies with
    lower bounds only never downgrade, nor upgrade, the torch that Colab ships.
    """
    from packaging.requirements import Requirement

    calls, _ = run_setup_cell(load(NOTEBOOKS[0]), monkeypatch, in_colab=True)
    requirement = Requirement(calls[0][0][-1])
    assert requirement.name == PROJECT["name"] and requirement.url == f"git+{REPOSITORY}"
    dependencies = [Requirement(d) for d in PROJECT["dependencies"]]
    assert {"torch", "torchvision"} <= {d.name for d in dependencies}
    for dependency in dependencies:
        assert dependency.url is None, f"{dependency} would install from a URL"
        assert all(spec.operator == ">=" for spec in dependency.specifier), (
            f"{dependency}: only lower bounds keep Colab's preinstalled packages"
        )


def test_executed_in_order_without_errors(notebook):
    _, nb = notebook
    cells = [c for c in code_cells(nb) if source(c).strip()]
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, "some code cells were never executed"
    assert counts == list(range(1, len(counts) + 1)), "not executed top to bottom in one fresh kernel"
    for cell in cells:
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"error output: {output.get('ename')}"
            if output["output_type"] == "stream":
                assert "Traceback" not in "".join(output["text"])


def test_tags_are_known_and_some_outputs_are_checked(notebook):
    _, nb = notebook
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert set(tags) <= ALLOWED_TAGS
    assert "nbval-check-output" in tags


def test_checked_outputs_name_no_run_or_process(notebook):
    """A W&B run id, a run folder or a process id differs on every execution: nbval would fail on it."""
    _, nb = notebook
    for cell in code_cells(nb):
        if "nbval-check-output" not in cell.get("metadata", {}).get("tags", []):
            continue
        text = json.dumps(cell["outputs"])
        assert not re.search(r"offline-run-|run-\d{8}_|/[a-z0-9]{8}/checkpoints|\bpid\b|process \d+", text), (
            f"a checked output names a run or a process: {source(cell)[:80]!r}"
        )


# Folders that hold a reader's files on some machine; with the repository and the home folder, a stored
# output that names one of them as a whole path names this machine.
MACHINE_FOLDERS = ("/tmp", "/root", "/home", "/Users", "/var/folders", "/private")


def machine_paths(text: str, folders: Iterable[str]) -> list[str]:
    """Each of `folders` that `text` names as a whole path: not inside a longer name, and ending at a
    separator, a quote, a space or the end. `runs/artifacts/tmpkv8augce` names no `/tmp`."""
    found = []
    for folder in folders:
        folder = folder.rstrip("/\\")
        if folder and re.search(rf"(?<![\w.~/-]){re.escape(folder)}(?![^/\\\s\"'`,;:)\]}}>])", text):
            found.append(folder)
    return found


def strings_in(value: object) -> Iterator[str]:
    """Every string inside a notebook's JSON, as the reader sees it (escapes decoded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def this_machines_folders() -> set[str]:
    folders = {str(ROOT), str(ROOT.parent), os.path.expanduser("~"), tempfile.gettempdir(), *MACHINE_FOLDERS}
    return {folder for folder in folders if folder not in ("/", "")}


@pytest.mark.parametrize(
    "text, folder, named",
    [
        ("runs/wandb-data/artifacts/staging/tmpkv8augce", "/tmp", False),
        ("/tmp", "/tmp", True),
        ("saved to /tmp/x/model.ckpt", "/tmp", True),
        ("'/tmp'", "/tmp", True),
        ("/tmpfiles/a", "/tmp", False),
        ("see runs/tmp/a", "/tmp", False),
        ("/home/reader/my clone/notebooks", "/home/reader/my clone", True),
        ("/home/reader/my clone2/notebooks", "/home/reader/my clone", False),
        ("C:\\Users\\reader\\x", "C:\\Users\\reader", True),
        ("/a/b/c/d/e/f/g/h/repo/runs/x", "/a/b/c/d/e/f/g/h/repo", True),
        ("runs/x", "/a/b/c/d/e/f/g/h/repo", False),
    ],
)
def test_machine_paths_finds_whole_paths_only(text, folder, named):
    assert machine_paths(text, [folder]) == ([folder] if named else [])


@pytest.mark.parametrize(
    "clone", ["/tmp/lightning-wandb", "/tmp/a folder with spaces/lw", "/srv/" + "deep/" * 12 + "lw"]
)
def test_a_stored_notebook_names_no_folder_of_a_clone_anywhere(clone):
    """The stored notebooks name no machine path whatever folder the clone is in; a real one is found."""
    folders = {clone, str(Path(clone).parent), *MACHINE_FOLDERS}
    for path in NOTEBOOKS:
        assert machine_paths("\n".join(strings_in(load(path))), folders) == [], path.name
    planted = f"checkpoint saved to {clone}/runs/last.ckpt"
    assert machine_paths(planted, folders)


def test_no_machine_paths_secrets_or_blobs(notebook):
    path, nb = notebook
    named = machine_paths("\n".join(strings_in(nb)), this_machines_folders())
    assert not named, f"{path.name} names this machine's folders: {named}"
    text = path.read_text()
    assert not re.search(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])", text), (
        "something shaped like a W&B API key"
    )
    assert "WANDB_API_KEY=" not in text
    assert path.stat().st_size < 1_000_000
    widget_state = json.dumps(nb["metadata"].get("widgets", {}))
    assert len(widget_state) < 200_000  # about 8 kB per progress bar; notebook 06 has three trainings


def test_ends_with_a_summary_and_links_resolve(notebook):
    path, nb = notebook
    last = nb["cells"][-1]
    assert last["cell_type"] == "markdown" and "## Summary" in source(last)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for target in re.findall(r"\]\(([^)#\s]+\.ipynb)\)", source(cell)):
                if not target.startswith(("http://", "https://")):
                    assert (path.parent / target).is_file(), f"{path.name} links to missing {target}"


def test_readme_lists_every_notebook_with_its_runtime():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        rows = [line for line in readme.splitlines() if path.name in line and line.startswith("|")]
        assert rows, f"README's table does not list {path.name}"
        assert re.search(r"\d+ s", rows[0]), f"README gives no runtime for {path.name}"


# What a notebook teaches, defined in its own cells exactly as helpers defines it for later notebooks.
TAUGHT_IN_CELLS = {
    "03": ["helpers.data.MNISTDataModule", "helpers.models.MNISTClassifier"],
    "07": [
        "helpers.sweeps.OptunaPruning",
        "helpers.sweeps.suggest",
        "helpers.sweeps.objective",
        "helpers.sweeps.load_study",
    ],
}


@pytest.mark.parametrize("number, names", sorted(TAUGHT_IN_CELLS.items()))
def test_a_notebook_defines_what_it_teaches_as_helpers_ships_it(number, names):
    """The code a reader learns from is in the notebook's cells, and is the code later notebooks import."""
    import importlib
    import inspect

    (path,) = [p for p in NOTEBOOKS if p.name.startswith(f"{number}_")]
    cells = "\n\n".join(source(c).strip() for c in code_cells(load(path)))
    for name in names:
        module, attribute = name.rsplit(".", 1)
        code = inspect.getsource(getattr(importlib.import_module(module), attribute)).strip()
        assert code in cells, f"{path.name} should define {name} in a cell, as helpers has it now"


def stored_text(path: Path) -> str:
    """Everything a notebook's code cells printed, as stored."""
    return "".join(
        "".join(output.get("text", "")) for cell in code_cells(load(path)) for output in cell["outputs"]
    )


def test_notebooks_01_02_03_store_the_same_test_result():
    """The plain loop, the W&B-instrumented loop and the Lightning translation train on the same batches
    with the same dropout masks from the same seed, so they print the same test loss and accuracy."""
    results = {}
    for path in NOTEBOOKS[:3]:
        found = re.findall(r"test loss (\d\.\d{4}), test accuracy (\d+\.\d\d)%", stored_text(path))
        assert len(found) == 1, f"{path.name} should print its test loss and accuracy once, found {found}"
        results[path.name] = found[0]
    assert len(set(results.values())) == 1, results


def test_setup_cell_quiets_the_libraries_and_prints_versions_first(notebook):
    """The first code cell after the Colab cell calls setup_notebook() before anything else runs."""
    _, nb = notebook
    setup = source(code_cells(nb)[1])
    statements = [line for line in setup.splitlines() if line and not line.startswith((" ", ")", "#"))]
    first = next(line for line in statements if not line.startswith(("import ", "from ")))
    assert first.startswith("setup_notebook()"), first


TRACKED_FOLDERS = sorted(
    {
        Path(p).parts[0]
        for p in subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        if "/" in p
    }
)
FOLDERS = "|".join(map(re.escape, TRACKED_FOLDERS))
NAMED_FILE = re.compile(rf"(?<![\w/.-])((?:{FOLDERS})/[\w./-]*\w\.(?:py|ipynb|png|yaml|md|txt|toml|json))")


def named_repository_files(text: str) -> set[str]:
    """Paths such as `helpers/data.py` or `benchmarks/precision.py` that `text` names."""
    return set(NAMED_FILE.findall(text))


def test_named_repository_files_are_found_in_prose_and_code():
    assert named_repository_files("see `helpers/data.py` and benchmarks/x.py, not runs/a.py") == {
        "helpers/data.py",
        "benchmarks/x.py",
    }


@pytest.mark.parametrize("path", [ROOT / "README.md", *NOTEBOOKS], ids=lambda p: p.name)
def test_every_repository_file_named_exists(path):
    if path.suffix == ".ipynb":
        text = "\n".join(source(cell) for cell in load(path)["cells"])
    else:
        text = path.read_text()
    missing = sorted(name for name in named_repository_files(text) if not (ROOT / name).exists())
    assert not missing, f"{path.name} names files that do not exist: {missing}"


SHOWN_SOURCE = re.compile(r"display\(Code\(inspect\.getsource\(([\w.]+)\)")


def test_helper_source_a_notebook_shows_is_the_current_source(notebook):
    """A cell that displays `inspect.getsource(...)` stored the code helpers holds now, not an older copy."""
    import ast
    import inspect

    path, nb = notebook
    cells = [c for c in code_cells(nb) if SHOWN_SOURCE.search(source(c))]
    if not cells:
        pytest.skip(f"{path.name} shows no helper source")
    setup = ast.parse(source(code_cells(nb)[1]))
    imports = ast.Module([node for node in setup.body if isinstance(node, ast.Import | ast.ImportFrom)], [])
    names: dict = {}
    exec(compile(imports, "setup-cell-imports", "exec"), names)
    for cell in cells:
        expected = [inspect.getsource(eval(e, names)).strip() for e in SHOWN_SOURCE.findall(source(cell))]
        shown = [
            "".join(o["data"]["text/plain"]).strip()
            for o in cell["outputs"]
            if "text/plain" in o.get("data", {})
        ]
        assert shown == expected, (
            f"{path.name}: a cell shows old source of {SHOWN_SOURCE.findall(source(cell))}"
        )


def test_opens_with_what_you_will_learn_and_what_it_builds_on(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    learn = re.search(r"\*\*What you will learn\*\*\n\n((?:- .+\n)+)", first)
    assert learn and 3 <= len(learn.group(1).splitlines()) <= 6, (
        f"{path.name}: a short list of what it teaches"
    )
    assert re.search(r"\*\*Builds on:\*\* .+\.", first), f"{path.name} should say what it builds on"


def test_ends_with_exercises_whose_solutions_run_then_a_summary(notebook):
    """Two to four exercises, each a markdown cell and one collapsed solution cell that asserts what it finds
    or has its output checked; then the summary closes the notebook."""
    path, nb = notebook
    cells = nb["cells"]
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Exercises" in source(c)]
    assert len(starts) == 1, f"{path.name} should have one Exercises section"
    section = cells[starts[0] : -1]
    assert source(cells[-1]).lstrip().startswith("## Summary")
    kinds = [c["cell_type"] for c in section]
    assert kinds == ["markdown", "code"] * (len(kinds) // 2) and 2 <= len(kinds) // 2 <= 4, kinds
    for solution in section[1::2]:
        assert solution["metadata"].get("jupyter", {}).get("source_hidden"), "solutions start collapsed"
        checked = "nbval-check-output" in solution["metadata"].get("tags", [])
        assert checked or "assert " in source(solution), f"{path.name}: a solution nbval cannot check"
        assert "nbval-skip" not in solution["metadata"].get("tags", []), "solutions run"
