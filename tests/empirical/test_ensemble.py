"""Ensembles over seeds, and Monte Carlo convergence of empirical kernels to the analytic ones.

Statistical tolerance: for every kernel entry, z = (ensemble mean - reference) / (standard error of
the mean); the test asserts max |z| over all entries <= 4.5 (tol("mc_z_max"), tests/empirical/tolerances_empirical.py).
With <= 16 entries of roughly Gaussian means that fails by chance with probability < 1e-4. At
depth 1 the expectation of the finite-width kernel equals the infinite-width one exactly (the first
layer's pre-activations are exactly Gaussian), so only noise is tested; at depth 3 the O(1/width)
bias is below the noise at the widths used (width 128, 32 seeds).
"""

import json

import numpy as np
import pytest
import torch
from conftest import reference_kernels
from scipy import stats
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)

import empirical
import ntktheory

X = np.random.default_rng(0).normal(size=(4, 5))


def z_max(mean, sem, reference):
    return float(np.max(np.abs(mean - reference) / np.maximum(sem, 1e-15)))


def test_ensemble_equals_individual_networks():
    ds = empirical.ensemble_kernels(X, width=32, depth=2, activation="tanh", sigma_w=1.3, sigma_b=0.2,
                                    out_features=2, seeds=[5, 2, 9], seed_batch=2, device="cpu")
    for s in (5, 2, 9):
        net = empirical.MLP(5, width=32, depth=2, activation="tanh", sigma_w=1.3, sigma_b=0.2, out_features=2,
                            seed=s, device="cpu")
        atol = tol("same_network_twice")
        assert np.allclose(ds.ntk_empirical.sel(seed=s), empirical.ntk(net, X).numpy(), rtol=0, atol=atol)
        assert np.allclose(ds.nngp_empirical.sel(seed=s), empirical.nngp(net, X).numpy(), rtol=0, atol=atol)
    vals = ds.ntk_empirical.values
    assert np.allclose(ds.ntk_empirical_mean, vals.mean(0))
    assert np.allclose(ds.ntk_empirical_var, vals.var(0, ddof=1))
    assert np.allclose(ds.ntk_empirical_sem, np.sqrt(vals.var(0, ddof=1) / 3))
    assert ds.ntk_empirical.dims == ("seed", "x1", "x2")
    assert json.loads(ds.attrs["seeds"]) == [5, 2, 9]
    assert ds.attrs["width"] == 32 and ds.attrs["device"] == "cpu" and "conventions" in ds.attrs


def test_ensemble_with_x2():
    x2 = X[:2] + 0.5
    ds = empirical.ensemble_kernels(X, x2, width=16, depth=1, activation="relu", seeds=2, device="cpu")
    net = empirical.MLP(5, width=16, depth=1, activation="relu", seed=1, device="cpu")
    assert ds.ntk_empirical.shape == (2, 4, 2)
    assert np.allclose(ds.ntk_empirical.sel(seed=1), empirical.ntk(net, X, x2).numpy(), atol=tol("same_network_twice"))


CASES = [("relu", 1.4, 0.1), ("tanh", 1.5, 0.2), ("erf", 1.2, 0.0), ("x*tanh(x)", 1.0, 0.1)]


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("activation,sigma_w,sigma_b", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("depth,width,seeds", [(1, 64, 64), (3, 128, 32)])
def test_monte_carlo_mean_matches_ntktheory(parameterization, activation, sigma_w, sigma_b, depth, width, seeds):
    ds = empirical.ensemble_kernels(X, width=width, depth=depth, activation=activation, sigma_w=sigma_w,
                                    sigma_b=sigma_b, parameterization=parameterization, seeds=seeds, device="cpu")
    theory = ntktheory.kernels(X, activation=activation, depth=depth, sigma_w=sigma_w, sigma_b=sigma_b,
                               parameterization=parameterization,
                               width=width if parameterization == "standard" else None)
    limit = tol("mc_z_max")
    assert z_max(ds.ntk_empirical_mean.values, ds.ntk_empirical_sem.values, theory["ntk"].values) <= limit
    assert z_max(ds.nngp_empirical_mean.values, ds.nngp_empirical_sem.values, theory["nngp"].values) <= limit
    if activation in ("relu", "erf"):  # a second, independently written reference
        nngp_ref, ntk_ref = reference_kernels(X, None, activation=activation, depth=depth, sigma_w=sigma_w,
                                              sigma_b=sigma_b, parameterization=parameterization, width=width)
        assert np.allclose(theory["ntk"].values, ntk_ref, rtol=tol("theory_vs_reference_recursion"))
        assert np.allclose(theory["nngp"].values, nngp_ref, rtol=tol("theory_vs_reference_recursion"))


def test_monte_carlo_matches_theory_md_reference_values():
    # THEORY.md: relu, sigma_w^2 = 2, sigma_b = 0, |x|^2 = d, x.x'/d = 0.5, one hidden layer.
    x = np.sqrt(2.0) * np.array([[1.0, 0.0], [0.5, np.sqrt(0.75)]])
    ds = empirical.ensemble_kernels(x, width=128, depth=1, activation="relu", sigma_w=np.sqrt(2.0), seeds=64,
                                    device="cpu")
    nngp_ref = np.array([[2.0, 1.217995562088], [1.217995562088, 2.0]])
    ntk_ref = np.array([[4.0, 1.884662228755], [1.884662228755, 4.0]])
    limit = tol("mc_z_max")
    assert z_max(ds.nngp_empirical_mean.values, ds.nngp_empirical_sem.values, nngp_ref) <= limit
    assert z_max(ds.ntk_empirical_mean.values, ds.ntk_empirical_sem.values, ntk_ref) <= limit


def test_fluctuations_around_theory_shrink_like_inverse_sqrt_width():
    # Per-seed RMS deviation from the analytic NTK, relu depth 2: O(1/sqrt(width)) (Hanin & Nica 2019).
    theory = ntktheory.kernels(X, activation="relu", depth=2, sigma_w=1.4, sigma_b=0.1)["ntk"].values
    widths = [32, 128, 512]
    rms = []
    for w in widths:
        ds = empirical.ensemble_kernels(X, width=w, depth=2, activation="relu", sigma_w=1.4, sigma_b=0.1,
                                        seeds=16, device="cpu")
        rms.append(np.sqrt(((ds.ntk_empirical.values - theory) ** 2).mean()))
    slope = stats.linregress(np.log(widths), np.log(rms)).slope
    lo, hi = tol("slope_band_gap")
    assert lo < slope < hi, (rms, slope)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(seeds=1), ValueError, r"`seeds` must be an integer >= 2, got 1"),
        (dict(seeds=[1, 1]), ValueError, r"`seeds` must hold at least two distinct seeds"),
        (dict(seeds="abc"), TypeError, r"`seeds` must be a count \(int >= 2\) or an iterable of ints"),
        (dict(seed_batch=0), ValueError, r"`seed_batch` must be an integer >= 1, got 0"),
        (dict(width=-3), ValueError, r"`width` must be an integer >= 1, got -3"),
    ],
)
def test_ensemble_errors(kwargs, exc, match):
    args = dict(width=8, depth=1, activation="relu", seeds=2, device="cpu") | kwargs
    with pytest.raises(exc, match=match):
        empirical.ensemble_kernels(X, **args)


def test_ensemble_input_error():
    with pytest.raises(ValueError, match=r"`x1` must be 2-D with shape \(n_points, n_features\); got shape \(5,\)"):
        empirical.ensemble_kernels(X[0], width=8, depth=1, activation="relu", device="cpu")


def test_ensemble_float32_dtype_attr():
    ds = empirical.ensemble_kernels(X, width=8, depth=1, activation="relu", seeds=2, dtype=torch.float32,
                                    device="cpu")
    assert ds.attrs["dtype"] == "float32"
