"""Argument checks shared by the helpers: each raises a one-sentence `ValueError` naming the argument."""

from __future__ import annotations


def check_positive_int(name: str, value: object) -> None:
    """Refuse anything but an int above zero (a bool is not accepted as an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_fraction(name: str, value: object) -> None:
    """Refuse anything but a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
