"""Closed-form bivariate Gaussian expectations of activations.

For (u, v) ~ N(0, [[q1, q12], [q12, q2]]) each function fills, for every entry of the flat input
arrays, ``pp = E[phi(u) phi(v)]`` and ``dd = E[phi'(u) phi'(v)]``. All take one extra scalar
``a`` (the activation's parameter; ignored by activations without one) so that one calling
convention serves all. Derivatives at kinks follow autograd's convention (relu'(0) = 0,
abs'(0) = 0, leaky'(0) = a, step' = 0), which matters only when a variance is exactly zero.

The angle theta = angle between u and v is computed as atan2(sqrt(q1 q2 - q12^2), q12), which keeps
full relative accuracy near both c = 1 and c = -1 (arccos(c) loses half the digits there).

References
----------
Cho & Saul 2009 (arc-cosine kernels, relu / step / abs); Williams 1997 (erf);
Lee et al. 2018, arXiv:1711.00165, and Novak et al. 2020 (neural-tangents) for the sin kernel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_INV_2PI = 1.0 / (2.0 * math.pi)


#: ``kind`` codes of :func:`arccos_family`.
RELU, LEAKY_RELU, ABS, STEP = 0, 1, 2, 3


@njit(cache=True, inline="always")
def arccos_family(kind, a, q1, q2, q12):
    """(E[phi(u) phi(v)], E[phi'(u) phi'(v)]) for the arc-cosine family (Cho & Saul 2009).

    kind: RELU, LEAKY_RELU (slope ``a``: phi = (1 - a) relu + a x), ABS (|x| = relu(x) + relu(-x)),
    STEP (Heaviside, derivative 0). With theta = atan2(sqrt(q1 q2 - q12^2), q12) and
    s = sqrt(q1 q2): s sin(theta) = sqrt(det) and s cos(theta) = q12, so no sin/cos call is needed:
    relu pp = (sqrt(det) + (pi - theta) q12) / (2 pi), dd = (pi - theta) / (2 pi).
    A zero variance makes that input deterministic (u = 0): pp = 0 and dd = phi'(0) E[phi'(v)].
    """
    if q1 <= 0.0 or q2 <= 0.0:
        if kind == LEAKY_RELU:
            return 0.0, (a * a if (q1 <= 0.0 and q2 <= 0.0) else a * 0.5 * (1.0 + a))
        return 0.0, 0.0
    det = q1 * q2 - q12 * q12
    if det < 0.0:
        det = 0.0
    sq = math.sqrt(det)
    t = math.atan2(sq, q12)
    k1 = (sq + (math.pi - t) * q12) * _INV_2PI
    k0 = (math.pi - t) * _INV_2PI
    if kind == RELU:
        return k1, k0
    if kind == LEAKY_RELU:
        b = (1.0 - a) * (1.0 - a)
        return b * k1 + a * q12, b * k0 + a
    if kind == ABS:
        return (2.0 * sq + (math.pi - 2.0 * t) * q12) / math.pi, 1.0 - 2.0 * t / math.pi
    return k0, 0.0


@njit(cache=True, parallel=True)
def _arccos_array(kind, q1, q2, q12, a, pp, dd):
    for i in prange(q1.size):
        pp[i], dd[i] = arccos_family(kind, a, q1[i], q2[i], q12[i])


@njit(cache=True)
def relu(q1, q2, q12, a, pp, dd):
    _arccos_array(RELU, q1, q2, q12, a, pp, dd)


@njit(cache=True)
def leaky_relu(q1, q2, q12, a, pp, dd):
    """phi(x) = x for x > 0, a x otherwise = (1 - a) relu(x) + a x."""
    _arccos_array(LEAKY_RELU, q1, q2, q12, a, pp, dd)


@njit(cache=True)
def abs_(q1, q2, q12, a, pp, dd):
    """|u||v| = sum of four relu products; sign(u) sign(v) from the orthant probabilities."""
    _arccos_array(ABS, q1, q2, q12, a, pp, dd)


@njit(cache=True)
def step(q1, q2, q12, a, pp, dd):
    """Heaviside step with step(0) = 0; its derivative is 0 almost everywhere (autograd's value)."""
    _arccos_array(STEP, q1, q2, q12, a, pp, dd)


@njit(cache=True, parallel=True)
def erf(q1, q2, q12, a, pp, dd):
    for i in prange(q1.size):
        p1 = 1.0 + 2.0 * q1[i]
        p2 = 1.0 + 2.0 * q2[i]
        arg = 2.0 * q12[i] / math.sqrt(p1 * p2)
        arg = min(1.0, max(-1.0, arg))
        pp[i] = 2.0 / math.pi * math.asin(arg)
        det = p1 * p2 - 4.0 * q12[i] * q12[i]
        dd[i] = 4.0 / math.pi / math.sqrt(det)


@njit(cache=True, parallel=True)
def sin(q1, q2, q12, a, pp, dd):
    """E[sin u sin v] = e^{-(q1+q2)/2} sinh(q12); E[cos u cos v] = e^{-(q1+q2)/2} cosh(q12)."""
    for i in prange(q1.size):
        h = 0.5 * (q1[i] + q2[i])
        ep = math.exp(q12[i] - h)
        em = math.exp(-q12[i] - h)
        pp[i] = 0.5 * (ep - em)
        dd[i] = 0.5 * (ep + em)


@njit(cache=True, parallel=True)
def identity(q1, q2, q12, a, pp, dd):
    for i in prange(q1.size):
        pp[i] = q12[i]
        dd[i] = 1.0


@njit(cache=True, parallel=True)
def gelu(q1, q2, q12, a, pp, dd):
    """Exact GELU, phi(x) = x Phi(x), phi'(x) = Phi(x) + x phi_N(x) (phi_N the normal density).

    Derivation (checked against 2-D quadrature to 1e-12 in tests/ntktheory/test_activations.py).
    Write D = (1 + q1)(1 + q2) - q12^2. With eps1, eps2 ~ N(0, 1) independent of (u, v),
    Phi(u) Phi(v) = P(eps1 <= u, eps2 <= v | u, v), so E[Phi(u) Phi(v)] is the orthant probability
    of (u - eps1, v - eps2), whose correlation is q12 / sqrt((1 + q1)(1 + q2)):

        P = E[Phi(u) Phi(v)] = (pi - t) / (2 pi),   t = atan2(sqrt(D), q12).

    Gaussian integrals with the extra factor phi_N(u) phi_N(v) = exp(-(u^2 + v^2)/2) / (2 pi)
    (a change of covariance, Sherman-Morrison for one factor) give

        E[phi_N(u) phi_N(v)]   = 1 / (2 pi sqrt(D)),
        E[u phi_N(u) Phi(v)]   = q12 / (2 pi (1 + q1) sqrt(D)),
        E[u phi_N(u) v phi_N(v)] = q12 / (2 pi D^(3/2)).

    Stein's lemma E[u F(u, v)] = q1 E[dF/du] + q12 E[dF/dv] with F = v Phi(u) Phi(v), and once more
    for E[v phi_N(u) Phi(v)] = (q2 (1 + q1) - q12^2) / (2 pi (1 + q1) sqrt(D)), then give

        E[phi(u) phi(v)]   = q12 P + [q1 (q2 (1 + q1) - q12^2) / (1 + q1) + q12^2 / (1 + q2)] / (2 pi sqrt(D)),
        E[phi'(u) phi'(v)] = P + q12 (1/(1 + q1) + 1/(1 + q2)) / (2 pi sqrt(D)) + q12 / (2 pi D^(3/2)).

    Checks: q12 = 0 gives E[u Phi(u)] E[v Phi(v)] = q1 q2 / (2 pi sqrt((1 + q1)(1 + q2))); q1 = 0
    gives 0 and phi'(0) E[phi'(v)] = 1/4. D >= 1 + q1 + q2 > 0, so no case is singular.
    """
    for i in prange(q1.size):
        p1 = 1.0 + q1[i]
        p2 = 1.0 + q2[i]
        c = q12[i]
        det = p1 * p2 - c * c
        if det < 1.0:  # rounding only: D >= 1 + q1 + q2 for a valid covariance
            det = 1.0
        sd = math.sqrt(det)
        prob = (math.pi - math.atan2(sd, c)) * _INV_2PI
        pp[i] = c * prob + (q1[i] * (q2[i] * p1 - c * c) / p1 + c * c / p2) * _INV_2PI / sd
        dd[i] = prob + c * (1.0 / p1 + 1.0 / p2) * _INV_2PI / sd + c * _INV_2PI / (det * sd)


def evaluate(func, q1, q2, q12, a: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast the three arrays, run ``func`` on them and return (pp, dd) in their shape."""
    b1, b2, b12 = np.broadcast_arrays(
        np.asarray(q1, dtype=np.float64), np.asarray(q2, dtype=np.float64), np.asarray(q12, dtype=np.float64)
    )
    shape = b1.shape
    f1, f2, f12 = (np.ascontiguousarray(b).reshape(-1) for b in (b1, b2, b12))
    pp = np.empty(f1.size)
    dd = np.empty(f1.size)
    func(f1, f2, f12, float(a), pp, dd)
    return pp.reshape(shape), dd.reshape(shape)
