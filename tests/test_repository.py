"""The repository's promises: one test command shared by README and CI, no data committed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_gives_two_commands_and_ci_runs_the_test_command():
    commands = readme_commands()
    assert len(commands) == 2
    open_lab, run_tests = commands
    assert "jupyter lab" in open_lab and "pytest" in run_tests
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert run_tests.strip() in ci_lines


def test_ci_fails_when_the_install_fails(tmp_path):
    """`.ci/run` ends with the failed command's status when the venv or the install fails (as on a full disk),
    not with 0 and no test run: `set -e` does not stop inside the `&&` list before its last command."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fakes = {"python3.11": "echo 'No space left on device' >&2; exit 3", "chromium": "exit 0"}
    for name, body in fakes.items():
        (fake_bin / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake_bin / name).chmod(0o755)
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)


def test_no_dataset_or_run_files_are_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = tracked.split()
    assert [f for f in files if f.startswith("data/")] == ["data/README.md"]
    assert not [
        f for f in files if f.startswith(("runs/", "wandb/", "lightning_logs/")) or f.endswith(".ckpt")
    ]


def test_every_picture_the_readme_shows_is_in_images():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert pictures, "the README shows no picture"
    for picture in pictures:
        assert picture.startswith("images/") and (ROOT / picture).is_file(), picture


def test_the_wandb_project_is_named_in_one_place():
    """Code takes the W&B project's name from helpers.wandb_setup.WANDB_PROJECT; no file spells it again.

    The package has the same name: the Colab install cells' `lightning-wandb-tutorials @ git+...` is allowed.
    """
    from helpers.wandb_setup import WANDB_PROJECT

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    code = [
        path
        for path in map(Path, tracked.split())
        if path.suffix in {".py", ".yaml", ".ipynb"} and path != Path("helpers/wandb_setup.py")
    ]
    named = []
    for path in code:
        if not (ROOT / path).is_file():
            continue  # deleted in the working tree, not yet committed
        text = (ROOT / path).read_text()
        if path.suffix == ".ipynb":  # only code cells: prose and stored outputs may show the name
            cells = json.loads(text)["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        text = text.replace(f"{WANDB_PROJECT} @ git+", "")  # the package to install, not the project
        if WANDB_PROJECT in text:
            named.append(str(path))
    assert not named, f"these name the W&B project instead of importing WANDB_PROJECT: {named}"
