"""The `environments` tier: tests marked `environments` run only when `-m` names the marker.

They build virtual environments (minutes, gigabytes of downloads), so a plain `pytest` (and
`pytest -m "not slow"`) leaves them out, and `pytest -m environments` runs them. The marker is declared in
pyproject.toml's [tool.pytest.ini_options].
"""

from __future__ import annotations

import pytest

MARKER = "environments"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked `environments` unless the `-m` expression names the marker."""
    if MARKER in (config.option.markexpr or ""):
        return
    ours = [item for item in items if item.get_closest_marker(MARKER)]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
