"""Closed-form Gaussian expectations of the registry's activations against quadrature.

Each closed form (relu, leaky_relu 0.1 / 0.2, abs, erf, sin, identity, step, gelu) is compared with
ntktheory's bivariate quadrature of the same activation's phi and phi' (Mehler series with a
rigorous tail bound, or graded direct 2-D quadrature), over variances from 0 to 50 and
correlations including c = +-1. Tolerance: tol("closed_vs_quad") (tests/ntktheory/tolerances_ntktheory.py)
relative to the Cauchy-Schwarz scale.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from numba import njit
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory import _closed_forms
from ntktheory._gauss import expect
from ntktheory._quadrature import bivariate_expectation
from ntktheory.activations import Activation, get_activation, leaky_relu

GRID = [  # (q1, q2, c)
    (1.0, 1.0, 0.5),
    (0.3, 2.0, -0.7),
    (4.0, 4.0, 0.95),
    (20.0, 5.0, 0.3),
    (50.0, 50.0, -0.2),
    (1e-3, 3.0, 0.6),
    (2.0, 2.0, 1.0),
    (3.0, 3.0, -1.0),
    (2.0, 0.5, 1.0),
    (0.0, 2.0, 0.0),
]

ACTIVATIONS = {
    "relu": get_activation("relu"),
    "leaky_relu_0.1": leaky_relu(negative_slope=0.1),
    "leaky_relu_0.2": leaky_relu(negative_slope=0.2),
    "abs": get_activation("abs"),
    "erf": get_activation("erf"),
    "sin": get_activation("sin"),
    "identity": get_activation("identity"),
    "step": get_activation("step"),
    "gelu": get_activation("gelu"),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_closed_form_matches_quadrature(name):
    act = ACTIVATIONS[name]
    assert act.has_closed_form
    q1, q2, c = (np.array(v) for v in zip(*GRID))
    q12 = c * np.sqrt(q1 * q2)
    pp, dd = act.gaussian_expectations(q1, q2, q12)
    for closed, f in ((pp, act.phi), (dd, act.dphi)):
        quad = bivariate_expectation(f, f, q1, q2, q12, breakpoints=act.kinks)
        m1 = expect([f, f], q1, breakpoints=act.kinks)
        m2 = expect([f, f], q2, breakpoints=act.kinks)
        scale = np.sqrt(m1 * m2)
        err = np.abs(closed - quad)
        assert np.all(err <= tol("closed_vs_quad") * np.maximum(scale, 1e-300) + 1e-300), (name, err / scale)


def test_gelu_is_registered_with_its_closed_form():
    gelu = get_activation("gelu")
    assert gelu.closed_form is _closed_forms.gelu
    # E[gelu(u)^2] at q = 1 by the univariate rule
    pp, _ = gelu.gaussian_expectations(1.0, 1.0, 1.0)
    assert abs(float(pp) - float(expect([gelu.phi, gelu.phi], 1.0))) < tol("few_operations")


def test_atan2_upper_is_accurate_to_an_ulp():
    """The branch-free atan2 of the arc-cosine closed forms (octant reduction and a polynomial)
    against mpmath's atan2 at 40 digits, over both octant branches, both signs of x, the
    reduction boundary tan(pi/8), exact axes, and magnitudes from 1e-300 to 1e300."""
    mpmath.mp.dps = 40
    rng = np.random.default_rng(11)
    theta = np.concatenate([rng.uniform(0.0, np.pi, 3000), [0.0, np.pi / 2, np.pi, np.pi / 8, 3 * np.pi / 8,
                                                             np.pi / 4, 5 * np.pi / 8, 7 * np.pi / 8]])
    theta = np.concatenate([theta, np.pi / 8 + np.array([-1e-12, 1e-12]), np.pi * (1 - 1e-9) * np.ones(1)])
    scale = 10.0 ** rng.uniform(-300, 300, theta.size)
    y, x = np.abs(np.sin(theta)) * scale, np.cos(theta) * scale
    y[0], x[0] = 0.0, 0.0
    func = njit(lambda a, b: _closed_forms.atan2_upper(a, b))
    got = np.array([func(a, b) for a, b in zip(y, x)])
    ref = np.array([float(mpmath.atan2(mpmath.mpf(float(a)), mpmath.mpf(float(b)))) for a, b in zip(y, x)])
    err = np.abs(got - ref) / np.maximum(np.abs(ref), np.finfo(float).tiny)
    assert np.all(got >= 0.0) and np.all(got <= np.pi)
    assert err.max() <= tol("atan2_ulps") * np.finfo(float).eps, err.max() / np.finfo(float).eps


def test_arccos_fast_path_matches_generic_closed_forms():
    """The fused relu/leaky/abs/step kernel layer equals the _closed_forms functions applied
    entrywise (the same activation with another name takes the generic closed-form path)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 5))
    x[3] = 0.0  # a zero input: q = 0 rows with sigma_b = 0
    for act in (get_activation("relu"), leaky_relu(negative_slope=0.2), get_activation("abs"),
                get_activation("step")):
        twin = Activation("twin_" + act.name, act.expression, act.params, closed_form=act.closed_form)
        for sigma_b in (0.0, 0.3):
            for kwargs in ({}, {"parameterization": "standard", "width": 50}):
                fast = ntktheory.kernels(x, activation=act, depth=3, sigma_w=1.3, sigma_b=sigma_b, **kwargs)
                slow = ntktheory.kernels(x, activation=twin, depth=3, sigma_w=1.3, sigma_b=sigma_b, **kwargs)
                assert "closed_form_fused" in fast.attrs["quadrature"]
                for var in ("nngp", "ntk"):
                    np.testing.assert_allclose(fast[var].values, slow[var].values, rtol=tol("reordered_arithmetic"),
                                               atol=tol("reordered_arithmetic"))


@pytest.mark.parametrize(
    "spec,match",
    [
        ("foo", r"^unknown activation 'foo'; the registry has relu, leaky_relu, abs, erf, tanh, .*'x\*tanh\(x\)'"),
        ("Tanh", r"^unknown activation 'Tanh' \(did you mean 'tanh'\? names are lower case\); the registry has relu"),
        ("ReLU", r"^unknown activation 'ReLU' \(did you mean 'relu'\? names are lower case\)"),
        ("leaky-relu", r"^unknown activation 'leaky-relu' \(did you mean 'leaky_relu'\?\)"),
        ("tahn", r"^unknown activation 'tahn' \(did you mean 'tanh'\?\)"),
        ("cos", r"^activation 'cos' is a function name; apply it to x: 'cos\(x\)'"),
        ("Tanh(x)", r"calls unknown function\(s\) Tanh \(did you mean 'tanh\(x\)'\?\)"),
        ("exp(x**2)", r"^activation 'exp\(x\*\*2\)' grows like exp\(c x\^2\) .* its NNGP and NTK do not exist"),
        ("exp(x**3)", r"^activation 'exp\(x\*\*3\)' grows like exp\(c x\^2\) or faster .*overflows float64"),
        ("exp(exp(x))", r"grows like exp\(c x\^2\) or faster"),
        ("sqrt(x)", r"^activation 'sqrt\(x\)': phi is not real at x = -20.0"),
        ("1/x", r"^activation '1/x': phi is not real and finite at x = 0.0"),
    ],
)
def test_unknown_or_unusable_activations_say_why(spec, match):
    with pytest.raises(ValueError, match=match):
        get_activation(spec)


@pytest.mark.parametrize("spec", ["exp(x)", "cosh(x)**3", "x**5", "exp(x**2/100)", "x", "0.5*relu(x) + sin(x)"])
def test_fast_but_subgaussian_growth_is_accepted(spec):
    """Growth at most exponential (or like exp(c x^2) with c small) has finite expectations: accepted."""
    assert get_activation(spec).name == spec


def test_kernels_of_a_superexponential_activation_name_the_expression():
    x = np.array([[1.0, 0.5], [0.2, -1.0]])
    with pytest.raises(ValueError, match=r"^activation 'exp\(x\*\*2\)' grows like exp\(c x\^2\)"):
        ntktheory.kernels(x, activation="exp(x**2)", depth=2)
    with pytest.raises(ValueError, match=r"^unknown activation 'Tanh' \(did you mean 'tanh'"):
        ntktheory.kernels(x, activation="Tanh", depth=2)


@pytest.mark.parametrize(
    "spec", ["relu", "tanh", "erf", "gelu", "softplus", "swish", "sigmoid", "sin", "identity", "step",
             "x*tanh(x)", "sin(x)*exp(-x**2/8)", "x*erf(x)", "Abs(x)", "2"]
)
def test_fused_phi_and_dphi_equal_the_separate_functions(spec):
    """phi_and_dphi (numpy's vectorised functions where the expression prints to numpy, the fused
    numba loop otherwise: softplus's stable code) equals phi and phi' to a few ulp, and keeps the
    shape of its input even for constant derivatives."""
    act = get_activation(spec)
    x = np.linspace(-30.0, 30.0, 20001).reshape(1, -1, 1)
    phi, dphi = act.phi_and_dphi(x)
    assert phi.shape == x.shape and dphi.shape == x.shape
    np.testing.assert_allclose(phi, act.phi(x), rtol=tol("fused_phi"), atol=tol("fused_phi"))
    np.testing.assert_allclose(dphi, act.dphi(x), rtol=tol("fused_phi"), atol=tol("fused_phi"))
