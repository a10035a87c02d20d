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


@njit(cache=True, inline="always")
def _theta(q1, q2, q12):
    det = q1 * q2 - q12 * q12
    if det < 0.0:
        det = 0.0
    return math.atan2(math.sqrt(det), q12)


@njit(cache=True, parallel=True)
def relu(q1, q2, q12, a, pp, dd):  # noqa: ARG001  (a unused: relu has no parameter)
    for i in prange(q1.size):
        if q1[i] <= 0.0 or q2[i] <= 0.0:
            pp[i] = 0.0
            dd[i] = 0.0
            continue
        t = _theta(q1[i], q2[i], q12[i])
        s = math.sqrt(q1[i] * q2[i])
        pp[i] = s * _INV_2PI * (math.sin(t) + (math.pi - t) * math.cos(t))
        dd[i] = (math.pi - t) * _INV_2PI


@njit(cache=True, parallel=True)
def leaky_relu(q1, q2, q12, a, pp, dd):
    """phi(x) = x for x > 0, a x otherwise = (1 - a) relu(x) + a x."""
    b = (1.0 - a) * (1.0 - a)
    for i in prange(q1.size):
        if q1[i] <= 0.0 and q2[i] <= 0.0:
            pp[i] = 0.0
            dd[i] = a * a
            continue
        if q1[i] <= 0.0 or q2[i] <= 0.0:
            pp[i] = 0.0
            dd[i] = a * 0.5 * (1.0 + a)  # phi'(0) E[phi'(v)] = a (1 + a) / 2
            continue
        t = _theta(q1[i], q2[i], q12[i])
        s = math.sqrt(q1[i] * q2[i])
        pp[i] = b * s * _INV_2PI * (math.sin(t) + (math.pi - t) * math.cos(t)) + a * q12[i]
        dd[i] = b * (math.pi - t) * _INV_2PI + a


@njit(cache=True, parallel=True)
def abs_(q1, q2, q12, a, pp, dd):  # noqa: ARG001
    """|u||v| = sum of four relu products; sign(u) sign(v) from the orthant probabilities."""
    for i in prange(q1.size):
        if q1[i] <= 0.0 or q2[i] <= 0.0:
            pp[i] = 0.0
            dd[i] = 0.0
            continue
        t = _theta(q1[i], q2[i], q12[i])
        s = math.sqrt(q1[i] * q2[i])
        pp[i] = s / math.pi * (2.0 * math.sin(t) + (math.pi - 2.0 * t) * math.cos(t))
        dd[i] = 1.0 - 2.0 * t / math.pi


@njit(cache=True, parallel=True)
def step(q1, q2, q12, a, pp, dd):  # noqa: ARG001
    """Heaviside step with step(0) = 0; its derivative is 0 almost everywhere (autograd's value)."""
    for i in prange(q1.size):
        dd[i] = 0.0
        if q1[i] <= 0.0 or q2[i] <= 0.0:
            pp[i] = 0.0
            continue
        t = _theta(q1[i], q2[i], q12[i])
        pp[i] = (math.pi - t) * _INV_2PI


@njit(cache=True, parallel=True)
def erf(q1, q2, q12, a, pp, dd):  # noqa: ARG001
    for i in prange(q1.size):
        p1 = 1.0 + 2.0 * q1[i]
        p2 = 1.0 + 2.0 * q2[i]
        arg = 2.0 * q12[i] / math.sqrt(p1 * p2)
        arg = min(1.0, max(-1.0, arg))
        pp[i] = 2.0 / math.pi * math.asin(arg)
        det = p1 * p2 - 4.0 * q12[i] * q12[i]
        dd[i] = 4.0 / math.pi / math.sqrt(det)


@njit(cache=True, parallel=True)
def sin(q1, q2, q12, a, pp, dd):  # noqa: ARG001
    """E[sin u sin v] = e^{-(q1+q2)/2} sinh(q12); E[cos u cos v] = e^{-(q1+q2)/2} cosh(q12)."""
    for i in prange(q1.size):
        h = 0.5 * (q1[i] + q2[i])
        ep = math.exp(q12[i] - h)
        em = math.exp(-q12[i] - h)
        pp[i] = 0.5 * (ep - em)
        dd[i] = 0.5 * (ep + em)


@njit(cache=True, parallel=True)
def identity(q1, q2, q12, a, pp, dd):  # noqa: ARG001
    for i in prange(q1.size):
        pp[i] = q12[i]
        dd[i] = 1.0


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
