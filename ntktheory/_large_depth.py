"""Large-depth behaviour of the NTK: trainability and generalisation depth scales.

Xiao, Pennington & Schoenholz 2020 ("Disentangling trainability and generalization in deep neural
networks", arXiv:1912.13053, Sec. 3-4, Table 1), NTK parameterisation, for training inputs X (m
points) and test inputs X*, with Theta^l the readout NTK of a network with l hidden layers:

* **Ordered phase** (chi_1 < 1): Theta^l -> p* 1 1^T with p* = q* / (1 - chi_1); the deviations
  are O(l chi_1^l), so lambda_min(Theta^l(X, X)) ~ l chi_1^l, lambda_max -> m p* and the condition
  number kappa grows like 1 / (l chi_1^l): gradient descent stops training beyond about
  xi_1 = -1 / log chi_1 layers (a multiple of it), while the mean predictor stays data-dependent.
* **Chaotic phase** (chi_1 > 1): the diagonal grows like chi_1^l, the off-diagonal entries tend to
  a constant, so kappa -> 1 (trainable) but the data-dependent part of the mean predictor
  P^l = Theta^l(X*, X) Theta^l(X, X)^-1 decays like l (chi_{c*} / chi_1)^l: generalisation fails
  beyond about xi_* = -1 / (log chi_{c*} - log chi_1) layers.

This module computes, on a grid of initialisations, lambda_max, lambda_min, kappa and
||P^l (I - 1 1^T / m)||_F (the mean predictor acting on centred targets, which removes the
constant mode) for every depth, the predicted depth scales from :func:`ntktheory.mean_field`, and
the decay rates fitted to the computed spectra (least-squares slopes of log(value / l) against l,
by :func:`ntktheory._fit.fit_line`), so that prediction and computation can be compared.
"""

from __future__ import annotations

import math

import numpy as np

from ._fit import fit_line
from ._meanfield import _variance_array, mean_field
from ._provenance import provenance
from ._validate import check_inputs, check_int
from .activations import ActivationSpec, get_activation

__all__ = ["large_depth_analysis"]

#: Values below this fraction of their scale are rounding noise and left out of the fits.
_FIT_FLOOR = 1e-11


def _fit_rate(depths: np.ndarray, log_values: np.ndarray, valid: np.ndarray, start: int) -> float:
    """Slope of ``log_values`` against depth over depths >= start where ``valid`` (NaN if < 3)."""
    sel = (depths >= start) & valid & np.isfinite(log_values)
    if sel.sum() < 3:
        return math.nan
    return fit_line(depths[sel], log_values[sel]).slope


def large_depth_analysis(
    x_train: object,
    x_test: object,
    *,
    activation: ActivationSpec = "erf",
    depth: int = 60,
    sigma_w2: object = (1.0, 2.0),
    sigma_b2: object = (0.0,),
    fit_from: int | None = None,
):
    """NTK spectrum and mean-predictor degeneration through depth, with fitted and predicted rates.

    Parameters
    ----------
    x_train, x_test
        Inputs, shapes (m, d) and (m*, d); m >= 2.
    activation
        Registry name, Activation or expression (NTK parameterisation, see the README's conventions).
    depth
        Largest number of hidden layers L >= 4; every depth 1..L is analysed.
    sigma_w2, sigma_b2
        1-D grids of weight (> 0) and bias (>= 0) variances.
    fit_from
        Smallest depth used in the rate fits (default ``depth // 4``, past the transient).

    Returns
    -------
    xarray.Dataset
        On ("sigma_w2", "sigma_b2", "depth"): ``lambda_max``, ``lambda_min`` and ``kappa`` of
        Theta(X, X), ``predictor_norm`` = ||Theta(X*, X) Theta(X, X)^-1 (I - 1 1^T / m)||_F.
        On ("sigma_w2", "sigma_b2"): ``chi_1``, ``chi_c``, ``phase`` (0 ordered, 1 critical,
        2 chaotic); predicted depth scales ``xi_trainability`` = -1 / log chi_1 (ordered; inf
        otherwise) and ``xi_generalisation`` = -1 / (log chi_c - log chi_1) (chaotic; inf
        otherwise); fitted rates ``lambda_min_rate`` (slope of log(lambda_min / l), predicted
        log chi_1 in the ordered phase), ``kappa_rate`` (slope of log(kappa l), predicted
        -log chi_1) and ``predictor_rate`` (slope of log(predictor_norm / l), predicted
        log chi_c - log chi_1 in the chaotic phase). attrs: the provenance (``conventions``,
        ``ntkgap_version``, ``creation_time``, ``config``; see
        :func:`ntktheory._provenance.provenance`) and ``references``.

    Raises
    ------
    TypeError, ValueError
        For invalid inputs or grids.

    References
    ----------
    Xiao, Pennington & Schoenholz 2020, arXiv:1912.13053, Sec. 3-4 and Table 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((6, 8)); x *= np.sqrt(8) / np.linalg.norm(x, axis=1, keepdims=True)
    >>> ds = large_depth_analysis(x[:4], x[4:], activation="erf", depth=40, sigma_w2=[1.0], sigma_b2=[0.1])
    >>> rate, chi_1 = ds.lambda_min_rate.item(), ds.chi_1.item()   # ordered: rate ~ log chi_1
    >>> bool(abs(rate - np.log(chi_1)) < 0.05 * abs(np.log(chi_1)))
    True
    """
    import xarray as xr

    act, xtr, xte, depth, w, b, start = _validated(activation, x_train, x_test, depth, sigma_w2, sigma_b2, fit_from)
    m = xtr.shape[0]
    depths = np.arange(1, depth + 1)
    lam_max, lam_min, pred = _spectra(act, np.vstack([xtr, xte]), m, depth, w, b)
    kappa = lam_max / lam_min
    mf, xi_train, xi_gen = _predicted_scales(act, w, b)
    rates = _fitted_rates(depths, lam_max, lam_min, kappa, pred, start)
    data = _variables(lam_max, lam_min, kappa, pred, mf, xi_train, xi_gen, rates, start)
    config = {"activation": act.name, "depth": depth, "n_train": m, "n_test": int(xte.shape[0]),
              "n_features": int(xtr.shape[1]), "fit_from": start, "parameterization": "ntk"}
    return xr.Dataset(
        data,
        coords={"sigma_w2": w, "sigma_b2": b, "depth": depths},
        attrs={
            **provenance(config, conventions="large_depth"),
            "references": "arXiv:1912.13053",
        },
    )


def _validated(activation, x_train, x_test, depth, sigma_w2, sigma_b2, fit_from):
    """Check the arguments of :func:`large_depth_analysis`.

    Parameters
    ----------
    activation, x_train, x_test, depth, sigma_w2, sigma_b2, fit_from
        As for :func:`large_depth_analysis`.

    Returns
    -------
    tuple
        ``(act, x_train, x_test, depth, sigma_w2, sigma_b2, fit_from)``: the Activation, the
        checked input arrays, the depth, the 1-D variance grids and the first fitted depth.

    Raises
    ------
    TypeError, ValueError
        For invalid inputs or grids.
    """
    act = get_activation(activation)
    xtr = check_inputs("x_train", x_train)
    xte = check_inputs("x_test", x_test, features=xtr.shape[1])
    if xtr.shape[0] < 2:
        raise ValueError(f"`x_train` needs at least 2 points for a spectrum; got shape {xtr.shape!r}.")
    depth = check_int("depth", depth, minimum=4)
    w = np.atleast_1d(_variance_array("sigma_w2", sigma_w2, positive=True)).reshape(-1)
    b = np.atleast_1d(_variance_array("sigma_b2", sigma_b2, positive=False)).reshape(-1)
    start = depth // 4 if fit_from is None else check_int("fit_from", fit_from, minimum=1)
    if start > depth - 2:
        raise ValueError(f"`fit_from` must be <= depth - 2 = {depth - 2}, got {start!r}.")
    return act, xtr, xte, depth, w, b, start


def _spectra(act, x_all: np.ndarray, m: int, depth: int, w: np.ndarray, b: np.ndarray):
    """The kernel sweep: NTK spectra and mean-predictor norms at every grid point and depth.

    Parameters
    ----------
    act
        The Activation.
    x_all
        Training inputs (the first ``m`` rows) stacked on the test inputs.
    m
        Number of training inputs.
    depth
        Largest number of hidden layers; depths 1..depth are computed.
    w, b
        1-D grids of sigma_w^2 and sigma_b^2.

    Returns
    -------
    tuple of ndarray
        ``(lambda_max, lambda_min, predictor_norm)``, each of shape (w.size, b.size, depth).
    """
    import ntktheory

    shape3 = (w.size, b.size, depth)
    lam_max, lam_min, pred = np.empty(shape3), np.empty(shape3), np.empty(shape3)
    for i, sw2 in enumerate(w):
        for j, sb2 in enumerate(b):
            ds = ntktheory.kernels(x_all, activation=act, depth=depth, sigma_w=math.sqrt(sw2),
                                   sigma_b=math.sqrt(sb2), all_depths=True)
            lam_max[i, j], lam_min[i, j], pred[i, j] = _depth_spectrum(ds.ntk.values, m)
    return lam_max, lam_min, pred


def _depth_spectrum(theta: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The eigen-solves: extreme eigenvalues of Theta(X, X) and the mean-predictor norm per depth.

    Parameters
    ----------
    theta
        NTK of training and test inputs at every depth, shape (depth, m + m*, m + m*).
    m
        Number of training inputs (the leading rows and columns).

    Returns
    -------
    tuple of ndarray
        ``(lambda_max, lambda_min, predictor_norm)``, each of shape (depth,), the last being
        ||Theta(X*, X) Theta(X, X)^-1 (I - 1 1^T / m)||_F.
    """
    depth = theta.shape[0]
    lam_max, lam_min, pred = np.empty(depth), np.empty(depth), np.empty(depth)
    centre = np.eye(m) - np.full((m, m), 1.0 / m)
    for k in range(depth):
        tr = theta[k, :m, :m]
        ev = np.linalg.eigvalsh(tr)
        lam_max[k], lam_min[k] = ev[-1], ev[0]
        p = np.linalg.solve(tr, theta[k, :m, m:]).T  # Theta(X*, X) Theta(X, X)^-1
        pred[k] = np.linalg.norm(p @ centre)
    return lam_max, lam_min, pred


def _predicted_scales(act, w: np.ndarray, b: np.ndarray):
    """Mean field on the grid and the depth scales it predicts.

    Parameters
    ----------
    act
        The Activation.
    w, b
        1-D grids of sigma_w^2 and sigma_b^2.

    Returns
    -------
    tuple
        ``(mf, xi_trainability, xi_generalisation)``: the :class:`~ntktheory.MeanField` on the
        (w.size, b.size) grid, -1 / log chi_1 in the ordered phase and
        -1 / (log chi_c - log chi_1) in the chaotic phase (inf elsewhere).
    """
    W, B = np.meshgrid(w, b, indexing="ij")
    mf = mean_field(act, W, B)
    with np.errstate(divide="ignore"):
        log_chi1, log_chic = np.log(mf.chi_1), np.log(mf.chi_c)
    ordered, chaotic = mf.phase == 0, mf.phase == 2
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_train = np.where(ordered, -1.0 / log_chi1, np.inf)
        xi_gen = np.where(chaotic, -1.0 / (log_chic - log_chi1), np.inf)
    return mf, xi_train, xi_gen


def _fitted_rates(depths, lam_max, lam_min, kappa, pred, start: int) -> dict[str, np.ndarray]:
    """Decay rates fitted to the computed spectra at every grid point (see :func:`_fit_rate`).

    Parameters
    ----------
    depths
        The depths 1..L.
    lam_max, lam_min, kappa, pred
        Arrays of shape (n_w, n_b, L) from :func:`_spectra`.
    start
        Smallest depth used in the fits.

    Returns
    -------
    dict of str to ndarray
        ``lambda_min_rate``, ``kappa_rate`` and ``predictor_rate``, each of shape (n_w, n_b).
    """
    grid = lam_max.shape[:2]
    rates = {name: np.full(grid, np.nan) for name in ("lambda_min_rate", "kappa_rate", "predictor_rate")}
    for i in range(grid[0]):
        for j in range(grid[1]):
            rel_min = lam_min[i, j] / lam_max[i, j]
            ok = rel_min > _FIT_FLOOR  # below this the eigenvalue is rounding noise
            with np.errstate(divide="ignore", invalid="ignore"):
                rates["lambda_min_rate"][i, j] = _fit_rate(depths, np.log(rel_min / depths), ok, start)
                rates["kappa_rate"][i, j] = _fit_rate(depths, np.log(kappa[i, j] * depths), ok, start)
                rates["predictor_rate"][i, j] = _fit_rate(
                    depths, np.log(pred[i, j] / depths), pred[i, j] > _FIT_FLOOR, start)
    return rates


def _variables(lam_max, lam_min, kappa, pred, mf, xi_train, xi_gen, rates, start: int) -> dict:
    """The data variables of the Dataset of :func:`large_depth_analysis`, with their attrs.

    Parameters
    ----------
    lam_max, lam_min, kappa, pred
        Per-depth arrays of shape (n_w, n_b, L).
    mf, xi_train, xi_gen
        From :func:`_predicted_scales`.
    rates
        From :func:`_fitted_rates`.
    start
        First fitted depth (for the rates' long names).

    Returns
    -------
    dict
        Name to ``(dims, values, attrs)``, in the Dataset's order.
    """
    d3 = ("sigma_w2", "sigma_b2", "depth")
    d2 = ("sigma_w2", "sigma_b2")
    data = {
        "lambda_max": (d3, lam_max, {"long_name": "largest eigenvalue of Theta(X, X)"}),
        "lambda_min": (d3, lam_min, {"long_name": "smallest eigenvalue of Theta(X, X)"}),
        "kappa": (d3, kappa, {"long_name": "condition number lambda_max / lambda_min"}),
        "predictor_norm": (d3, pred, {"long_name": "||Theta(X*, X) Theta(X, X)^-1 (I - 11^T/m)||_F"}),
        "chi_1": (d2, mf.chi_1, {}),
        "chi_c": (d2, mf.chi_c, {}),
        "phase": (d2, mf.phase.astype(np.int8), {"flag_values": np.array([0, 1, 2], dtype=np.int8),
                                                 "flag_meanings": "ordered critical chaotic"}),
        "xi_trainability": (d2, xi_train, {"long_name": "-1/log chi_1 in the ordered phase (layers)"}),
        "xi_generalisation": (d2, xi_gen, {"long_name": "-1/(log chi_c - log chi_1) in the chaotic phase"}),
    }
    for name, values in rates.items():
        data[name] = (d2, values, {"long_name": f"fitted slope (linregress over depth >= {start})"})
    return data
