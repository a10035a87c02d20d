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
from numba import njit, prange, types
from numba.extending import intrinsic

_INV_2PI = 1.0 / (2.0 * math.pi)


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma intrinsic, a vector FMA in vectorised loops).

    Written out where wanted rather than granted to a whole loop (fastmath "contract"), which
    would also fuse q1 q2 - q12^2 and so lose its exact zero at q12^2 = q1 q2. On a CPU without
    FMA instructions LLVM calls libm's fma: the same result, slower."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


#: ``kind`` codes of :func:`pair` (one per closed form).
RELU, LEAKY_RELU, ABS, STEP, ERF, SIN, IDENTITY, GELU = range(8)
#: Kinds whose expectations are the arc-cosine family (the fused fast path of the kernels).
ARCCOS_KINDS = (RELU, LEAKY_RELU, ABS, STEP)


#: atan(x) = x + x z P(z), z = x^2, on |x| <= tan(pi/8): the coefficients of P, highest degree first
#: (a Chebyshev fit computed with mpmath at 40 digits; the fit's error, 3e-17 in P, is below
#: double rounding: atan to 1 ulp, checked against mpmath in the tests).
_ATAN_P = (-0.019175404711104935, 0.03923044778479309, -0.050854078345894844, 0.05858140904866328,
           -0.06664510525508936, 0.07692183125376892, -0.0909090457530649, 0.11111111015187018,
           -0.14285714284665682, 0.19999999999995516, -0.3333333333333333)


@njit(cache=True, inline="always", error_model="numpy")
def atan2_upper(y, x):
    """atan2(y, x) for y >= 0, in [0, pi], to ~1 ulp, branch-free so that loops vectorise.

    Octant reduction to |t| <= tan(pi/8) (one division: t = (small - big) / (small + big) above
    tan(pi/8), small / big below) and a polynomial for atan there. ``math.atan2`` is a scalar
    libm call that stops the loops of the kernel maps from vectorising (about 5x slower there).
    The divisions and the square root of the arc-cosine maps share one slow unit, hence one
    division here instead of the three of a reduced ratio and a rational approximation.
    """
    ax = abs(x)
    big = max(y, ax)
    small = min(y, ax)
    upper = small > 0.41421356237309503 * big  # small / big > tan(pi / 8)
    num = small - big if upper else small
    den = small + big if upper else big
    tt = num / den if den > 0.0 else 0.0
    z = tt * tt
    c = _ATAN_P
    p = fma(fma(fma(fma(fma(fma(fma(fma(fma(fma(c[0], z, c[1]), z, c[2]), z, c[3]), z, c[4]), z, c[5]), z, c[6]), z,
                            c[7]), z, c[8]), z, c[9]), z, c[10])
    r = (0.7853981633974483 if upper else 0.0) + fma(tt * z, p, tt)
    r = 1.5707963267948966 - r if y > ax else r
    return math.pi - r if x < 0.0 else r


# Scalar kernels, one per kind: (E[phi(u) phi(v)], E[phi'(u) phi'(v)]) at one covariance. Written
# with selects rather than early returns, so that the loops calling them vectorise.
@njit(cache=True, inline="always", error_model="numpy")
def _arc(q1, q2, q12):
    """(both variances > 0, sqrt(det), theta = atan2(sqrt(det), q12)) of the arc-cosine family."""
    # both products rounded before the difference (no FMA here), so that q12^2 = q1 q2 gives
    # det = 0 exactly: a fused product would leave its rounding error, and theta ~ 1e-8
    det = max(q1 * q2 - q12 * q12, 0.0)
    sq = math.sqrt(det)
    return q1 > 0.0 and q2 > 0.0, sq, atan2_upper(sq, q12)


@njit(cache=True, inline="always", error_model="numpy")
def _relu(a, q1, q2, q12):
    both, sq, t = _arc(q1, q2, q12)
    return (sq + (math.pi - t) * q12) * _INV_2PI, ((math.pi - t) * _INV_2PI if both else 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _leaky_relu(a, q1, q2, q12):
    both, sq, t = _arc(q1, q2, q12)
    b = (1.0 - a) * (1.0 - a)
    none = q1 <= 0.0 and q2 <= 0.0
    k1 = (sq + (math.pi - t) * q12) * _INV_2PI
    k0 = (math.pi - t) * _INV_2PI
    return b * k1 + a * q12, (b * k0 + a if both else (a * a if none else a * 0.5 * (1.0 + a)))


@njit(cache=True, inline="always", error_model="numpy")
def _abs(a, q1, q2, q12):
    both, sq, t = _arc(q1, q2, q12)
    return (2.0 * sq + (math.pi - 2.0 * t) * q12) / math.pi, (1.0 - 2.0 * t / math.pi if both else 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _step(a, q1, q2, q12):
    both, _, t = _arc(q1, q2, q12)
    return ((math.pi - t) * _INV_2PI if both else 0.0), 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _erf(a, q1, q2, q12):
    p1 = 1.0 + 2.0 * q1
    p2 = 1.0 + 2.0 * q2
    arg = min(1.0, max(-1.0, 2.0 * q12 / math.sqrt(p1 * p2)))
    return 2.0 / math.pi * math.asin(arg), 4.0 / math.pi / math.sqrt(p1 * p2 - 4.0 * q12 * q12)


@njit(cache=True, inline="always", error_model="numpy")
def _sin(a, q1, q2, q12):
    h = 0.5 * (q1 + q2)
    ep = math.exp(q12 - h)
    em = math.exp(-q12 - h)
    return 0.5 * (ep - em), 0.5 * (ep + em)


@njit(cache=True, inline="always", error_model="numpy")
def _identity(a, q1, q2, q12):
    return q12, 1.0


@njit(cache=True, inline="always", error_model="numpy")
def _gelu(a, q1, q2, q12):
    p1 = 1.0 + q1
    p2 = 1.0 + q2
    det = max(p1 * p2 - q12 * q12, 1.0)  # rounding only: D >= 1 + q1 + q2 for a valid covariance
    sd = math.sqrt(det)
    prob = (math.pi - atan2_upper(sd, q12)) * _INV_2PI
    pp = q12 * prob + (q1 * (q2 * p1 - q12 * q12) / p1 + q12 * q12 / p2) * _INV_2PI / sd
    dd = prob + q12 * (1.0 / p1 + 1.0 / p2) * _INV_2PI / sd + q12 * _INV_2PI / (det * sd)
    return pp, dd


#: The scalar kernels in ``kind`` order.
SCALARS = (_relu, _leaky_relu, _abs, _step, _erf, _sin, _identity, _gelu)


@njit(cache=True, inline="always", error_model="numpy")
def pair(kind, a, q1, q2, q12):
    """(E[phi(u) phi(v)], E[phi'(u) phi'(v)]) of closed form ``kind`` at one covariance (runtime kind).

    Arc-cosine family (Cho & Saul 2009): RELU, LEAKY_RELU (slope ``a``: phi = (1 - a) relu + a x),
    ABS (|x| = relu(x) + relu(-x)), STEP (Heaviside, derivative 0). With
    theta = atan2(sqrt(q1 q2 - q12^2), q12) and s = sqrt(q1 q2): s sin(theta) = sqrt(det) and
    s cos(theta) = q12, so no sin/cos call is needed: relu pp = (sqrt(det) + (pi - theta) q12) / (2 pi),
    dd = (pi - theta) / (2 pi). A zero variance makes that input deterministic (u = 0):
    pp = 0 and dd = phi'(0) E[phi'(v)]. ERF (Williams 1997), SIN (E[sin u sin v] =
    e^{-(q1+q2)/2} sinh(q12), E[cos u cos v] likewise with cosh), IDENTITY, GELU (exact, see
    :func:`gelu`). Loops over many entries should call one kind's scalar kernel (``SCALARS``), which
    vectorises (``ntktheory._kernel_kinds``).
    """
    if kind == RELU:
        return _relu(a, q1, q2, q12)
    if kind == LEAKY_RELU:
        return _leaky_relu(a, q1, q2, q12)
    if kind == ABS:
        return _abs(a, q1, q2, q12)
    if kind == STEP:
        return _step(a, q1, q2, q12)
    if kind == ERF:
        return _erf(a, q1, q2, q12)
    if kind == SIN:
        return _sin(a, q1, q2, q12)
    if kind == IDENTITY:
        return _identity(a, q1, q2, q12)
    return _gelu(a, q1, q2, q12)


@njit(cache=True, parallel=True, error_model="numpy")
def _array(kind, q1, q2, q12, a, pp, dd):
    for i in prange(q1.size):
        pp[i], dd[i] = pair(kind, a, q1[i], q2[i], q12[i])


@njit(cache=True, error_model="numpy")
def relu(q1, q2, q12, a, pp, dd):
    _array(RELU, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def leaky_relu(q1, q2, q12, a, pp, dd):
    """phi(x) = x for x > 0, a x otherwise = (1 - a) relu(x) + a x."""
    _array(LEAKY_RELU, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def abs_(q1, q2, q12, a, pp, dd):
    """|u||v| = sum of four relu products; sign(u) sign(v) from the orthant probabilities."""
    _array(ABS, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def step(q1, q2, q12, a, pp, dd):
    """Heaviside step with step(0) = 0; its derivative is 0 almost everywhere (autograd's value)."""
    _array(STEP, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def erf(q1, q2, q12, a, pp, dd):
    _array(ERF, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def sin(q1, q2, q12, a, pp, dd):
    """E[sin u sin v] = e^{-(q1+q2)/2} sinh(q12); E[cos u cos v] = e^{-(q1+q2)/2} cosh(q12)."""
    _array(SIN, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
def identity(q1, q2, q12, a, pp, dd):
    _array(IDENTITY, q1, q2, q12, a, pp, dd)


@njit(cache=True, error_model="numpy")
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
    _array(GELU, q1, q2, q12, a, pp, dd)


_KINDS = {relu: RELU, leaky_relu: LEAKY_RELU, abs_: ABS, step: STEP, erf: ERF, sin: SIN, identity: IDENTITY,
          gelu: GELU}


def kind_of(func) -> int:
    """The :func:`pair` code of a closed-form function of this module (KeyError otherwise)."""
    return _KINDS[func]


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
