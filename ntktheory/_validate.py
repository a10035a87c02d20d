"""Argument checks shared by the public functions of all three packages.

Every check raises with a message that names the argument, shows the value with ``!r`` and says
what is allowed, so that a user can fix the call without reading the source.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} of type {type(value).__name__}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return value


def check_positive(name: str, value: object) -> float:
    """A finite float > 0."""
    value = check_real(name, value)
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value!r}.")
    return value


def check_nonnegative(name: str, value: object) -> float:
    """A finite float >= 0."""
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
    return value


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """An integer (not a bool, not a float), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r} of type {type(value).__name__}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return value


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """One of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}.")
    return value


def check_inputs(name: str, x: object, *, features: int | None = None) -> np.ndarray:
    """A 2-D, finite float64 array of shape (N, d), N >= 1, d >= 1.

    ``features``, when given, is the required d (to match another input).
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a 2-D array of real numbers; got {type(x).__name__}.") from err
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D with shape (n_points, n_features); got shape {arr.shape!r}. "
            "Reshape a single point with x[None, :]."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one point and one feature; got shape {arr.shape!r}.")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        entry = tuple(int(i) for i in bad)
        raise ValueError(f"`{name}` must be finite; entry {entry!r} is {float(arr[entry])!r}.")
    if features is not None and arr.shape[1] != features:
        raise ValueError(
            f"`{name}` has {arr.shape[1]} features but the other input has {features}; "
            "both inputs must have the same number of columns."
        )
    return np.ascontiguousarray(arr)
