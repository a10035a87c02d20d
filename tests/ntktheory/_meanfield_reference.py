"""An independent mean-field implementation with scipy adaptive quadrature and brentq.

Written from the formulas of Poole et al. 2016 / Schoenholz et al. 2017 only (no ntkgap numerics):
nested ``scipy.integrate.quad`` for the bivariate expectations, ``brentq`` with xtol 1e-15 for the
fixed points. Slow (seconds per point): use on a few points.
"""

from __future__ import annotations

import itertools
import math
import warnings

from scipy import integrate, optimize

_SQRT2PI = math.sqrt(2.0 * math.pi)
_Z = 12.0


def _quad(f, a: float, b: float, points=()) -> float:
    edges = sorted({a, b, *(p for p in points if a < p < b)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return math.fsum(
            integrate.quad(f, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=400)[0]
            for lo, hi in itertools.pairwise(edges)
        )


def gauss1(f, q: float) -> float:
    """E[f(sqrt(q) z)] with f a scalar function."""
    s = math.sqrt(q)
    return _quad(lambda z: f(s * z) * math.exp(-0.5 * z * z) / _SQRT2PI, -_Z, _Z, (0.0,))


def gauss2(f, g, q: float, c: float) -> float:
    """E[f(u1) g(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)."""
    s = math.sqrt(q)
    r = math.sqrt(max(1.0 - c * c, 0.0))

    def inner(z1: float) -> float:
        m = c * z1
        kink = -m / r if r > 0 else 0.0
        val = _quad(lambda z2: g(s * (m + r * z2)) * math.exp(-0.5 * z2 * z2) / _SQRT2PI, -_Z, _Z, (kink,))
        return f(s * z1) * val * math.exp(-0.5 * z1 * z1) / _SQRT2PI

    return _quad(inner, -_Z, _Z, (0.0,))


def q_star(phi, sw2: float, sb2: float) -> float:
    """Fixed point of the length map reached from q1 = sw2 + sb2 (bounded phi: below q1)."""
    q1 = sw2 + sb2

    def F(q):
        return sw2 * gauss1(lambda x: phi(x) ** 2, q) + sb2 - q

    lo = 1e-12 if sb2 == 0.0 else 0.0
    if sb2 == 0.0 and F(lo) <= 0.0:
        return 0.0
    return optimize.brentq(F, lo, q1, xtol=1e-15, rtol=1e-15, maxiter=200)


def c_star(phi, sw2: float, sb2: float, q: float) -> float:
    """Non-trivial fixed point of the correlation map in [0, 1) (chaotic phase)."""
    g = gauss1(lambda x: phi(x) ** 2, q)

    def G(c):
        return sw2 * (g - gauss2(phi, phi, q, c)) - q * (1.0 - c)

    if G(0.0) >= 0.0:
        return 0.0
    # G(c) = (1 - c) (sw2 S(c) - q) is positive just below 1 in the chaotic phase
    hi = 1.0 - 1e-3
    while G(hi) <= 0.0:
        hi = 1.0 - (1.0 - hi) / 10.0
    return optimize.brentq(G, 0.0, hi, xtol=1e-14, rtol=1e-15, maxiter=200)


def mean_field(phi, dphi, d2phi, sw2: float, sb2: float) -> dict:
    q = q_star(phi, sw2, sb2)
    qe = max(q, 1e-300)
    chi_1 = sw2 * gauss1(lambda x: dphi(x) ** 2, qe)
    slope = chi_1 + sw2 * gauss1(lambda x: phi(x) * d2phi(x), qe)
    out = {"q_star": q, "chi_1": chi_1, "xi_q": -1.0 / math.log(slope) if slope < 1 else math.inf}
    if chi_1 > 1.0:
        c = c_star(phi, sw2, sb2, q)
        chi_c = sw2 * gauss2(dphi, dphi, q, c)
    else:
        c, chi_c = 1.0, chi_1
    out.update(c_star=c, chi_c=chi_c, xi_c=-1.0 / math.log(chi_c) if chi_c < 1 else math.inf)
    return out


def tanh_functions():
    return (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2,
            lambda x: -2.0 * math.tanh(x) * (1.0 - math.tanh(x) ** 2))


def erf_functions():
    k = 2.0 / math.sqrt(math.pi)
    return (math.erf, lambda x: k * math.exp(-x * x), lambda x: -2.0 * x * k * math.exp(-x * x))
