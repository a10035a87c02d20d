"""Mean-field signal propagation: fixed points, order/chaos and depth scales, for any activation.

Conventions (README, "Conventions"; Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017,
arXiv:1611.01232), with z ~ N(0, 1) and variances sigma_w^2 = ``sigma_w2``, sigma_b^2 = ``sigma_b2``:

* length map  q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 (Poole eq. 3); ``q_star`` is the fixed
  point reached by iterating it from q^1 = sigma_w^2 + sigma_b^2, the first-layer variance of an
  input with |x|^2 = d. It is 0 for an odd activation without bias in the ordered phase, and
  ``inf`` (``length_diverges`` set) when the iteration grows without bound (relu with
  sigma_w^2 > 2, or = 2 with sigma_b > 0): q beyond 1e12 (1 + q^1) counts as divergent.
* correlation map c -> (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q* with u1 = sqrt(q*) z1,
  u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2) (Poole eq. 5). ``c_star`` is its stable fixed point in
  [0, 1]: 1 when chi_1 <= 1 (ordered, critical), the non-trivial one in [0, 1) when chi_1 > 1.
* chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] (Schoenholz eq. 5); chi_c = sigma_w^2 E[phi'(u1) phi'(u2)]
  at (q*, c*), the slope of the correlation map at c* (= chi_1 when c* = 1).
* xi_q = -1 / log(chi_1 + sigma_w^2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)]) (the slope of the
  length map at q*; Schoenholz et al. eq. 7), xi_c = -1 / log(chi_c)
  (Schoenholz eq. 9). A slope >= 1 gives inf (the critical line: xi_c = inf exactly where
  chi_1 = 1); a slope of 0 gives 0.
* phase: ordered where chi_1 < 1, critical where |chi_1 - 1| <= ``critical_tol``, chaotic where
  chi_1 > 1.

Edge cases and limits (documented choices, never errors):

* q* = 0 (e.g. tanh, sigma_b = 0, sigma_w^2 <= 1): every expectation is taken in the limit
  q -> 0+, so kinked activations use their one-sided derivatives (relu: chi_1 = sigma_w^2 / 2).
* q* = inf: chi_1 is the limit q -> inf, sigma_w^2 (phi'(+inf)^2 + phi'(-inf)^2) / 2 (relu:
  sigma_w^2 / 2), which labels the phase; c_star, chi_c, xi_q and xi_c are NaN there.
* Derivatives follow autograd's conventions at kinks (relu'(0) = 0, step' = 0), so a step
  activation has chi_1 = 0 and is labelled ordered.

Numerics: the length map is solved per point by a safeguarded Newton iteration in compiled code,
with the composite Gauss-Legendre rule of :mod:`ntktheory._gauss` (panels chosen for the largest
q* found). The correlation map uses closed forms where the activation has them; otherwise the
Mehler series E[phi(u1) phi(u2)] = sum_k a_k(q*)^2 c^k with a_k = E[phi(sqrt(q*) z) h_k(z)]
(orthonormal Hermite polynomials), whose tail mass sum_{k>K} a_k^2 = E[phi^2] - sum_{k<=K} a_k^2
is known exactly; the degree K grows (128 -> 1024) only where the tail bound needs it, and points
whose bound still fails are polished with :func:`ntktheory._quadrature.bivariate_expectation`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np

from . import _gauss
from ._meanfield_kernels import length_kernels, solve_correlation, solve_correlation_table, solve_length_table
from ._provenance import provenance
from ._quadrature import bivariate_expectation
from ._validate import check_int, check_nonnegative, check_positive
from .activations import Activation, ActivationSpec, get_activation

__all__ = ["PHASE_CODES", "MeanField", "critical_sigma_w2", "mean_field", "meanfield_trajectory"]

#: Integer codes of the ``phase`` variable (CF ``flag_values`` / ``flag_meanings``).
PHASE_CODES: dict[str, int] = {"ordered": 0, "critical": 1, "chaotic": 2}

#: Activations that are piecewise linear with their only kink at 0: the composite rule with 0 as a
#: panel edge is exact for them at every variance, so the smallest panel count serves all q.
_PIECEWISE_LINEAR = frozenset({"relu", "leaky_relu", "abs", "identity", "step"})
#: Fixed points beyond this factor times (1 + q^1) count as divergent.
_Q_DIVERGE = 1e12
#: Largest variance the quadrature rule is sized for (the range of ``_gauss``'s accuracy claim).
_Q_RULE_MAX = 1e4
#: Degrees of the Mehler series tried in turn for the correlation map.
_K_LADDER = (128, 256, 512, 1024)
#: Tolerated truncation error of the correlation-map equation sigma_w^2 S(c) = q*, relative to q*
#: (the error of c* is this divided by the slope of S, itself >= ~q* E[phi''^2] / 2 near c = 1).
_C_TOL = 1e-12
#: Points of the tables of the smooth-activation fast path.
_TABLE_SIZE = 4096
#: Half-width in z of the Hermite-coefficient rule (e^{-13^2/4} ~ 5e-19).
_Z_COEF = 13.0


# ---------------------------------------------------------------------- validation helpers
def _variance_array(name: str, value: object, *, positive: bool) -> np.ndarray:
    """A float64 array of finite variances (> 0 if ``positive`` else >= 0), any shape."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number or an array of real numbers, got {value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a real number or an array of real numbers, got {value!r}.") from err
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got {value!r}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    if positive and np.any(arr <= 0):
        raise ValueError(f"`{name}` must be > 0 (a weight variance sigma_w^2), got {value!r}.")
    if not positive and np.any(arr < 0):
        raise ValueError(f"`{name}` must be >= 0 (a bias variance sigma_b^2), got {value!r}.")
    return arr


def _check_tol(name: str, value: object) -> float:
    return check_nonnegative(name, value)


# ---------------------------------------------------------------------- length map
def _z_rule(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (Gaussian density included) of ``_gauss``'s rule on [-Z_MAX, Z_MAX]."""
    z, w = _gauss.composite_legendre(-_gauss.Z_MAX, _gauss.Z_MAX, int(panels))
    return z, w * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _panels_for(act: Activation, q: np.ndarray) -> int:
    if act.name in _PIECEWISE_LINEAR:
        return 12
    finite = q[np.isfinite(q)]
    top = min(float(np.max(finite, initial=1.0)), _Q_RULE_MAX)
    return int(_gauss.panel_count(top))


def _chi_1_at_infinity(act: Activation, sw2: np.ndarray) -> np.ndarray:
    """lim_{q -> inf} sigma_w^2 E[phi'(sqrt(q) z)^2] = sigma_w^2 (phi'(+inf)^2 + phi'(-inf)^2) / 2."""
    with np.errstate(all="ignore"):
        ends = act.dphi(np.array([-1e8, 1e8]))
    value = 0.5 * float(ends[0] ** 2 + ends[1] ** 2)
    return sw2 * value if np.isfinite(value) else np.full_like(sw2, np.nan)


def _length_fixed_points(act: Activation, sw2: np.ndarray, sb2: np.ndarray):
    """(q*, chi_1, slope of the length map at q*, diverged) for flat arrays."""
    kern = length_kernels(act)
    q1 = sw2 + sb2
    q_max = _Q_DIVERGE * (1.0 + q1)
    q, chi, slope = np.empty_like(sw2), np.empty_like(sw2), np.empty_like(sw2)
    todo = np.ones(sw2.size, dtype=bool)
    if _tabulable(act) and sw2.size > _TABLE_SIZE // 4:
        table, h = _moment_table(act, float(np.max(q1)))
        solve_length_table(sw2, sb2, q1, table, h, q, chi, slope, todo)
        todo = ~todo
    idx = np.flatnonzero(todo)
    if idx.size:
        w2, b2, s1, qm = sw2[idx], sb2[idx], q1[idx], q_max[idx]
        qi, ci, si = np.empty_like(w2), np.empty_like(w2), np.empty_like(w2)
        iters = np.empty(idx.size, dtype=np.int64)
        panels = _panels_for(act, s1)
        kern.solve_length(w2, b2, s1, *_z_rule(panels), qm, qi, ci, si, iters)
        refined = _panels_for(act, qi)
        if refined != panels:  # q* above q^1: redo with a rule sized for it, from the estimate
            start = np.where(np.isfinite(qi), qi, s1)
            kern.solve_length(w2, b2, start, *_z_rule(refined), qm, qi, ci, si, iters)
        q[idx], chi[idx], slope[idx] = qi, ci, si
    diverged = ~np.isfinite(q)
    if diverged.any():
        chi[diverged] = _chi_1_at_infinity(act, sw2[diverged])
    return q, chi, slope, diverged


def _tabulable(act: Activation) -> bool:
    """Smooth activations take the tabulated fast path (see ``_meanfield_kernels``)."""
    return act.is_smooth and act.name not in _PIECEWISE_LINEAR


def _log_grid(q_top: float, size: int) -> tuple[np.ndarray, float]:
    h = math.log1p(max(q_top, 1e-6)) / (size - 1)
    return np.expm1(h * np.arange(size)), h


def _moment_table(act: Activation, q_top: float) -> tuple[np.ndarray, float]:
    """(E[phi^2], E[phi'^2], E[phi phi'']) on the log1p grid up to q_top, and its step."""
    q, h = _log_grid(q_top, _TABLE_SIZE)
    table = np.empty((q.size, 3))
    m0, m1, m2 = np.empty_like(q), np.empty_like(q), np.empty_like(q)
    length_kernels(act).moments(q, *_z_rule(_panels_for(act, q)), m0, m1, m2)
    table[:, 0], table[:, 1], table[:, 2] = m0, m1, m2
    return table, h


def _length_only(act: Activation, sw2: np.ndarray, sb2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, chi, _, _ = _length_fixed_points(act, sw2, sb2)
    return q, chi


# ---------------------------------------------------------------------- correlation map
def _hermite_matrix(kmax: int, q_top: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_m and H[m, k] = W_m h_k(z_m) on [-13, 13] (W_m with the Gaussian density)."""
    width = min(1.5, 12.0 / math.sqrt(kmax + 1.0), 1.6 / math.sqrt(max(q_top, 1e-300)))
    panels = math.ceil(2.0 * _Z_COEF / width)
    panels += panels % 2
    z, w = _gauss.composite_legendre(-_Z_COEF, _Z_COEF, panels)
    w = w * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    h = np.empty((z.size, kmax + 1))
    h[:, 0] = 1.0
    h[:, 1] = z
    for k in range(1, kmax):
        h[:, k + 1] = (z * h[:, k] - math.sqrt(k) * h[:, k - 1]) / math.sqrt(k + 1.0)
    return z, h * w[:, None]


def _squared_coefficients(act: Activation, q: np.ndarray, kmax: int) -> np.ndarray:
    """a_k(q)^2 for k = 0..kmax, rows = entries of q (q = 0 treated as 1e-300)."""
    z, h = _hermite_matrix(kmax, float(np.max(q)))
    sigma = np.sqrt(np.maximum(q, 1e-300))
    out = np.empty((q.size, kmax + 1))
    step = max(1, 2_000_000 // z.size)
    for start in range(0, q.size, step):
        vals = act.phi(sigma[start : start + step, None] * z[None, :])
        out[start : start + step] = vals @ h
    return out * out


def _correlation_closed_form(act, sw2, q, g):
    """Vectorised bisection for sw2 (g - E[phi phi](c)) = q (1 - c), c in [0, 1); chi_c."""
    lo = np.zeros_like(q)
    hi = np.ones_like(q)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        pp, _ = act.gaussian_expectations(q, q, mid * q)
        above = sw2 * (g - pp) - q * (1.0 - mid) > 0.0  # sw2 S(mid) > q*: c* < mid
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    c = 0.5 * (lo + hi)
    pp0, _ = act.gaussian_expectations(q, q, np.zeros_like(q))
    c = np.where(sw2 * (g - pp0) >= q, 0.0, c)
    _, dd = act.gaussian_expectations(q, q, c * q)
    return c, sw2 * dd


def _correlation_series(act, sw2, q, g, ladder=_K_LADDER):
    """Mehler-series solve (see ``solve_correlation``) with growing degree, then polishing."""
    c = np.full_like(q, np.nan)
    chi_c = np.full_like(q, np.nan)
    todo = np.arange(q.size)
    for kmax in ladder:
        if todo.size == 0:
            break
        a2 = _squared_coefficients(act, q[todo], kmax)
        r0 = np.maximum(g[todo] - a2.sum(axis=1), 0.0)
        ci, si, bi = (np.empty(todo.size) for _ in range(3))
        solve_correlation(a2, r0, sw2[todo], q[todo], ci, si, bi)
        ok = bi <= _C_TOL
        if kmax == ladder[-1]:
            ok[:] = True
        c[todo[ok]] = ci[ok]
        chi_c[todo[ok]] = si[ok]
        if kmax == ladder[-1]:
            bad = todo[bi > _C_TOL]
            if bad.size:
                c[bad], chi_c[bad] = _polish(act, sw2[bad], q[bad], g[bad], c[bad])
        todo = todo[~ok]
    return c, chi_c


def _correlation_table(act, sw2, q, g):
    """Fast path: Hermite coefficients tabulated in q, interpolated at each q*."""
    q_top = float(np.max(q))
    a2 = _squared_coefficients(act, np.array([q_top]), _K_LADDER[-1])[0]
    k = np.arange(a2.size)
    weighted_tail = np.cumsum((k * a2)[::-1])[::-1]
    kmax = _K_LADDER[-1]
    for cand in _K_LADDER:
        if weighted_tail[cand] <= 1e-13 * weighted_tail[0]:
            kmax = cand
            break
    grid, h = _log_grid(q_top, _TABLE_SIZE)
    z, hm = _hermite_matrix(kmax, q_top)
    table = np.empty((grid.size, kmax + 1))
    step = max(1, 2_000_000 // z.size)
    sigma = np.sqrt(grid)
    for start in range(0, grid.size, step):
        table[start : start + step] = act.phi(sigma[start : start + step, None] * z[None, :]) @ hm
    c, chi_c, bound = np.empty_like(q), np.empty_like(q), np.empty_like(q)
    solve_correlation_table(table, h, sw2, q, g, c, chi_c, bound)
    bad = np.flatnonzero(bound > _C_TOL)
    if bad.size:  # near the critical line (c* close to 1): direct coefficients of degree 1024
        c[bad], chi_c[bad] = _correlation_series(act, sw2[bad], q[bad], g[bad], ladder=_K_LADDER[-1:])
    return c, chi_c


def _polish(act, sw2, q, g, c):
    """Newton steps on sw2 (g - E[phi phi](c)) - q (1 - c) with direct bivariate quadrature."""
    bp = act.kinks
    for _ in range(2):
        pp = bivariate_expectation(act.phi, act.phi, q, q, c * q, breakpoints=bp)
        dd = bivariate_expectation(act.dphi, act.dphi, q, q, c * q, breakpoints=bp)
        f = sw2 * (g - pp) - q * (1.0 - c)
        fp = q - sw2 * q * dd
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.clip(np.where(fp != 0, c - f / fp, c), 0.0, 1.0)
    dd = bivariate_expectation(act.dphi, act.dphi, q, q, c * q, breakpoints=bp)
    return c, sw2 * dd


# ---------------------------------------------------------------------- public API
@dataclasses.dataclass(frozen=True)
class MeanField:
    """Mean-field quantities at each (sigma_w2, sigma_b2), arrays of the broadcast shape.

    Attributes
    ----------
    q_star, c_star, chi_1, chi_c, xi_q, xi_c : ndarray of float64
        As defined in the module docstring (inf / NaN in the documented edge cases).
    phase : ndarray of int8
        ``PHASE_CODES``: 0 ordered, 1 critical, 2 chaotic.
    length_diverges : ndarray of bool
        True where the length map has no finite fixed point above q^1 (q_star = inf).
    """

    q_star: np.ndarray
    c_star: np.ndarray
    chi_1: np.ndarray
    chi_c: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    phase: np.ndarray
    length_diverges: np.ndarray

    def phase_names(self) -> np.ndarray:
        """``phase`` as strings ("ordered", "critical", "chaotic")."""
        names = np.array(list(PHASE_CODES))
        return names[self.phase]


def _depth_scale(slope: np.ndarray) -> np.ndarray:
    """-1 / log|slope|, inf for |slope| >= 1, 0 for slope 0, NaN where slope is NaN."""
    a = np.abs(slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = -1.0 / np.log(a)
    xi = np.where(a >= 1.0, np.inf, xi)
    xi = np.where(a == 0.0, 0.0, xi)
    return np.where(np.isnan(slope), np.nan, xi)


def mean_field(
    activation: ActivationSpec,
    sigma_w2: object,
    sigma_b2: object = 0.0,
    *,
    critical_tol: float = 1e-12,
) -> MeanField:
    """Fixed points, chi_1, chi_c and depth scales of the mean-field recursion.

    Parameters
    ----------
    activation
        Registry name, :class:`~ntktheory.activations.Activation`, or expression in ``x``.
    sigma_w2, sigma_b2
        Weight variance(s) > 0 and bias variance(s) >= 0; arrays broadcast together.
    critical_tol
        ``|chi_1 - 1|`` at most this counts as critical (xi_c = inf there).

    Returns
    -------
    MeanField
        Arrays of the broadcast shape of ``sigma_w2`` and ``sigma_b2``.

    Raises
    ------
    TypeError
        If a variance is not numeric.
    ValueError
        If a variance is not finite, ``sigma_w2 <= 0`` or ``sigma_b2 < 0``.

    References
    ----------
    Poole et al. 2016, arXiv:1606.05340, eqs. 3-5; Schoenholz et al. 2017, arXiv:1611.01232,
    eqs. 5-9.

    Examples
    --------
    >>> mf = mean_field("relu", 1.5, 0.1)
    >>> round(float(mf.chi_1), 12), round(float(mf.q_star), 12)   # q* = sigma_b^2 / (1 - sigma_w^2 / 2)
    (0.75, 0.4)
    >>> mf = mean_field("tanh", [0.5, 1.0, 2.0], 0.0)
    >>> mf.phase_names().tolist()
    ['ordered', 'critical', 'chaotic']
    """
    act = get_activation(activation)
    sw2 = _variance_array("sigma_w2", sigma_w2, positive=True)
    sb2 = _variance_array("sigma_b2", sigma_b2, positive=False)
    tol = _check_tol("critical_tol", critical_tol)
    sw2, sb2 = np.broadcast_arrays(sw2, sb2)
    shape = sw2.shape
    fields = _mean_field_flat(act, np.ascontiguousarray(sw2).reshape(-1),
                              np.ascontiguousarray(sb2).reshape(-1), tol)
    return MeanField(**{k: v.reshape(shape) for k, v in fields.items()})


def _mean_field_flat(act: Activation, sw2: np.ndarray, sb2: np.ndarray, tol: float) -> dict:
    q, chi_1, slope, diverged = _length_fixed_points(act, sw2, sb2)
    phase = np.where(chi_1 > 1.0 + tol, 2, np.where(chi_1 < 1.0 - tol, 0, 1)).astype(np.int8)
    c = np.where(diverged, np.nan, 1.0)
    chi_c = np.where(diverged, np.nan, chi_1)
    chaotic = np.flatnonzero((phase == 2) & ~diverged & (q > 0))
    if chaotic.size:
        qc, sc = q[chaotic], sw2[chaotic]
        g = (qc - sb2[chaotic]) / sc  # E[phi^2] at q*, by the fixed-point identity
        if act.has_closed_form:
            cc, xc = _correlation_closed_form(act, sc, qc, g)
        elif _tabulable(act) and chaotic.size > _TABLE_SIZE // 4:
            cc, xc = _correlation_table(act, sc, qc, g)
        else:
            cc, xc = _correlation_series(act, sc, qc, g)
        c[chaotic], chi_c[chaotic] = cc, xc
    critical = phase == 1
    chi_c = np.where(critical & ~diverged, 1.0, chi_c)
    xi_c = _depth_scale(chi_c)
    xi_c = np.where(critical & ~diverged, np.inf, xi_c)
    xi_q = _depth_scale(np.where(diverged, np.nan, slope))
    return {
        "q_star": q, "c_star": c, "chi_1": chi_1, "chi_c": chi_c, "xi_q": xi_q, "xi_c": xi_c,
        "phase": phase, "length_diverges": diverged,
    }


def critical_sigma_w2(activation: ActivationSpec, sigma_b2: object = 0.0, *, xtol: float = 1e-12):
    """The order/chaos boundary: sigma_w^2 where chi_1 = 1, for each sigma_b^2.

    Root finding on chi_1(sigma_w^2) - 1 (the length fixed point solved afresh at every trial),
    vectorised over ``sigma_b2``: an upward search brackets the root, then a bracketing
    Illinois / bisection iteration shrinks the bracket below ``xtol`` (absolute; the result is
    accurate to ~1e-10 or better, limited by chi_1's own accuracy).

    Parameters
    ----------
    activation
        Registry name, Activation or expression.
    sigma_b2
        Bias variance(s) >= 0, scalar or array.
    xtol
        Bracket width at which the iteration stops.

    Returns
    -------
    float or ndarray
        Same shape as ``sigma_b2`` (a float for a scalar); NaN where chi_1 stays below 1 for all
        sigma_w^2 <= 1e6 or exceeds 1 for all sigma_w^2 >= 1e-8.

    Notes
    -----
    Without bias, a smooth phi with phi(0) = 0 != phi'(0) has its boundary exactly at
    1 / phi'(0)^2 (tanh: 1, erf: pi / 4), where q* = 0 loses stability; chi_1 approaches 1 only
    quadratically from the chaotic side there, so the exact value is returned. For activations
    whose length map is bistable (gelu, swish, x tanh(x): q* = 0 and q* = inf both attract),
    chi_1 jumps across 1 where the iteration from q^1 = sigma_w^2 + sigma_b^2 switches branch;
    the location of that jump is returned.

    Raises
    ------
    TypeError, ValueError
        For a non-numeric, non-finite or negative ``sigma_b2``, or a negative ``xtol``.

    References
    ----------
    Poole et al. 2016, arXiv:1606.05340, Fig. 2; Schoenholz et al. 2017, arXiv:1611.01232, Fig. 1.

    Examples
    --------
    >>> round(float(critical_sigma_w2("erf", 0.0)), 10) == round(np.pi / 4, 10)
    True
    >>> round(float(critical_sigma_w2("tanh", 0.05)), 7)
    1.7609546
    """
    act = get_activation(activation)
    sb2_in = _variance_array("sigma_b2", sigma_b2, positive=False)
    xtol = _check_tol("xtol", xtol)
    sb2 = np.ascontiguousarray(sb2_in, dtype=np.float64).reshape(-1)

    def excess(w2: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return _length_only(act, w2, sb2[idx])[1] - 1.0

    root = _increasing_roots(excess, sb2.size, lo=1e-8, hi=1.0, hi_max=1e6, xtol=xtol)
    root = np.where(sb2 == 0.0, _unbiased_boundary(act, root), root).reshape(sb2_in.shape)
    return float(root) if root.ndim == 0 else root


def _increasing_roots(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    size: int,
    *,
    lo: float,
    hi: float,
    hi_max: float,
    xtol: float,
    grow_steps: int = 25,
    maxiter: int = 200,
) -> np.ndarray:
    """Roots of ``size`` increasing functions, vectorised: upward bracketing, then Illinois steps.

    The mean-field analysis's one bracketing root finder in numpy (the compiled correlation-map
    solve in ``_meanfield_kernels`` uses a safeguarded Newton step, which needs the derivative).
    Each bracket starts as [lo, hi]; hi doubles (lo taking its old value) while the function is
    negative there and hi < ``hi_max``, at most ``grow_steps`` times. Bracketed roots are then
    found by regula falsi with the Illinois modification (the retained end's value is halved when
    the same side is kept twice), falling back to bisection when the secant point leaves the
    bracket, until the bracket is at most ``xtol`` wide (its midpoint is returned) or a trial
    value is exactly 0.

    Parameters
    ----------
    func
        ``func(x, idx)``: the values at the points ``x`` of the functions with indices ``idx``
        (both 1-D, of the same length).
    size
        Number of functions.
    lo, hi
        The initial bracket, the same for every function.
    hi_max
        hi is not grown beyond the first doubling past this.
    xtol
        Absolute bracket width at which the iteration stops.
    grow_steps, maxiter
        Largest numbers of bracket doublings and of Illinois steps.

    Returns
    -------
    ndarray
        The roots, shape (size,); NaN where no sign change was bracketed.

    Examples
    --------
    >>> roots = _increasing_roots(lambda x, i: x * x - np.array([2.0, 9.0])[i], 2, lo=0.0, hi=1.0,
    ...                           hi_max=1e6, xtol=1e-14)
    >>> bool(np.allclose(roots, [np.sqrt(2.0), 3.0], rtol=0, atol=1e-13))
    True
    """
    every = np.arange(size)
    lo = np.full(size, float(lo))
    hi = np.full(size, float(hi))
    f_lo = func(lo, every)
    f_hi = func(hi, every)
    for _ in range(grow_steps):
        grow = (f_hi < 0) & (hi < hi_max)
        if not grow.any():
            break
        lo = np.where(grow, hi, lo)
        f_lo = np.where(grow, f_hi, f_lo)
        hi = np.where(grow, hi * 2.0, hi)
        idx = np.flatnonzero(grow)
        f_hi[idx] = func(hi[idx], idx)
    valid = (f_lo <= 0) & (f_hi >= 0)
    root = np.where(f_lo == 0, lo, np.where(f_hi == 0, hi, np.nan))
    active = np.flatnonzero(valid & np.isnan(root))
    side = np.zeros(size, dtype=np.int8)
    for _ in range(maxiter):
        if active.size == 0:
            break
        a, b, fa, fb = lo[active], hi[active], f_lo[active], f_hi[active]
        x = (a * fb - b * fa) / (fb - fa)
        bad = ~((x > a) & (x < b))
        x[bad] = 0.5 * (a[bad] + b[bad])
        fx = func(x, active)
        left = fx > 0  # root in [a, x]
        # Illinois modification: halve the stale end's value when the same side is kept twice
        s = side[active]
        fa_new = np.where(left & (s == -1), fa * 0.5, fa)
        fb_new = np.where(~left & (s == 1), fb * 0.5, fb)
        lo[active] = np.where(left, a, x)
        f_lo[active] = np.where(left, fa_new, fx)
        hi[active] = np.where(left, x, b)
        f_hi[active] = np.where(left, fx, fb_new)
        side[active] = np.where(left, -1, 1)
        done = (fx == 0) | (hi[active] - lo[active] <= xtol)
        root[active[done]] = np.where(fx[done] == 0, x[done], 0.5 * (lo[active[done]] + hi[active[done]]))
        active = active[~done]
    root[active] = 0.5 * (lo[active] + hi[active])
    return root


def _unbiased_boundary(act: Activation, found: np.ndarray) -> np.ndarray:
    """Exact boundary without bias for smooth phi with phi(0) = 0 != phi'(0): 1 / phi'(0)^2.

    There q* = 0 is a fixed point, stable (with chi_1 = sigma_w^2 phi'(0)^2 < 1) up to
    sigma_w^2 = 1 / phi'(0)^2; beyond it chi_1 approaches 1 only quadratically, so root finding
    on chi_1 - 1 alone is limited to ~sqrt(machine epsilon). The exact value replaces the root
    found when the two agree to 1e-6 (otherwise the boundary lies elsewhere and is kept).
    """
    if not _tabulable(act):
        return found
    phi0, dphi0 = float(act.phi(np.zeros(1))[0]), float(act.dphi(np.zeros(1))[0])
    if phi0 != 0.0 or dphi0 == 0.0:
        return found
    exact = 1.0 / (dphi0 * dphi0)
    return np.where(np.abs(found - exact) <= 1e-6 * exact, exact, found)


def meanfield_trajectory(
    x1: Iterable[float],
    x2: Iterable[float],
    *,
    activation: ActivationSpec,
    depth: int,
    sigma_w2: float,
    sigma_b2: float = 0.0,
):
    """q^l(x1), q^l(x2) and c^l(x1, x2) through depth, l = 1..depth + 1.

    Layer 1 is Sigma^1 = sigma_w^2 x.x'/d + sigma_b^2; layer l + 1 applies the length and
    covariance maps (the NNGP recursion of the README's conventions, at the readout for l = depth + 1).

    Parameters
    ----------
    x1, x2
        Two inputs, 1-D of the same length d.
    activation
        Registry name, Activation or expression.
    depth
        Number of hidden layers L >= 1.
    sigma_w2, sigma_b2
        Weight variance > 0, bias variance >= 0.

    Returns
    -------
    xarray.Dataset
        Variables ``q1``, ``q2``, ``c`` on dim ``layer`` (1..depth + 1); attrs: the provenance
        (:func:`ntktheory._provenance.provenance`) and ``activation``, ``sigma_w2``, ``sigma_b2``,
        ``depth``.

    Examples
    --------
    >>> ds = meanfield_trajectory([1.0, 0.0], [0.0, 1.0], activation="relu", depth=2, sigma_w2=2.0)
    >>> [round(float(v), 6) for v in ds.c.values]
    [0.0, 0.31831, 0.493731]
    """
    import xarray as xr  # lazy: heavy, and `import ntktheory` does not otherwise load it

    act = get_activation(activation)
    a = np.asarray(x1, dtype=np.float64)
    b = np.asarray(x2, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size != b.size or a.size == 0:
        raise ValueError(
            f"`x1` and `x2` must be 1-D of the same non-zero length; got shapes {a.shape!r} and {b.shape!r}."
        )
    depth = check_int("depth", depth, minimum=1)
    sw2 = check_positive("sigma_w2", sigma_w2)
    sb2 = check_nonnegative("sigma_b2", sigma_b2)
    d = a.size
    q1, q2, q12 = sw2 * a @ a / d + sb2, sw2 * b @ b / d + sb2, sw2 * a @ b / d + sb2
    qs1, qs2, cs = [q1], [q2], [q12 / math.sqrt(q1 * q2) if q1 * q2 > 0 else 1.0]
    for _ in range(depth):
        if act.has_closed_form:
            pp, _ = act.gaussian_expectations(np.array([q1, q2, q1]), np.array([q1, q2, q2]),
                                              np.array([q1, q2, q12]))
            e11, e22, e12 = (float(v) for v in pp)
        else:
            e12 = float(bivariate_expectation(act.phi, act.phi, q1, q2, q12, breakpoints=act.kinks))
            e11, e22 = (float(_gauss.expect([act.phi, act.phi], v, breakpoints=act.kinks)) for v in (q1, q2))
        q1, q2, q12 = sw2 * e11 + sb2, sw2 * e22 + sb2, sw2 * e12 + sb2
        qs1.append(q1)
        qs2.append(q2)
        cs.append(q12 / math.sqrt(q1 * q2) if q1 * q2 > 0 else 1.0)
    layer = np.arange(1, depth + 2)
    return xr.Dataset(
        {"q1": ("layer", np.array(qs1)), "q2": ("layer", np.array(qs2)), "c": ("layer", np.array(cs))},
        coords={"layer": layer},
        attrs={**provenance({"activation": act.name, "expression": str(act.expression),
                             "activation_params": dict(act.params), "depth": depth, "sigma_w2": sw2,
                             "sigma_b2": sb2, "n_features": int(d)}, conventions="mean_field"),
               "activation": act.name, "sigma_w2": sw2, "sigma_b2": sb2, "depth": depth},
    )
