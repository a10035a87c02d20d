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


def _dtype_kind(dtype: object) -> str:
    """The numpy kind letter of a numpy or torch dtype ('f', 'c', 'b', 'i', or numpy's own)."""
    kind = getattr(dtype, "kind", None)
    if isinstance(kind, str):
        return kind
    if getattr(dtype, "is_complex", False):
        return "c"
    if getattr(dtype, "is_floating_point", False):
        return "f"
    return "b" if str(dtype).endswith("bool") else "i"


def _is_complex_list(x: list | tuple) -> bool:
    try:
        return np.asarray(x).dtype.kind == "c"
    except (TypeError, ValueError):
        return False


def _allowed_shapes(ndims: tuple[int, ...] | None) -> str:
    if ndims is None:
        return ("at least 2-D: a batch axis and at least one more, e.g. (n_points, n_features) or "
                "(n_points, channels, height, width)")
    if tuple(ndims) == (2,):
        return "2-D with shape (n_points, n_features)"
    if tuple(ndims) == (2, 4):
        return "2-D (n_points, n_features) or 4-D (n_points, channels, height, width)"
    return " or ".join(f"{d}-D" for d in ndims) + " with the batch (points) axis first"


def validate_inputs(
    name: str,
    x: object,
    *,
    ndims: tuple[int, ...] | None = (2,),
    features: int | None = None,
    sample_shape: tuple[int, ...] | None = None,
    expected_by: str = "the other input",
) -> object:
    """Check a batch of inputs (numpy array, torch tensor or anything array-like); return it.

    The one input validator of the toolkit: :func:`check_inputs` (ntktheory) and
    ``empirical._ntk.as_inputs`` (which keeps a tensor on its device) both call it. It reads only
    ``shape`` and ``dtype`` and uses operations that numpy arrays and torch tensors share, so it
    never imports torch and never copies a tensor off its device (only the error path does).

    Parameters
    ----------
    name
        The argument's name, for the messages.
    x
        The inputs. Objects without ``shape`` and ``dtype`` (lists, scalars) are converted to a
        float64 numpy array first.
    ndims
        The allowed numbers of axes, or None for any number >= 2.
    features
        The required number of features (columns) of 2-D inputs, or None.
    sample_shape
        The required shape of one input (the shape after the batch axis), or None.
    expected_by
        Where ``features`` / ``sample_shape`` come from, for the messages (e.g. "the model").

    Returns
    -------
    object
        ``x`` itself when it has ``shape`` and ``dtype``, otherwise its float64 numpy array.

    Raises
    ------
    TypeError
        For complex, boolean, object or string data, or what cannot be read as numbers.
    ValueError
        For a wrong number of axes, no points or an empty axis, a shape that does not match
        ``features`` / ``sample_shape``, or NaN / infinite entries.

    Examples
    --------
    >>> validate_inputs("x1", [[0.0, 1.0]]).shape
    (1, 2)
    >>> validate_inputs("x1", np.ones(3))
    Traceback (most recent call last):
    ...
    ValueError: `x1` must be 2-D with shape (n_points, n_features); got shape (3,). Reshape a single point with x[None].
    """
    allowed = _allowed_shapes(ndims)
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        if isinstance(x, complex) or (isinstance(x, (list, tuple)) and _is_complex_list(x)):
            raise TypeError(f"`{name}` must be real; got complex values. Pass x.real (or abs(x)) explicitly.")
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"`{name}` must be an array of real numbers, {allowed}; got {type(x).__name__}.") from err
        dtype = x.dtype
    shape = tuple(int(n) for n in x.shape)
    kind = _dtype_kind(dtype)
    if kind == "c":
        raise TypeError(f"`{name}` must be real; got {type(x).__name__} of dtype {dtype!r} and shape {shape!r}. "
                        "Pass x.real (or abs(x)) explicitly.")
    if kind not in ("f", "i", "u"):
        raise TypeError(f"`{name}` must be an array of real numbers, {allowed}; "
                        f"got {type(x).__name__} of dtype {dtype!r} and shape {shape!r}.")
    if (len(shape) < 2) if ndims is None else (len(shape) not in ndims):
        raise ValueError(f"`{name}` must be {allowed}; got shape {shape!r}. Reshape a single point with x[None].")
    if 0 in shape:
        raise ValueError(f"`{name}` must have at least one point and no empty axis; got shape {shape!r}.")
    if features is not None and (len(shape) != 2 or shape[1] != features):
        raise ValueError(
            f"`{name}` has {shape[1]} features but {expected_by} has {features}; "
            f"both must have the same number of columns (got shape {shape!r})."
        )
    if sample_shape is not None and shape[1:] != tuple(sample_shape):
        raise ValueError(
            f"`{name}` has points of shape {shape[1:]!r} but {expected_by}'s are {tuple(sample_shape)!r}; "
            "both must have the same shape after the first (batch) axis."
        )
    if kind == "f":
        with np.errstate(invalid="ignore"):
            bad = (x - x) != 0  # NaN and +-inf, for numpy arrays and torch tensors alike, on their device
        if bool(bad.any()):
            mask = np.asarray(bad.tolist() if hasattr(bad, "tolist") else bad, dtype=bool)
            entry = tuple(int(i) for i in np.argwhere(mask)[0])
            raise ValueError(f"`{name}` must be finite; entry {entry!r} is {float(x[entry])!r}.")
    return x


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
    match the other input. Complex, boolean and object arrays are refused rather than cast. The
    checks are those of :func:`validate_inputs`.
    """
    allowed = _allowed_shapes((2, 4) if images else (2,))
    x = validate_inputs(name, x, ndims=(2, 4) if images else (2,), features=features, sample_shape=sample_shape)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"`{name}` must be an array of real numbers, {allowed}; got {type(x).__name__} "
                        f"that numpy cannot read ({err}).") from err
    return np.ascontiguousarray(arr)
