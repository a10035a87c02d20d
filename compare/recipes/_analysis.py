"""Pure analysis functions of the recipes: dispersion ratios, rate fits, kernel dynamics, tolerances.

Everything here is numpy/scipy only (no torch), so that each function can be tested on synthetic
inputs with known answers. Power-law fits in width use :func:`compare._metrics.width_scaling_exponent`;
the functions here cover what the recipes need beyond it:

* :func:`second_moment_ratio` -- E[K^2] / E[K]^2 over seeds with a bootstrap interval
  (Hanin & Nica 2019; Seleznova & Kutyniok 2022);
* :func:`fit_exponential_rate` -- rate r of ratio ~ C exp(r beta), weighted least squares with a
  t-interval;
* :func:`kernel_gd` -- outputs of discrete-time gradient descent on the linear model of a kernel
  (the linearised network, exactly, when the kernel is its empirical NTK at initialisation);
* :func:`predicted_train_loss` -- the training loss that kernel gradient descent predicts from the
  kernel's spectrum;
* :func:`ntk_gp_variance` -- predictive variance of the NTK-GP over initialisations (Lee et al. 2019);
* :func:`first_width_within` -- the smallest width from which a relative error stays within a
  tolerance;
* :func:`variance_ratio` -- measured variance over seeds / predicted variance, with a bootstrap
  interval over seeds, and :func:`judge_ratio_within` -- whether such an interval lies within a
  factor of 1;
* :func:`bootstrap_interval` -- any statistic of independent samples (seeds, test points) with a
  percentile bootstrap interval, for claims that compare a median or a mean with a threshold;
* :func:`fit_power_approach` -- the approach of a ratio to 1, ratio - 1 ~ C width^slope, with an
  interval for the slope;
* :func:`kernel_part_dispersion` -- the seed-to-seed fluctuation of a kernel's diagonal and of its
  input-dependent (doubly centred) part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ntktheory._fit import fit_line

from .._metrics import kernel_regression_prediction

__all__ = [
    "ExponentialFit",
    "bootstrap_interval",
    "first_width_within",
    "fit_exponential_rate",
    "fit_power_approach",
    "judge_ratio_within",
    "kernel_gd",
    "kernel_part_dispersion",
    "ntk_gp_variance",
    "predicted_train_loss",
    "second_moment_ratio",
    "variance_ratio",
]


def second_moment_ratio(
    samples: np.ndarray, *, n_boot: int = 400, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    r"""E[K^2] / E[K]^2 over independent samples (axis 0), with a bootstrap interval of its log.

    For samples with further axes (several diagonal entries of the same networks), the ratio is
    computed per entry and averaged; the bootstrap resamples whole seeds, so correlations between
    entries of one network are kept.

    Parameters
    ----------
    samples
        Array (S, ...) of S independent realisations (S >= 2).
    n_boot
        Bootstrap resamples.
    confidence
        Level of the percentile interval.
    seed
        Seed of the bootstrap.

    Returns
    -------
    tuple
        (ratio, standard error of log(ratio), half-width of the percentile interval of the ratio).

    Examples
    --------
    >>> r, se, hw = second_moment_ratio(np.array([1.0, 3.0]), n_boot=10)
    >>> r  # E[K^2] = 5, E[K]^2 = 4
    1.25
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"`samples` needs at least 2 realisations on axis 0; got shape {x.shape!r}.")
    flat = x.reshape(x.shape[0], -1)

    def ratio(a: np.ndarray) -> float:
        return float(np.mean(np.mean(a**2, axis=0) / np.mean(a, axis=0) ** 2))

    value = ratio(flat)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, flat.shape[0], size=(n_boot, flat.shape[0]))
    boots = np.array([ratio(flat[i]) for i in idx])
    boots = boots[np.isfinite(boots) & (boots > 0)]
    if boots.size < 2 or not math.isfinite(value):
        return value, math.nan, math.nan
    lo, hi = np.quantile(boots, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return value, float(np.std(np.log(boots), ddof=1)), float((hi - lo) / 2)


class ExponentialFit(tuple):
    """(rate, half-width of its CI, intercept, r^2) of log(y) = intercept + rate * x."""

    __slots__ = ()

    def __new__(cls, rate: float, half_width: float, intercept: float, r2: float):
        return super().__new__(cls, (rate, half_width, intercept, r2))

    rate = property(lambda self: self[0])
    half_width = property(lambda self: self[1])
    intercept = property(lambda self: self[2])
    r2 = property(lambda self: self[3])


def fit_exponential_rate(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    se_log_y: Sequence[float] | np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    through_origin: bool = False,
) -> ExponentialFit:
    r"""Fit y = C exp(rate * x) by (weighted) least squares on log y, with a t-interval for the rate.

    Parameters
    ----------
    x, y
        Abscissae (e.g. beta = depth / width) and positive values (e.g. E[K^2]/E[K]^2).
    se_log_y
        Standard errors of log y (weights 1 / se^2); None for an unweighted fit. With weights, the
        residual scale is estimated from the data (so the interval is honest when the stated errors
        are too small).
    confidence
        Level of the interval.
    through_origin
        Fit log y = rate * x (C = 1) instead.

    Returns
    -------
    ExponentialFit
        rate, half-width of the interval, intercept (log C; 0 when ``through_origin``) and r^2.
        All NaN when fewer than 3 finite points (2 through the origin) remain.

    Examples
    --------
    >>> fit = fit_exponential_rate([0.1, 0.2, 0.3, 0.4], np.exp(5 * np.array([0.1, 0.2, 0.3, 0.4])))
    >>> round(fit.rate, 10), round(fit.half_width, 10)
    (5.0, 0.0)
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(np.asarray(y, dtype=np.float64))
    w = None if se_log_y is None else 1.0 / np.asarray(se_log_y, dtype=np.float64) ** 2
    fit = fit_line(x, ly, weights=w, through_origin=through_origin, confidence=confidence)
    return ExponentialFit(fit.slope, fit.half_width, fit.intercept, fit.r2)


def kernel_gd(
    kernel_train: np.ndarray,
    kernel_test_train: np.ndarray,
    y_train: np.ndarray,
    steps: Sequence[int] | np.ndarray,
    *,
    learning_rate: float,
    f0_train: np.ndarray | None = None,
    f0_test: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Outputs of discrete-time gradient descent on the linear model of a kernel.

    For the loss (1/2N)|f(X) - Y|^2 and a model linear in its parameters with tangent kernel Theta,
    one step of gradient descent moves the outputs by -(eta/N) Theta(., X)(f(X) - Y). After t steps

    .. math::

        f_t(x) = f_0(x) - \Theta(x, X)\,V\,\mathrm{diag}\Bigl(\frac{1 - (1 - \eta\lambda_i/N)^t}{\lambda_i}\Bigr)
        V^T (f_0(X) - Y)

    with Theta(X, X) = V diag(lambda) V^T. With Theta the empirical NTK at initialisation and f_0
    the network's initial outputs, this is *exactly* the linearised network trained with the same
    rate (Lee et al. 2019, arXiv:1902.06720, Eq. 7-9, in discrete time); with the analytic NTK it
    is the infinite-width prediction. It is
    :func:`compare._metrics.kernel_regression_prediction` with ``time="discrete"``, evaluated on the
    training and test points at once, so that a measured network and its prediction share the same
    time discretisation.

    Parameters
    ----------
    kernel_train
        Theta(X, X), (N, N).
    kernel_test_train
        Theta(x, X), (M, N).
    y_train
        Targets (N,).
    steps
        Step counts t (1-D, non-negative).
    learning_rate
        eta.
    f0_train, f0_test
        Outputs at t = 0 (zeros when None: the mean over initialisations).

    Returns
    -------
    tuple of numpy.ndarray
        (f_t on X, shape (T, N)), (f_t on x, shape (T, M)).

    Examples
    --------
    >>> K = np.diag([2.0, 1.0]); y = np.array([1.0, -1.0])
    >>> f_train, f_test = kernel_gd(K, K, y, [0, 10_000], learning_rate=0.5)
    >>> np.round(f_train[-1], 8).tolist()
    [1.0, -1.0]
    """
    k_xx = np.asarray(kernel_train, dtype=np.float64)
    k_tx = np.asarray(kernel_test_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    n = k_xx.shape[0]
    if k_xx.shape != (n, n) or k_tx.ndim != 2 or k_tx.shape[1] != n or y.shape != (n,):
        raise ValueError(
            f"shapes do not match: kernel_train {k_xx.shape!r}, kernel_test_train {k_tx.shape!r}, "
            f"y_train {y.shape!r}; need (N, N), (M, N), (N,)."
        )
    f0x = np.zeros(n) if f0_train is None else np.asarray(f0_train, dtype=np.float64)
    f0t = np.zeros(k_tx.shape[0]) if f0_test is None else np.asarray(f0_test, dtype=np.float64)
    # Training and test points in one call: rows [X; x] of the kernel against X.
    both = kernel_regression_prediction(
        np.vstack([k_xx, k_tx]), k_xx, y, np.asarray(steps, dtype=np.float64), learning_rate=learning_rate,
        f0_test=np.concatenate([f0x, f0t]), f0_train=f0x, time="discrete",
    )
    return both[:, :n], both[:, n:]


def predicted_train_loss(
    kernel_train: np.ndarray,
    residual0: np.ndarray,
    steps: Sequence[int] | np.ndarray,
    *,
    learning_rate: float,
) -> np.ndarray:
    r"""Training loss (1/2N)|f_t(X) - Y|^2 that kernel gradient descent predicts from the spectrum.

    .. math:: L_t = \frac{1}{2N} \sum_i (1 - \eta\lambda_i / N)^{2t} (v_i^T r_0)^2

    where r_0 = f_0(X) - Y. Each eigendirection converges at its own rate eta lambda_i / N: the
    NTK's prediction of gradient descent's convergence (Jacot et al. 2018, Sec. 5; Lee et al. 2019).
    The eigendecomposition and the decay factors (1 - eta lambda_i / N)^t are those of
    :func:`ntktheory.predict` (``ntktheory._predict.train_spectrum`` and ``decay``), applied to the
    residual directly so that a loss many orders below L_0 keeps its digits.

    Examples
    --------
    >>> predicted_train_loss(np.diag([1.0, 2.0]), np.array([1.0, 1.0]), [0, 1], learning_rate=1.0).tolist()
    [0.5, 0.0625]
    """
    from ntktheory._predict import decay, train_spectrum

    spec = train_spectrum(np.asarray(kernel_train, dtype=np.float64), name="kernel_train")
    n = spec.eigenvalues.size
    coef2 = (spec.eigenvectors.T @ np.asarray(residual0, dtype=np.float64)) ** 2
    d = decay(spec, learning_rate / n, np.asarray(steps, dtype=np.float64), discrete=True)
    return np.sum(d**2 * coef2, axis=1) / (2 * n)


def ntk_gp_variance(
    ntk_train: np.ndarray,
    ntk_test_train: np.ndarray,
    nngp_train: np.ndarray,
    nngp_test_train: np.ndarray,
    nngp_test_diag: np.ndarray,
    step: float,
    *,
    learning_rate: float,
) -> np.ndarray:
    r"""Predictive variance over initialisations of an infinitely wide network trained by GD.

    Lee et al. 2019 (arXiv:1902.06720, Eq. 16), in discrete time: with
    M_t = Theta^-1 (I - (I - eta Theta / N)^t) on the training points,

    .. math:: \mathrm{Var}[f_t(x)] = K(x, x) + \Theta(x, X) M_t K(X, X) M_t^T \Theta(X, x)
              - 2\,\Theta(x, X) M_t K(X, x)

    with K the NNGP and Theta the NTK: :func:`ntktheory.predict_from_kernels` with
    ``steps=step`` and ``covariance="marginal"`` (one output, so its 1/(2 N k) loss is the
    (1/2N) one here). ``step = inf`` gives the trained limit; with Theta = K it is the GP
    posterior variance K(x,x) - K(x,X) K^-1 K(X,x).

    Returns
    -------
    numpy.ndarray
        Variances on the test points, shape (M,).

    Examples
    --------
    >>> K = np.array([[1.0, 0.5], [0.5, 1.0]]); kx = np.array([[0.5, 0.2]])
    >>> gp = 1.0 - kx @ np.linalg.solve(K, kx.T)
    >>> bool(np.allclose(ntk_gp_variance(K, kx, K, kx, np.ones(1), np.inf, learning_rate=1.0), gp[0]))
    True
    """
    from ntktheory import predict_from_kernels

    train = {"ntk": ntk_train, "nngp": nngp_train}
    cross = {"ntk": ntk_test_train, "nngp": nngp_test_train}
    n = np.shape(ntk_train)[0]
    out = predict_from_kernels(train, cross, np.zeros(n), {"nngp": nngp_test_diag}, kernel="ntk", steps=step,
                               learning_rate=learning_rate, covariance="marginal")
    return out["variance"].values[0]


def first_width_within(widths: Sequence[float], rel_error: Sequence[float], tolerance: float = 0.1) -> float:
    """Smallest width from which the relative error stays within ``tolerance`` at every larger width.

    Returns NaN when the error at the largest width exceeds the tolerance (or is not finite).

    Examples
    --------
    >>> first_width_within([64, 128, 256, 512], [0.5, 0.08, 0.12, 0.05], 0.1)
    512.0
    >>> first_width_within([64, 128], [0.5, 0.3], 0.1)
    nan
    """
    w = np.asarray(widths, dtype=np.float64)
    e = np.asarray(rel_error, dtype=np.float64)
    order = np.argsort(w)
    w, e = w[order], e[order]
    found = math.nan
    for wi, ei in zip(w[::-1], e[::-1]):
        if not (math.isfinite(ei) and ei <= tolerance):
            break
        found = float(wi)
    return found


def variance_ratio(
    outputs: np.ndarray,
    predicted: np.ndarray,
    *,
    n_boot: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    r"""Variance over seeds of outputs / a predicted variance, averaged over points, with a bootstrap interval.

    ratio = mean_m Var_s[outputs[s, m]] / predicted[m] (unbiased variance, ddof = 1). Seeds with a
    non-finite output (a diverged run) are dropped. The percentile interval resamples whole seeds,
    so correlations between the points of one network are kept.

    Parameters
    ----------
    outputs
        (S, M): outputs of S independently initialised (and trained) networks on M points.
    predicted
        (M,): the predicted variance on each point (> 0).
    n_boot, confidence, seed
        Bootstrap resamples, level of the interval, seed of the bootstrap.

    Returns
    -------
    tuple
        (ratio, lower, upper): NaN ratio with fewer than 2 finite seeds or a non-positive /
        non-finite prediction; NaN bounds with fewer than 3.

    Examples
    --------
    >>> r, lo, hi = variance_ratio(np.array([[1.0], [-1.0], [1.0], [-1.0]]), np.array([4 / 3]), n_boot=50)
    >>> r
    1.0
    """
    x = np.asarray(outputs, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if x.ndim != 2 or p.shape != (x.shape[1],):
        raise ValueError(f"need outputs (S, M) and predicted (M,); got {x.shape!r} and {p.shape!r}.")
    x = x[np.all(np.isfinite(x), axis=1)]
    if x.shape[0] < 2 or not np.all(np.isfinite(p) & (p > 0)):
        return math.nan, math.nan, math.nan

    def ratio(a: np.ndarray) -> float:
        return float(np.mean(np.var(a, axis=0, ddof=1) / p))

    value = ratio(x)
    if x.shape[0] < 3:
        return value, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    boots = np.array([ratio(x[i]) for i in idx])
    lo, hi = np.quantile(boots, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return value, float(lo), float(hi)


def judge_ratio_within(lower: float, upper: float, factor: float) -> bool | None:
    """Whether an interval [lower, upper] of a ratio lies within [1/factor, factor].

    True if the whole interval lies within, False if it lies entirely outside (above ``factor`` or
    below ``1/factor``), None otherwise or when a bound is not finite (not testable).

    Examples
    --------
    >>> judge_ratio_within(0.9, 1.2, 1.5), judge_ratio_within(2.0, 3.0, 1.5), judge_ratio_within(0.9, 2.0, 1.5)
    (True, False, None)
    """
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return None
    if lower >= 1.0 / factor and upper <= factor:
        return True
    if upper < 1.0 / factor or lower > factor:
        return False
    return None


def bootstrap_interval(
    samples: np.ndarray | Sequence[np.ndarray],
    statistic,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    r"""``statistic(samples)`` with a percentile bootstrap interval, resampling axis 0 (the independent units).

    Parameters
    ----------
    samples
        An array whose axis 0 indexes independent units (seeds, test points), or a sequence of
        such arrays sharing axis 0's length; they are resampled with the same indices (paired:
        the units of a seed or test point stay together), and ``statistic`` receives them all.
    statistic
        Function of the resampled array(s) returning a float (NaN allowed: such resamples are
        dropped).
    n_boot, confidence, seed
        Resamples, level of the two-sided interval, seed of the bootstrap.

    Returns
    -------
    tuple
        (value, lower, upper); NaN bounds with fewer than 2 units or fewer than 10 finite resamples.

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> value, lo, hi = bootstrap_interval(x, np.median, n_boot=200)
    >>> value, bool(lo <= 4.5 <= hi)
    (4.5, True)
    >>> a, b = np.ones(5), np.full(5, 3.0)   # paired arrays: a statistic of both
    >>> bootstrap_interval((a, b), lambda u, v: float(np.mean(v) / np.mean(u)), n_boot=20)
    (3.0, 3.0, 3.0)
    """
    paired = isinstance(samples, (tuple, list))
    arrays = [np.asarray(a) for a in samples] if paired else [np.asarray(samples)]
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    if any(a.ndim == 0 or a.shape[0] != n for a in arrays):
        raise ValueError(f"`samples` must share the length of axis 0; got shapes {[a.shape for a in arrays]!r}.")

    def stat(idx: np.ndarray | None) -> float:
        picked = arrays if idx is None else [a[idx] for a in arrays]
        with np.errstate(all="ignore"):
            return float(statistic(*picked) if paired else statistic(picked[0]))

    value = stat(None)
    if n < 2:
        return value, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    if boots.size < 10:
        return value, math.nan, math.nan
    lo, hi = np.quantile(boots, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return value, float(lo), float(hi)


def fit_power_approach(
    widths: Sequence[float] | np.ndarray,
    ratio: Sequence[float] | np.ndarray,
    se_log_excess: Sequence[float] | np.ndarray | None = None,
    *,
    confidence: float = 0.95,
) -> ExponentialFit:
    r"""Fit ratio = 1 + C width^slope (the approach of a ratio to 1) on log(ratio - 1) vs log(width).

    :func:`fit_exponential_rate` with x = log(width), y = ratio - 1: ``rate`` is the power-law
    slope (negative when the ratio approaches 1), with its t-interval; widths whose ratio is
    <= 1 (no excess to fit) are dropped.

    Parameters
    ----------
    widths, ratio
        Widths and the ratio measured at each (e.g. measured / predicted variance).
    se_log_excess
        Standard errors of log(ratio - 1), or None for an unweighted fit.

    Examples
    --------
    >>> w = np.array([100.0, 200, 400, 800])
    >>> fit = fit_power_approach(w, 1 + 20 * (w / 100) ** -0.8)
    >>> round(fit.rate, 10), round(float(np.exp(fit.intercept) * 100 ** fit.rate), 8)
    (-0.8, 20.0)
    """
    w = np.asarray(widths, dtype=np.float64)
    excess = np.asarray(ratio, dtype=np.float64) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(excess > 0, excess, np.nan)
        return fit_exponential_rate(np.log(w), excess, se_log_excess, confidence=confidence)


def _centre(k: np.ndarray) -> np.ndarray:
    """H K H with H = I - 1 1^T / N, on the last two axes: K without its constant (input-independent) part."""
    return k - k.mean(axis=-1, keepdims=True) - k.mean(axis=-2, keepdims=True) + k.mean(axis=(-2, -1), keepdims=True)


def kernel_part_dispersion(
    samples: np.ndarray, *, n_boot: int = 400, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    r"""How much a kernel fluctuates over seeds: its diagonal, and its input-dependent part.

    For kernels K_s (seed s) on the same N inputs:

    * ``diagonal``: the relative standard deviation sqrt(E[K(x,x)^2] / E[K(x,x)]^2 - 1), averaged over
      the inputs (the quantity behind :func:`second_moment_ratio`);
    * ``centred``: the relative fluctuation of the doubly centred kernel C_s = H K_s H
      (H = I - 1 1^T / N), sqrt(mean_s ||C_s - mean C||_F^2 / ||mean C||_F^2): the part of the
      kernel that depends on the inputs, without the constant mode that dominates a
      standard-parameterisation NTK. A small diagonal dispersion can hide a large one here.

    Each with a 95% bootstrap interval over seeds: a dict of (value, lower, upper).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = np.array([[2.0, 1.0], [1.0, 2.0]]) + 10.0      # a large constant part
    >>> noise = rng.standard_normal((4000, 1, 1)) * np.array([[1.0, -1.0], [-1.0, 1.0]]) * 0.1
    >>> d = kernel_part_dispersion(base + noise)             # centred part of base: [[.5, -.5], [-.5, .5]]
    >>> round(d["centred"][0], 1), d["diagonal"][0] < 0.02   # 0.1 * 2 / (0.5 * 2) = 0.2, diagonal ~ 0.1 / 12
    (0.2, True)
    """
    k = np.asarray(samples, dtype=np.float64)
    if k.ndim != 3 or k.shape[1] != k.shape[2] or k.shape[0] < 2:
        raise ValueError(f"`samples` must have shape (seeds >= 2, N, N); got {k.shape!r}.")
    k = k[np.all(np.isfinite(k), axis=(1, 2))]
    diag = np.diagonal(k, axis1=1, axis2=2)
    cent = _centre(k)

    def diagonal(d: np.ndarray) -> float:
        return float(np.mean(np.sqrt(np.maximum(np.mean(d**2, 0) / np.mean(d, 0) ** 2 - 1.0, 0.0))))

    def centred(c: np.ndarray) -> float:
        mean = c.mean(0)
        return float(math.sqrt(np.mean(np.sum((c - mean) ** 2, axis=(1, 2))) / np.sum(mean**2)))

    return {"diagonal": bootstrap_interval(diag, diagonal, n_boot=n_boot, seed=seed),
            "centred": bootstrap_interval(cent, centred, n_boot=n_boot, seed=seed + 1)}
