"""scripts/environments.py's parts that need no environment: Colab's versions, the bounds, the Colab cell."""

from __future__ import annotations

import re
import sys

import pytest

from scripts import environments as envs


def test_colab_versions_read_the_freeze_and_the_torch_urls():
    colab = envs.colab_versions()
    assert (colab["torch"], colab["torchvision"], colab["ipywidgets"]) == ("2.11.0", "0.26.0", "7.7.1")
    assert len(colab) > 600 and "en-core-web-sm" not in colab  # a model named by a URL with no wheel version


def test_colab_constraints_leave_pypi_torchs_cuda_libraries_free():
    constraints = envs.colab_constraints({"torch": "2.11.0", "nvidia-nccl-cu13": "2.31.2", "triton": "3.6.0"})
    assert constraints == "torch==2.11.0\n"


def test_lowest_pins_are_the_bounds_of_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        'dependencies = [\n    "torch>=2.11",  # Colab\'s\n    "jsonargparse[signatures]>=4.27.7",\n]\n'
    )
    assert envs.lowest_pins(pyproject) == ["torch==2.11", "jsonargparse==4.27.7"]
    pyproject.write_text('dependencies = [\n    "torch",\n]\n')
    with pytest.raises(ValueError, match='"torch", has no `>=` lower bound'):
        envs.lowest_pins(pyproject)


def test_the_real_bounds_all_become_pins():
    text = (envs.ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL).group(1)
    assert len(envs.lowest_pins(envs.ROOT / "pyproject.toml")) == block.count('\n    "')


def test_colab_cell_calls_are_recorded_without_running_them():
    cell = envs.colab_cell()
    calls = envs.colab_cell_calls(cell)
    assert calls[0][:5] == [sys.executable, "-m", "pip", "install", "-q"]
    assert "google.colab" not in sys.modules


def test_an_allowed_upgrade_is_not_a_replacement_and_anything_else_is():
    before = {"wandb": "0.28.1", "ipywidgets": "7.7.1", "torch": "2.11.0"}
    after = {"wandb": "0.31.0", "ipywidgets": "8.1.9", "torch": "2.11.0", "pytorch-lightning": "2.6.6"}
    assert envs.changed(before, after) == {"wandb": ("0.28.1", "0.31.0"), "ipywidgets": ("7.7.1", "8.1.9")}
    assert envs.replaced_in_colab(before, after) == {"ipywidgets": ("7.7.1", "8.1.9")}


def test_test_tools_are_requirements_lines_unpinned_without_the_series_own(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# tools\ntorch==2.14.1\nnbval==0.11.0\njsonargparse[signatures]==4.53.0\n-e .\n")
    assert envs.test_tools(requirements, ["torch==2.11", "jsonargparse==4.27.7"]) == ["nbval"]


def test_a_missing_python_is_said_in_one_sentence():
    reason = envs.missing_python_reason("3.99")
    assert envs.find_python("3.99") is None
    assert reason.count(". ") == 0 and reason.endswith(".") and "3.99" in reason


@pytest.mark.environments
def test_colab_versions_meet_every_bound_but_the_allowed_upgrades():
    """A bound above Colab's version makes pip replace Colab's package (ipywidgets>=8.0 did)."""
    from packaging.requirements import Requirement

    colab = envs.colab_versions()
    dependencies = [Requirement(line) for line in project_dependencies()]
    above = [
        f"{d} (Colab has {colab[envs.canonical(d.name)]})"
        for d in dependencies
        if envs.canonical(d.name) in colab
        and envs.canonical(d.name) not in envs.COLAB_UPGRADES
        and not d.specifier.contains(colab[envs.canonical(d.name)])
    ]
    assert above == []


def project_dependencies() -> list[str]:
    text = (envs.ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL).group(1)
    return re.findall(r'^\s*"([^"]+)"', block, re.MULTILINE)
