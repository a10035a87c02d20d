"""Analysis for the three NTK benefits tested by Wenger, Dangel & Kristiadi 2023 (arXiv:2310.00137).

numpy/scipy only (no torch), so that each function can be checked on synthetic inputs with known
answers; the recipe ``wenger-dangel-kristiadi`` feeds them measurements of torch networks.

Optimisation (Zhang, Martens & Grosse 2019, arXiv:1905.10961, Sec. 3): for the squared error
(1/2)|u - y|^2 with Jacobian J of the outputs u on the N training points,

* natural-gradient / Gauss-Newton steps theta <- theta - eta J^T (J J^T + delta I)^-1 (u - y)
  (:func:`gauss_newton_coefficients` gives the N coefficients c, the step is -eta J^T c, one vjp);
* Condition 1: G_0 = J_0 J_0^T has lambda_0 = lambda_min(G_0) > 0; the width theorems (Du et al.
  2019, arXiv:1810.02054, Lemma 3.1) get it from |G_0 - Theta_inf|_2 <= lambda_min(Theta_inf) / 4;
* Condition 2 (stable Jacobian): |J_theta - J_0|_2 <= (C / 3) sqrt(lambda_0) with C < 1/2 for all
  theta within R = 3 |y - u_0| / sqrt(lambda_0) of theta_0 (:func:`jacobian_drift`,
  :func:`stability_constant`); then NGD with eta <= (1 - 2C) / (1 + C)^2 converges linearly at rate
  (1 - eta), whatever the conditioning of G.

Uncertainty (contextual bandits): :class:`KernelPosterior` is the posterior of a linear-Gaussian
model in its dual form (features = the network's gradients, so kernel = empirical NTK), with points
added one at a time; :func:`ucb_block` plays a block of rounds with it; :func:`neural_ucb_gamma` is
NeuralUCB's exploration scale (Zhou, Li & Gu 2020, arXiv:1911.04462, Algorithm 1), and
:func:`optimise_prior_precision` maximises the linearised-Laplace evidence over the prior precision
(Immer et al. 2021, arXiv:2104.04975).

Continual learning: :func:`average_accuracy` and :func:`average_forgetting` of an accuracy matrix
(Chaudhry et al. 2018, arXiv:1801.10112; Mirzadeh et al. 2022, arXiv:2110.11526).

Statistics: :func:`mean_interval` (t-interval over seeds), :func:`log_width_slope` (slope against
log2 width with a t-interval) and :func:`verdict` (the three-way decision of a paper's claim from an
interval).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.stats

__all__ = [
    "KernelPosterior",
    "average_accuracy",
    "average_forgetting",
    "du_condition_ratio",
    "gauss_newton_coefficients",
    "iterations_to_threshold",
    "jacobian_drift",
    "kernel_regime_ngd_iterations",
    "laplace_log_evidence",
    "log_width_slope",
    "mean_interval",
    "neural_ucb_gamma",
    "optimise_prior_precision",
    "rkhs_norm_bound",
    "stability_constant",
    "ucb_block",
    "verdict",
]


# ---------------------------------------------------------------------------- optimisation
def gauss_newton_coefficients(gram: np.ndarray, residual: np.ndarray, *, damping: float) -> np.ndarray:
    r"""Coefficients c of the damped Gauss-Newton (natural-gradient) step ``-J^T c``.

    For the squared error (1/2)|u - y|^2 the Gauss-Newton matrix is J^T J, and the damped step
    solves (J^T J + delta I) s = J^T r with r = u - y. By the push-through identity
    (J^T J + delta I)^-1 J^T = J^T (J J^T + delta I)^-1, so s = J^T c with

    .. math:: c = (G + \delta I)^{-1} r, \qquad G = J J^T,

    an N x N solve with the empirical NTK Gram G instead of a P x P one; the update is
    theta <- theta - eta s. With delta -> 0 (and G invertible) s is the minimum-norm solution of
    J s = r: one step with eta = 1 solves the linearised problem exactly (Zhang et al. 2019, Eq. 5).

    Parameters
    ----------
    gram
        G = J J^T, (N, N), symmetric positive semi-definite.
    residual
        r = u - y, (N,).
    damping
        delta >= 0 (absolute, in the units of G).

    Returns
    -------
    numpy.ndarray
        c, shape (N,).

    Examples
    --------
    >>> J = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    >>> c = gauss_newton_coefficients(J @ J.T, np.array([2.0, 4.0]), damping=0.0)
    >>> np.round(J.T @ c, 12).tolist()  # minimum-norm solution of J s = r
    [1.0, 2.0, 1.0]
    """
    g = np.asarray(gram, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    n = r.shape[0]
    if g.shape != (n, n):
        raise ValueError(f"`gram` must be (N, N) for a residual of length N = {n}; got shape {g.shape!r}.")
    if not (math.isfinite(damping) and damping >= 0):
        raise ValueError(f"`damping` must be a finite number >= 0; got {damping!r}.")
    a = g + damping * np.eye(n)
    try:
        return scipy.linalg.solve(a, r, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return np.linalg.lstsq(a, r, rcond=None)[0]


def jacobian_drift(k_tt: np.ndarray, k_t0: np.ndarray, k_00: np.ndarray) -> tuple[float, float]:
    r"""|J_t - J_0|_2 and |J_t - J_0|_F from the Grams of two parameter settings, without forming J.

    With K_ts = J_t J_s^T (the cross-NTK between the parameters theta_t and theta_s on the same
    inputs), (J_t - J_0)(J_t - J_0)^T = K_tt - K_t0 - K_t0^T + K_00, whose largest eigenvalue is
    |J_t - J_0|_2^2 and whose trace is |J_t - J_0|_F^2.

    Parameters
    ----------
    k_tt, k_t0, k_00
        (N, N) Grams: J_t J_t^T, J_t J_0^T, J_0 J_0^T.

    Returns
    -------
    tuple of float
        (spectral norm, Frobenius norm) of J_t - J_0; 0 when the Jacobian did not change.

    Examples
    --------
    >>> J0 = np.array([[1.0, 0.0], [0.0, 1.0]]); Jt = np.array([[1.0, 0.5], [0.0, 1.0]])
    >>> jacobian_drift(Jt @ Jt.T, Jt @ J0.T, J0 @ J0.T)
    (0.5, 0.5)
    """
    d = np.asarray(k_tt, dtype=np.float64) - np.asarray(k_t0, dtype=np.float64)
    d = d - np.asarray(k_t0, dtype=np.float64).T + np.asarray(k_00, dtype=np.float64)
    d = (d + d.T) / 2
    top = float(np.linalg.eigvalsh(d)[-1])
    return math.sqrt(max(top, 0.0)), math.sqrt(max(float(np.trace(d)), 0.0))


def stability_constant(drift_spectral: float, lambda_min: float) -> float:
    """Zhang et al.'s C = 3 |J_theta - J_0|_2 / sqrt(lambda_0); their Condition 2 needs C < 1/2.

    Examples
    --------
    >>> stability_constant(0.1, 4.0)
    0.15000000000000002
    """
    if math.isnan(lambda_min) or math.isnan(drift_spectral):
        return math.nan  # not measured (e.g. a width only another part ran)
    if not lambda_min > 0:
        return math.inf
    return 3.0 * drift_spectral / math.sqrt(lambda_min)


def du_condition_ratio(gram: np.ndarray, gram_limit: np.ndarray) -> float:
    """|G_0 - Theta_inf|_2 / lambda_min(Theta_inf): Condition 1 holds by Du et al.'s argument when <= 1/4.

    Then lambda_min(G_0) >= (3/4) lambda_min(Theta_inf) (Weyl), the full-rank Gram bounded away
    from zero that the convergence theorems need.

    Examples
    --------
    >>> du_condition_ratio(np.diag([2.1, 1.0]), np.diag([2.0, 1.0]))
    0.10000000000000009
    """
    g = np.asarray(gram, dtype=np.float64)
    t = np.asarray(gram_limit, dtype=np.float64)
    diff = (g - t + (g - t).T) / 2
    return float(np.max(np.abs(np.linalg.eigvalsh(diff))) / np.linalg.eigvalsh(t)[0])


def iterations_to_threshold(losses: Sequence[float] | np.ndarray, threshold: float) -> float:
    """First iteration index at which ``losses`` (index = iteration) is <= ``threshold``; NaN if never.

    A non-finite loss (a diverged run) ends the search.

    Examples
    --------
    >>> iterations_to_threshold([1.0, 0.5, 0.09, 0.2], 0.1)
    2.0
    >>> iterations_to_threshold([1.0, float("nan"), 0.0], 0.1)
    nan
    """
    for i, value in enumerate(np.asarray(losses, dtype=np.float64)):
        if not math.isfinite(value):
            return math.nan
        if value <= threshold:
            return float(i)
    return math.nan


def kernel_regime_ngd_iterations(step_size: float, loss_ratio: float) -> float:
    r"""Iterations NGD needs in the kernel regime to reduce the loss by ``loss_ratio``.

    On a linear model with an invertible Gram, each step with step size eta multiplies the
    residual by (1 - eta) in every direction, so the loss by (1 - eta)^2: k = ceil(log(ratio) /
    (2 log(1 - eta))) (1 for eta = 1), independent of the conditioning of G.

    Examples
    --------
    >>> kernel_regime_ngd_iterations(0.5, 1e-2)
    4.0
    >>> kernel_regime_ngd_iterations(1.0, 1e-2)
    1.0
    """
    if not 0 < step_size <= 1:
        raise ValueError(f"`step_size` must lie in (0, 1]; got {step_size!r}.")
    if not 0 < loss_ratio < 1:
        raise ValueError(f"`loss_ratio` must lie in (0, 1); got {loss_ratio!r}.")
    if step_size == 1:
        return 1.0
    return float(math.ceil(math.log(loss_ratio) / (2 * math.log(1 - step_size)) - 1e-12))


# ---------------------------------------------------------------------------- bandits
def rkhs_norm_bound(kernel: np.ndarray, rewards: np.ndarray) -> float:
    r"""NeuralUCB's S: sqrt(2 h^T H^-1 h) for the expected rewards h of every context and arm.

    Zhou et al. 2020 (Theorem 4.1) need S >= sqrt(2 h^T H^-1 h), H the NTK Gram over all
    (context, arm) pairs. For a network with one output per arm, the infinite-width NTK is
    Theta(x, x') I_K (the outputs are independent), so h^T H^-1 h = sum_a h_a^T Theta^-1 h_a.

    Parameters
    ----------
    kernel
        Theta on the T contexts, (T, T), positive definite.
    rewards
        Expected rewards h, (T, K) (context, arm).

    Examples
    --------
    >>> rkhs_norm_bound(np.eye(2), np.array([[1.0, 0.0], [0.0, 1.0]]))
    2.0
    """
    h = np.asarray(rewards, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    sol = scipy.linalg.solve(k, h, assume_a="pos")
    return math.sqrt(2.0 * float(np.sum(h * sol)))


def neural_ucb_gamma(log_det: float, *, nu: float, delta: float, lam: float, S: float) -> float:
    r"""NeuralUCB's exploration scale gamma_t in the infinite-width limit.

    Zhou et al. 2020 (Algorithm 1, Eq. 4.2) set

    .. math:: \gamma_t = \sqrt{1 + C_1 m^{-1/6} \ldots}\Bigl(\nu \sqrt{\log\frac{\det Z_t}{\det \lambda I}
              + C_2 m^{-1/6} \ldots - 2 \log\delta} + \sqrt{\lambda} S\Bigr) + (\lambda + C_3 t L)
              \bigl[(1 - \eta m \lambda)^{J/2} \sqrt{t/\lambda} + m^{-1/6} \ldots\bigr];

    as the width m -> infinity every m^{-1/6} term vanishes, and so does the optimisation error
    (1 - eta m lambda)^{J/2} for enough gradient steps J, leaving the linear-bandit radius
    gamma_t = nu sqrt(log det(I + K_t / lambda) - 2 log delta) + sqrt(lambda) S, which is what the NTK
    prescribes (the constants C_i are not given, and vanish in the limit).

    Examples
    --------
    >>> round(neural_ucb_gamma(0.0, nu=1.0, delta=math.exp(-2), lam=4.0, S=1.0), 12)
    4.0
    """
    return nu * math.sqrt(max(log_det - 2.0 * math.log(delta), 0.0)) + math.sqrt(lam) * S


def laplace_log_evidence(alpha: float, gram_eigenvalues: np.ndarray, displacement2: float, noise: float) -> float:
    r"""The part of the linearised-Laplace log evidence that depends on the prior precision alpha.

    With prior theta ~ N(theta_0, alpha^-1 I), Gaussian likelihood of variance sigma^2 and the
    Gauss-Newton posterior precision Lambda = alpha I + J^T J / sigma^2 at the trained parameters
    theta_* (Immer et al. 2021, Eq. 4 with the GGN),

    .. math:: \log Z(\alpha) = \log p(D | \theta_*) - \frac{\alpha}{2} |\theta_* - \theta_0|^2
              - \frac12 \sum_i \log\Bigl(1 + \frac{e_i}{\alpha \sigma^2}\Bigr) + \text{const},

    e_i the eigenvalues of the Gram J J^T (the P log alpha terms of the prior and of log det
    Lambda cancel). The prior is centred at the initialisation: in the NTK parameterisation
    theta_0 ~ N(0, I) is itself the prior draw, and centring at 0 would charge |theta_0|^2 ~ P.

    Examples
    --------
    >>> round(laplace_log_evidence(1.0, np.array([0.0]), 2.0, 1.0), 12)
    -1.0
    """
    e = np.clip(np.asarray(gram_eigenvalues, dtype=np.float64), 0.0, None)
    return float(-0.5 * alpha * displacement2 - 0.5 * np.sum(np.log1p(e / (alpha * noise**2))))


def optimise_prior_precision(gram_eigenvalues: np.ndarray, displacement2: float, noise: float, *,
                             bounds: tuple[float, float] = (1e-8, 1e8)) -> float:
    r"""The prior precision that maximises :func:`laplace_log_evidence`.

    Setting its derivative to zero gives MacKay's condition alpha |theta_* - theta_0|^2 =
    gamma(alpha), gamma = sum_i e_i / (e_i + alpha sigma^2) the effective number of parameters; the
    left side increases and the right side decreases in alpha, so the root is unique (found by
    Brent's method in log alpha, clipped to ``bounds``).

    Examples
    --------
    >>> e, d2, s = np.full(4, 3.0), 2.0, 1.0   # 2 a^2 + 6 a - 12 = 0
    >>> round(optimise_prior_precision(e, d2, s), 9) == round((-6 + math.sqrt(36 + 96)) / 4, 9)
    True
    """
    e = np.clip(np.asarray(gram_eigenvalues, dtype=np.float64), 0.0, None)
    lo, hi = bounds

    def g(log_alpha: float) -> float:
        a = math.exp(log_alpha)
        return float(np.sum(e / (e + a * noise**2))) - a * displacement2

    a, b = math.log(lo), math.log(hi)
    if g(a) <= 0:
        return lo
    if g(b) >= 0:
        return hi
    return math.exp(scipy.optimize.brentq(g, a, b, xtol=1e-12, rtol=1e-12))


class KernelPosterior:
    r"""Posterior variance of a linear-Gaussian model in its dual (kernel) form, grown point by point.

    For features g (here: the network's gradients, so the kernel is the empirical NTK) and
    Z = lambda I + sum_s g_s g_s^T over the observed points, the UCB width is

    .. math:: g^T Z^{-1} g = \frac{1}{\lambda}\bigl(k(c, c) - k(c, H) (\lambda I + K_{HH})^{-1} k(H, c)\bigr),

    with H the history. A block of B candidates starts from the history's Cholesky factor L
    (W = L^-1 K_HC, one triangular solve); each candidate observed in the block adds one column of
    the candidates' conditional covariance (a Schur-complement step, O(B (t + m)) for the m-th
    observation), so a round costs O(K m) instead of a new solve and the B x B kernel among the
    candidates is never formed. ``log_det`` is log det(I + K_HH / lambda) = log det Z - P log lambda,
    updated in step.

    Parameters
    ----------
    k_hh
        Kernel of the history, (t, t) (t may be 0).
    lam
        lambda > 0 (NeuralUCB's regulariser; sigma^2 alpha for a Laplace posterior).

    Examples
    --------
    >>> post = KernelPosterior(np.zeros((0, 0)), 1.0)
    >>> k = np.eye(2)
    >>> post.start_block(np.zeros((2, 0)), np.diag(k), lambda n: k[:, n])
    >>> post.variance().tolist()
    [1.0, 1.0]
    >>> post.observe(0); post.variance().tolist()
    [0.5, 1.0]
    """

    def __init__(self, k_hh: np.ndarray, lam: float) -> None:
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"`lam` must be a finite number > 0; got {lam!r}.")
        k = np.asarray(k_hh, dtype=np.float64)
        self.lam = float(lam)
        t = k.shape[0]
        self._chol = scipy.linalg.cholesky(k + lam * np.eye(t), lower=True) if t else np.zeros((0, 0))
        self.log_det = float(2 * np.sum(np.log(np.diag(self._chol))) - t * math.log(lam)) if t else 0.0

    def start_block(self, k_ch: np.ndarray, k_cc_diag: np.ndarray, k_cc_column: Callable[[int], np.ndarray]) -> None:
        """Set the block's B candidates.

        Parameters
        ----------
        k_ch
            Their kernel against the history, (B, t).
        k_cc_diag
            k(c, c) of each, (B,).
        k_cc_column
            ``k_cc_column(n)``: the kernel of all B candidates against candidate n, (B,).
        """
        k_ch = np.asarray(k_ch, dtype=np.float64)
        b = k_ch.shape[0]
        self._w = scipy.linalg.solve_triangular(self._chol, k_ch.T, lower=True) if k_ch.shape[1] else np.zeros((0, b))
        self._base = np.asarray(k_cc_diag, dtype=np.float64) - np.sum(self._w**2, axis=0)
        self._column = k_cc_column
        self._u = np.zeros((b, 0))
        self._s = np.zeros(0)

    def variance(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """g^T Z^-1 g of the block's candidates (all, or ``rows``)."""
        rows = slice(None) if rows is None else rows
        u = self._u[rows]
        return np.clip(self._base[rows] - np.sum(u**2 / self._s, axis=1), 0.0, None) / self.lam

    def observe(self, index: int) -> None:
        """Add candidate ``index`` of the block to the history."""
        col = np.asarray(self._column(index), dtype=np.float64) - self._w.T @ self._w[:, index]
        col = col - self._u @ (self._u[index] / self._s)
        s = self.lam + col[index]
        self._u = np.column_stack([self._u, col])
        self._s = np.append(self._s, s)
        self.log_det += math.log(s / self.lam)


@dataclasses.dataclass(frozen=True)
class BlockResult:
    """What :func:`ucb_block` played: arms (B,), observed rewards (B,), exploration scales (B,)."""

    arms: np.ndarray
    rewards: np.ndarray
    gammas: np.ndarray


def ucb_block(
    posterior: KernelPosterior | None,
    means: np.ndarray,
    reward: Callable[[int, int], float],
    gamma: Callable[[float], float],
    rng: np.random.Generator,
) -> BlockResult:
    r"""Play B rounds of a K-armed contextual bandit by UCB with a fixed mean and a growing posterior.

    Round j picks argmax_a mean[j, a] + gamma(log_det) sqrt(g^T Z^-1 g) over the K candidates of
    context j (rows j K .. j K + K - 1 of the posterior's block), ties broken at random, observes
    ``reward(j, arm)`` and adds the played candidate to the posterior. ``posterior=None`` (or
    gamma = 0) is the greedy policy.

    Parameters
    ----------
    posterior
        A :class:`KernelPosterior` whose block holds the B K candidates, context-major; or None.
    means
        Predicted rewards, (B, K).
    reward
        ``reward(j, arm)``: the observed (noisy) reward.
    gamma
        Exploration scale from the current log det(I + K / lambda).
    rng
        Tie-breaking.

    Examples
    --------
    >>> res = ucb_block(None, np.array([[0.0, 1.0]]), lambda j, a: float(a), lambda ld: 0.0,
    ...                 np.random.default_rng(0))
    >>> res.arms.tolist(), res.rewards.tolist()
    ([1], [1.0])
    """
    means = np.asarray(means, dtype=np.float64)
    b, k = means.shape
    arms, rewards, gammas = np.zeros(b, dtype=np.int64), np.zeros(b), np.zeros(b)
    for j in range(b):
        score = means[j].copy()
        if posterior is not None:
            g = gamma(posterior.log_det)
            gammas[j] = g
            if g:
                score += g * np.sqrt(posterior.variance(slice(j * k, (j + 1) * k)))
        best = np.flatnonzero(score >= score.max() - 1e-12 * max(1.0, abs(score.max())))
        arm = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
        arms[j] = arm
        rewards[j] = reward(j, arm)
        if posterior is not None:
            posterior.observe(j * k + arm)
    return BlockResult(arms, rewards, gammas)


# ---------------------------------------------------------------------------- continual learning
def average_accuracy(accuracy: np.ndarray) -> float:
    """Mean accuracy over all T tasks after training on the last one: mean_j a[T-1, j].

    ``accuracy[i, j]`` is the accuracy on task j after training on tasks 0..i.

    Examples
    --------
    >>> average_accuracy(np.array([[0.9, 0.1], [0.6, 0.8]]))
    0.7
    """
    a = np.asarray(accuracy, dtype=np.float64)
    return float(np.mean(a[-1]))


def average_forgetting(accuracy: np.ndarray) -> float:
    """Average forgetting (Chaudhry et al. 2018): mean over j < T-1 of max_{i < T-1} a[i, j] - a[T-1, j].

    Examples
    --------
    >>> average_forgetting(np.array([[0.9, 0.1, 0.1], [0.7, 0.8, 0.1], [0.5, 0.6, 0.9]]))
    0.30000000000000004
    """
    a = np.asarray(accuracy, dtype=np.float64)
    t = a.shape[0]
    if a.shape != (t, t) or t < 2:
        raise ValueError(f"`accuracy` must be a (T, T) matrix with T >= 2; got shape {a.shape!r}.")
    return float(np.mean([a[:t - 1, j].max() - a[t - 1, j] for j in range(t - 1)]))


# ---------------------------------------------------------------------------- statistics
def mean_interval(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the t-interval) of the finite values; half-width NaN with fewer than 2.

    Examples
    --------
    >>> mean_interval([1.0, 2.0, 3.0, float("nan")])[0]
    2.0
    >>> round(mean_interval([1.0, 2.0, 3.0])[1], 6)  # t_{0.975, 2} / sqrt(3)
    2.484138
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size < 2:
        return float(v.mean()), math.nan
    half = scipy.stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def log_width_slope(widths: Sequence[float] | np.ndarray, values: np.ndarray, *,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Least-squares slope of ``values`` against log2(width) with the half-width of its t-interval.

    ``values`` is (W, S): one value per width and seed; every finite point enters (seeds are
    independent draws). The slope is the change per doubling of the width.

    Examples
    --------
    >>> slope, half = log_width_slope([32, 64, 128], np.array([[0.5, 0.5], [0.4, 0.4], [0.3, 0.3]]))
    >>> round(slope, 12), round(half, 12)
    (-0.1, 0.0)
    """
    w = np.asarray(widths, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    x = np.broadcast_to(np.log2(w)[:, None], v.shape).ravel()
    y = v.ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0:
        return math.nan, math.nan
    fit = scipy.stats.linregress(x, y)
    half = scipy.stats.t.ppf(0.5 + confidence / 2, x.size - 2) * fit.stderr
    return float(fit.slope), float(half)


def verdict(low: float, high: float, threshold: float, *, claim: str) -> bool | None:
    """Three-way decision of "quantity < threshold" (``claim="below"``) or "> threshold" (``"above"``).

    True (the claim is reproduced) when the whole interval [low, high] lies on the claimed side,
    False (not reproduced) when it lies on the other side, None (inconclusive) when it straddles
    the threshold or is not finite.

    Examples
    --------
    >>> [verdict(lo, hi, 0.5, claim="below") for lo, hi in [(0.1, 0.2), (0.6, 0.9), (0.4, 0.6)]]
    [True, False, None]
    >>> verdict(0.6, 0.9, 0.5, claim="above")
    True
    """
    if claim not in ("below", "above"):
        raise ValueError(f"`claim` must be 'below' or 'above'; got {claim!r}.")
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    below = bool(high < threshold)
    above = bool(low > threshold)
    if not (below or above):
        return None
    return below if claim == "below" else above
