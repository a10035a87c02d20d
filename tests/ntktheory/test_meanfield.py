"""Mean-field fixed points, chi's and depth scales against an independent scipy implementation,
closed forms and exact limits.

Tolerances (float64): quantities within 1e-9 absolute of scipy adaptive quadrature + brentq
(the issue's target; observed ~1e-13); depth scales relative 1e-9; closed forms 1e-13.
"""

from __future__ import annotations

import math

import _meanfield_reference as ref  # tests/ntktheory is on sys.path (pytest rootdir import)
import numpy as np
import pytest
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory import _gauss
from ntktheory.activations import get_activation

QUANTITIES = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def _assert_matches_reference(mf, index, expected):
    bound = tol("meanfield_vs_scipy")
    for name in QUANTITIES:
        value = float(np.asarray(getattr(mf, name))[index])
        want = expected[name]
        if math.isinf(want):
            assert math.isinf(value), (name, value)
            continue
        scale = max(1.0, abs(want)) if name.startswith("xi") else 1.0
        assert abs(value - want) <= bound * scale, (name, value, want)


@pytest.mark.parametrize(
    ("sigma_w2", "sigma_b2"),
    [(0.8, 0.1), (1.8, 0.05), (2.5, 0.1), (3.9, 0.3), (2.0, 0.0)],
)
def test_tanh_matches_scipy_reference(sigma_w2, sigma_b2):
    mf = ntktheory.mean_field("tanh", sigma_w2, sigma_b2)
    _assert_matches_reference(mf, (), ref.mean_field(*ref.tanh_functions(), sigma_w2, sigma_b2))


def test_tabulated_fast_path_matches_scipy_reference():
    # more than 1024 points switch to the tabulated path
    w = np.linspace(0.6, 4.0, 48)
    b = np.linspace(0.0, 0.3, 48)
    W, B = np.meshgrid(w, b, indexing="ij")
    mf = ntktheory.mean_field("tanh", W, B)
    for i, j in [(3, 40), (20, 7), (47, 47), (11, 0)]:
        _assert_matches_reference(mf, (i, j), ref.mean_field(*ref.tanh_functions(), W[i, j], B[i, j]))


@pytest.mark.parametrize(("sigma_w2", "sigma_b2"), [(0.5, 0.2), (2.0, 0.1)])
def test_erf_closed_form_path_matches_scipy_reference(sigma_w2, sigma_b2):
    mf = ntktheory.mean_field("erf", sigma_w2, sigma_b2)
    expected = ref.mean_field(*ref.erf_functions(), sigma_w2, sigma_b2)
    _assert_matches_reference(mf, (), expected)
    # Williams: chi_1 = sigma_w^2 (4 / pi) / sqrt(1 + 4 q*)
    q = float(mf.q_star)
    assert float(mf.chi_1) == pytest.approx(sigma_w2 * 4 / math.pi / math.sqrt(1 + 4 * q), rel=tol("erf_chi_1"))


def test_expression_activation_uses_series_path():
    expr = "tanh(x) + 0.2*sin(x)"
    act = get_activation(expr)
    phi = lambda u: math.tanh(u) + 0.2 * math.sin(u)  # noqa: E731
    dphi = lambda u: 1 - math.tanh(u) ** 2 + 0.2 * math.cos(u)  # noqa: E731
    d2phi = lambda u: -2 * math.tanh(u) * (1 - math.tanh(u) ** 2) - 0.2 * math.sin(u)  # noqa: E731
    mf = ntktheory.mean_field(act, 2.2, 0.15)
    assert int(mf.phase) == 2
    _assert_matches_reference(mf, (), ref.mean_field(phi, dphi, d2phi, 2.2, 0.15))


def test_sigmoid_is_a_rescaled_tanh():
    # sigma(x) = 1/2 + tanh(x/2)/2: sigmoid at (w, b) == tanh at (w/16, w/16 + b/4), q_sig = 4 q_tanh
    w = np.array([1.0, 8.0, 60.0, 130.0, 200.0])
    b = np.array([0.0, 0.5, 0.1, 1.0, 0.2])
    sig = ntktheory.mean_field("sigmoid", w, b)
    tanh = ntktheory.mean_field("tanh", w / 16, w / 16 + b / 4)
    np.testing.assert_allclose(sig.q_star, 4 * tanh.q_star, rtol=tol("sigmoid_vs_tanh_q"))
    for name in ("chi_1", "c_star", "chi_c"):
        np.testing.assert_allclose(getattr(sig, name), getattr(tanh, name), rtol=tol("sigmoid_vs_tanh"),
                                   atol=tol("sigmoid_vs_tanh_abs"))
    assert sig.phase.tolist() == tanh.phase.tolist() == [0, 0, 0, 2, 2]


def test_identity_chi_1_is_sigma_w2_and_length_diverges_beyond_one():
    mf = ntktheory.mean_field("identity", [0.25, 0.5, 1.5], 0.3)
    np.testing.assert_allclose(mf.chi_1, [0.25, 0.5, 1.5], rtol=tol("meanfield_closed_form"))
    np.testing.assert_allclose(mf.q_star[:2], [0.3 / 0.75, 0.3 / 0.5], rtol=tol("meanfield_closed_form"))
    assert np.isinf(mf.q_star[2]) and mf.length_diverges.tolist() == [False, False, True]
    assert mf.phase_names().tolist() == ["ordered", "ordered", "chaotic"]
    assert np.isnan(mf.c_star[2]) and np.isnan(mf.xi_c[2])


def test_relu_closed_forms_and_divergence():
    w = np.array([1.0, 1.5, 2.0, 2.0, 2.5])
    b = np.array([0.2, 0.1, 0.0, 0.1, 0.1])
    mf = ntktheory.mean_field("relu", w, b)
    np.testing.assert_allclose(mf.chi_1, w / 2, rtol=tol("meanfield_closed_form"))
    np.testing.assert_allclose(mf.q_star[:2], b[:2] / (1 - w[:2] / 2), rtol=tol("meanfield_closed_form"))
    # sigma_w^2 = 2 without bias: every q is fixed, q* = q^1 = 2; with bias: no finite fixed point
    assert float(mf.q_star[2]) == pytest.approx(2.0, rel=tol("meanfield_closed_form"))
    assert mf.length_diverges.tolist() == [False, False, False, True, True]
    assert mf.phase_names().tolist() == ["ordered", "ordered", "critical", "critical", "chaotic"]
    assert np.isinf(mf.xi_c[2])
    # ordered: c* = 1, chi_c = chi_1, xi_c = -1/log chi_1 = xi_q (the relu length map is linear)
    np.testing.assert_allclose(mf.c_star[:2], 1.0)
    np.testing.assert_allclose(mf.xi_c[:2], -1 / np.log(w[:2] / 2), rtol=tol("meanfield_closed_form"))
    np.testing.assert_allclose(mf.xi_q[:2], mf.xi_c[:2], rtol=tol("meanfield_closed_form"))


def test_odd_activation_without_bias_has_zero_length():
    mf = ntktheory.mean_field("tanh", [0.3, 0.9, 1.5], 0.0)
    zero = tol("meanfield_zero_length")
    assert mf.q_star[0] < zero and mf.q_star[1] < zero and mf.q_star[2] > 0.1
    np.testing.assert_allclose(mf.chi_1[:2], [0.3, 0.9], rtol=zero)  # phi'(0)^2 = 1
    np.testing.assert_allclose(mf.c_star, [1.0, 1.0, 0.0], atol=zero)


def test_exactly_critical_point_has_infinite_xi_c():
    mf = ntktheory.mean_field("tanh", 1.0, 0.0)
    assert mf.phase_names().item() == "critical" and math.isinf(float(mf.xi_c))
    w = ntktheory.critical_sigma_w2("tanh", 0.05)
    mf = ntktheory.mean_field("tanh", w, 0.05, critical_tol=1e-9)
    assert mf.phase_names().item() == "critical" and math.isinf(float(mf.xi_c))
    assert float(mf.chi_1) == pytest.approx(1.0, abs=tol("critical_chi_1"))


def test_xi_q_agrees_with_finite_difference_of_the_length_map():
    act = get_activation("tanh")
    w, b = 2.3, 0.2
    mf = ntktheory.mean_field(act, w, b)
    q = float(mf.q_star)
    h = 1e-5 * q

    def length_map(v):
        return w * float(_gauss.expect([act.phi, act.phi], v)) + b

    slope = (length_map(q + h) - length_map(q - h)) / (2 * h)
    assert math.exp(-1 / float(mf.xi_q)) == pytest.approx(slope, rel=tol("finite_difference"))


@pytest.mark.parametrize(
    ("activation", "sigma_b2", "expected", "bound"),
    [
        ("tanh", 0.0, 1.0, tol("critical_exact")),
        ("erf", 0.0, math.pi / 4, tol("critical_exact")),
        ("relu", 0.0, 2.0, tol("critical_exact")),
        ("relu", 0.3, 2.0, tol("critical_exact")),
        ("tanh", 0.05, 1.7609546, tol("critical_theory_md")),
    ],
)
def test_critical_sigma_w2_known_values(activation, sigma_b2, expected, bound):
    assert ntktheory.critical_sigma_w2(activation, sigma_b2) == pytest.approx(expected, abs=bound)


def test_critical_sigma_w2_is_vectorised_and_chi_1_is_one_there():
    b = np.array([0.01, 0.1, 0.3, 1.0])
    w = ntktheory.critical_sigma_w2("tanh", b)
    assert w.shape == (4,) and np.all(np.diff(w) > 0)
    np.testing.assert_allclose(ntktheory.mean_field("tanh", w, b).chi_1, 1.0, atol=tol("critical_vectorised"))
    # independent: brentq on the scipy reference's chi_1
    from scipy import optimize

    phi, dphi, _ = ref.tanh_functions()

    def excess(sw2):
        q = ref.q_star(phi, sw2, 0.1)
        return sw2 * ref.gauss1(lambda x: dphi(x) ** 2, q) - 1.0

    assert w[1] == pytest.approx(optimize.brentq(excess, 1.0, 3.0, xtol=1e-13), abs=tol("critical_exact"))
    assert ntktheory.critical_sigma_w2("sigmoid", 0.0) == pytest.approx(103.0, abs=tol("critical_sigmoid_rough"))


@pytest.mark.parametrize(("activation", "sigma_b2"), [("tanh", 0.05), ("tanh", 0.5), ("erf", 0.1), ("sigmoid", 0.1)])
def test_critical_sigma_w2_is_brentq_on_chi_1(activation, sigma_b2):
    # the vectorised Illinois root finder against scipy's brentq on the same chi_1 - 1, and the
    # vectorised call against scalar ones (not bitwise: the quadrature rule is sized per batch)
    from scipy import optimize

    got = ntktheory.critical_sigma_w2(activation, sigma_b2)

    def excess(sw2):
        return float(ntktheory.mean_field(activation, sw2, sigma_b2).chi_1) - 1.0

    want = optimize.brentq(excess, 0.9 * got, 1.1 * got, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
    assert got == pytest.approx(want, rel=tol("meanfield_closed_form"), abs=0.0)
    both = ntktheory.critical_sigma_w2(activation, [sigma_b2, 0.2])
    np.testing.assert_allclose(both, [got, ntktheory.critical_sigma_w2(activation, 0.2)],
                               rtol=tol("meanfield_closed_form"), atol=0.0)


def test_relu_trajectory_matches_arccos_map_and_critical_power_law():
    ds = ntktheory.meanfield_trajectory([1.0, 1.0], [1.0, 0.0], activation="relu", depth=2000, sigma_w2=2.0)
    c = ds.c.values
    np.testing.assert_allclose(ds.q1.values, 2.0, rtol=tol("meanfield_closed_form"))  # sigma_w^2 = 2: q is preserved
    theta = math.acos(c[0])
    arccos_map = (math.sin(theta) + (math.pi - theta) * math.cos(theta)) / math.pi
    assert c[1] == pytest.approx(arccos_map, rel=tol("meanfield_closed_form"))
    # THEORY.md: 1 - c_l ~ 9 pi^2 / (2 l^2) at the relu critical point
    layer = ds.layer.values
    ratio = (1 - c[-1]) * layer[-1] ** 2 / (9 * math.pi**2 / 2)
    assert ratio == pytest.approx(1.0, abs=tol("critical_power_law"))


def test_erf_trajectory_converges_to_c_star_at_rate_chi_c():
    from scipy import stats

    mf = ntktheory.mean_field("erf", 2.5, 0.1)
    ds = ntktheory.meanfield_trajectory([1.0, 0.2, -0.5], [0.3, 1.0, 0.4], activation="erf", depth=100,
                                        sigma_w2=2.5, sigma_b2=0.1)
    assert float(ds.q1[-1]) == pytest.approx(float(mf.q_star), abs=tol("trajectory_converged"))
    gap = np.abs(ds.c.values - float(mf.c_star))
    layers = ds.layer.values
    sel = (layers >= 40) & (gap > 1e-11)
    fit = stats.linregress(layers[sel], np.log(gap[sel]))
    assert fit.slope == pytest.approx(math.log(float(mf.chi_c)), rel=tol("fitted_rate"))


def test_tanh_trajectory_matches_scipy_reference():
    x1, x2 = np.array([1.0, 0.2, -0.5]), np.array([0.3, 1.0, 0.4])
    w, b = 1.7, 0.1
    ds = ntktheory.meanfield_trajectory(x1, x2, activation="tanh", depth=2, sigma_w2=w, sigma_b2=b)
    phi = ref.tanh_functions()[0]
    q1, q2 = w * x1 @ x1 / 3 + b, w * x2 @ x2 / 3 + b
    q12 = w * x1 @ x2 / 3 + b
    for layer in range(3):
        c = q12 / math.sqrt(q1 * q2)
        assert float(ds.c[layer]) == pytest.approx(c, abs=tol("trajectory_vs_scipy"))
        assert float(ds.q1[layer]) == pytest.approx(q1, abs=tol("trajectory_vs_scipy"))
        # next layer, the bivariate expectation with unequal variances via the standardised form
        s1, s2 = math.sqrt(q1), math.sqrt(q2)
        e12 = ref.gauss2(lambda u, s=s1: phi(s * u), lambda u, s=s2: phi(s * u), 1.0, c)
        q1, q2, q12 = (w * ref.gauss1(lambda u: phi(u) ** 2, q1) + b, w * ref.gauss1(lambda u: phi(u) ** 2, q2) + b,
                       w * e12 + b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma_w2": 0.0}, ValueError, r"`sigma_w2` must be > 0.*0\.0"),
        ({"sigma_w2": [1.0, -2.0]}, ValueError, r"`sigma_w2` must be > 0"),
        ({"sigma_w2": 1.0, "sigma_b2": -0.1}, ValueError, r"`sigma_b2` must be >= 0.*-0\.1"),
        ({"sigma_w2": float("nan")}, ValueError, r"`sigma_w2` must be finite"),
        ({"sigma_w2": "big"}, TypeError, r"`sigma_w2` must be a real number.*'big'"),
        ({"sigma_w2": [1.0, "x"]}, TypeError, r"`sigma_w2` must be a real number"),
        ({"sigma_w2": []}, ValueError, r"`sigma_w2` must not be empty"),
        ({"sigma_w2": 1.0, "critical_tol": -1.0}, ValueError, r"`critical_tol` must be >= 0"),
    ],
)
def test_mean_field_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ntktheory.mean_field("tanh", **kwargs)


def test_other_argument_errors():
    with pytest.raises(TypeError, match=r"`activation` must be a registry name"):
        ntktheory.mean_field(3, 1.0)
    with pytest.raises(ValueError, match=r"`sigma_b2` must be >= 0"):
        ntktheory.critical_sigma_w2("tanh", [0.1, -1.0])
    with pytest.raises(ValueError, match=r"`xtol` must be >= 0"):
        ntktheory.critical_sigma_w2("tanh", 0.1, xtol=-1.0)
    with pytest.raises(ValueError, match=r"`x1` and `x2` must be 1-D of the same non-zero length"):
        ntktheory.meanfield_trajectory([1.0, 2.0], [1.0], activation="relu", depth=2, sigma_w2=1.0)
    with pytest.raises(ValueError, match=r"`depth` must be an integer >= 1"):
        ntktheory.meanfield_trajectory([1.0], [1.0], activation="relu", depth=0, sigma_w2=1.0)
    with pytest.raises(ValueError, match=r"`sigma_w2` must be > 0"):
        ntktheory.meanfield_trajectory([1.0], [1.0], activation="relu", depth=1, sigma_w2=0.0)


def test_series_and_table_correlation_paths_agree_near_the_critical_line():
    """The correlation fixed point from direct Hermite coefficients (few chaotic points) and from
    the tabulated coefficients (phase diagrams) is one solve (_meanfield_kernels._fixed_point)
    with the rest of the series treated one way, so both paths agree to 1e-13 even just above
    the critical line, where c* -> 1 and the series converges slowly."""
    from ntktheory import _meanfield

    act = get_activation("tanh")
    sb2 = np.full(8, 0.05)
    critical = float(ntktheory.critical_sigma_w2("tanh", 0.05))
    sw2 = critical * (1.0 + np.array([2e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 0.6, 1.0]))
    q, chi_1, _, diverged = _meanfield._length_fixed_points(act, sw2, sb2)
    assert not diverged.any() and np.all(chi_1 > 1.0)
    g = (q - sb2) / sw2
    c_series, chi_series = _meanfield._correlation_series(act, sw2, q, g)
    c_table, chi_table = _meanfield._correlation_table(act, sw2, q, g)
    assert np.all(c_series < 1.0) and c_series[0] > 0.99  # c* from 0.995 down to ~0.2
    np.testing.assert_allclose(c_table, c_series, rtol=0, atol=tol("correlation_paths"))
    np.testing.assert_allclose(chi_table, chi_series, rtol=0, atol=tol("correlation_paths"))


def test_both_correlation_solvers_treat_an_unconverged_series_alike():
    """With a truncated series (32 degrees, c* close to 1, so the rest beyond the last degree
    matters) the direct and the tabulated solvers give the same c*, chi_c and bound: the rest
    enters S and chi_c the same way in both (formerly the tabulated path dropped it from chi_c)."""
    from ntktheory import _meanfield, _meanfield_kernels

    act = get_activation("tanh")
    sb2 = np.array([0.05])
    sw2 = np.array(float(ntktheory.critical_sigma_w2("tanh", 0.05)) * 1.01).reshape(1)
    q, _, _, _ = _meanfield._length_fixed_points(act, sw2, sb2)
    g = (q - sb2) / sw2
    a2 = _meanfield._squared_coefficients(act, q, 32)
    r0 = np.maximum(g - a2.sum(axis=1), 0.0)
    assert r0[0] > 1e-10  # the series is far from converged at degree 32
    direct = [np.empty(1) for _ in range(3)]
    _meanfield_kernels.solve_correlation(a2, r0, sw2, q, *direct)
    # a table whose rows all hold the same coefficients interpolates them exactly (weights sum to 1)
    table = np.repeat(np.sqrt(a2), 64, axis=0)
    tabulated = [np.empty(1) for _ in range(3)]
    _meanfield_kernels.solve_correlation_table(table, math.log1p(float(q[0])) / 32.0, sw2, q, g, *tabulated)
    assert 0.9 < direct[0][0] < 1.0 and direct[2][0] > 1e-12
    np.testing.assert_allclose(tabulated[0], direct[0], rtol=tol("correlation_paths"), atol=0)  # c*
    np.testing.assert_allclose(tabulated[1], direct[1], rtol=tol("correlation_paths"), atol=0)  # chi_c
    # the bound ~ c*^33 / (1 - c*) amplifies the interpolation's rounding in c* ~10^7-fold
    np.testing.assert_allclose(tabulated[2], direct[2], rtol=tol("correlation_bound"), atol=0)
