"""nbval runs one notebook as another CPU would compute it, so that checked outputs stay CPU-independent.

PyTorch chooses its CPU kernels by processor (AVX-512, AVX2 or generic code), and each rounds the last
digits of a float its own way: a checked cell that prints an exact loss or accuracy passes on the machine
that stored it and fails on a reader's. The kernel of `OTHER_CPU_NOTEBOOK` starts with PyTorch's generic
kernels, which no machine uses by default, so such a cell fails here too.
"""

from __future__ import annotations

import os

import pytest

OTHER_CPU_NOTEBOOK = "01_pytorch_training_loop.ipynb"
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """Start the kernel of `OTHER_CPU_NOTEBOOK` (nbval does it in its first cell's setup) with `OTHER_CPU`."""
    if item.path.name != OTHER_CPU_NOTEBOOK:
        return (yield)
    saved = {name: os.environ.get(name) for name in OTHER_CPU}
    os.environ.update(OTHER_CPU)
    try:
        return (yield)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
