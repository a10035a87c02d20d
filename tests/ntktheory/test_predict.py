"""ntktheory.predict / predict_from_kernels: neural-tangents, closed forms, references, limits, errors.

Independent references: neural-tangents 0.6.5's ``predict.gradient_descent_mse_ensemble`` and
``predict.gp_inference`` (outputs stored in data/reference/predict_reference.npz by
data/reference/make_predict_reference.py); closed forms for one training point and for diagonal
kernels; a separately written formula with ``scipy.linalg.expm`` and ``scipy.linalg.solve``; an
explicit iteration of discrete gradient descent propagating the initial function's covariance.
Tolerances: tests/ntktheory/tolerances_ntktheory.py (predict_*). Relative errors are max |a - b| / max |b|
per array (entries of a covariance can be ~0; the absolute error when b is all zeros).
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import xarray as xr
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory import KernelConditionWarning, predict, predict_from_kernels

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference" / "predict_reference.npz"
NETWORKS = {"relu": dict(activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.0),
            "erf": dict(activation="erf", sigma_w=1.5, sigma_b=0.1)}


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


def _random_blocks(n: int = 6, m: int = 4, seed: int = 0):
    """Generic NTK and NNGP blocks: two independent random PSD matrices on n + m points."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("ntk", "nngp"):
        a = rng.standard_normal((n + m, n + m + 3))
        full = a @ a.T / (n + m)
        out[name] = full
    train = {g: out[g][:n, :n] for g in out}
    cross = {g: out[g][n:, :n] for g in out}
    test = {g: out[g][n:, n:] for g in out}
    return train, cross, test


# ---------------------------------------------------------------------- neural-tangents
@functools.lru_cache(maxsize=1)
def _reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


_CASES = [str(c) for c in _reference()["cases"]] if REFERENCE.exists() else []


def _case(ref, case: str):
    net, regs = case.split("__")
    act, depth = net.split("-d")
    absolute = regs.endswith("abs")
    reg = float(regs[3:].removesuffix("abs"))
    return net, act, int(depth), reg, absolute


@pytest.mark.parametrize("source", ["neural_tangents_kernels", "ntktheory_kernels"])
@pytest.mark.parametrize("case", _CASES)
def test_agrees_with_neural_tangents(case, source):
    """Mean and covariance of both kernels' gradient-descent ensembles (times incl. inf), the t = inf
    Cholesky path and both GP posteriors, relu/erf, depths 1-3, diag_reg 1e-6..1e-3 (one absolute).

    ``neural_tangents_kernels`` feeds stax's own kernel matrices to predict_from_kernels (the
    prediction algebra alone); ``ntktheory_kernels`` runs ntktheory.predict end to end."""
    ref = _reference()
    net, act, depth, reg, absolute = _case(ref, case)
    x_train, x_test, y = ref["x_train"], ref["x_test"], ref["y_train"]
    times, lr = ref["times"], float(ref["learning_rate"])
    opts = dict(learning_rate=lr, diag_reg=reg, diag_reg_absolute=absolute)
    if source == "neural_tangents_kernels":
        blocks = [{g: ref[f"{net}__{g}_{b}"] for g in ("nngp", "ntk")}
                  for b in ("train_train", "test_train", "test_test")]

        def run(**kw):
            return predict_from_kernels(*blocks[:2], y, blocks[2], **opts, **kw)
    else:
        def run(**kw):
            return predict(x_train, y, x_test, depth=depth, **NETWORKS[act], **opts, **kw)
    for g in ("ntk", "nngp"):
        p = run(kernel=g, time=times)
        assert _rel(p["mean"].values, ref[f"{case}__gd_{g}_mean"]) <= tol("predict_nt")
        assert _rel(p["covariance"].values, ref[f"{case}__gd_{g}_cov"]) <= tol("predict_nt")
        inf = run(kernel=g)  # time=None: t = inf
        assert _rel(inf["mean"].values[0], ref[f"{case}__inf_{g}_mean"]) <= tol("predict_nt")
        assert _rel(inf["covariance"].values[0], ref[f"{case}__inf_{g}_cov"]) <= tol("predict_nt")
    for g, nt_name in (("nngp", "nngp"), ("ntk", "ntkgp")):
        p = run(kernel=g, method="bayesian")
        assert _rel(p["mean"].values, ref[f"{case}__bayes_{nt_name}_mean"]) <= tol("predict_nt")
        assert _rel(p["covariance"].values, ref[f"{case}__bayes_{nt_name}_cov"]) <= tol("predict_nt")


def test_reference_kernels_are_ntktheorys():
    """The stored stax kernels equal ntktheory.kernels (so the two test sources test one thing)."""
    ref = _reference()
    for act in NETWORKS:
        for depth in (1, 2, 3):
            for block, args in (("train_train", (ref["x_train"],)), ("test_train", (ref["x_test"], ref["x_train"])),
                                ("test_test", (ref["x_test"],))):
                ds = ntktheory.kernels(*args, depth=depth, **NETWORKS[act])
                for g in ("nngp", "ntk"):
                    assert _rel(ds[g].values, ref[f"{act}-d{depth}__{g}_{block}"]) <= tol("kernel_paths")


# ---------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("k_out", [1, 2])
def test_one_training_point_closed_form(k_out):
    """N = 1: E_t = 1 - exp(-eta theta t / k); mean = a/theta E y; cov = c + (a/theta)^2 E^2 kappa - 2 (a/theta) E b."""
    theta, kappa, a, b, c = 2.0, 1.5, 0.8, 0.6, 1.2
    y = np.array([[0.7, -1.3][:k_out]])
    lr, times = 0.9, np.array([0.0, 0.5, 2.0, 7.0, np.inf])
    p = predict_from_kernels({"ntk": [[theta]], "nngp": [[kappa]]}, {"ntk": [[a]], "nngp": [[b]]}, y,
                             {"nngp": [[c]]}, time=times, learning_rate=lr)
    e = -np.expm1(-lr * theta * times / k_out)
    mean = (a / theta) * e[:, None] * y[0][None, :]
    cov = c + (a / theta) ** 2 * e**2 * kappa - 2 * (a / theta) * e * b
    assert _rel(p["mean"].values[:, 0, :], mean) <= tol("predict_exact")
    assert _rel(p["covariance"].values[:, 0, 0], cov) <= tol("predict_exact")


@pytest.mark.parametrize("discrete", [False, True])
def test_diagonal_kernel_closed_form(discrete):
    """Theta = diag(theta_i), K = diag(kappa_i), test = train: each point relaxes on its own,
    mean_i = (1 - d_i) y_i and Sigma = diag(kappa_i d_i^2), d_i = exp(-c theta_i t) or (1 - c theta_i)^s."""
    theta, kappa = np.array([0.5, 1.0, 3.0, 6.0]), np.array([0.2, 0.9, 1.1, 2.0])
    y = np.array([1.0, -2.0, 0.5, 3.0])
    lr, n = 0.5, 4
    c = lr / n
    ts = np.array([0, 1, 3, 10, 100]) if discrete else np.array([0.0, 0.7, 3.0, 40.0])
    blocks = ({"ntk": np.diag(theta), "nngp": np.diag(kappa)},) * 2
    p = predict_from_kernels(*blocks, y, {"nngp": np.diag(kappa)}, learning_rate=lr,
                             **({"steps": ts} if discrete else {"time": ts}))
    d = (1 - c * theta[None, :]) ** ts[:, None] if discrete else np.exp(-c * theta[None, :] * ts[:, None])
    assert p["mean"].dims[0] == ("step" if discrete else "time")
    assert _rel(p["mean"].values[..., 0], (1 - d) * y) <= tol("predict_exact")
    expected = np.stack([np.diag(kappa * di**2) for di in d])
    assert np.max(np.abs(p["covariance"].values - expected)) <= tol("predict_exact") * np.max(kappa)


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_time_zero_is_the_prior(kernel):
    train, cross, test = _random_blocks()
    y = np.arange(6.0)
    p = predict_from_kernels(train, cross, y, test, kernel=kernel, time=0.0)
    assert np.all(p["mean"].values == 0)
    assert _rel(p["covariance"].values[0], test["nngp"]) <= tol("predict_exact")
    v = predict_from_kernels(train, cross, y, np.diag(test["nngp"]), kernel=kernel, steps=0, covariance="marginal")
    assert _rel(v["variance"].values[0], np.diag(test["nngp"])) <= tol("predict_exact")


def test_infinite_time_is_kernel_regression_and_the_posterior_mean():
    """t = inf: NTK gradient descent gives the NTK-GP posterior mean (same diag_reg), which tends to
    Theta(x, X) Theta^-1 Y linearly in diag_reg as diag_reg -> 0; on the train points it interpolates."""
    train, cross, test = _random_blocks(seed=1)
    y = np.random.default_rng(1).standard_normal((6, 2))
    exact = cross["ntk"] @ scipy.linalg.solve(train["ntk"], y, assume_a="pos")
    errors = []
    for reg in (1e-3, 1e-5, 1e-7):
        gd = predict_from_kernels(train, cross, y, test, diag_reg=reg)
        bayes = predict_from_kernels(train, cross, y, test, kernel="ntk", method="bayesian", diag_reg=reg)
        assert _rel(gd["mean"].values[0], bayes["mean"].values) <= tol("predict_reference")
        errors.append(_rel(gd["mean"].values[0], exact))
    assert errors[0] > errors[1] > errors[2]
    np.testing.assert_allclose(np.array(errors[:2]) / np.array(errors[1:]), 100.0,
                               rtol=tol("diag_reg_linear"))  # O(diag_reg)
    fit = predict_from_kernels(train, train, y, covariance=False)
    assert _rel(fit["mean"].values[0], y) <= tol("predict_reference")


@pytest.mark.parametrize("reg", [0.0, 1e-3])
def test_nngp_dynamics_at_infinite_time_is_the_nngp_posterior(reg):
    train, cross, test = _random_blocks(seed=2)
    y = np.linspace(-1, 1, 6)
    gd = predict_from_kernels(train, cross, y, test, kernel="nngp", diag_reg=reg)
    post = predict_from_kernels(train, cross, y, test, kernel="nngp", method="bayesian", diag_reg=reg)
    assert _rel(gd["mean"].values[0], post["mean"].values) <= tol("predict_reference")
    assert _rel(gd["covariance"].values[0], post["covariance"].values) <= tol("predict_reference")
    k_r = train["nngp"] + reg * np.trace(train["nngp"]) / 6 * np.eye(6)
    gp_cov = test["nngp"] - cross["nngp"] @ np.linalg.solve(k_r, cross["nngp"].T)
    assert _rel(post["covariance"].values, gp_cov) <= tol("predict_reference")


# ---------------------------------------------------------------------- separately written references
def _expm_reference(train, cross, test, y, t, lr, reg, kernel):
    """Lee et al. Eq. 16 with scipy.linalg.expm and solve, one time at a time (neural-tangents'
    diag_reg convention: the NNGP prior block is regularised only with NNGP dynamics)."""
    n, k = y.shape
    th_xx, th_tx = train[kernel], cross[kernel]
    th_r = th_xx + reg * np.trace(th_xx) / n * np.eye(n)
    k_xx = th_r if kernel == "nngp" else train["nngp"]
    e = np.eye(n) - scipy.linalg.expm(-lr * th_r * t / (n * k))
    a = th_tx @ np.linalg.solve(th_r, e)
    cov = test["nngp"] + a @ k_xx @ a.T - a @ cross["nngp"].T - cross["nngp"] @ a.T
    return a @ y, cov


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
@pytest.mark.parametrize("reg", [0.0, 1e-4])
def test_against_matrix_exponential_reference(kernel, reg):
    train, cross, test = _random_blocks(seed=3)
    y = np.random.default_rng(3).standard_normal((6, 3))
    times = np.array([0.0, 0.2, 1.5, 9.0, 60.0])
    p = predict_from_kernels(train, cross, y, test, kernel=kernel, time=times, learning_rate=1.7, diag_reg=reg)
    for i, t in enumerate(times):
        mean, cov = _expm_reference(train, cross, test, y, t, 1.7, reg, kernel)
        assert _rel(p["mean"].values[i], mean) <= tol("predict_reference")
        assert _rel(p["covariance"].values[i], cov) <= tol("predict_reference")


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_discrete_steps_against_explicit_gradient_descent(kernel):
    """Iterate f <- f - (eta / (N k)) Theta(., X) (f(X) - Y) on [X; x] as an affine map of f_0, whose
    mean (f_0 = 0) and covariance (f_0 ~ N(0, K)) are the reference."""
    train, cross, test = _random_blocks(seed=4)
    n, m = 6, 4
    y = np.random.default_rng(4).standard_normal((n, 2))
    lr = 0.9 * 2 * n * 2 / np.linalg.eigvalsh(train[kernel])[-1]  # 0.9 of the stability limit
    steps = [0, 1, 2, 5, 17, 60]
    p = predict_from_kernels(train, cross, y, test, kernel=kernel, steps=steps, learning_rate=lr)
    g = np.vstack([train[kernel], cross[kernel]])  # (n + m, n)
    prior = np.block([[train["nngp"], cross["nngp"].T], [cross["nngp"], test["nngp"]]])
    lin, shift = np.eye(n + m), np.zeros((n + m, 2))
    c = lr / (n * 2)
    for s in range(steps[-1] + 1):
        if s in steps:
            i = steps.index(s)
            scale = max(1.0, np.abs(y).max())
            assert np.max(np.abs(p["mean"].values[i] - shift[n:])) <= tol("predict_reference") * scale
            cov = (lin @ prior @ lin.T)[n:, n:]
            assert _rel(p["covariance"].values[i], cov) <= tol("predict_reference")
        lin, shift = lin - c * g @ lin[:n], shift - c * g @ (shift[:n] - y)


def test_infinite_steps_equal_infinite_time_when_stable():
    train, cross, test = _random_blocks(seed=5)
    y = np.ones(6)
    a = predict_from_kernels(train, cross, y, test, steps=np.inf, learning_rate=1.0)
    b = predict_from_kernels(train, cross, y, test, time=np.inf)
    assert _rel(a["mean"].values, b["mean"].values) <= tol("predict_exact")
    assert _rel(a["covariance"].values, b["covariance"].values) <= tol("predict_exact")


# ---------------------------------------------------------------------- consistency
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_time_array_equals_one_call_per_time(kernel):
    train, cross, test = _random_blocks(seed=6)
    y = np.random.default_rng(6).standard_normal(6)
    times = [0.0, 0.1, 2.5, 30.0, np.inf]
    p = predict_from_kernels(train, cross, y, test, kernel=kernel, time=times, diag_reg=1e-5)
    assert p["time"].values.tolist() == times
    for i, t in enumerate(times):
        one = predict_from_kernels(train, cross, y, test, kernel=kernel, time=t, diag_reg=1e-5)
        assert _rel(p["mean"].values[i], one["mean"].values[0]) <= tol("predict_exact")
        assert _rel(p["covariance"].values[i], one["covariance"].values[0]) <= tol("predict_exact")


def test_outputs_are_independent_with_the_nk_normalisation():
    """With k outputs the loss is 1/(2 N k): output j at rate eta equals a single output at eta / k."""
    train, cross, test = _random_blocks(seed=7)
    y = np.random.default_rng(7).standard_normal((6, 3))
    times = [0.5, 4.0]
    p = predict_from_kernels(train, cross, y, test, time=times, learning_rate=1.2)
    for j in range(3):
        one = predict_from_kernels(train, cross, y[:, j], test, time=times, learning_rate=0.4)
        assert _rel(p["mean"].values[..., j], one["mean"].values[..., 0]) <= tol("predict_exact")
        assert _rel(p["covariance"].values, one["covariance"].values) <= tol("predict_exact")


@pytest.mark.parametrize(("kernel", "method"), [("ntk", "gradient_descent"), ("nngp", "gradient_descent"),
                                                ("ntk", "bayesian"), ("nngp", "bayesian")])
def test_marginal_variance_is_the_covariance_diagonal(kernel, method):
    train, cross, test = _random_blocks(seed=8)
    y = np.arange(6.0)
    times = {"time": [0.3, 5.0, np.inf]} if method == "gradient_descent" else {}
    full = predict_from_kernels(train, cross, y, test, kernel=kernel, method=method, diag_reg=1e-4, **times)
    diag_test = {g: np.diag(v) for g, v in test.items()}
    marg = predict_from_kernels(train, cross, y, diag_test, kernel=kernel, method=method, diag_reg=1e-4,
                                covariance="marginal", **times)
    assert "covariance" not in marg and "test_" not in marg.dims
    assert _rel(marg["variance"].values, np.diagonal(full["covariance"].values, axis1=-2, axis2=-1)) \
        <= tol("predict_exact")
    mean_only = predict_from_kernels(train, cross, y, kernel=kernel, method=method, diag_reg=1e-4,
                                     covariance=False, **times)
    assert set(mean_only.data_vars) == {"mean"}
    assert _rel(mean_only["mean"].values, full["mean"].values) <= tol("predict_exact")


def test_predict_equals_predict_from_kernels_and_marginal_in_chunks():
    """predict computes ntktheory.kernels blocks and calls predict_from_kernels; the marginal
    variance uses the test-test diagonal in chunks of 256 (300 test points: two chunks)."""
    rng = np.random.default_rng(9)
    x, xt = rng.standard_normal((10, 3)), rng.standard_normal((300, 3))
    y = np.cos(x[:, 0])
    net = dict(activation="erf", depth=2, sigma_w=1.3, sigma_b=0.2)
    p = predict(x, y, xt, time=[1.0, np.inf], diag_reg=1e-6, **net)
    q = predict_from_kernels(ntktheory.kernels(x, **net), ntktheory.kernels(xt, x, **net), y,
                             ntktheory.kernels(xt, **net), time=[1.0, np.inf], diag_reg=1e-6)
    xr.testing.assert_allclose(p.drop_attrs(), q.drop_attrs(), rtol=0, atol=0)
    marg = predict(x, y, xt, time=[1.0, np.inf], diag_reg=1e-6, covariance="marginal", **net)
    diag = np.diagonal(p["covariance"].values, axis1=1, axis2=2)
    assert _rel(marg["variance"].values, diag) <= tol("predict_exact")
    for key in ("activation", "depth", "sigma_w", "sigma_b", "parameterization"):
        assert marg.attrs[key] == p.attrs[key] == ntktheory.kernels(x, **net).attrs[key]


def test_kernels_dataset_from_all_depths_selected_by_depth():
    rng = np.random.default_rng(10)
    x_all = rng.standard_normal((9, 4))
    ds = ntktheory.kernels(x_all, activation="erf", depth=3, all_depths=True)
    blocks = [ds.isel(x1=slice(0, 6), x2=slice(0, 6)), ds.isel(x1=slice(6, 9), x2=slice(0, 6)),
              ds.isel(x1=slice(6, 9), x2=slice(6, 9))]
    y = np.sin(x_all[:6, 0])
    p = predict_from_kernels(*[b.sel(depth=2) for b in blocks[:2]], y, blocks[2].sel(depth=2), time=[3.0])
    q = predict(x_all[:6], y, x_all[6:], activation="erf", depth=2, time=[3.0])
    assert _rel(p["mean"].values, q["mean"].values) <= tol("kernel_paths")
    assert _rel(p["covariance"].values, q["covariance"].values) <= tol("kernel_paths")
    assert p.attrs["depth"] == 2  # the selected depth, not the pass's deepest


def test_dataset_layout_attrs_and_netcdf_roundtrip(tmp_path):
    rng = np.random.default_rng(11)
    x, xt = rng.standard_normal((5, 3)), rng.standard_normal((3, 3))
    p = predict(x, np.stack([x[:, 0], x[:, 1]], axis=1), xt, time=[0.0, 2.0, np.inf], learning_rate=0.5,
                diag_reg=1e-3, activation="relu", depth=1)
    assert p["mean"].dims == ("time", "test", "output") and p["mean"].shape == (3, 3, 2)
    assert p["covariance"].dims == ("time", "test", "test_") and p["covariance"].shape == (3, 3, 3)
    a = p.attrs
    assert "1/(2 N k)" in a["conventions"] and a["kernel_conventions"] == ntktheory._kernels.CONVENTIONS
    assert a["ntkgap_version"] == ntktheory.__version__ and a["creation_time"]
    assert (a["kernel"], a["method"], a["time_mode"], a["covariance"]) == ("ntk", "gradient_descent", "continuous",
                                                                           "full")
    assert (a["learning_rate"], a["diag_reg"], a["diag_reg_absolute"]) == (0.5, 1e-3, 0)
    th = ntktheory.kernels(x, activation="relu", depth=1).ntk.values
    assert a["diag_reg_value"] == pytest.approx(1e-3 * np.trace(th) / 5, rel=tol("diag_reg_value"))
    assert (a["n_train"], a["n_test"], a["n_outputs"]) == (5, 3, 2)
    assert a["solver"] == "eigh" and a["clipped_eigenvalues"] >= 0 and np.isfinite(a["condition_number"])
    assert (a["activation"], a["depth"]) == ("relu", 1)
    p.to_netcdf(tmp_path / "p.nc")
    back = xr.open_dataset(tmp_path / "p.nc")
    xr.testing.assert_identical(back.load(), p)
    bayes = predict(x, x[:, 0], xt, method="bayesian", kernel="nngp", covariance="marginal", activation="relu",
                    depth=1, diag_reg=1e-2, diag_reg_absolute=True)
    assert bayes["mean"].dims == ("test", "output") and bayes["variance"].dims == ("test",)
    assert bayes.attrs["solver"] == "cholesky" and bayes.attrs["diag_reg_value"] == 1e-2
    bayes.to_netcdf(tmp_path / "b.nc")


# ---------------------------------------------------------------------- numerics: warnings, clipping
def _catch_all():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx


def test_ill_conditioned_kernel_warns_and_stays_finite():
    """Duplicate training points: a singular NTK. t = inf warns (condition number, diag_reg) and
    returns finite numbers; finite times and diag_reg do not warn."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 3))
    x = np.vstack([x, x[:2]])
    y = np.concatenate([np.sin(x[:6, 0]), np.sin(x[:2, 0])])
    xt = rng.standard_normal((3, 3))
    with pytest.warns(KernelConditionWarning, match=r"condition number .* pass `diag_reg`"):
        p = predict(x, y, xt, activation="relu", depth=2)
    assert np.all(np.isfinite(p["mean"])) and np.all(np.isfinite(p["covariance"]))
    with pytest.warns(KernelConditionWarning, match=r"condition number .*`diag_reg`"):  # Cholesky fails or is poor
        post = predict(x, y, xt, method="bayesian", activation="relu", depth=2)
    assert np.all(np.isfinite(post["mean"])) and np.all(np.isfinite(post["covariance"]))
    ctx = _catch_all()
    try:
        predict(x, y, xt, time=[1.0, 100.0], activation="relu", depth=2)
        reg = predict(x, y, xt, diag_reg=1e-6, activation="relu", depth=2)
        predict(x, y, xt, method="bayesian", diag_reg=1e-6, activation="relu", depth=2)
    finally:
        ctx.__exit__(None, None, None)
    assert reg.attrs["condition_number"] < 1e12
    # the duplicated points' training targets agree, so the regularised fit is close to the singular one
    assert _rel(reg["mean"].values, p["mean"].values) <= tol("duplicated_points")


def test_negative_rounding_eigenvalue_is_clipped_and_reported():
    rng = np.random.default_rng(13)
    v, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    lam = np.array([-1e-14, 1.0, 2.0, 3.0])
    k = v @ np.diag(lam) @ v.T
    y = np.array([1.0, 0.0, -1.0, 2.0])
    ctx = _catch_all()
    try:
        p = predict_from_kernels(k, k[:2], y, k[:2, :2], kernel="nngp", time=[1.0, 5.0])
    finally:
        ctx.__exit__(None, None, None)
    assert p.attrs["clipped_eigenvalues"] == 1
    assert -3e-14 < p.attrs["most_negative_eigenvalue"] < 0  # -1e-14 up to the rounding of building k
    assert math.isinf(p.attrs["condition_number"])
    # the clipped mode is dropped: the prediction is that of the kernel with the mode removed
    k0 = v @ np.diag(np.r_[0.0, lam[1:]]) @ v.T
    q = predict_from_kernels(k0, k0[:2], y, k0[:2, :2], kernel="nngp", time=[1.0, 5.0])
    assert _rel(p["mean"].values, q["mean"].values) <= tol("predict_exact")


def test_indefinite_kernel_warns():
    k = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with pytest.warns(KernelConditionWarning, match="not positive semi-definite beyond rounding"):
        p = predict_from_kernels(k, k, [1.0, 1.0], k, kernel="nngp", time=[1.0])
    assert p.attrs["clipped_eigenvalues"] == 1 and p.attrs["most_negative_eigenvalue"] == pytest.approx(-1.0)


def test_bayesian_falls_back_when_cholesky_fails():
    k = np.ones((3, 3))  # rank one: Cholesky fails
    with pytest.warns(KernelConditionWarning, match="Cholesky failed"):
        p = predict_from_kernels(k, k[:1], [1.0, 1.0, 1.0], k[:1, :1], kernel="nngp", method="bayesian")
    assert p.attrs["solver"] == "eigh (cholesky failed)"
    assert p["mean"].values[0, 0] == pytest.approx(1.0, rel=tol("predict_exact"))  # the constant function
    assert abs(float(p["covariance"][0, 0])) <= tol("predict_exact")


def test_discrete_steps_beyond_the_stability_limit_warn():
    k = np.diag([1.0, 4.0])
    with pytest.warns(RuntimeWarning, match="stability limit"):
        p = predict_from_kernels(k, k, [1.0, 1.0], kernel="nngp", steps=[1, 50], learning_rate=2.0, covariance=False)
    assert abs(float(p["mean"][-1, 1, 0]) - 1.0) > 1e3  # 1 - (1 - 2 * 4 / 2)^50 = 1 - 3^50


# ---------------------------------------------------------------------- errors
_B = {"ntk": np.eye(2), "nngp": np.eye(2)}


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((_B, _B, [1.0, 2.0], _B), {"kernel": "cnn"}, ValueError, r"`kernel` must be one of 'ntk', 'nngp'; got 'cnn'"),
        ((_B, _B, [1.0, 2.0], _B), {"method": "sgd"}, ValueError, r"`method` must be one of .*'bayesian'; got 'sgd'"),
        ((_B, _B, [1.0, 2.0], _B), {"time": -1.0}, ValueError, r"`time` must be >= 0 .*got -1.0"),
        ((_B, _B, [1.0, 2.0], _B), {"time": [1.0, np.nan]}, ValueError, r"`time` must be >= 0 .*got nan"),
        ((_B, _B, [1.0, 2.0], _B), {"time": [[1.0]]}, ValueError, r"`time` must be a scalar or 1-D; got shape"),
        ((_B, _B, [1.0, 2.0], _B), {"time": []}, ValueError, r"`time` must not be empty"),
        ((_B, _B, [1.0, 2.0], _B), {"time": "long"}, TypeError, r"`time` must be a number or a 1-D array"),
        ((_B, _B, [1.0, 2.0], _B), {"steps": [-2]}, ValueError, r"`steps` must be >= 0"),
        ((_B, _B, [1.0, 2.0], _B), {"steps": [1.5]}, ValueError, r"`steps` must be whole numbers .*got 1.5"),
        ((_B, _B, [1.0, 2.0], _B), {"time": 1.0, "steps": 1}, ValueError, r"at most one of `time` .* and `steps`"),
        ((_B, _B, [1.0, 2.0], _B), {"method": "bayesian", "time": 3.0}, ValueError,
         r"`time` applies to method='gradient_descent' only"),
        ((_B, _B, [1.0, 2.0], _B), {"learning_rate": 0.0}, ValueError, r"`learning_rate` must be > 0, got 0.0"),
        ((_B, _B, [1.0, 2.0], _B), {"diag_reg": -1e-3}, ValueError, r"`diag_reg` must be >= 0, got -0.001"),
        ((_B, _B, [1.0, 2.0], _B), {"diag_reg_absolute": "yes"}, TypeError, r"`diag_reg_absolute` must be True"),
        ((_B, _B, [1.0, 2.0], _B), {"covariance": "diagonal"}, ValueError,
         r"`covariance` must be True .*'marginal' .*False .*got 'diagonal'"),
        ((_B, _B, [1.0, 2.0, 3.0], _B), {}, ValueError, r"`y_train` must have shape \(2,\) or \(2, k\).*\(3,\)"),
        ((_B, _B, [1.0, np.inf], _B), {}, ValueError, r"`y_train` must be finite"),
        ((_B, {"ntk": np.ones((3, 4)), "nngp": np.ones((3, 4))}, [1.0, 2.0]), {"covariance": False}, ValueError,
         r"`k_test_train` \(ntk\) must have shape \('\?', 2\)"),
        ((np.ones((2, 3)), np.ones((1, 3)), [1.0, 2.0]), {"covariance": False}, ValueError,
         r"`k_train_train` \(ntk\) must be square"),
        ((_B, _B, [1.0, 2.0], {"nngp": np.eye(3)}), {}, ValueError, r"`k_test_test` \(nngp\) must have shape \(2, 2\)"),
        ((_B, _B, [1.0, 2.0]), {}, ValueError, r"`k_test_test` is needed for the covariance"),
        ((np.eye(2), np.eye(2), [1.0, 2.0], np.eye(2)), {}, TypeError,
         r"`k_train_train` is a plain array, but the covariance of kernel='ntk' gradient descent needs both"),
        (({"ntk": np.eye(2)}, _B, [1.0, 2.0], _B), {}, ValueError, r"`k_train_train` has no 'nngp' entry"),
        ((_B, _B, [1.0, 2.0], {"nngp": [[1.0, np.nan], [0.0, 1.0]]}), {}, ValueError,
         r"`k_test_test` \(nngp\) must be finite"),
        (("kernel", _B, [1.0, 2.0]), {"covariance": False}, TypeError, r"`k_train_train` must be an xarray.Dataset"),
        ((object(), _B, [1.0, 2.0]), {"covariance": False}, TypeError,
         r"`k_train_train` must be an xarray.Dataset from ntktheory.kernels, a mapping"),
    ],
)
def test_predict_from_kernels_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        predict_from_kernels(*args, **kwargs)


def test_dataset_block_errors():
    x = np.random.default_rng(14).standard_normal((4, 3))
    deep = ntktheory.kernels(x, activation="relu", depth=2, all_depths=True)
    with pytest.raises(ValueError, match=r"`k_train_train`\['ntk'\] must be 2-D .*ds.sel\(depth=3\)"):
        predict_from_kernels(deep, deep, np.ones(4), covariance=False)
    one = ntktheory.kernels(x, activation="relu", depth=2)
    other = ntktheory.kernels(x, activation="relu", depth=3)
    with pytest.raises(ValueError, match=r"`k_train_train` and `k_test_train` come from different networks: attr "
                                         r"'depth' is 2 in one and 3"):
        predict_from_kernels(one, other, np.ones(4), covariance=False)
    with pytest.raises(ValueError, match=r"`k_train_train` has no 'nngp' variable"):
        predict_from_kernels(one[["ntk"]], one, np.ones(4), one)


def test_predict_errors():
    x = np.random.default_rng(15).standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"`y_train` must have shape \(4,\)"):
        predict(x, np.ones(5), x, activation="relu")
    with pytest.raises(TypeError, match=r"`x_test` must be an array of test inputs; got None"):
        predict(x, np.ones(4), None, activation="relu")
    with pytest.raises(ValueError, match=r"`depth` must be an integer >= 0"):  # **network reaches kernels
        predict(x, np.ones(4), x, depth=-1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'not_a_kernel_option'"):
        predict(x, np.ones(4), x, not_a_kernel_option=1)
    with pytest.raises(ValueError, match=r"`kernel` must be one of"):
        predict(x, np.ones(4), x, kernel="ntkgp")
