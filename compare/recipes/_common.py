"""Helpers shared by several recipes: analytic ReLU kernels, width axes, slope claims.

Recipes import shared helpers from here (or from :mod:`compare._data`, :mod:`compare._metrics`
and :mod:`compare.recipes._analysis`), never from one another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["SIGMA_W_RELU", "analytic_relu_kernels", "as_dataarray", "label_widths", "slope_claim_values"]

#: sigma_w of the He-initialised ReLU networks (sigma_w^2 = 2, sigma_b = 0) several recipes train.
SIGMA_W_RELU = math.sqrt(2.0)


def analytic_relu_kernels(x: np.ndarray, *, depth: int, parameterization: str = "ntk",
                          width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(nngp, ntk) of a ReLU network at sigma_w^2 = 2, sigma_b = 0 from :func:`ntktheory.kernels`.

    Parameters
    ----------
    x
        Inputs (N, d).
    depth
        Hidden layers.
    parameterization
        ``"ntk"`` or ``"standard"``.
    width
        The hidden width, for the standard parameterisation (whose NTK depends on it); ignored
        otherwise.

    Returns
    -------
    tuple of numpy.ndarray
        ``(nngp, ntk)``, each (N, N) float64.
    """
    import ntktheory

    kw = {"width": width} if parameterization == "standard" else {}
    ds = ntktheory.kernels(x, activation="relu", depth=depth, sigma_w=SIGMA_W_RELU, sigma_b=0.0,
                           parameterization=parameterization, **kw)
    return ds["nngp"].values.astype(np.float64), ds["ntk"].values.astype(np.float64)


def slope_claim_values(fit: xr.Dataset) -> tuple[float, float]:
    """(slope, half-width of its interval) from a :func:`compare._metrics.width_scaling_exponent` fit."""
    slope = float(fit["slope"])
    half = float(fit["slope_high"] - fit["slope_low"]) / 2
    return slope, half if math.isfinite(half) else math.nan


def as_dataarray(values: np.ndarray, dims: Sequence[str], coords: Mapping[str, Any]) -> xr.DataArray:
    """A DataArray with the given dims and only the coords that belong to them."""
    return xr.DataArray(np.asarray(values), dims=tuple(dims), coords={d: coords[d] for d in dims if d in coords})


def label_widths(ax: Any, widths: Sequence[float]) -> None:
    """Log-scaled width axis labelled with the widths themselves (no 2x10^1-style ticks)."""
    ax.set_xscale("log")
    ax.set_xticks([float(w) for w in widths], [str(int(w)) for w in widths])
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
