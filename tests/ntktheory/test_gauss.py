"""Univariate Gaussian expectations (ntktheory._gauss) against independent references.

Tolerances: scipy.integrate.quad is run with epsrel 1e-13 and breakpoints at the activation's
features, so it is itself good to ~1e-13; we ask for 1e-12 relative to the Cauchy-Schwarz scale
sqrt(E[f^2] E[g^2]) (expectations of odd products can be ~0, where a plain relative error means
nothing). Polynomial moments are exact in the rule up to rounding: 1e-13.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

from ntktheory._gauss import composite_legendre, expect
from ntktheory.activations import get_activation


def _quad_reference(f, g, q: float) -> float:
    """E[f(u) g(u)], u ~ N(0, q), by scipy adaptive quadrature on pieces of unit length in u."""
    sigma = math.sqrt(q)

    def integrand(z: float) -> float:
        return f(sigma * z) * g(sigma * z) * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    # Breakpoints at 0 and at every unit of the activation's variable with |u| <= 30 inside |z| < 12.
    points = sorted({0.0, *(k / sigma for k in range(-30, 31) if 0 < abs(k / sigma) < 12)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        pieces = [
            integrate.quad(integrand, a, b, epsabs=0.0, epsrel=1e-13, limit=200)[0]
            for a, b in zip([-12.0, *points], [*points, 12.0])
        ]
    return math.fsum(pieces)


_SECH2 = lambda x: 1.0 / math.cosh(x) ** 2 if abs(x) < 350 else 0.0  # noqa: E731
_SIG = lambda x: 0.5 * (1.0 + math.tanh(0.5 * x))  # noqa: E731
_PHI = lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))  # noqa: E731
_PDF = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # noqa: E731

# (phi, phi', phi'') written independently with the math module.
REFERENCE_FUNCTIONS = {
    "tanh": (math.tanh, _SECH2, lambda x: -2.0 * math.tanh(x) * _SECH2(x)),
    "sigmoid": (_SIG, lambda x: _SIG(x) * (1 - _SIG(x)), lambda x: _SIG(x) * (1 - _SIG(x)) * (1 - 2 * _SIG(x))),
    "softplus": (lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))), _SIG, lambda x: _SIG(x) * (1 - _SIG(x))),
    "gelu": (lambda x: x * _PHI(x), lambda x: _PHI(x) + x * _PDF(x), lambda x: _PDF(x) * (2.0 - x * x)),
    "sin": (math.sin, math.cos, lambda x: -math.sin(x)),
    "x*tanh(x)": (
        lambda x: x * math.tanh(x),
        lambda x: math.tanh(x) + x * _SECH2(x),
        lambda x: 2.0 * _SECH2(x) * (1.0 - x * math.tanh(x)),
    ),
}
CASES = [(name, q) for name in ("tanh", "sigmoid", "x*tanh(x)") for q in (1e-3, 0.7, 12.0, 100.0)] + [
    ("softplus", 3.0), ("gelu", 0.7), ("gelu", 30.0), ("sin", 2.0), ("softplus", 60.0)
]


@pytest.mark.parametrize(("name", "q"), CASES)
def test_matches_adaptive_quadrature(name: str, q: float) -> None:
    act = get_activation(name)
    ours = (act.phi, act.dphi, act.d2phi)
    ref = REFERENCE_FUNCTIONS[name]
    for i, j in [(0, 0), (1, 1), (2, 0)]:
        value = float(expect([ours[i], ours[j]], q))
        reference = _quad_reference(ref[i], ref[j], q)
        scale = math.sqrt(_quad_reference(ref[i], ref[i], q) * _quad_reference(ref[j], ref[j], q))
        assert abs(value - reference) <= tol("gauss_vs_scipy") * scale, (name, q, i, j, value, reference)


@pytest.mark.parametrize("q", [1e-6, 0.5, 3.0, 250.0])
def test_polynomial_moments_are_exact(q: float) -> None:
    # E[u^(2k)] = q^k (2k - 1)!!
    for k in range(0, 6):
        power = get_activation(f"x**{2 * k}") if k else get_activation("1 + 0*x")
        expected = q**k * special.factorial2(2 * k - 1) if k else 1.0
        assert float(expect([power.phi], q)) == pytest.approx(expected, rel=tol("gauss_polynomial"))


def test_relu_moments_exact_with_kink_at_zero() -> None:
    relu = get_activation("relu")
    q = np.array([0.01, 1.0, 37.0])
    np.testing.assert_allclose(expect([relu.phi, relu.phi], q), q / 2, rtol=tol("few_operations"))
    np.testing.assert_allclose(expect([relu.phi], q), np.sqrt(q / (2 * np.pi)), rtol=tol("few_operations"))


def test_breakpoints_make_shifted_kinks_exact() -> None:
    shifted = get_activation("Max(x - 1, 0)")
    assert shifted.kinks == (1.0,)
    q = 2.0
    # E[(u - 1)_+] for u ~ N(0, q): sigma phi(1/sigma) - (1 - Phi(1/sigma)).
    s = math.sqrt(q)
    exact = s * math.exp(-0.5 / q) / math.sqrt(2 * math.pi) - 0.5 * math.erfc(1 / (s * math.sqrt(2)))
    with_bp = float(expect([shifted.phi], q, breakpoints=shifted.kinks))
    assert with_bp == pytest.approx(exact, rel=tol("gauss_polynomial"))


def test_zero_variance_is_the_value_at_zero() -> None:
    sig = get_activation("sigmoid")
    np.testing.assert_array_equal(expect([sig.phi, sig.phi], np.zeros(3)), np.full(3, 0.25))


def test_shape_is_preserved_and_mixed_q_share_rules() -> None:
    tanh = get_activation("tanh")
    q = np.array([[0.0, 0.1], [50.0, 2.0]])
    batch = expect([tanh.phi, tanh.phi], q)
    single = np.array([[float(expect([tanh.phi, tanh.phi], v)) for v in row] for row in q])
    assert batch.shape == (2, 2)
    np.testing.assert_allclose(batch, single, rtol=tol("same_arithmetic"), atol=0)


def test_composite_legendre_integrates_polynomials_exactly() -> None:
    nodes, weights = composite_legendre(-1.5, 2.0, 4)
    assert nodes.shape == weights.shape == (64,)
    for k in range(0, 31):
        exact = (2.0 ** (k + 1) - (-1.5) ** (k + 1)) / (k + 1)
        assert weights @ nodes**k == pytest.approx(exact, rel=tol("gauss_polynomial"))


def test_errors_name_the_argument() -> None:
    tanh = get_activation("tanh")
    with pytest.raises(ValueError, match=r"variances `q` must be finite and >= 0"):
        expect([tanh.phi], -1.0)
    with pytest.raises(ValueError, match=r"variances `q` must be finite and >= 0"):
        expect([tanh.phi], np.nan)
    with pytest.raises(ValueError, match=r"composite_legendre needs a < b"):
        composite_legendre(1.0, 1.0, 3)
    with pytest.raises(ValueError, match=r"`panels` must be >= 1"):
        composite_legendre(0.0, 1.0, 0)
