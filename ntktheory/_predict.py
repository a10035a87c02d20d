"""Predictions of infinitely wide networks: gradient-descent ensembles and GP posteriors.

Lee et al. 2019 (arXiv:1902.06720, Sec. 2.3 and Eq. 16), the conventions of the documentation: K = NNGP,
Theta = NTK, X the N training points with k outputs, loss 1/(2 N k) |f(X) - Y|^2, learning rate
eta. Gradient flow for time t (or ``steps`` steps of gradient descent) gives, over initialisations,

* mean mu_t(x) = Theta(x, X) Theta^-1 E_t Y with E_t = I - exp(-eta Theta t / (N k))
  (discrete: E_s = I - (I - eta Theta / (N k))^s);
* covariance Sigma_t(x, x') = K(x, x') + Theta(x, X) Theta^-1 E_t K(X, X) E_t Theta^-1 Theta(X, x')
  - [Theta(x, X) Theta^-1 E_t K(X, x') + (x <-> x')].

Training the readout only (``kernel="nngp"``) replaces Theta by K everywhere. ``method="bayesian"``
is the exact GP posterior with the chosen kernel as prior covariance.

Numerics. The dynamics kernel's train block (regularised) is diagonalised once, Theta_r = V diag(l)
V^T; every time then costs only spectral filters phi_i(t) = (1 - d_i(t)) / l_i with
d_i = exp(-eta l_i t / (N k)) (or (1 - eta l_i / (N k))^s), computed with ``expm1``/``log1p`` so
that slow modes keep their digits, and phi_i(inf) = 1 / l_i. With B = Theta(x, X) V,
C = V^T K(X, x) and W = V^T K(X, X) V:

    mean_t = Theta(x, X) V (phi_t * V^T Y),
    Sigma_t = K(x, x) + B Phi_t W Phi_t B^T - B Phi_t C - (B Phi_t C)^T,

and when the prior and the dynamics share the train kernel (NNGP dynamics, Bayesian) W = diag(l),
C = B^T, so Sigma_t = K(x, x) - B diag((1 - d^2) / l) B^T (one product per time, and only
O(M N) per time for the marginal variance). The Bayesian posterior uses a Cholesky factorisation.

diag_reg (neural-tangents' convention): the dynamics kernel's train block is Theta + r I with
r = diag_reg * tr(Theta) / N (or r = diag_reg with ``diag_reg_absolute=True``). As in
neural-tangents' ``gradient_descent_mse_ensemble`` and ``gp_inference``, the NNGP train block
inside the NTK covariance stays unregularised, whereas with NNGP dynamics (and in the Bayesian
posterior) the one regularised block serves as both dynamics and prior: r acts as observation noise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from ._provenance import PREDICTION, REQUIRED_KEYS, provenance
from ._validate import check_choice, check_nonnegative, check_positive

if TYPE_CHECKING:
    import xarray

__all__ = ["KernelConditionWarning", "predict", "predict_from_kernels"]

KERNEL_CHOICES = ("ntk", "nngp")
METHOD_CHOICES = ("gradient_descent", "bayesian")

#: Warn when rounding in the train kernel can be amplified by more than this factor: the condition
#: number at t = inf, lambda_max * min(eta t / (N k), 1 / lambda_min) at finite times (float64 then
#: keeps ~4 digits).
CONDITION_WARNING = 1e12
#: A negative eigenvalue below -this * lambda_max is more than rounding: warn (it is clipped anyway).
NEGATIVE_EIGENVALUE_WARNING = 1e-8

#: The ``conventions`` attr of every prediction Dataset (defined in :mod:`ntktheory._provenance`).
CONVENTIONS = PREDICTION

#: attrs of a kernel block that are not its network configuration (not compared between blocks);
#: ``created`` is the creation time in Datasets written before the one provenance schema.
_PROVENANCE_KEYS = (*REQUIRED_KEYS, "created", "x2_is_x1", "quadrature", "all_depths", "kernel_conventions")


class KernelConditionWarning(UserWarning):
    """The train kernel is ill-conditioned (or not positive semi-definite beyond rounding)."""


# ---------------------------------------------------------------------- spectral core
@dataclasses.dataclass(frozen=True)
class TrainSpectrum:
    """Eigendecomposition of a regularised train kernel, computed once for all times.

    Attributes
    ----------
    eigenvalues
        (N,) ascending, negative rounding values clipped to 0.
    eigenvectors
        (N, N) orthonormal columns.
    regularizer
        The absolute diagonal shift r that was added (0 without diag_reg).
    clipped
        Number of eigenvalues < 0 that were set to 0.
    most_negative
        The smallest eigenvalue before clipping if negative, else 0.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    regularizer: float
    clipped: int
    most_negative: float

    @property
    def condition_number(self) -> float:
        """lambda_max / lambda_min (inf when lambda_min is 0)."""
        lo, hi = float(self.eigenvalues[0]), float(self.eigenvalues[-1])
        return math.inf if lo <= 0 else hi / lo


def regularizer(k_train: np.ndarray, diag_reg: float, diag_reg_absolute: bool) -> float:
    """The absolute diagonal shift: diag_reg, or diag_reg * tr(K) / N (neural-tangents' convention)."""
    if diag_reg == 0:
        return 0.0
    return float(diag_reg) if diag_reg_absolute else float(diag_reg) * float(np.trace(k_train)) / k_train.shape[0]


def train_spectrum(k_train: np.ndarray, *, reg: float = 0.0, name: str = "k_train_train") -> TrainSpectrum:
    """Diagonalise K + reg I (symmetrised); clip negative rounding eigenvalues, warn beyond rounding."""
    k = 0.5 * (k_train + k_train.T)  # a new array: eigh may overwrite it
    if reg:
        k[np.diag_indices_from(k)] += reg
    # divide and conquer (LAPACK syevd): the fastest full eigendecomposition here (MRRR, scipy's default,
    # can be several times slower with threaded BLAS on a busy machine)
    lam, vec = scipy.linalg.eigh(k, overwrite_a=True, check_finite=False, driver="evd")
    top = max(float(lam[-1]), 0.0)
    most_negative = min(float(lam[0]), 0.0)
    negative = lam < 0
    if most_negative < -NEGATIVE_EIGENVALUE_WARNING * top:
        warnings.warn(
            f"`{name}` has an eigenvalue {most_negative:.3g} ({most_negative / top if top else -math.inf:.3g} "
            "times the largest): it is not positive semi-definite beyond rounding. Its negative modes are "
            "clipped to 0 and dropped from the prediction; check the kernel.",
            KernelConditionWarning,
            stacklevel=3,
        )
    lam = np.where(negative, 0.0, lam)
    return TrainSpectrum(lam, vec, float(reg), int(negative.sum()), most_negative)


def decay_pair(lam: np.ndarray, rate: float, times: np.ndarray, *, discrete: bool,
               power: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(d^power, 1 - d^power), each (T, N), with d = exp(-rate lam t) or (1 - rate lam)^s.

    Both are computed directly (``exp``/``expm1`` of ``-rate lam t`` or of ``s log1p(-rate lam)``),
    so that neither a slow mode (d ~ 1) nor a fast one (d ~ 0) loses its digits. ``rate`` is
    eta / (N k); zero (clipped) modes have d = 1; inf times give d = 0 where the mode converges.
    """
    x = rate * lam[None, :]  # (1, N)
    t = times[:, None]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if discrete:
            base = 1.0 - x
            slow = (base > 0) & (base < 1)
            log_d = np.where(slow, t * np.log1p(-np.where(slow, x, 0.0)), 0.0)
            direct = np.power(base, power * t)
            d = np.where(slow, np.exp(power * log_d), direct)
            one_minus = np.where(slow, -np.expm1(power * log_d), 1.0 - direct)
            converged = np.isinf(t) & (np.abs(base) < 1)
        else:
            log_d = -x * np.where(np.isinf(t), 0.0, t)
            d = np.exp(power * log_d)
            one_minus = -np.expm1(power * log_d)
            converged = np.isinf(t) & (x > 0)
        d = np.where(converged, 0.0, d)
        one_minus = np.where(converged, 1.0, one_minus)
        d = np.where(t == 0, 1.0, d)
        one_minus = np.where(t == 0, 0.0, one_minus)
    zero = np.broadcast_to(~(x > 0), d.shape)
    return np.where(zero, 1.0, d), np.where(zero, 0.0, one_minus)


def spectral_filter(spec: TrainSpectrum, rate: float, times: np.ndarray, *, discrete: bool,
                    power: int = 1) -> np.ndarray:
    """(1 - d^power) / lambda per mode and time, shape (T, N); 0 on zero modes."""
    lam = spec.eigenvalues
    num = decay_pair(lam, rate, times, discrete=discrete, power=power)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lam > 0, num / np.where(lam > 0, lam, 1.0), 0.0)


def decay(spec: TrainSpectrum, rate: float, times: np.ndarray, *, discrete: bool) -> np.ndarray:
    """d_i(t): the factor by which the train residual's component along eigenvector i shrinks, (T, N)."""
    return decay_pair(spec.eigenvalues, rate, times, discrete=discrete)[0]


# ---------------------------------------------------------------------- argument handling
def _times(time: object, steps: object, method: str) -> tuple[np.ndarray, bool]:
    """(times as float64 (T,), discrete) from `time` / `steps`; checked."""
    if method == "bayesian":
        for name, value in (("time", time), ("steps", steps)):
            if value is not None:
                raise ValueError(
                    f"`{name}` applies to method='gradient_descent' only; method='bayesian' is the posterior "
                    f"(no training time). Got {name}={value!r}; omit it."
                )
        return np.array([math.inf]), False
    if time is not None and steps is not None:
        raise ValueError(
            f"pass at most one of `time` (gradient flow) and `steps` (discrete gradient descent); got "
            f"time={time!r}, steps={steps!r}."
        )
    discrete = steps is not None
    name, value = ("steps", steps) if discrete else ("time", time)
    if value is None:
        return np.array([math.inf]), False
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"`{name}` must be a number or a 1-D array of numbers; got {value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a number or a 1-D array of numbers; got {value!r}.") from err
    if arr.ndim > 1:
        raise ValueError(f"`{name}` must be a scalar or 1-D; got shape {arr.shape!r}.")
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got {value!r}.")
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        bad = arr[np.isnan(arr) | (arr < 0)][0]
        raise ValueError(f"`{name}` must be >= 0 (numpy.inf allowed); got {float(bad)!r} in {name}={value!r}.")
    if discrete and np.any(np.isfinite(arr) & (arr != np.round(arr))):
        bad = arr[np.isfinite(arr) & (arr != np.round(arr))][0]
        raise ValueError(
            f"`steps` must be whole numbers of gradient-descent steps (or numpy.inf); got {float(bad)!r}. "
            "For continuous time use `time=`."
        )
    return arr, discrete


def _covariance_mode(covariance: object) -> str:
    if covariance is True or covariance == "full":
        return "full"
    if covariance is False:
        return "none"
    if covariance == "marginal":
        return "marginal"
    raise ValueError(
        f"`covariance` must be True (or 'full': the test-test covariance), 'marginal' (its diagonal, the "
        f"variance) or False (mean only); got {covariance!r}."
    )


def _targets(y_train: object, n: int) -> np.ndarray:
    kind = getattr(getattr(y_train, "dtype", None), "kind", None)
    if kind == "c" or isinstance(y_train, complex):
        raise TypeError("`y_train` must be real; got a complex array. Pass y.real explicitly.")
    if kind in ("U", "S"):
        raise TypeError(f"`y_train` must be an array of real numbers; got dtype {y_train.dtype}.")
    try:
        y = np.asarray(y_train, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`y_train` must be an array of real numbers; got {type(y_train).__name__}.") from err
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n or y.shape[1] == 0:
        raise ValueError(
            f"`y_train` must have shape ({n},) or ({n}, k) (training points, outputs) to match the "
            f"{n} training points; got shape {np.shape(y_train)!r}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("`y_train` must be finite; it contains NaN or inf.")
    return y


def _block(name: str, value: object, which: str, *, shape: tuple[int | None, ...] | None = None,
           allow_diagonal: bool = False) -> np.ndarray:
    """The ``which`` kernel ("nngp" or "ntk") of one block: a Dataset, a mapping or a plain array."""
    import xarray as xr

    if isinstance(value, xr.Dataset):
        if which not in value.data_vars:
            raise ValueError(
                f"`{name}` has no {which!r} variable (it has {sorted(map(str, value.data_vars))!r}); "
                f"pass ntktheory.kernels' Dataset or a mapping with {which!r}."
            )
        da = value[which]
        if da.ndim != 2:
            raise ValueError(
                f"`{name}`[{which!r}] must be 2-D (x1, x2); got dims {da.dims!r}. Select one configuration "
                "first, e.g. ds.sel(depth=3) for kernels(..., all_depths=True)."
            )
        arr = np.asarray(da.values, dtype=np.float64)
    elif isinstance(value, Mapping):
        if which not in value:
            raise ValueError(
                f"`{name}` has no {which!r} entry (keys {sorted(map(str, value))!r}); this prediction needs the "
                f"{which.upper()} block."
            )
        arr = np.asarray(value[which], dtype=np.float64)
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"`{name}` must be an xarray.Dataset from ntktheory.kernels, a mapping {{'nngp': ..., 'ntk': ...}} "
                f"or an array; got {type(value).__name__}."
            ) from err
    if allow_diagonal and arr.ndim == 1:
        if shape is not None and arr.shape[0] != shape[0]:
            raise ValueError(f"`{name}` diagonal must have length {shape[0]}; got shape {arr.shape!r}.")
    else:
        if arr.ndim != 2 or (shape is not None and any(s is not None and a != s for a, s in zip(arr.shape, shape))):
            want = tuple("?" if s is None else s for s in shape) if shape else "(n1, n2)"
            extra = " or its diagonal" if allow_diagonal else ""
            raise ValueError(f"`{name}` ({which}) must have shape {want!r}{extra}; got {arr.shape!r}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` ({which}) must be finite; it contains NaN or inf.")
    return arr


def _plain(value: object) -> bool:
    import xarray as xr

    return not isinstance(value, (xr.Dataset, Mapping))


def _network_attrs(blocks: list[object]) -> tuple[dict[str, Any], str | None, Any]:
    """Configuration attrs shared by the Datasets among ``blocks`` (checked equal), their conventions
    and their parsed ``config`` (None when there is none)."""
    import xarray as xr

    found: dict[str, Any] | None = None
    conventions = network = None
    first_name = None
    for name, block in blocks:
        if not isinstance(block, xr.Dataset):
            continue
        cfg = {k: v for k, v in block.attrs.items() if k not in _PROVENANCE_KEYS}
        # a configuration selected from a sweep-like Dataset (ds.sel(depth=2)) is a scalar coordinate
        cfg.update({str(k): c.values.item() for k, c in block.coords.items() if c.ndim == 0})
        if found is None:
            found, conventions, first_name = cfg, block.attrs.get("conventions"), name
            if isinstance(block.attrs.get("config"), str):
                network = json.loads(block.attrs["config"])
            continue
        for key in set(found) | set(cfg):
            a, b = found.get(key), cfg.get(key)
            if not _same(a, b):
                raise ValueError(
                    f"`{first_name}` and `{name}` come from different networks: attr {key!r} is {a!r} in one and "
                    f"{b!r} in the other. Compute all blocks with the same ntktheory.kernels arguments."
                )
    return (found or {}), conventions, network


def _same(a: object, b: object) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:  # pragma: no cover - exotic attrs
        return a == b


# ---------------------------------------------------------------------- public functions
def predict_from_kernels(
    k_train_train: object,
    k_test_train: object,
    y_train: object,
    k_test_test: object | None = None,
    *,
    kernel: str = "ntk",
    method: str = "gradient_descent",
    time: object | None = None,
    steps: object | None = None,
    learning_rate: float = 1.0,
    diag_reg: float = 0.0,
    diag_reg_absolute: bool = False,
    covariance: bool | str = True,
) -> xarray.Dataset:
    r"""Predictions of infinitely wide networks from kernel blocks you already hold.

    The same outputs as :func:`predict`, which computes the blocks with
    :func:`ntktheory.kernels` and calls this function.

    Parameters
    ----------
    k_train_train, k_test_train, k_test_test
        Kernel blocks on (train, train), (test, train) and (test, test): each an xarray.Dataset
        from :func:`ntktheory.kernels` (variables ``nngp`` and ``ntk``), a mapping with keys
        ``"nngp"`` and/or ``"ntk"``, or a plain array, read as the chosen ``kernel``'s block
        (for ``k_test_test``: the prior's, the NNGP for gradient descent).
        A plain array serves only where one kernel is needed (``kernel="nngp"``,
        ``method="bayesian"``, or ``kernel="ntk"`` with ``covariance=False``): the NTK
        covariance needs both the NTK and the NNGP. ``k_test_test`` is needed for the
        covariance only; with ``covariance="marginal"`` its diagonal (shape (M,)) suffices.
        Which kernel each block must hold: gradient descent uses the chosen kernel for the
        dynamics and the NNGP as the prior; the Bayesian posterior uses the chosen kernel
        throughout.
    y_train
        Targets, shape (N,) or (N, k).
    kernel
        ``"ntk"`` (all layers trained; NTK-GP posterior with ``method="bayesian"``) or
        ``"nngp"`` (readout only; NNGP posterior).
    method
        ``"gradient_descent"`` (mean and covariance over initialisations after training) or
        ``"bayesian"`` (the exact GP posterior with the chosen kernel as prior covariance).
    time
        Gradient-flow time(s) t >= 0: a scalar or 1-D array, ``numpy.inf`` allowed; None means
        inf. gradient_descent only.
    steps
        Instead of ``time``: numbers of discrete gradient-descent steps (whole numbers >= 0 or
        ``numpy.inf``), E_s = I - (I - eta Theta / (N k))^s; the result's dim is then ``step``.
        A learning rate beyond the stability limit 2 N k / lambda_max warns (the outputs then grow).
    learning_rate
        eta > 0, for the loss 1/(2 N k) ``|f(X) - Y|^2`` (neural-tangents' normalisation; the
        loss (1/2N) sum_i ``|f(x_i) - y_i|^2`` of :func:`empirical.train` corresponds to
        ``learning_rate = k * lr``). Unused by ``method="bayesian"``.
    diag_reg
        Diagonal regulariser r >= 0 of the train kernel, relative to its mean diagonal
        (K + diag_reg tr(K)/N I, neural-tangents' convention) unless ``diag_reg_absolute``.
        In the Bayesian posterior it is the observation-noise variance.
    diag_reg_absolute
        Read ``diag_reg`` in the kernel's own units (K + diag_reg I).
    covariance
        True or ``"full"``: the test-test covariance, (T, M, M) floats (8 T M^2 bytes: mind it for
        large M); ``"marginal"``: only its diagonal, the variance (O(M N) per time with NNGP
        dynamics or Bayesian, no (M, M) matrix); False: the mean only.

    Returns
    -------
    xarray.Dataset
        ``mean`` (``time`` or ``step``, ``test``, ``output``; read it as ``ds["mean"]``, since
        ``ds.mean`` is xarray's method); ``covariance`` (``time``, ``test``,
        ``test_``) or ``variance`` (``time``, ``test``), the same for every output (the kernels
        act as Theta (x) I). ``method="bayesian"`` has no time dim. attrs: the provenance
        (``conventions``, ``ntkgap_version``, ``creation_time``, ``config``: the settings, the times
        and the kernels' ``config`` under ``network``), ``kernel_conventions`` (the kernels'
        ``conventions``, when the blocks carry them), the configuration (``kernel``, ``method``,
        ``learning_rate``, ``diag_reg``, ``diag_reg_absolute``, ``diag_reg_value`` (the absolute
        shift r), ``covariance``, ``time_mode``, ``n_train``, ``n_test``, ``n_outputs``), the
        numerics (``solver``, ``condition_number`` of the regularised train kernel,
        ``clipped_eigenvalues`` and ``most_negative_eigenvalue``) and, when the blocks are
        ntktheory Datasets, their network configuration (``activation``, ``depth``, ...).

    Raises
    ------
    TypeError, ValueError
        For an invalid argument; the message names it and says what is allowed.

    Warns
    -----
    KernelConditionWarning
        When the train kernel's condition number exceeds 1e12 (at a finite largest time t, when
        lambda_max min(eta t / (N k), 1 / lambda_min) does: rounding cannot grow further by then);
        the message names it and suggests ``diag_reg``. Also when the kernel has an eigenvalue
        below -1e-8 lambda_max (clipped to 0 like the rounding ones; their count is in attrs).

    References
    ----------
    Lee et al. 2019, arXiv:1902.06720, Eq. 16 and Sec. 2.3 (gradient descent, both kernels);
    Rasmussen & Williams 2006, Eq. 2.25-2.26 (GP posterior); neural-tangents'
    ``predict.gradient_descent_mse_ensemble`` and ``predict.gp_inference`` (same conventions).

    Examples
    --------
    One training point x0 with Theta(x0, x0) = 2, K(x0, x0) = 1, and a test point with
    Theta(x, x0) = 1, K(x, x0) = 0.5, K(x, x) = 1: at t = inf the mean is Theta(x, x0) y / 2.

    >>> import numpy as np, ntktheory
    >>> train = {"ntk": [[2.0]], "nngp": [[1.0]]}
    >>> cross = {"ntk": [[1.0]], "nngp": [[0.5]]}
    >>> test = {"nngp": [[1.0]]}
    >>> p = ntktheory.predict_from_kernels(train, cross, [3.0], test, time=[0.0, np.inf])
    >>> p["mean"].dims, p["mean"].values[:, 0, 0].tolist()   # p.mean is xarray's method: index by name
    (('time', 'test', 'output'), [0.0, 1.5])
    >>> p.covariance.values[:, 0, 0].tolist()   # prior 1; then 1 + 0.5^2 * 1 - 2 * 0.5 * 0.5
    [1.0, 0.75]
    >>> post = ntktheory.predict_from_kernels([[1.0]], [[0.5]], [3.0], [[1.0]], kernel="nngp", method="bayesian")
    >>> float(post["mean"][0, 0]), float(post.covariance[0, 0])
    (1.5, 0.75)
    """
    kernel = check_choice("kernel", kernel, KERNEL_CHOICES)
    method = check_choice("method", method, METHOD_CHOICES)
    mode = _covariance_mode(covariance)
    times, discrete = _times(time, steps, method)
    learning_rate = check_positive("learning_rate", learning_rate)
    diag_reg = check_nonnegative("diag_reg", diag_reg)
    if not isinstance(diag_reg_absolute, (bool, np.bool_)):
        raise TypeError(f"`diag_reg_absolute` must be True or False; got {diag_reg_absolute!r}.")
    prior_name = "nngp" if method == "gradient_descent" else kernel
    shares = prior_name == kernel  # the prior's train block is the dynamics kernel's
    needs_two = mode != "none" and not shares
    if needs_two:
        for name, block in (("k_train_train", k_train_train), ("k_test_train", k_test_train)):
            if _plain(block):
                raise TypeError(
                    f"`{name}` is a plain array, but the covariance of kernel='ntk' gradient descent needs both "
                    "the NTK and the NNGP: pass ntktheory.kernels' Dataset or a mapping {'nngp': ..., 'ntk': ...} "
                    "(or covariance=False for the mean only)."
                )
    if mode != "none" and k_test_test is None:
        raise ValueError(
            "`k_test_test` is needed for the covariance (the prior on the test points); pass it, or "
            "covariance=False for the mean only."
        )

    d_train = _block("k_train_train", k_train_train, kernel)
    n = d_train.shape[0]
    if d_train.shape != (n, n):
        raise ValueError(f"`k_train_train` ({kernel}) must be square (N, N); got {d_train.shape!r}.")
    d_cross = _block("k_test_train", k_test_train, kernel, shape=(None, n))
    m = d_cross.shape[0]
    y = _targets(y_train, n)
    k_out = y.shape[1]
    p_train = p_cross = p_test = None
    if mode != "none":
        p_train = d_train if shares else _block("k_train_train", k_train_train, prior_name, shape=(n, n))
        p_cross = d_cross if shares else _block("k_test_train", k_test_train, prior_name, shape=(m, n))
        p_test = _block("k_test_test", k_test_test, prior_name, shape=(m, m), allow_diagonal=mode == "marginal")
    net_attrs, net_conventions, network = _network_attrs(
        [("k_train_train", k_train_train), ("k_test_train", k_test_train), ("k_test_test", k_test_test)]
    )

    reg = regularizer(d_train, diag_reg, bool(diag_reg_absolute))
    rate = learning_rate / (n * k_out)
    numerics: dict[str, Any]
    if method == "bayesian":
        out, numerics = _bayesian(d_train, d_cross, y, p_test, mode, reg)
    else:
        out, numerics = _gradient_descent(d_train, d_cross, y, p_train, p_cross, p_test, mode, reg, rate, times,
                                          discrete, shares)
    settings = dict(
        kernel=kernel, method=method, learning_rate=learning_rate, diag_reg=diag_reg,
        diag_reg_absolute=int(bool(diag_reg_absolute)), covariance=mode,
        time_mode="none" if method == "bayesian" else ("discrete" if discrete else "continuous"),
        loss="1/(2 N k) |f(X) - Y|^2", n_train=n, n_test=m, n_outputs=k_out,
    )
    plain = (str, bool, int, float, np.number, np.bool_)
    network = {**{k: v for k, v in net_attrs.items() if isinstance(v, plain)}, **(network or {})}
    config = {**settings, "network": network}
    if method != "bayesian":
        config["steps" if discrete else "time"] = [t if math.isfinite(t) else str(t) for t in times.tolist()]
    return _dataset(out, times, discrete, method, m, k_out, dict(settings, diag_reg_value=reg, **numerics),
                    net_attrs, net_conventions, config)


def _warn_condition(amplification: float, cond: float, reg: float, detail: str = "") -> None:
    if not amplification > CONDITION_WARNING:
        return
    hint = ("increase `diag_reg`" if reg > 0 else "pass `diag_reg` (e.g. diag_reg=1e-6, relative to the mean "
            "diagonal)")
    warnings.warn(
        f"the train kernel is ill-conditioned: condition number {cond:.3g}{detail} exceeds {CONDITION_WARNING:g}, "
        f"so rounding in the kernel can be amplified that much and the prediction may have lost its digits; "
        f"{hint} to regularise.",
        KernelConditionWarning,
        stacklevel=4,
    )


def _gradient_descent(d_train, d_cross, y, p_train, p_cross, p_test, mode, reg, rate, times, discrete, shares,
                      warn_condition=True):
    spec = train_spectrum(d_train, reg=reg)
    lam, v = spec.eigenvalues, spec.eigenvectors
    phi = spectral_filter(spec, rate, times, discrete=discrete)  # (T, N)
    if discrete and np.any(times > 0):
        top = rate * float(lam[-1])
        if top >= 2.0:
            warnings.warn(
                f"`learning_rate` {rate * y.size:.6g} reaches or exceeds the stability limit 2 N k / lambda_max = "
                f"{2.0 * y.size / float(lam[-1]):.6g} of discrete gradient descent: the predicted outputs grow "
                "with the number of steps (and overflow to inf for many steps).",
                RuntimeWarning,
                stacklevel=3,
            )
    # Rounding of size eps * lambda_max in the kernel moves a mode's filter by up to
    # lambda_max * min(rate t, 1 / lambda) (relative): the condition number at t = inf, less at
    # finite times. Clipped (zero) modes count as lambda -> 0+.
    t_max = float(np.max(times))
    with np.errstate(divide="ignore", invalid="ignore"):
        amplification = float(lam[-1]) * min(rate * t_max, 1.0 / float(lam[0]) if lam[0] > 0 else math.inf)
    detail = "" if math.isinf(t_max) else f" (up to the largest time, lambda_max * eta t / (N k) = {amplification:.3g})"
    if warn_condition:
        _warn_condition(amplification, spec.condition_number, reg, detail)
    vy = v.T @ y  # (N, k)
    coef = v @ (phi.T[:, :, None] * vy[:, None, :]).reshape(v.shape[0], -1)  # (N, T k)
    mean = (d_cross @ coef).reshape(d_cross.shape[0], times.size, y.shape[1]).transpose(1, 0, 2)
    out = {"mean": mean}
    if mode != "none":
        b = d_cross @ v  # (M, N)
        if shares:
            psi = spectral_filter(spec, rate, times, discrete=discrete, power=2)  # (1 - d^2) / lambda
            if mode == "full":
                cov = np.stack([p_test - (b * s) @ b.T for s in psi])
            else:
                diag = p_test if p_test.ndim == 1 else np.diagonal(p_test)
                cov = (diag[:, None] - (b * b) @ psi.T).T
        else:
            w = v.T @ p_train @ v  # (N, N)
            c = v.T @ p_cross.T  # (N, M)
            if mode == "full":
                cov = []
                for f in phi:
                    bf = b * f
                    cross = bf @ c
                    cov.append(p_test + (bf @ w) @ bf.T - cross - cross.T)
                cov = np.stack(cov)
            else:
                diag = p_test if p_test.ndim == 1 else np.diagonal(p_test)
                cov = np.stack([diag + np.einsum("mi,mi->m", (b * f) @ w, b * f) - 2.0 * np.einsum("mi,im->m", b * f, c)
                                for f in phi])
        if mode == "full":
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        out["covariance" if mode == "full" else "variance"] = cov
    return out, dict(solver="eigh", condition_number=spec.condition_number, clipped_eigenvalues=spec.clipped,
                     most_negative_eigenvalue=spec.most_negative)


def _bayesian(k_train, k_cross, y, k_test, mode, reg):
    n = k_train.shape[0]
    a = 0.5 * (k_train + k_train.T) + reg * np.eye(n)
    try:
        factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        factor = None
    if factor is not None:
        anorm = float(np.max(np.sum(np.abs(a), axis=0)))
        rcond, info = scipy.linalg.lapack.dpocon(factor[0], anorm, uplo="L")
        cond = 1.0 / rcond if info == 0 and rcond > 0 else math.inf
        _warn_condition(cond, cond, reg, " (1-norm, LAPACK estimate)")
        mean = k_cross @ scipy.linalg.cho_solve(factor, y, check_finite=False)
        out = {"mean": mean[None]}
        if mode != "none":
            s = scipy.linalg.solve_triangular(factor[0], k_cross.T, lower=True, check_finite=False)  # (N, M)
            if mode == "full":
                cov = k_test - s.T @ s
                out["covariance"] = (0.5 * (cov + cov.T))[None]
            else:
                diag = k_test if k_test.ndim == 1 else np.diagonal(k_test)
                out["variance"] = (diag - np.sum(s * s, axis=0))[None]
        return out, dict(solver="cholesky", condition_number=cond, clipped_eigenvalues=0,
                         most_negative_eigenvalue=math.nan)
    # Not positive definite to working precision: the eigen path, whose t = inf limit with the prior
    # equal to the dynamics kernel is this posterior, with the null space dropped.
    out, numerics = _gradient_descent(k_train, k_cross, y, k_train, k_cross, k_test, mode, reg, 1.0,
                                      np.array([math.inf]), False, True, warn_condition=False)
    warnings.warn(
        f"the regularised train kernel is not positive definite to working precision (Cholesky failed; condition "
        f"number {numerics['condition_number']:.3g}); using its eigendecomposition with the null space dropped. "
        "Pass `diag_reg` (e.g. diag_reg=1e-6, relative to the mean diagonal) to regularise.",
        KernelConditionWarning,
        stacklevel=3,
    )
    numerics["solver"] = "eigh (cholesky failed)"
    return out, numerics


def _dataset(out, times, discrete, method, m, k_out, attrs, net_attrs, net_conventions, config) -> xarray.Dataset:
    import xarray as xr

    bayes = method == "bayesian"
    tdim = () if bayes else ("step" if discrete else "time",)
    sel = (lambda a: a[0]) if bayes else (lambda a: a)
    data = {"mean": ((*tdim, "test", "output"), sel(out["mean"]),
                     {"long_name": "posterior mean" if bayes else "mean over initialisations of f_t(x)"})}
    if "covariance" in out:
        data["covariance"] = ((*tdim, "test", "test_"), sel(out["covariance"]),
                              {"long_name": "covariance of f(x), f(x') (the same for every output)"})
    if "variance" in out:
        data["variance"] = ((*tdim, "test"), sel(out["variance"]),
                            {"long_name": "variance of f(x) (the same for every output)"})
    coords: dict[str, Any] = {"test": np.arange(m), "output": np.arange(k_out)}
    if "covariance" in out:
        coords["test_"] = np.arange(m)
    if not bayes:
        coords[tdim[0]] = times.astype(np.int64) if discrete and np.all(np.isfinite(times)) else times
    all_attrs = {
        **provenance(config, conventions="prediction"),
        **({} if net_conventions is None else {"kernel_conventions": net_conventions}),
        **{k: v for k, v in net_attrs.items() if k not in attrs},
        **attrs,
    }
    return xr.Dataset(data, coords=coords, attrs=all_attrs)


def predict(
    x_train: object,
    y_train: object,
    x_test: object,
    *,
    kernel: str = "ntk",
    method: str = "gradient_descent",
    time: object | None = None,
    steps: object | None = None,
    learning_rate: float = 1.0,
    diag_reg: float = 0.0,
    diag_reg_absolute: bool = False,
    covariance: bool | str = True,
    **network: Any,
) -> xarray.Dataset:
    r"""Mean and covariance of infinitely wide networks trained on (x_train, y_train), on x_test.

    Computes the kernel blocks with :func:`ntktheory.kernels` (``**network`` passed through
    unchanged) and calls :func:`predict_from_kernels`; see there for the formulas and outputs.

    Parameters
    ----------
    x_train, x_test
        Training (N, ...) and test (M, ...) inputs, in any form :func:`ntktheory.kernels` takes.
    y_train
        Targets, shape (N,) or (N, k).
    kernel, method, time, steps, learning_rate, diag_reg, diag_reg_absolute, covariance
        As in :func:`predict_from_kernels`.
    **network
        The network, as :func:`ntktheory.kernels` takes it (``activation``, ``depth``,
        ``sigma_w``, ``sigma_b``, ``parameterization``, ``width``, ...).

    Returns
    -------
    xarray.Dataset
        As :func:`predict_from_kernels`, with the network configuration of the kernels in attrs.
        With ``covariance="marginal"`` only the diagonal of the test-test kernel is computed
        (in chunks of 256 test points).

    References
    ----------
    Lee et al. 2019, arXiv:1902.06720, Eq. 16.

    Examples
    --------
    >>> import numpy as np, ntktheory
    >>> rng = np.random.default_rng(0)
    >>> x, x_test = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    >>> y = np.sin(x[:, 0])
    >>> p = ntktheory.predict(x, y, x_test, time=[0.0, 10.0, np.inf], activation="erf", depth=2)
    >>> p["mean"].dims, p.covariance.dims
    (('time', 'test', 'output'), ('time', 'test', 'test_'))
    >>> prior = ntktheory.kernels(x_test, activation="erf", depth=2).nngp.values
    >>> bool(np.allclose(p.covariance[0], prior))   # t = 0: the NNGP prior
    True
    >>> fit = ntktheory.predict(x, y, x, diag_reg=0.0, covariance=False, activation="erf", depth=2)
    >>> bool(np.allclose(fit["mean"][-1, :, 0], y))    # trained to convergence, it interpolates
    True
    """
    from ._kernels import kernels

    mode = _covariance_mode(covariance)
    from ._validate import check_inputs

    if x_test is None:
        raise TypeError("`x_test` must be an array of test inputs; got None (pass x_test=x_train for the train set).")
    # checked here, so that a message names predict's own arguments (not kernels' x1, x2)
    x_train = check_inputs("x_train", x_train, images=True)
    x_test = check_inputs("x_test", x_test, images=True, sample_shape=x_train.shape[1:])
    n = x_train.shape[0]
    _targets(y_train, n)  # check before computing kernels
    k_train = kernels(x_train, **network)
    k_cross = kernels(x_test, x_train, **network)
    k_test = None
    if mode == "full":
        k_test = kernels(x_test, **network)
    elif mode == "marginal":
        k_test = _test_diagonal(x_test, network)
    return predict_from_kernels(
        k_train, k_cross, y_train, k_test, kernel=kernel, method=method, time=time, steps=steps,
        learning_rate=learning_rate, diag_reg=diag_reg, diag_reg_absolute=diag_reg_absolute, covariance=covariance,
    )


def _test_diagonal(x_test: object, network: Mapping[str, Any], chunk: int = 256) -> dict[str, np.ndarray]:
    """Diagonals of the NNGP and NTK on the test points, from chunks of ntktheory.kernels."""
    from ._kernels import kernels

    x = np.asarray(x_test, dtype=np.float64)
    parts = [kernels(x[i : i + chunk], **network) for i in range(0, x.shape[0], chunk)]
    return {name: np.concatenate([np.diagonal(p[name].values) for p in parts]) for name in ("nngp", "ntk")}
