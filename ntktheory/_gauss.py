"""Univariate Gaussian expectations E[f_1(sqrt(q) z) ... f_m(sqrt(q) z)], z ~ N(0, 1), to ~1e-13.

Fixed-degree Gauss-Hermite (neural-tangents' method) fails once sqrt(q) is large compared with the
activation's own scale: tanh(sqrt(q) z) is then nearly a step on the rule's grid (one
E[tanh'(u) tanh'(v)] at q ~ 12 is 0.0776 at degree 301 but 0.0965 at degree 25). Here the integral
over z in [-Z, Z] (Z = 10: the Gaussian mass outside is 1.5e-23, and even u^10 loses
only 1e-15 of its moment there) is split into M equal panels with a
16-point Gauss-Legendre rule on each. The panel width is at most 2 in the activation's variable
x = sqrt(q) z and at most 1.5 in z, so each panel sees both the activation and the Gaussian as
smooth, slowly varying functions:

* for tanh (poles at x = +-i pi/2) a panel of half-width 1 in x converges like 3.43^(-32) ~ 1e-17;
* on the Gaussian side a panel of half-width 0.75 in z is resolved to machine precision;
* M is even, so x = 0 is a panel edge and activations with a kink at 0 (relu, abs, leaky relu,
  step) are integrated exactly (piecewise polynomial on each side). Kinks elsewhere can be passed
  as ``breakpoints`` and become panel edges too.

In the variable z the weights Z w_j phi(Z t_j) do not depend on q: only the panel count does, so
every q with the same panel count shares one node set and the whole batch is one matrix product.

The panel count grows like 9 sqrt(q) for q > 1 (q = 100: 128 panels, 2048 nodes); this is what
exactness costs for near-saturated activations and it is still cheap (one vectorised evaluation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["GL_NODES", "Z_MAX", "composite_legendre", "expect", "panel_count"]

#: Gauss-Legendre nodes per panel.
GL_NODES = 16
#: Half-width of the integration domain in standard deviations.
Z_MAX = 10.0
#: Largest panel width in the activation's variable x = sqrt(q) z.
_X_PANEL = 2.0
#: Largest panel width in z (standard deviations).
_Z_PANEL = 1.5
#: Rows x nodes evaluated at once (bounds memory to ~32 MB per array).
_CHUNK = 4_000_000

_GL_T, _GL_W = np.polynomial.legendre.leggauss(GL_NODES)

ElementwiseFunction = Callable[[np.ndarray], np.ndarray]


def composite_legendre(a: float, b: float, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the composite 16-point Gauss-Legendre rule on [a, b].

    Parameters
    ----------
    a, b
        Interval ends, a < b.
    panels
        Number of equal panels (>= 1).

    Returns
    -------
    nodes, weights : ndarray, shape (panels * GL_NODES,)

    Examples
    --------
    >>> nodes, weights = composite_legendre(0.0, 2.0, 3)
    >>> bool(np.isclose(weights @ nodes**5, 2.0**6 / 6))
    True
    """
    if not b > a:
        raise ValueError(f"composite_legendre needs a < b; got a={a!r}, b={b!r}.")
    if panels < 1:
        raise ValueError(f"`panels` must be >= 1, got {panels!r}.")
    edges = np.linspace(a, b, panels + 1)
    half = 0.5 * np.diff(edges)
    mids = 0.5 * (edges[:-1] + edges[1:])
    nodes = mids[:, None] + half[:, None] * _GL_T[None, :]
    weights = half[:, None] * _GL_W[None, :]
    return nodes.reshape(-1), weights.reshape(-1)


def panel_count(q: np.ndarray | float) -> np.ndarray:
    """Even number of panels on [-Z_MAX, Z_MAX] that resolves variance ``q`` (at least 12).

    The result is rounded up to a coarse ladder (12, 16, 24, 32, 48, 64, ...) so that many q values
    share one node set.
    """
    sigma = np.sqrt(np.asarray(q, dtype=np.float64))
    width_z = np.minimum(_Z_PANEL, _X_PANEL / np.maximum(sigma, 1e-300))
    needed = np.ceil(2.0 * Z_MAX / width_z)
    ladder = _ladder(int(np.max(needed, initial=12)))
    idx = np.searchsorted(ladder, needed)
    return ladder[idx]


def _ladder(top: int) -> np.ndarray:
    """12, 16, 24, 32, 48, 64, ...: each value twice the one two places before (all even)."""
    values = [12, 16]
    while values[-1] < top:
        values.append(2 * values[-2])
    return np.asarray(values, dtype=np.int64)


@np.errstate(over="ignore")
def _z_rule(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_j and weights W_j with sum_j W_j g(z_j) ~= E[g(z)], z ~ N(0, 1)."""
    nodes, weights = composite_legendre(-Z_MAX, Z_MAX, panels)
    return nodes, weights * np.exp(-0.5 * nodes * nodes) / math.sqrt(2.0 * math.pi)


def expect(
    funcs: Sequence[ElementwiseFunction],
    q: object,
    *,
    breakpoints: Sequence[float] = (),
) -> np.ndarray:
    """E[prod_i f_i(sqrt(q) z)], z ~ N(0, 1), for every entry of ``q``.

    Parameters
    ----------
    funcs
        Elementwise functions of float64 arrays (e.g. ``act.phi``, ``act.dphi``); their product is
        integrated. An empty sequence integrates 1.
    q
        Variances, any shape, finite and >= 0. At q = 0 the result is prod_i f_i(0).
    breakpoints
        Points in the activation's variable x (besides 0) where an f_i has a kink or jump
        (``Activation.kinks``); they become panel edges, keeping such integrals exact.

    Returns
    -------
    ndarray of float64, shape ``np.shape(q)``

    Examples
    --------
    >>> from ntktheory.activations import get_activation
    >>> relu = get_activation("relu")
    >>> round(float(expect([relu.phi, relu.phi], 2.0)), 12)  # E[relu(u)^2] = q / 2
    1.0
    >>> tanh = get_activation("tanh")
    >>> round(float(expect([tanh.phi, tanh.phi], 1.0)), 12)
    0.394294490398
    """
    q_arr = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(q_arr)) or np.any(q_arr < 0):
        raise ValueError(f"variances `q` must be finite and >= 0; got min {np.min(q_arr)!r}.")
    flat = q_arr.reshape(-1)
    out = np.empty(flat.size)
    extra = tuple(float(b) for b in breakpoints if b != 0.0)

    zero = flat == 0.0
    if zero.any():
        origin = np.zeros(1)
        value = 1.0
        for f in funcs:
            value *= float(f(origin)[0])
        out[zero] = value

    positive = np.flatnonzero(~zero)
    if positive.size:
        if extra:
            for i in positive:
                out[i] = _expect_with_breakpoints(funcs, flat[i], extra)
        else:
            counts = panel_count(flat[positive])
            for panels in np.unique(counts):
                rows = positive[counts == panels]
                out[rows] = _expect_shared_rule(funcs, flat[rows], int(panels))
    return out.reshape(q_arr.shape)


def _integrate(funcs: Sequence[ElementwiseFunction], sigma: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_j w_j prod_i f_i(sigma_r z_j) for each row r, in memory-bounded chunks."""
    out = np.empty(sigma.size)
    step = max(1, _CHUNK // z.size)
    for start in range(0, sigma.size, step):
        x = sigma[start : start + step, None] * z[None, :]
        prod = np.ones_like(x)
        for f in funcs:
            prod *= f(x)
        out[start : start + step] = prod @ w
    return out


def _expect_shared_rule(funcs: Sequence[ElementwiseFunction], q: np.ndarray, panels: int) -> np.ndarray:
    z, w = _z_rule(panels)
    return _integrate(funcs, np.sqrt(q), z, w)


def _expect_with_breakpoints(funcs: Sequence[ElementwiseFunction], q: float, extra: tuple[float, ...]) -> float:
    sigma = math.sqrt(q)
    panels = int(panel_count(q))
    edges = np.linspace(-Z_MAX, Z_MAX, panels + 1)
    kinks_z = [b / sigma for b in extra if -Z_MAX < b / sigma < Z_MAX]
    edges = np.unique(np.concatenate([edges, kinks_z]))
    zs, ws = [], []
    for a, b in itertools.pairwise(edges):
        if b - a < 1e-15:
            continue
        nodes, weights = composite_legendre(float(a), float(b), 1)
        zs.append(nodes)
        ws.append(weights)
    z = np.concatenate(zs)
    w = np.concatenate(ws) * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return float(_integrate(funcs, np.array([sigma]), z, w)[0])
