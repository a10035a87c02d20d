"""Gap metrics between infinite-width theory and finite networks.

Every function takes numpy arrays or xarray DataArrays. Kernel arguments have their two point
dims last (``("x1", "x2")`` for DataArrays); any leading dims (``seed``, ``width``, ...) are
broadcast over, so that one call evaluates a whole sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ntktheory._fit import fit_line

from ._schema import KERNEL_DIMS

__all__ = [
    "cka",
    "condition_number",
    "diagonal_relative_variance",
    "eigenvalues",
    "function_distance",
    "kernel_regression_prediction",
    "relative_frobenius",
    "relative_kernel_change",
    "relative_variance",
    "width_scaling_exponent",
]

ArrayLike = Any


def _kernel_op(func, *kernels: ArrayLike, output_core_dims=((),), numpy_only: bool = False) -> Any:
    """Apply ``func`` on the last two axes of numpy arrays, or on ("x1", "x2") of DataArrays.

    DataArrays may be Dask-backed (``xarray.open_zarr``): a ``func`` written with array functions
    that Dask implements runs lazily on the Dask arrays; one that needs numpy (``numpy_only``, e.g.
    ``eigvalsh``) runs block by block, each block holding whole kernels.
    """
    if any(isinstance(k, xr.DataArray) for k in kernels):
        kernels = tuple(k if isinstance(k, xr.DataArray) else xr.DataArray(k, dims=KERNEL_DIMS) for k in kernels)
        for k in kernels:
            missing = [d for d in KERNEL_DIMS if d not in k.dims]
            if missing:
                raise ValueError(f"kernel DataArray needs dims {KERNEL_DIMS!r}; {k.name!r} has {k.dims!r}.")
        extra = {}
        if numpy_only and any(k.chunks is not None for k in kernels):
            sizes = {d: kernels[0].sizes["x1"] for dims in output_core_dims for d in dims}
            extra = {"dask": "parallelized", "output_dtypes": [np.float64] * len(output_core_dims),
                     "dask_gufunc_kwargs": {"allow_rechunk": True, "output_sizes": sizes}}
        return xr.apply_ufunc(
            func,
            *kernels,
            input_core_dims=[list(KERNEL_DIMS)] * len(kernels),
            output_core_dims=list(output_core_dims),
            **({"dask": "allowed"} | extra),
        )
    arrays = [np.asarray(k, dtype=np.float64) for k in kernels]
    for a in arrays:
        if a.ndim < 2:
            raise ValueError(f"a kernel must have at least 2 dims (points x points); got shape {a.shape!r}.")
    return func(*arrays)


def _fro(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(np.square(a), axis=(-2, -1)))


def relative_frobenius(empirical: ArrayLike, theory: ArrayLike) -> Any:
    r"""Relative Frobenius distance of a finite-network kernel from its infinite-width value.

    .. math:: \mathrm{gap} = \frac{\lVert K_\mathrm{emp} - K_\mathrm{theory} \rVert_F}
              {\lVert K_\mathrm{theory} \rVert_F}

    In the NTK parameterisation the empirical NTK at initialisation concentrates around the
    analytic one with fluctuations O(n^{-1/2}) in the width n (Jacot et al. 2018, arXiv:1806.07572,
    Thm. 1; Hanin & Nica 2019, arXiv:1909.05989), so this gap scales like width^{-1/2}.

    Parameters
    ----------
    empirical, theory
        Kernels with the point dims last; leading dims broadcast.

    Returns
    -------
    float array or DataArray over the leading dims.

    Examples
    --------
    >>> round(float(relative_frobenius(np.array([[1.0, 0.0], [0.0, 2.0]]), np.eye(2))), 12)
    0.707106781187
    """
    return _kernel_op(lambda e, t: _fro(e - t) / _fro(t), empirical, theory)


def relative_kernel_change(kernel_t: ArrayLike, kernel_0: ArrayLike) -> Any:
    r"""Relative change of a kernel during training, :math:`\lVert K_t - K_0\rVert_F / \lVert K_0\rVert_F`.

    Lazy training predicts that it vanishes with width (Jacot et al. 2018; Lee et al. 2019,
    arXiv:1902.06720, Thm. 2.1, rate O(n^{-1/2}); measured slopes are often -0.6 to -1.0).

    Examples
    --------
    >>> float(relative_kernel_change(2 * np.eye(3), np.eye(3)))
    1.0
    """
    return relative_frobenius(kernel_t, kernel_0)


def relative_variance(kernel: ArrayLike, dim: str | int = "seed") -> Any:
    r"""Relative variance of a kernel over initialisations (seeds).

    .. math:: \frac{\sum_{ij} \widehat{\mathrm{Var}}_s[K_{ij}]}{\sum_{ij} \widehat{\mathbb E}_s[K_{ij}]^2}

    with the unbiased (ddof = 1) variance over ``dim``. For the NTK, finite-width theory predicts
    Var/E^2 = O(1/n) at fixed depth, and exp(5 sum_l 1/n_l) - 1 growth with depth/width for ReLU
    (Hanin & Nica 2019, arXiv:1909.05989, Thm. 1).

    Parameters
    ----------
    kernel
        Kernels with a seed axis (``dim``, a name for DataArrays or an axis for arrays).
    dim
        The dim (or axis) holding independent initialisations.

    Examples
    --------
    >>> k = np.stack([np.eye(2), 3 * np.eye(2)])  # mean 2 I, variance 2 on the diagonal
    >>> float(relative_variance(k, dim=0))
    0.5
    """
    if isinstance(kernel, xr.DataArray):
        if dim not in kernel.dims:
            raise ValueError(f"`dim` {dim!r} is not a dim of the kernel; dims are {kernel.dims!r}.")
        var = kernel.var(dim, ddof=1)
        mean = kernel.mean(dim)
        return var.sum(KERNEL_DIMS) / np.square(mean).sum(KERNEL_DIMS)
    arr = np.asarray(kernel, dtype=np.float64)
    var = arr.var(axis=dim, ddof=1)
    mean = arr.mean(axis=dim)
    return var.sum(axis=(-2, -1)) / np.square(mean).sum(axis=(-2, -1))


def diagonal_relative_variance(kernel: ArrayLike, dim: str | int = "seed") -> Any:
    r"""Relative variance of the kernel's diagonal over seeds, averaged over the points.

    .. math:: \frac{1}{N}\sum_x \frac{\widehat{\mathrm{Var}}_s[K(x, x)]}{\widehat{\mathbb E}_s[K(x, x)]^2}

    For the ReLU NTK this is the quantity of Hanin & Nica 2019 (arXiv:1909.05989, Thm. 1):
    E[Theta(x,x)^2] / E[Theta(x,x)]^2 - 1 ~ exp(5 beta) - 1, beta = sum_l 1/n_l (up to constants).

    Examples
    --------
    >>> k = np.stack([np.diag([1.0, 2.0]), np.diag([3.0, 2.0])])
    >>> float(diagonal_relative_variance(k, dim=0))  # point 1: var 2 / mean^2 4; point 2: 0
    0.25
    """
    if isinstance(kernel, xr.DataArray):
        if dim not in kernel.dims:
            raise ValueError(f"`dim` {dim!r} is not a dim of the kernel; dims are {kernel.dims!r}.")
        diag = xr.apply_ufunc(np.diagonal, kernel, input_core_dims=[list(KERNEL_DIMS)],
                              output_core_dims=[["_point"]], kwargs={"axis1": -2, "axis2": -1}, dask="allowed")
        return (diag.var(dim, ddof=1) / np.square(diag.mean(dim))).mean("_point")
    arr = np.asarray(kernel, dtype=np.float64)
    diag = np.diagonal(arr, axis1=-2, axis2=-1)
    return np.mean(diag.var(axis=dim, ddof=1) / np.square(diag.mean(axis=dim)), axis=-1)


def _eigvalsh(k: np.ndarray) -> np.ndarray:
    k = 0.5 * (k + np.swapaxes(k, -1, -2))
    out = np.full(k.shape[:-1], np.nan)
    flat_k = k.reshape(-1, *k.shape[-2:])
    flat_o = out.reshape(-1, k.shape[-1])
    for i, m in enumerate(flat_k):
        if np.all(np.isfinite(m)):
            flat_o[i] = np.linalg.eigvalsh(m)[::-1]
    return out


def eigenvalues(kernel: ArrayLike) -> Any:
    """Eigenvalues of a symmetric kernel matrix, largest first.

    Returns an array with the point dims replaced by one dim ``eig`` (index 0 = largest); NaN for
    a matrix with non-finite entries.

    Examples
    --------
    >>> eigenvalues(np.diag([1.0, 3.0, 2.0])).tolist()
    [3.0, 2.0, 1.0]
    """
    if isinstance(kernel, xr.DataArray):
        out = _kernel_op(_eigvalsh, kernel, output_core_dims=(("eig",),), numpy_only=True)
        return out.assign_coords(eig=np.arange(out.sizes["eig"]))
    return _eigvalsh(np.asarray(kernel, dtype=np.float64))


def condition_number(kernel: ArrayLike) -> Any:
    r"""Condition number :math:`\kappa = \lambda_\max / \lambda_\min` of a symmetric PSD kernel.

    kappa governs the trainability of the linearised network (Xiao, Pennington & Schoenholz 2020,
    arXiv:1912.13053, Sec. 3): the slowest mode converges at rate eta lambda_min. Returns inf when
    lambda_min <= 0 (numerically singular).

    Examples
    --------
    >>> float(condition_number(np.diag([4.0, 2.0])))
    2.0
    """

    def kappa(k: np.ndarray) -> np.ndarray:
        ev = _eigvalsh(k)
        lo = ev[..., -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(lo > 0, ev[..., 0] / np.where(lo > 0, lo, 1.0), np.where(np.isnan(lo), np.nan, np.inf))

    return _kernel_op(kappa, kernel, numpy_only=True)


def cka(kernel_a: ArrayLike, kernel_b: ArrayLike) -> Any:
    r"""Centered kernel alignment (Cortes, Mohri & Rostamizadeh 2012, arXiv:1203.0550, Def. 1).

    .. math:: \mathrm{CKA}(K, L) = \frac{\langle HKH, HLH\rangle_F}{\lVert HKH\rVert_F \lVert HLH\rVert_F},
              \quad H = I - \tfrac{1}{N} 1 1^T

    1 when the kernels agree up to scale and a constant shift; in [0, 1] for PSD kernels.

    Examples
    --------
    >>> k = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> float(cka(k, 3 * k + 5))
    1.0
    """

    def _cka(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a - a.mean(-1, keepdims=True)
        a = a - a.mean(-2, keepdims=True)
        b = b - b.mean(-1, keepdims=True)
        b = b - b.mean(-2, keepdims=True)
        return np.sum(a * b, axis=(-2, -1)) / (_fro(a) * _fro(b))

    return _kernel_op(_cka, kernel_a, kernel_b)


def kernel_regression_prediction(
    kernel_test_train: np.ndarray,
    kernel_train: np.ndarray,
    y_train: np.ndarray,
    t: float | np.ndarray,
    *,
    learning_rate: float,
    f0_test: np.ndarray | None = None,
    f0_train: np.ndarray | None = None,
    time: str = "continuous",
) -> np.ndarray:
    r"""Prediction of gradient-descent training of the linearised network (Lee et al. 2019).

    .. math:: f_t(x) = f_0(x) + \Theta(x, X)\,\Theta^{-1}\bigl(I - e^{-\eta \Theta t / N}\bigr)
              \bigl(Y - f_0(X)\bigr)

    for the loss (1/2N) sum_i ``|f(x_i) - y_i|^2`` over the N training points (that of
    :func:`empirical.train`; Lee et al. 2019, arXiv:1902.06720, Eqs. 9-11). With ``f0_*`` None this
    is the mean over initialisations (f_0 drops out), i.e. the infinite-width kernel-regression
    predictor at time t (t = inf gives Theta(x, X) Theta^-1 Y). The mean is
    :func:`ntktheory.predict_from_kernels` with targets Y - f_0(X) (the prediction is linear in
    them) and, for k outputs, its learning rate k eta (its loss is 1/(2 N k) ``|f - Y|^2``).

    Parameters
    ----------
    kernel_test_train
        Theta(x, X), shape (M, N).
    kernel_train
        Theta(X, X), shape (N, N), symmetric positive semi-definite.
    y_train
        Targets Y, shape (N,) or (N, k, ...).
    t
        Number of gradient steps (continuous time eta t in units of the learning rate); scalar or
        1-D array of times (a leading time axis is added to the result). Whole numbers (or inf)
        with ``time="discrete"``.
    learning_rate
        eta.
    f0_test, f0_train
        Network outputs at initialisation on test and training points (omit both for the mean).
    time
        ``"continuous"`` (gradient flow, the formula above) or ``"discrete"``: t steps of gradient
        descent of the linearised model, exp(-eta Theta t / N) replaced by (I - eta Theta / N)^t,
        exact for the linear model trained with step size eta.

    Returns
    -------
    numpy.ndarray
        f_t on the test points, shape ``np.shape(t) + y.shape[1:]`` with M in place of N.

    Examples
    --------
    >>> K = np.array([[2.0, 0.0], [0.0, 1.0]]); y = np.array([1.0, -1.0])
    >>> kernel_regression_prediction(K, K, y, np.inf, learning_rate=0.1).tolist()
    [1.0, -1.0]
    """
    from ntktheory import predict_from_kernels

    k_tx = np.asarray(kernel_test_train, dtype=np.float64)
    k_xx = np.asarray(kernel_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    n = k_xx.shape[0]
    if k_xx.shape != (n, n) or k_tx.ndim != 2 or k_tx.shape[-1] != n or y.shape[0] != n:
        raise ValueError(
            f"shapes do not match: kernel_test_train {k_tx.shape!r}, kernel_train {k_xx.shape!r}, "
            f"y_train {y.shape!r}; need (M, N), (N, N), (N, ...)."
        )
    if time not in ("continuous", "discrete"):
        raise ValueError(f"`time` must be 'continuous' or 'discrete'; got {time!r}.")
    resid = y - (0.0 if f0_train is None else np.asarray(f0_train, dtype=np.float64))
    flat = resid.reshape(n, -1)
    when = {"steps" if time == "discrete" else "time": np.atleast_1d(np.asarray(t, dtype=np.float64))}
    mean = predict_from_kernels(k_xx, k_tx, flat, kernel="ntk", covariance=False,
                                learning_rate=learning_rate * flat.shape[1], **when)["mean"].values
    pred = mean.reshape(mean.shape[0], k_tx.shape[0], *y.shape[1:])
    if f0_test is not None:
        pred = pred + np.asarray(f0_test, dtype=np.float64)
    return pred if np.ndim(t) else pred[0]


def function_distance(f: ArrayLike, g: ArrayLike, dim: str | Sequence[str] | None = None) -> Any:
    r"""Root-mean-square distance between two functions on the same points, relative to ``g``.

    .. math:: d(f, g) = \sqrt{\textstyle\sum_i (f_i - g_i)^2} \big/ \sqrt{\textstyle\sum_i g_i^2}

    Used for the network vs its linearisation, and vs the kernel-regression prediction (Lee et al.
    2019, arXiv:1902.06720, Fig. 3 reports the same RMSE comparison).

    Parameters
    ----------
    f, g
        Function values; for DataArrays the sum runs over ``dim`` (default: ``"test"``), for arrays
        over the last axis.

    Examples
    --------
    >>> float(function_distance(np.array([1.0, 1.0]), np.array([1.0, 2.0])))
    0.4472135954999579
    """
    if isinstance(f, xr.DataArray) or isinstance(g, xr.DataArray):
        dims = ["test"] if dim is None else ([dim] if isinstance(dim, str) else list(dim))
        return np.sqrt(np.square(f - g).sum(dims, skipna=False)) / np.sqrt(np.square(g).sum(dims, skipna=False))
    f = np.asarray(f, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    return np.sqrt(np.sum((f - g) ** 2, axis=-1)) / np.sqrt(np.sum(g**2, axis=-1))


def _linregress_ci(logx: np.ndarray, logy: np.ndarray, confidence: float) -> np.ndarray:
    fit = fit_line(logx, logy, confidence=confidence)
    return np.array([fit.slope, fit.slope - fit.half_width, fit.slope + fit.half_width, fit.intercept, fit.stderr,
                     fit.rvalue])


def width_scaling_exponent(
    gap: xr.DataArray,
    dim: str = "width",
    *,
    sample_dims: Sequence[str] = ("seed",),
    confidence: float = 0.95,
) -> xr.Dataset:
    r"""Fit ``gap ~ C * width^slope`` in log-log by least squares, with a confidence interval.

    log(gap) = intercept + slope * log(width) is fitted by ordinary least squares on every
    finite point (all entries of ``sample_dims`` count as separate samples); the interval is
    slope +/- t_{n-2} * stderr. Theory: slope = -1/2 for the NTK (and NNGP) at initialisation in the
    NTK parameterisation (Jacot et al. 2018; Hanin & Nica 2019); the relative kernel change during
    training measures -1/2 to -1 (Lee et al. 2019, arXiv:1902.06720, Fig. 1 and Thm. 2.1).

    Parameters
    ----------
    gap
        Positive gap values with a ``dim`` coordinate (the widths).
    dim
        The width dim.
    sample_dims
        Dims pooled as repeated measurements (those absent from ``gap`` are ignored).
    confidence
        Level of the two-sided interval, in (0, 1).

    Returns
    -------
    xarray.Dataset
        ``slope``, ``slope_low``, ``slope_high``, ``intercept``, ``stderr``, ``rvalue`` over the
        remaining dims.

    Examples
    --------
    >>> g = xr.DataArray(3.0 * np.array([64, 256, 1024]) ** -0.5, dims="width",
    ...                  coords={"width": [64, 256, 1024]})
    >>> round(float(width_scaling_exponent(g).slope), 12)
    -0.5
    """
    if not isinstance(gap, xr.DataArray):
        raise TypeError(f"`gap` must be an xarray.DataArray with a {dim!r} dim; got {type(gap).__name__}.")
    if dim not in gap.dims:
        raise ValueError(f"`dim` {dim!r} is not a dim of `gap`; dims are {gap.dims!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must lie in (0, 1); got {confidence!r}.")
    if gap.chunks is not None:  # Dask-backed (xarray.open_zarr): the fit needs every sample at once
        gap = gap.compute()
    samples = [d for d in sample_dims if d in gap.dims]
    core = [dim, *samples]
    logx = np.log(gap[dim].astype(np.float64)).broadcast_like(gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.log(gap.where(gap > 0))
    stacked_x = logx.stack(_sample=core)
    stacked_y = logy.stack(_sample=core)
    fit = xr.apply_ufunc(
        lambda lx, ly: np.apply_along_axis(lambda z: _linregress_ci(z[: z.size // 2], z[z.size // 2 :], confidence),
                                           -1, np.concatenate([lx, ly], axis=-1)),
        stacked_x.drop_vars(["_sample", *core], errors="ignore"),
        stacked_y.drop_vars(["_sample", *core], errors="ignore"),
        input_core_dims=[["_sample"], ["_sample"]],
        output_core_dims=[["_fit"]],
    )
    names = ["slope", "slope_low", "slope_high", "intercept", "stderr", "rvalue"]
    out = xr.Dataset({n: fit.isel(_fit=i, drop=True) for i, n in enumerate(names)})
    out.attrs["confidence"] = confidence
    out.attrs["model"] = f"log(gap) = intercept + slope * log({dim}), least squares"
    return out
