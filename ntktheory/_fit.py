"""The one straight-line fitter of the toolkit: (weighted) least squares with a t-interval.

Every fitted rate or exponent in ntktheory and compare (depth rates of
:func:`ntktheory.large_depth_analysis`, width exponents of ``compare.width_scaling_exponent``,
exponential rates and power-law approaches of the recipes) is a slope of ``y`` against ``x``
computed here, so that they share one definition of the fit, of the points it keeps and of the
interval it reports.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["LineFit", "fit_line"]


class LineFit(NamedTuple):
    """Result of :func:`fit_line`; every field is NaN when the fit is undetermined.

    Attributes
    ----------
    slope
        Fitted slope.
    half_width
        Half-width of the two-sided t-interval for the slope at the requested confidence.
    intercept
        Fitted intercept (0.0 when fitted through the origin).
    stderr
        Standard error of the slope.
    rvalue
        Pearson correlation of the kept points (weighted when weights are given).
    r2
        Coefficient of determination 1 - SS_res / SS_tot (about the weighted mean, or about 0
        through the origin).
    n
        Number of points kept (finite x, y and weight, weight > 0).
    """

    slope: float
    half_width: float
    intercept: float
    stderr: float
    rvalue: float
    r2: float
    n: int


def fit_line(
    x: object,
    y: object,
    *,
    weights: object = None,
    through_origin: bool = False,
    confidence: float = 0.95,
) -> LineFit:
    r"""Fit y = intercept + slope * x by (weighted) least squares, with a t-interval for the slope.

    Points with a non-finite x, y or weight, or a weight <= 0, are dropped. With weights w, the
    residual scale s^2 = sum(w r^2) / (n - p) is estimated from the data (p = 2 parameters, 1
    through the origin), so the interval stays honest when the weights are only relative. The
    interval is slope +/- t_{n-p} * stderr.

    Parameters
    ----------
    x, y
        Abscissae and ordinates (1-D, the same length).
    weights
        Weights per point (e.g. 1 / se^2), or None for an unweighted fit.
    through_origin
        Fit y = slope * x (intercept 0) instead.
    confidence
        Level of the two-sided interval, in (0, 1).

    Returns
    -------
    LineFit
        slope, half_width, intercept, stderr, rvalue, r2 and n. All float fields are NaN when
        fewer than p + 1 points remain or the kept x are all equal (all zero through the origin).

    Examples
    --------
    >>> fit = fit_line([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 5.0, 7.0])
    >>> round(fit.slope, 12), round(fit.intercept, 12), round(fit.half_width, 12), fit.n
    (2.0, -1.0, 0.0, 4)
    >>> round(fit_line([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], through_origin=True).slope, 12)
    2.0
    >>> import math; math.isnan(fit_line([1.0, 2.0], [1.0, 2.0]).slope)   # too few points
    True
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same length; got shapes {x.shape!r} and {y.shape!r}.")
    w = np.ones_like(x) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64).ravel(), x.shape)
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must lie in (0, 1); got {confidence!r}.")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    n = int(ok.sum())
    n_par = 1 if through_origin else 2
    nan = LineFit(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, n)
    if n < n_par + 1:
        return nan
    x, y, w = x[ok], y[ok], w[ok]
    sw = np.sum(w)
    x_mean = float(np.sum(w * x) / sw)
    y_mean = float(np.sum(w * y) / sw)
    dx, dy = x - x_mean, y - y_mean
    if through_origin:
        sxx = float(np.sum(w * x * x))
        if sxx == 0.0:
            return nan
        slope = float(np.sum(w * x * y)) / sxx
        intercept = 0.0
        resid = y - slope * x
        ss_tot = float(np.sum(w * y * y))
    else:
        sxx = float(np.sum(w * dx * dx))
        if sxx == 0.0:
            return nan
        slope = float(np.sum(w * dx * dy)) / sxx
        intercept = y_mean - slope * x_mean
        resid = y - (intercept + slope * x)
        ss_tot = float(np.sum(w * dy * dy))
    dof = n - n_par
    ss_res = float(np.sum(w * resid * resid))
    stderr = math.sqrt(max(ss_res / dof / sxx, 0.0))
    syy = float(np.sum(w * dy * dy))
    den = math.sqrt(float(np.sum(w * dx * dx)) * syy)
    rvalue = 0.0 if den == 0.0 else min(max(float(np.sum(w * dx * dy)) / den, -1.0), 1.0)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    from scipy import stats  # here, not at import: it is 1 s of every `import ntktheory`

    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * stderr
    return LineFit(slope, half, intercept, stderr, rvalue, r2, n)
