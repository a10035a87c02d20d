"""Bivariate Gaussian expectations E[f(u) g(v)] for many (q1, q2, c) at once, to ~1e-13.

(u, v) ~ N(0, [[q1, q12], [q12, q2]]), c = q12 / sqrt(q1 q2). Two methods, one bound deciding:

1. **Mehler / Hermite series** (the fast path). With the orthonormal probabilists' Hermite
   polynomials h_k,

       E[f(u) g(v)] = sum_k a_k(q1) b_k(q2) c^k,   a_k(q) = E[f(sqrt(q) z) h_k(z)],

   (Mehler's formula). The coefficients of all distinct variances come from ONE matrix product over
   a fixed composite Gauss-Legendre grid on z in [-13, 13] (the Hermite functions h_k sqrt(phi)
   are O(1) up to |z| ~ 2 sqrt(k), and e^{-13^2/4} ~ 5e-19), with panels narrow enough for both
   the oscillation of h_K (wavenumber ~ sqrt(K)) and the activation's feature scale 1/sqrt(q)
   (activations are assumed to vary on a scale ~1 in their own variable, like tanh whose poles are
   at +-i pi/2). The panel count is even, so z = 0 is a panel edge and a kink at 0 is exact.
   By Cauchy-Schwarz and Parseval the truncation error after K terms is rigorously bounded:

       |sum_{k>K} a_k b_k c^k| <= |c|^{K+1} sqrt(T_a(K) T_b(K)),  T_a(K) = E[f^2] - sum_{k<=K} a_k^2,

   with E[f^2] from the univariate rule (``_gauss.expect``). Each pair gets the smallest K whose
   bound is below ``TOL`` relative to the Cauchy-Schwarz scale sqrt(E[f^2] E[g^2]); K grows
   (64 -> 1024) only while some pair needs it.
2. **Direct 2-D quadrature** (the fallback) for pairs whose bound still fails at K = 1024 (a
   near-saturated activation at |c| close to 1; slowly converging series of kinked activations):
   E = int f(sqrt(q1) z1) G(sqrt(q2) c z1) phi(z1) dz1 with G(m) = E[g(m + s z2)],
   s = sqrt(q2 (1 - c^2)). Both integrals use 16-point Gauss-Legendre panels graded
   geometrically (ratio 2) away from every feature (0 and the kinks, mapped into z1 and into z2),
   starting at the feature's own scale; on such panels every integrand is analytic with a
   Bernstein ellipse parameter >= 3.4, so each panel is exact to ~1e-16. c = +-1 (s = 0) is exact.

For the kernels, :func:`pair_expectations` evaluates the series on a whole (N1, N2) matrix of
correlations at once (rows in parallel, columns vectorised, fused over several function pairs),
using the upper triangle only when the matrix is symmetric.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit, prange

from . import _gauss

__all__ = ["TOL", "bivariate_expectation", "pair_expectations"]

ElementwiseFunction = Callable[[np.ndarray], np.ndarray]

#: Target truncation error of the series, relative to sqrt(E[f^2] E[g^2]).
TOL = 1e-13
#: Floor added to the relative tails (rounding in E[f^2] - sum a_k^2 and in the coefficients).
_TAIL_FLOOR = 1e-15
#: Half-width (in z) of the coefficient grid.
_Z_COEF = 13.0
#: Coefficient counts tried in turn (K + 1 terms, K the largest degree).
_K_LADDER = (64, 128, 256, 512, 1024)
#: Largest degree used by the row-vectorised Horner sums; pairs needing more use the per-pair path.
_K_ROW = 256
#: Half-width (in z) of the direct 2-D quadrature domain (Gaussian mass outside: 1.5e-23).
_Z_DIRECT = 10.0
#: Gauss-Legendre reference nodes and weights on [-1, 1].
_GL_T, _GL_W = np.polynomial.legendre.leggauss(_gauss.GL_NODES)


# ---------------------------------------------------------------------- coefficients
def _grid_panels(q_max: float, kmax: int) -> int:
    """Even panel count on [-13, 13] resolving h_kmax and an activation at variance q_max."""
    width = min(1.5, 12.0 / math.sqrt(kmax + 1.0), 1.6 / math.sqrt(max(q_max, 1e-300)))
    panels = math.ceil(2.0 * _Z_COEF / width)
    panels += panels % 2
    # a ladder of multiples of 8, so that layers with similar q share one cached Hermite matrix
    return max(16, 8 * math.ceil(panels / 8))


@functools.lru_cache(maxsize=64)
def _hermite_rule(panels: int, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_m and the matrix H[m, k] = W_m h_k(z_m) (W_m includes the Gaussian density)."""
    z, w = _gauss.composite_legendre(-_Z_COEF, _Z_COEF, panels)
    w = w * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    h = np.empty((z.size, kmax + 1))
    h[:, 0] = 1.0
    if kmax >= 1:
        h[:, 1] = z
    for k in range(1, kmax):
        h[:, k + 1] = (z * h[:, k] - math.sqrt(k) * h[:, k - 1]) / math.sqrt(k + 1.0)
    h *= w[:, None]
    z.setflags(write=False)
    h.setflags(write=False)
    return z, h


def _coefficients(evaluate: Callable[[np.ndarray], Sequence[np.ndarray]], q: np.ndarray, z: np.ndarray,
                  h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a[p, i, k] = E[f_p(sqrt(q_i) z) h_k(z)] for every function and q_i, by one matrix product
    (chunked), and E[f_p(sqrt(q_i) z)^2] from the same values (h[:, 0] holds the rule's weights,
    h_0 = 1). ``evaluate`` returns the values of all the functions at an array of points."""
    sigma = np.sqrt(q)
    out, second = None, None
    step = max(1, 4_000_000 // z.size)
    for start in range(0, q.size, step):
        values = evaluate(sigma[start : start + step, None] * z[None, :])
        if out is None:
            out, second = np.empty((len(values), q.size, h.shape[1])), np.empty((len(values), q.size))
        for p, vals in enumerate(values):
            out[p, start : start + step] = vals @ h
            second[p, start : start + step] = np.square(vals) @ h[:, 0]
    return out, second


def _evaluator(funcs: Sequence[ElementwiseFunction]) -> Callable[[np.ndarray], list[np.ndarray]]:
    def evaluate(x: np.ndarray) -> list[np.ndarray]:
        return [f(x) for f in funcs]

    return evaluate


def _relative_tails(a: np.ndarray, second_moment: np.ndarray) -> np.ndarray:
    """t[i, K] = (E[f^2] - sum_{k<=K} a_k^2) / E[f^2], floored; 0 where E[f^2] = 0."""
    partial = np.cumsum(a * a, axis=1)
    m2 = second_moment[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(m2 > 0.0, np.maximum(m2 - partial, 0.0) / m2 + _TAIL_FLOOR, 0.0)
    return t


def _squared(f: ElementwiseFunction) -> ElementwiseFunction:
    """x -> f(x)^2 with one evaluation of f (``expect([f, f])`` would evaluate it twice)."""

    def square(x: np.ndarray) -> np.ndarray:
        return np.square(f(x))

    return square


class _Series:
    """Hermite coefficients and relative tails of several functions at several variances.

    The second moments E[f^2] that the tails need come from the same grid as the coefficients
    unless given: its panels resolve f at every variance (kinks other than 0 never reach here),
    and the same rule on both sides of T = E[f^2] - sum a_k^2 keeps the tails consistent."""

    def __init__(self, evaluate: Callable[[np.ndarray], Sequence[np.ndarray]], q: np.ndarray, kmax: int,
                 panels: int, second_moment: np.ndarray | None = None) -> None:
        z, h = _hermite_rule(panels, kmax)
        # each distinct variance once (inputs on a sphere share one), spread back to the N rows
        uq, first, inverse = np.unique(q, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        coef, grid_moment = _coefficients(evaluate, uq, z, h)  # (P, U, K+1), (P, U)
        unique_moment = grid_moment if second_moment is None else second_moment[:, first]
        self.second_moment = unique_moment[:, inverse]
        tails = np.stack([_relative_tails(a, m) for a, m in zip(coef, unique_moment)])
        self.coef, self.tails = coef[:, inverse], tails[:, inverse]


def second_moments(funcs: Sequence[ElementwiseFunction], q: np.ndarray, breakpoints: tuple[float, ...]) -> np.ndarray:
    """E[f(u)^2] for u ~ N(0, q_i), every function and variance: (P, N), by the univariate rule
    (once per distinct variance)."""
    uq, inverse = np.unique(q, return_inverse=True)
    moments = np.stack([_gauss.expect([_squared(f)], uq, breakpoints=breakpoints) for f in funcs])
    return moments[:, inverse.reshape(-1)]


# ---------------------------------------------------------------------- compiled sums
@njit(cache=True, inline="always", error_model="numpy")
def _pair_degree(ac, ta, tb, i, j, kmax, tol):
    """Smallest K <= kmax with |c|^(K+1) sqrt(ta[p,i,K] tb[p,j,K]) <= tol for all p, else -1."""
    if ac == 0.0:
        return 0
    logc = math.log(ac)
    for k in range(kmax + 1):
        ok = True
        for p in range(ta.shape[0]):
            if math.exp((k + 1) * logc) * math.sqrt(ta[p, i, k] * tb[p, j, k]) > tol:
                ok = False
                break
        if ok:
            return k
    return -1


@njit(cache=True, parallel=True, error_model="numpy")
def _scalar_sums(idx1, idx2, c, coef1, coef2, ta, tb, tol, out, failed):
    """Series for a list of elements, each with its own degree; failed[e] = True if none suffices."""
    kmax = coef1.shape[2] - 1
    for e in prange(idx1.size):
        i = idx1[e]
        j = idx2[e]
        ce = c[e]
        deg = _pair_degree(abs(ce), ta, tb, i, j, kmax, tol)
        failed[e] = deg < 0
        if deg < 0:
            deg = kmax
        for p in range(coef1.shape[0]):
            s = coef1[p, i, deg] * coef2[p, j, deg]
            for k in range(deg - 1, -1, -1):
                s = s * ce + coef1[p, i, k] * coef2[p, j, k]
            out[p, e] = s


#: Columns per tile of the row sums: each (row, tile) gets the degree its own largest |c| needs, so
#: a few strongly correlated columns (neighbouring positions of one image) do not raise the degree
#: of a whole row.
_TILE = 64


@njit(cache=True, parallel=True, error_model="numpy")
def _plan_rows(c, ta, tb, tb_max, krow, tol, symmetric, irregular, degree):
    """Per row: mark pairs whose bound fails at degree krow (irregular), and per tile of
    :data:`_TILE` columns pick the smallest degree that bounds all its other pairs with the
    tile's largest |c| (degree[i, t]).

    The per-pair test is needed only where the row's bound at krow, taken with the row's largest
    |c| and the columns' largest tails, fails."""
    n1, n2 = c.shape
    npairs = ta.shape[0]
    ntiles = degree.shape[1]
    tb_max_rows = tb_max.reshape(npairs, 1, tb_max.shape[1])  # one "column" holding the largest tails
    for r in prange(n1):
        i = np.int64(r)
        j0 = i + 1 if symmetric else np.int64(0)
        row_max = 0.0
        for j in range(j0, n2):
            ac = abs(c[i, j])
            if ac > row_max:
                row_max = ac
        row_ok = True
        if row_max > 0.0:
            ck = math.exp((krow + 1) * math.log(row_max))
            for p in range(npairs):
                if ck * math.sqrt(ta[p, i, krow] * tb_max[p, krow]) > tol:
                    row_ok = False
        for t in range(ntiles):
            lo = max(t * _TILE, j0)
            hi = min((t + 1) * _TILE, n2)
            tile_max = 0.0
            for j in range(lo, hi):
                ac = abs(c[i, j])
                bad = False
                if not row_ok and ac > 0.0:
                    ck = math.exp((krow + 1) * math.log(ac))
                    for p in range(npairs):
                        if ck * math.sqrt(ta[p, i, krow] * tb[p, j, krow]) > tol:
                            bad = True
                irregular[i, j] = bad
                if not bad and ac > tile_max:
                    tile_max = ac
            deg = _pair_degree(tile_max, ta, tb_max_rows, i, 0, krow, tol) if hi > lo else 0
            degree[i, t] = deg if deg >= 0 else krow


@njit(cache=True, parallel=True, error_model="numpy")
def _row_sums(c, coef1, coef2t, degree, symmetric, out):
    """out[p, i, j] = sum_{k <= degree[i, j // _TILE]} coef1[p, i, k] coef2t[p, k, j] c[i, j]^k (Horner).

    Rows are processed in parallel, in pairs (i, n1 - 1 - i) so that the triangle is balanced;
    the inner loop over the columns of a tile is contiguous and vectorises.
    """
    n1, n2 = c.shape
    npairs = coef1.shape[0]
    half = (n1 + 1) // 2
    for r in prange(half):
        acc = np.empty(_TILE)
        cw = np.empty(_TILE)
        for side in range(2):
            i = np.int64(r) if side == 0 else np.int64(n1 - 1 - r)
            if side == 1 and i == r:
                continue
            j0 = i if symmetric else np.int64(0)
            for t in range(degree.shape[1]):
                lo = max(t * _TILE, j0)
                hi = min((t + 1) * _TILE, n2)
                if hi <= lo:
                    continue
                deg = degree[i, t]
                width = hi - lo
                for jj in range(width):
                    cw[jj] = c[i, lo + jj]
                for p in range(npairs):
                    a = coef1[p, i, deg]
                    for jj in range(width):
                        acc[jj] = a * coef2t[p, deg, lo + jj]
                    for k in range(deg - 1, -1, -1):
                        a = coef1[p, i, k]
                        for jj in range(width):
                            acc[jj] = acc[jj] * cw[jj] + a * coef2t[p, k, lo + jj]
                    for jj in range(width):
                        out[p, i, lo + jj] = acc[jj]


# ---------------------------------------------------------------------- direct 2-D quadrature
def _graded_edges(centers: np.ndarray, scales: np.ndarray, half_width: float) -> np.ndarray:
    """Sorted panel edges: a uniform unit grid plus, around each center (last axis), edges at
    center +- scale 2^k until the span covers the domain; clipped to [-half_width, half_width].

    ``centers`` and ``scales`` have shape (..., n_centers); the result has shape (..., n_edges),
    the same n_edges for every leading index (clipped edges give zero-width panels).
    """
    span = 2.0 * half_width
    finite_scales = scales[np.isfinite(scales) & (scales > 0)]
    smallest = float(finite_scales.min()) if finite_scales.size else span
    levels = max(1, math.ceil(math.log2(max(span / smallest, 1.0))) + 1)
    powers = 2.0 ** np.arange(levels)
    offsets = np.concatenate([[0.0], powers, -powers])  # (n_off,)
    cen = np.where(np.isfinite(centers), centers, 2.0 * half_width)
    sc = np.where(np.isfinite(scales) & (scales > 0), scales, 0.0)
    graded = cen[..., :, None] + sc[..., :, None] * offsets  # (..., n_centers, n_off)
    graded = graded.reshape(*graded.shape[:-2], -1)
    uniform = np.broadcast_to(
        np.linspace(-half_width, half_width, int(span) + 1), (*graded.shape[:-1], int(span) + 1)
    )
    edges = np.concatenate([uniform, graded], axis=-1)
    return np.sort(np.clip(edges, -half_width, half_width), axis=-1)


def _panel_rule(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and Gaussian-weighted weights on the panels between ``edges``."""
    lo, hi = edges[..., :-1], edges[..., 1:]
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    nodes = mid[..., None] + half[..., None] * _GL_T
    weights = half[..., None] * _GL_W * np.exp(-0.5 * nodes * nodes) / math.sqrt(2.0 * math.pi)
    shape = (*edges.shape[:-1], -1)
    return nodes.reshape(shape), weights.reshape(shape)


def _direct_one(f: ElementwiseFunction, g: ElementwiseFunction, q1: float, q2: float, c: float,
                features: tuple[float, ...], g_kinked: bool) -> float:
    """E[f(u) g(v)] for one (q1, q2, c) by graded 2-D Gauss-Legendre quadrature."""
    sigma1, sigma2 = math.sqrt(q1), math.sqrt(q2)
    s = sigma2 * math.sqrt(max((1.0 - c) * (1.0 + c), 0.0))
    slope = sigma2 * c
    feats = np.asarray(features)
    with np.errstate(divide="ignore", invalid="ignore"):
        # outer variable z1: f's features at t / sigma1 (scale 1 / sigma1); the inner mean
        # m = slope z1 crosses g's features at t / slope (scale min(1, s) for a kink, 1 otherwise)
        g_scale = min(1.0, s) if g_kinked else 1.0
        centers = np.concatenate([feats / sigma1, feats / slope])
        scales = np.concatenate([np.full(feats.size, 1.0 / sigma1),
                                 np.full(feats.size, max(g_scale, 1e-15) / abs(slope))])
    z1, w1 = _panel_rule(_graded_edges(centers, scales, _Z_DIRECT))
    outer = f(sigma1 * z1)
    m = slope * z1
    if s == 0.0:
        inner = g(m)
    else:
        inner = np.empty_like(m)
        step = max(1, 2_000_000 // 2000)
        for start in range(0, m.size, step):
            mm = m[start : start + step]
            cen = (feats[None, :] - mm[:, None]) / s
            z2, w2 = _panel_rule(_graded_edges(cen, np.full(cen.shape, 1.0 / s), _Z_DIRECT))
            inner[start : start + step] = np.sum(g(mm[:, None] + s * z2) * w2, axis=-1)
    return float(np.sum(outer * inner * w1))


# ---------------------------------------------------------------------- public-internal API
def _series_for(evaluate1, evaluate2, q1, q2, kmax, same, moments=(None, None)):
    panels = _grid_panels(float(max(q1.max(initial=0.0), q2.max(initial=0.0))), kmax)
    s1 = _Series(evaluate1, q1, kmax, panels, moments[0])
    s2 = s1 if same else _Series(evaluate2, q2, kmax, panels, moments[1])
    return s1, s2


def _correlation(q1: np.ndarray, q2: np.ndarray, q12: np.ndarray) -> np.ndarray:
    """c = q12 / sqrt(q1 q2) clipped to [-1, 1]; 0 where a variance is 0 (c is then irrelevant)."""
    denom = np.sqrt(q1 * q2)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(denom > 0.0, q12 / denom, 0.0)
    return np.clip(c, -1.0, 1.0)


def _check_variances(q1, q2, q12):
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (q1, q2, q12)))
    for name, arr in zip(("q1", "q2", "q12"), arrays):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` must be finite; got {float(arr[~np.isfinite(arr)].flat[0])!r}.")
    for name, arr in zip(("q1", "q2"), arrays[:2]):
        if np.any(arr < 0):
            raise ValueError(f"variances `{name}` must be >= 0; got {float(arr.min())!r}.")
    return arrays


def _kink_features(breakpoints: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    kinks = tuple(sorted({float(b) for b in breakpoints}))
    return kinks, tuple(sorted({0.0, *kinks}))


def bivariate_expectation(
    f: ElementwiseFunction,
    g: ElementwiseFunction,
    q1: object,
    q2: object,
    q12: object,
    *,
    breakpoints: Sequence[float] = (),
) -> np.ndarray:
    """E[f(u) g(v)] for (u, v) ~ N(0, [[q1, q12], [q12, q2]]), elementwise over broadcast arrays.

    Parameters
    ----------
    f, g
        Elementwise functions of float64 arrays of any shape (e.g. ``act.phi``, ``act.dphi``).
        They are assumed to vary on a scale of order 1 in their own variable (as activations do).
    q1, q2, q12
        Variances (>= 0) and covariance, broadcastable arrays. ``q12`` is clipped to
        ``[-sqrt(q1 q2), sqrt(q1 q2)]`` (|c| = 1, degenerate covariance, is allowed).
    breakpoints
        Points (besides 0) where f or g has a kink or jump (``Activation.kinks``).

    Returns
    -------
    ndarray of float64 with the broadcast shape. The error is below ~1e-12 relative to
    sqrt(E[f(u)^2] E[g(v)^2]) for smooth functions (Mehler series with a rigorous tail bound,
    or direct 2-D quadrature where the bound fails).

    Examples
    --------
    >>> from ntktheory.activations import get_activation
    >>> tanh = get_activation("tanh")
    >>> round(float(bivariate_expectation(tanh.phi, tanh.phi, 1.0, 1.0, 0.5)), 12)
    0.186324413203
    >>> relu = get_activation("relu")   # Cho & Saul: sqrt(q1 q2)/(2 pi) at c = 0
    >>> bool(np.isclose(bivariate_expectation(relu.phi, relu.phi, 2.0, 2.0, 0.0), 1 / np.pi))
    True
    """
    b1, b2, b12 = _check_variances(q1, q2, q12)
    shape = b1.shape
    q1f, q2f, q12f = (np.ascontiguousarray(a).reshape(-1) for a in (b1, b2, b12))
    c = _correlation(q1f, q2f, q12f)
    u1, idx1 = np.unique(q1f, return_inverse=True)
    u2, idx2 = np.unique(q2f, return_inverse=True)
    values = _elementwise([(f, g)], u1, u2, idx1.reshape(-1), idx2.reshape(-1), c, breakpoints)
    return values[0].reshape(shape)


def _elementwise(pairs, u1, u2, idx1, idx2, c, breakpoints):
    """Series per element (own degree), growing K while needed, then direct quadrature."""
    out = np.empty((len(pairs), c.size))
    todo = np.arange(c.size)
    if c.size == 0:
        return out
    kinks, features = _kink_features(breakpoints)
    for kmax in _K_LADDER:
        s1, s2 = _series_for(_evaluator([p[0] for p in pairs]), _evaluator([p[1] for p in pairs]), u1, u2, kmax,
                             False)
        vals = np.empty((len(pairs), todo.size))
        failed = np.empty(todo.size, dtype=np.bool_)
        _scalar_sums(idx1[todo], idx2[todo], c[todo], s1.coef, s2.coef, s1.tails, s2.tails, TOL, vals,
                     failed)
        out[:, todo[~failed]] = vals[:, ~failed]
        todo = todo[failed]
        if todo.size == 0:
            return out
    for e in todo:
        for p, (f, g) in enumerate(pairs):
            out[p, e] = _direct_one(f, g, float(u1[idx1[e]]), float(u2[idx2[e]]), float(c[e]), features,
                                    bool(kinks))
    return out


def pair_expectations(
    pairs: Sequence[tuple[ElementwiseFunction, ElementwiseFunction]],
    q1: np.ndarray,
    q2: np.ndarray,
    c: np.ndarray,
    *,
    symmetric: bool = False,
    breakpoints: Sequence[float] = (),
    mirror: bool = True,
    moments: bool = False,
    evaluate: Callable[[np.ndarray], Sequence[np.ndarray]] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """E[f_p(u_i) g_p(v_j)] for every function pair p and every (i, j) of a correlation matrix.

    Parameters
    ----------
    pairs
        Function pairs (f_p, g_p), evaluated together (they share the powers of c).
    q1, q2
        Variances of the rows (N1,) and of the columns (N2,).
    c
        Correlations, shape (N1, N2), in [-1, 1].
    symmetric
        q1 == q2, f_p == g_p and c symmetric: only the strict upper triangle is computed and
        mirrored. The diagonal is NOT filled (take it from the univariate rule).
    breakpoints
        Kinks of the functions besides 0.
    mirror
        With ``symmetric``: copy the strict upper triangle onto the lower one (default). False
        leaves the lower triangle and the diagonal 0 (the kernel maps keep upper triangles only).
    moments
        Also return the second moments E[f^2], E[g^2] at every variance (see Returns).
    evaluate
        For pairs (f_p, f_p) only: a function returning [f_p(x) for every p] in one pass (e.g.
        ``Activation.phi_and_dphi``, which shares tanh between phi and phi').

    Returns
    -------
    values : ndarray, shape (P, N1, N2)
    stats : dict with the degree used (``kmax``, ``mean_row_degree``) and the number of pairs
        that went to the per-pair series (``per_pair``) and to direct quadrature (``direct``);
        with ``moments=True`` also ``second_moment1`` and ``second_moment2``, the arrays (P, N1)
        and (P, N2) of E[f_p(u)^2] and E[g_p(v)^2] (the values at c = 1 when f_p = g_p).
    """
    n1, n2 = c.shape
    npairs = len(pairs)
    out = np.zeros((npairs, n1, n2))
    kinks, features = _kink_features(breakpoints)
    funcs1 = [p[0] for p in pairs]
    funcs2 = [p[1] for p in pairs]
    stats = {"kmax": 0, "mean_row_degree": 0, "per_pair": 0, "direct": 0}
    if any(k != 0.0 for k in kinks):  # off-zero kinks: a shared grid cannot resolve them
        if moments:
            stats["second_moment1"] = second_moments(funcs1, q1, kinks)
            stats["second_moment2"] = stats["second_moment1"] if symmetric else second_moments(funcs2, q2, kinks)
        ii, jj = np.triu_indices(n1, 1) if symmetric else np.indices((n1, n2)).reshape(2, -1)
        stats["direct"] = ii.size
        for i, j in zip(ii, jj):
            for p, (f, g) in enumerate(pairs):
                out[p, i, j] = _direct_one(f, g, float(q1[i]), float(q2[j]), float(c[i, j]), features, True)
        if symmetric and mirror:
            out += np.transpose(out, (0, 2, 1))
        return out, stats

    irregular = np.zeros((n1, n2), dtype=np.bool_)
    degree = np.zeros((n1, max(1, -(-n2 // _TILE))), dtype=np.int64)
    todo = None
    if evaluate is not None and any(f != g for f, g in pairs):
        raise ValueError("`evaluate` is for pairs (f, f) only.")
    evaluate1 = evaluate if evaluate is not None else _evaluator(funcs1)
    evaluate2 = evaluate if evaluate is not None else _evaluator(funcs2)
    m1 = m2 = None  # second moments: from the first rung's grid, then kept for every rung
    for kmax in _K_LADDER:
        s1, s2 = _series_for(evaluate1, evaluate2, q1, q2, kmax, symmetric, (m1, m2))
        if m1 is None:
            m1, m2 = s1.second_moment, s2.second_moment
            if moments:
                stats["second_moment1"], stats["second_moment2"] = m1, m2
        if todo is None:  # first rung: plan the rows (row sums use degrees <= _K_ROW)
            krow = min(kmax, _K_ROW)
            if kmax < _K_ROW:
                # check whether the rung suffices for all pairs before using it for the rows
                _plan_rows(c, s1.tails, s2.tails, s2.tails.max(axis=1), krow, TOL, symmetric, irregular, degree)
                if irregular.any():
                    continue
            else:
                _plan_rows(c, s1.tails, s2.tails, s2.tails.max(axis=1), krow, TOL, symmetric, irregular, degree)
            coef2t = np.ascontiguousarray(np.transpose(s2.coef, (0, 2, 1)))
            _row_sums(np.ascontiguousarray(c), s1.coef, coef2t, degree, symmetric, out)
            stats["mean_row_degree"] = round(float(degree.mean()))  # mean over (row, tile)
            stats["kmax"] = krow
            ii, jj = np.nonzero(irregular)
            todo = (ii, jj)
            stats["per_pair"] = ii.size
            if ii.size == 0:
                break
        ii, jj = todo
        vals = np.empty((npairs, ii.size))
        failed = np.empty(ii.size, dtype=np.bool_)
        _scalar_sums(ii, jj, c[ii, jj], s1.coef, s2.coef, s1.tails, s2.tails, TOL, vals, failed)
        out[:, ii[~failed], jj[~failed]] = vals[:, ~failed]
        stats["kmax"] = max(stats["kmax"], kmax)
        todo = (ii[failed], jj[failed])
        if failed.sum() == 0:
            break
    if todo is not None and todo[0].size:
        ii, jj = todo
        stats["direct"] = ii.size
        for i, j in zip(ii, jj):
            for p, (f, g) in enumerate(pairs):
                out[p, i, j] = _direct_one(f, g, float(q1[i]), float(q2[j]), float(c[i, j]), features,
                                           bool(kinks))
    if symmetric:
        for p in range(npairs):
            np.fill_diagonal(out[p], 0.0)
        if mirror:
            upper = np.triu(np.ones((n1, n2), dtype=np.bool_), 1)
            out = np.where(upper, out, np.transpose(out, (0, 2, 1)))
    return out, stats
