import numpy as np
import pytest
import xarray as xr
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

import compare
from compare import (
    cka,
    condition_number,
    eigenvalues,
    function_distance,
    kernel_regression_prediction,
    relative_frobenius,
    relative_kernel_change,
    relative_variance,
    width_scaling_exponent,
)


def test_relative_frobenius_by_hand():
    theory = np.array([[2.0, 1.0], [1.0, 2.0]])  # |T|_F = sqrt(10)
    emp = theory + np.array([[0.0, 1.0], [1.0, 0.0]])  # difference has norm sqrt(2)
    assert relative_frobenius(emp, theory) == pytest.approx(np.sqrt(2 / 10), rel=tol("metric_by_hand"))
    assert relative_kernel_change(emp, theory) == pytest.approx(np.sqrt(0.2), rel=tol("metric_by_hand"))


def test_relative_frobenius_broadcasts_over_dataarray_dims():
    theory = xr.DataArray(np.eye(2), dims=("x1", "x2"))
    emp = xr.DataArray(np.stack([np.eye(2) * 2, np.eye(2) * 4]), dims=("seed", "x1", "x2"))
    out = relative_frobenius(emp, theory)
    assert out.dims == ("seed",)
    np.testing.assert_allclose(out.values, [1.0, 3.0], rtol=tol("metric_by_hand"))


def test_relative_variance_by_hand():
    k = np.stack([np.eye(2) * 1.0, np.eye(2) * 3.0, np.eye(2) * 5.0])
    # mean 3 I, unbiased variance 4 on the diagonal: 8 / 18
    assert relative_variance(k, dim=0) == pytest.approx(8 / 18, rel=tol("metric_by_hand"))
    da = xr.DataArray(k, dims=("seed", "x1", "x2"))
    assert float(relative_variance(da)) == pytest.approx(8 / 18, rel=tol("metric_by_hand"))


def test_relative_variance_unknown_dim():
    with pytest.raises(ValueError, match="`dim` 'width' is not a dim"):
        relative_variance(xr.DataArray(np.ones((2, 2, 2)), dims=("seed", "x1", "x2")), dim="width")


def test_eigenvalues_and_condition_number():
    k = np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 3 and 1
    np.testing.assert_allclose(eigenvalues(k), [3.0, 1.0], rtol=tol("metric_by_hand"))
    assert condition_number(k) == pytest.approx(3.0, rel=tol("metric_by_hand"))
    assert condition_number(np.array([[1.0, 1.0], [1.0, 1.0]])) > 1e15 or np.isinf(
        condition_number(np.array([[1.0, 1.0], [1.0, 1.0]]))
    )
    assert np.isnan(condition_number(np.full((2, 2), np.nan)))


def test_cka_by_hand():
    a = np.diag([1.0, 0.0])
    b = np.diag([0.0, 1.0])
    # centred: HaH = [[.25, -.25], [-.25, .25]], HbH the same -> alignment 1
    assert cka(a, b) == pytest.approx(1.0, rel=tol("metric_by_hand"))
    c = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    d = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    # c = e1 e1^T, so HcH = u u^T with u = He1 = (2, -1, -1)/3, v = He2 = (-1, 2, -1)/3:
    # <uu^T, vv^T> = (u.v)^2 = 1/9 and |uu^T|_F = |u|^2 = 2/3, so CKA = (1/9) / (4/9) = 1/4
    assert cka(c, d) == pytest.approx(0.25, rel=tol("metric_rounding"))


def test_kernel_regression_prediction_limits_and_one_step():
    k = np.array([[2.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, -1.0])
    np.testing.assert_allclose(kernel_regression_prediction(k, k, y, 0.0, learning_rate=0.1), [0, 0], atol=0)
    np.testing.assert_allclose(kernel_regression_prediction(k, k, y, np.inf, learning_rate=0.1), y,
                               rtol=tol("metric_by_hand"))
    # continuous time, eigenvalue 2, N = 2, eta t = 1: 1 - exp(-1)
    np.testing.assert_allclose(
        kernel_regression_prediction(k, k, y, 1.0, learning_rate=1.0),
        [1 - np.exp(-1.0), -(1 - np.exp(-0.5))],
        rtol=tol("metric_by_hand"),
    )
    # discrete time: one GD step of the linear model, f1 = f0 + eta/N K (Y - f0)
    f0 = np.array([0.2, 0.3])
    step = kernel_regression_prediction(k, k, y, 1.0, learning_rate=0.5, f0_test=f0, f0_train=f0, time="discrete")
    np.testing.assert_allclose(step, f0 + 0.5 / 2 * k @ (y - f0), rtol=tol("metric_by_hand"))


def test_kernel_regression_prediction_bad_shapes():
    with pytest.raises(ValueError, match="shapes do not match"):
        kernel_regression_prediction(np.eye(3), np.eye(2), np.ones(2), 1.0, learning_rate=0.1)
    with pytest.raises(ValueError, match="`time` must be 'continuous' or 'discrete'"):
        kernel_regression_prediction(np.eye(2), np.eye(2), np.ones(2), 1.0, learning_rate=0.1, time="euler")


def test_function_distance_by_hand():
    assert function_distance(np.array([3.0, 4.0]), np.array([0.0, 4.0])) == pytest.approx(0.75)


def test_width_scaling_exponent_recovers_known_slope_with_interval():
    widths = np.array([64, 128, 256, 512, 1024])
    rng = np.random.default_rng(0)
    gap = 2.0 * widths[:, None] ** -0.5 * np.exp(0.05 * rng.standard_normal((5, 8)))
    da = xr.DataArray(gap, dims=("width", "seed"), coords={"width": widths})
    fit = width_scaling_exponent(da)
    assert fit.slope_low < -0.5 < fit.slope_high
    assert abs(float(fit.slope) + 0.5) < tol("noisy_slope")
    exact = xr.DataArray(3.0 * widths**-1.0, dims="width", coords={"width": widths})
    assert float(width_scaling_exponent(exact).slope) == pytest.approx(-1.0, abs=tol("metric_rounding"))


def test_width_scaling_exponent_errors():
    da = xr.DataArray([1.0, 0.5], dims="depth")
    with pytest.raises(ValueError, match="`dim` 'width' is not a dim of `gap`"):
        width_scaling_exponent(da)
    with pytest.raises(TypeError, match=r"`gap` must be an xarray\.DataArray"):
        width_scaling_exponent(np.ones(3))
    with pytest.raises(ValueError, match="`confidence` must lie in"):
        width_scaling_exponent(xr.DataArray([1.0, 0.5, 0.2], dims="width", coords={"width": [1, 2, 4]}), confidence=1.5)


def test_schema_and_accessor():
    emp = xr.DataArray(np.stack([np.eye(2) * 1.5, np.eye(2) * np.nan]), dims=("seed", "x1", "x2"))
    ds = compare.theory_empirical_dataset(ntk_theory=np.eye(2), ntk_empirical=emp, config={"a": 1}, seeds=[0, 1],
                                          device="cpu", dtype="float64")
    assert ds.diverged.values.tolist() == [False, True]
    assert np.isnan(ds.ntk_empirical.sel(seed=1)).all()
    assert ds.attrs["config"] == '{"a": 1}'
    assert {"conventions", "package_versions", "creation_time", "seeds", "device", "dtype"} <= set(ds.attrs)
    gap = ds.ntkgap.relative_frobenius("ntk")
    assert float(gap.sel(seed=0)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="`kind` must be 'ntk' or 'nngp'"):
        ds.ntkgap.relative_frobenius("cnn")
    with pytest.raises(KeyError, match="nngp_empirical"):
        ds.ntkgap.cka("nngp")


def test_diagonal_relative_variance_by_hand():
    from compare import diagonal_relative_variance

    k = np.stack([np.diag([1.0, 2.0]), np.diag([3.0, 2.0])])  # point 1: mean 2, var 2; point 2: var 0
    assert diagonal_relative_variance(k, dim=0) == pytest.approx(0.25, rel=tol("metric_by_hand"))
    da = xr.DataArray(k + np.ones((2, 2, 2)) * 0, dims=("seed", "x1", "x2"))
    assert float(diagonal_relative_variance(da)) == pytest.approx(0.25, rel=tol("metric_by_hand"))


def test_hanin_nica_prediction_only_for_relu():
    ds = xr.Dataset(coords={"activation": ["tanh", "relu"], "width": [64, 256], "depth": [1, 2]})
    ds["ntk_empirical"] = xr.DataArray(np.ones((2, 2, 2, 2, 2)), dims=("activation", "width", "depth", "x1", "x2"))
    ds["ntk_theory"] = xr.DataArray(np.ones((2, 2)), dims=("x1", "x2"))
    pred = ds.ntkgap.hanin_nica_prediction()
    assert np.isnan(pred.sel(activation="tanh")).all()
    assert float(pred.sel(activation="relu", width=64, depth=2)) == pytest.approx(np.exp(5 * 2 / 64) - 1,
                                                                                  rel=tol("metric_rounding"))
