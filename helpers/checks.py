"""Argument checks shared by the helpers: each raises a one-sentence `ValueError` naming the argument.

A bool is never accepted as a number here (`True` is an int to Python, but never what a reader meant),
and no number check lets NaN or infinity through: a learning rate of `inf` trains into NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TypeGuard


def _is_number(value: object) -> TypeGuard[float]:
    """A real number (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: object) -> None:
    """Refuse anything but an int above zero (a bool is not accepted as an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_fraction(name: str, value: object) -> None:
    """Refuse anything but a number strictly between 0 and 1."""
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")


def check_probability(name: str, value: object) -> None:
    """Refuse anything but a number in [0, 1): a dropout probability (1 would drop everything)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}.")


def check_positive_number(name: str, value: object) -> None:
    """Refuse anything but a finite number above zero (a learning rate)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}.")


def check_non_negative_number(name: str, value: object) -> None:
    """Refuse anything but a finite number of 0 or more (a weight decay)."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of 0 or more, got {value!r}.")


def check_trial_budget(max_steps: int, val_every: int) -> None:
    """Refuse a training budget that would never validate: the trial's result is its last validation."""
    check_positive_int("max_steps", max_steps)
    check_positive_int("val_every", val_every)
    if val_every > max_steps:
        raise ValueError(
            f"val_every ({val_every}) must be at most max_steps ({max_steps}), or the trial never validates."
        )


def check_non_negative_int(name: str, value: object) -> None:
    """Refuse anything but an int of 0 or more (a seed, a count that may be zero)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer of 0 or more, got {value!r}.")


def check_class_names(name: str, value: object) -> None:
    """Refuse anything but None or a sequence of strings (a single string would be read letter by letter)."""
    if value is None:
        return
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not all(isinstance(v, str) for v in value)
    ):
        raise ValueError(f"{name} must be a list of strings, one per class, got {value!r}.")


def check_optional_callable(name: str, value: object) -> None:
    """Refuse anything but None or something that can be called."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be a function (or None), got {value!r}.")
