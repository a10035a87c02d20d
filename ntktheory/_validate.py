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


def check_inputs(
    name: str,
    x: object,
    *,
    features: int | None = None,
    sample_shape: tuple[int, ...] | None = None,
    images: bool = False,
) -> np.ndarray:
    """A finite float64 array (N, d), or with ``images`` also (N, C, H, W); N >= 1, no empty axis.

    ``features`` (the required d) or ``sample_shape`` (the required shape after the batch axis)
    match the other input. Complex, boolean and object arrays are refused rather than cast.
    """
    allowed = ("2-D (n_points, n_features) or 4-D (n_points, channels, height, width)" if images
               else "2-D with shape (n_points, n_features)")
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind == "c" or isinstance(x, complex):
        raise TypeError(f"`{name}` must be real; got a complex array. Pass x.real (or np.abs(x)) explicitly.")
    if kind in ("b", "O", "U", "S"):
        raise TypeError(f"`{name}` must be an array of real numbers; got dtype {x.dtype}.")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be an array of real numbers, {allowed}; got {type(x).__name__}.") from err
    ndims = (2, 4) if images else (2,)
    if arr.ndim not in ndims:
        raise ValueError(
            f"`{name}` must be {allowed}; got shape {arr.shape!r}. Reshape a single point with x[None]."
        )
    if 0 in arr.shape:
        raise ValueError(f"`{name}` must have at least one point and no empty axis; got shape {arr.shape!r}.")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        entry = tuple(int(i) for i in bad)
        raise ValueError(f"`{name}` must be finite; entry {entry!r} is {float(arr[entry])!r}.")
    if features is not None and (arr.ndim != 2 or arr.shape[1] != features):
        raise ValueError(
            f"`{name}` has {arr.shape[1]} features but the other input has {features}; "
            "both inputs must have the same number of columns."
        )
    if sample_shape is not None and arr.shape[1:] != tuple(sample_shape):
        raise ValueError(
            f"`{name}` has points of shape {arr.shape[1:]!r} but the other input's are {tuple(sample_shape)!r}; "
            "both inputs must have the same shape after the first (batch) axis."
        )
    return np.ascontiguousarray(arr)
