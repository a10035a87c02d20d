"""ntktheory.kernels: reference values, exact cases, Monte Carlo of wide networks, identities, errors.

Independent references: THEORY.md's relu values; Isserlis moments of polynomial activations
written here; a numpy Monte Carlo of finite random networks (forward pass and backpropagated
empirical NTK written here); algebraic identities (standard vs NTK parameterisation,
all_depths, cross-kernel blocks); symmetry and positive semi-definiteness. Tolerances:
tests/ntktheory/tolerances_ntktheory.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory.activations import get_activation


def _pair_inputs(d: int = 16) -> np.ndarray:
    """Two inputs with |x|^2 = d and x.x'/d = 0.5 (THEORY.md's reference setting)."""
    a = np.zeros(d)
    a[0] = math.sqrt(d)
    b = np.zeros(d)
    b[0] = math.sqrt(d) / 2
    b[1] = math.sqrt(3 * d / 4)
    return np.stack([a, b])


@pytest.mark.parametrize(
    ("depth", "nngp", "ntk"),
    [(1, 1.217995562088, 1.884662228755), (2, 1.367811301797, 2.702959122247), (3, 1.476256384602, 3.475689358431)],
)
@pytest.mark.parametrize("activation", ["relu", "x*Heaviside(x, 0) + 0*x"])
def test_relu_reference_values(depth, nngp, ntk, activation):
    """Closed form (fused path) and the quadrature path of the same function (an expression)."""
    ds = ntktheory.kernels(_pair_inputs(), activation=activation, depth=depth, sigma_w=math.sqrt(2.0))
    assert abs(float(ds.nngp[0, 1]) - nngp) <= tol("reference_values") * nngp
    assert abs(float(ds.ntk[0, 1]) - ntk) <= tol("reference_values") * ntk
    assert abs(float(ds.nngp[0, 0]) - 2.0) <= tol("reference_values") * 2
    assert abs(float(ds.ntk[0, 0]) - 2.0 * (depth + 1)) <= tol("reference_values") * 2 * (depth + 1)


def _polynomial_recursion(power: int, x: np.ndarray, depth: int, sw: float, sb: float):
    """NNGP/NTK for phi = x^power from Isserlis' theorem, written independently of ntktheory."""
    d = x.shape[1]
    sigma = sw**2 * x @ x.T / d + sb**2
    theta = sigma.copy()
    for _ in range(depth):
        var = np.diag(sigma)
        q1, q2, q12 = var[:, None], var[None, :], sigma
        if power == 1:
            pp, dd = q12, np.ones_like(q12)
        elif power == 2:
            pp, dd = q1 * q2 + 2 * q12**2, 4 * q12
        else:
            pp, dd = 9 * q1 * q2 * q12 + 6 * q12**3, 9 * (q1 * q2 + 2 * q12**2)
        sigma = sw**2 * pp + sb**2
        theta = sigma + sw**2 * dd * theta
    return sigma, theta


@pytest.mark.parametrize("power", [1, 2, 3])
def test_polynomial_activations_exact(power):
    rng = np.random.default_rng(power)
    x = rng.standard_normal((6, 4)) * 0.6
    x2 = rng.standard_normal((3, 4)) * 0.6
    expr = {1: "x", 2: "x**2", 3: "x**3"}[power]
    sw, sb, depth = 0.9, 0.2, 2
    ds = ntktheory.kernels(x, activation=expr, depth=depth, sigma_w=sw, sigma_b=sb)
    sigma, theta = _polynomial_recursion(power, x, depth, sw, sb)
    np.testing.assert_allclose(ds.nngp.values, sigma, rtol=tol("polynomial") * 10, atol=0)
    np.testing.assert_allclose(ds.ntk.values, theta, rtol=tol("polynomial") * 10, atol=0)
    cross = ntktheory.kernels(x, x2, activation=expr, depth=depth, sigma_w=sw, sigma_b=sb)
    sigma_all, theta_all = _polynomial_recursion(power, np.vstack([x, x2]), depth, sw, sb)
    np.testing.assert_allclose(cross.nngp.values, sigma_all[:6, 6:], rtol=tol("polynomial") * 10, atol=0)
    np.testing.assert_allclose(cross.ntk.values, theta_all[:6, 6:], rtol=tol("polynomial") * 10, atol=0)


def _random_network_kernels(x, act, depth, sw, sb, width, outputs, rng):
    """One random network (NTK parameterisation, `outputs` readout units): the means over readout
    units of f(x) f(x') and of the empirical NTK in both parameterisations (numpy backprop)."""
    acts, pres, weights = [x], [], []
    for _ in range(depth):
        fan = acts[-1].shape[1]
        w = rng.standard_normal((fan, width))
        h = sw / math.sqrt(fan) * acts[-1] @ w + sb * rng.standard_normal(width)
        weights.append(w)
        pres.append(h)
        acts.append(act.phi(h))
    fan = acts[-1].shape[1]
    w_out = rng.standard_normal((fan, outputs))
    f = sw / math.sqrt(fan) * acts[-1] @ w_out + sb * rng.standard_normal(outputs)
    nngp = f @ f.T / outputs
    gram = acts[-1] @ acts[-1].T
    t_ntk = sw**2 / fan * gram + sb**2  # readout weights and bias (delta = 1)
    t_std = gram + 1.0  # standard: gradients w.r.t. W_std = sigma_w W / sqrt(fan), b_std = sigma_b b
    delta = act.dphi(pres[-1])[:, None, :] * (sw / math.sqrt(fan) * w_out.T)[None]  # (N, outputs, n)
    for layer in reversed(range(depth)):
        dd = np.einsum("ikn,jkn->ij", delta, delta) / outputs
        fan = acts[layer].shape[1]
        gram = acts[layer] @ acts[layer].T
        t_ntk += dd * (sw**2 / fan * gram + sb**2)
        t_std += dd * (gram + 1.0)
        if layer > 0:
            delta = act.dphi(pres[layer - 1])[:, None, :] * (sw / math.sqrt(fan) * delta @ weights[layer].T)
    return nngp, t_ntk, t_std


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_monte_carlo_wide_network(activation):
    """NNGP and NTK (both parameterisations) of width-2048 networks, 8 draws x 128 readout units.

    Tolerance: 4 standard errors of the per-draw means plus 2/width relative (the O(1/n)
    finite-width bias)."""
    rng = np.random.default_rng(11)
    act = get_activation(activation)
    x = rng.standard_normal((3, 8))
    x[2] = 0.5 * x[0] + 0.2 * x[1]
    depth, sw, sb, width, outputs, draws = 2, 1.4, 0.3, 2048, 128, 8
    samples = [_random_network_kernels(x, act, depth, sw, sb, width, outputs, rng) for _ in range(draws)]
    theory_ntk = ntktheory.kernels(x, activation=activation, depth=depth, sigma_w=sw, sigma_b=sb)
    theory_std = ntktheory.kernels(x, activation=activation, depth=depth, sigma_w=sw, sigma_b=sb,
                                   parameterization="standard", width=width)
    for k, theory in ((0, theory_ntk.nngp), (1, theory_ntk.ntk), (2, theory_std.ntk)):
        values = np.stack([smp[k] for smp in samples])
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / math.sqrt(draws)
        allowed = tol("mc_standard_errors") * se + 2.0 / width * np.abs(theory.values)
        assert np.all(np.abs(mean - theory.values) <= allowed), (k, mean, theory.values, se)
    np.testing.assert_allclose(theory_std.nngp.values, theory_ntk.nngp.values, rtol=tol("same_arithmetic"))


def test_standard_equals_scaled_ntk_when_fans_match():
    """With d = n and sigma_b^2 = sigma_w^2 / n every layer's gradients scale by n / sigma_w^2
    (weights: fan_in / sigma_w^2; biases: 1 / sigma_b^2), so Theta_std = (n / sigma_w^2) Theta_ntk."""
    rng = np.random.default_rng(5)
    n, sw = 6, 1.3
    x = rng.standard_normal((5, n))
    for activation in ("relu", "tanh", "gelu"):
        kw = {"activation": activation, "depth": 3, "sigma_w": sw, "sigma_b": sw / math.sqrt(n)}
        std = ntktheory.kernels(x, parameterization="standard", width=n, **kw)
        ntk = ntktheory.kernels(x, **kw)
        np.testing.assert_allclose(std.ntk.values, n / sw**2 * ntk.ntk.values, rtol=tol("exact_identity"))
        np.testing.assert_allclose(std.nngp.values, ntk.nngp.values, rtol=tol("exact_identity"))
    lin = ntktheory.kernels(x, depth=0, parameterization="standard", width=3, sigma_w=sw)
    np.testing.assert_allclose(lin.ntk.values, x @ x.T + 1.0, rtol=tol("exact_identity"))


@pytest.mark.parametrize("activation", ["tanh", "relu", "erf"])
def test_all_depths_cross_symmetry_psd(activation):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 5))
    x[4] = 0.0  # a zero input (q = 0 with sigma_b = 0)
    x[5] = x[6] * 1.0000001  # a near-duplicate (|c| ~ 1)
    kw = {"activation": activation, "sigma_w": 1.6, "sigma_b": 0.0}
    every = ntktheory.kernels(x, depth=4, all_depths=True, **kw)
    assert every.ntk.dims == ("depth", "x1", "x2")
    assert list(every.depth.values) == [1, 2, 3, 4]
    for depth in (1, 4):
        single = ntktheory.kernels(x, depth=depth, **kw)
        for var in ("nngp", "ntk"):
            np.testing.assert_allclose(every[var].sel(depth=depth).values, single[var].values,
                                       rtol=tol("exact_identity"), atol=0)
            k = single[var].values
            np.testing.assert_array_equal(k, k.T)
            eig = np.linalg.eigvalsh(k)
            assert eig.min() >= -tol("psd") * eig.max()
        cross = ntktheory.kernels(x[:7], x[7:], depth=depth, **kw)
        for var in ("nngp", "ntk"):
            scale = float(np.abs(single[var]).max())
            np.testing.assert_allclose(cross[var].values, single[var].values[:7, 7:], rtol=tol("kernel_paths"),
                                       atol=tol("kernel_paths") * scale)


def test_zero_input_tanh():
    """x = 0 with sigma_b = 0: u = 0 exactly, tanh(0) = 0, so every NNGP entry with x is 0 and
    the NTK entries are those of the linear part, 0 too; tanh'(0) = 1 keeps the diagonal finite."""
    x = np.array([[0.0, 0.0], [1.0, 2.0]])
    ds = ntktheory.kernels(x, activation="tanh", depth=3, sigma_w=1.5)
    assert np.all(ds.nngp.values[0] == 0.0) and np.all(ds.ntk.values[0] == 0.0)
    assert np.all(np.isfinite(ds.ntk.values))


def test_dataset_attrs_and_netcdf_roundtrip(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 3))
    ds = ntktheory.kernels(x, activation="tanh", depth=2, sigma_w=1.5, sigma_b=0.1)
    for key in ("conventions", "ntkgap_version", "creation_time", "config", "activation", "depth", "sigma_w", "sigma_b",
                "parameterization", "width"):
        assert key in ds.attrs
    assert "NTK parameterisation" in ds.attrs["conventions"]
    layers = json.loads(ds.attrs["quadrature"])
    assert len(layers) == 2 and layers[0]["method"] == "quadrature"
    assert ds.nngp.dtype == np.float64
    path = tmp_path / "k.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path)
    np.testing.assert_array_equal(back.ntk.values, ds.ntk.values)
    back.close()


X = np.ones((3, 2))


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((np.ones(3),), {}, ValueError, r"`x1` must be 2-D with shape \(n_points, n_features\); got shape \(3,\)"),
        ((np.array([[1.0, np.nan]]),), {}, ValueError, r"`x1` must be finite; entry \(0, 1\) is .*nan"),
        ((X, np.ones((2, 3))), {}, ValueError, r"`x2` has 3 features but the other input has 2"),
        ((X,), {"sigma_w": 0.0}, ValueError, r"`sigma_w` must be > 0, got 0.0"),
        ((X,), {"sigma_b": -0.1}, ValueError, r"`sigma_b` must be >= 0, got -0.1"),
        ((X,), {"depth": -1}, ValueError, r"`depth` must be an integer >= 0, got -1"),
        ((X,), {"depth": 2.0}, TypeError, r"`depth` must be an integer, got 2.0"),
        ((X,), {"parameterization": "mup"}, ValueError,
         r"`parameterization` must be one of 'ntk', 'standard'; got 'mup'"),
        ((X,), {"parameterization": "standard"}, ValueError, r"`width` is required with parameterization='standard'"),
        ((X,), {"parameterization": "standard", "width": 0}, ValueError, r"`width` must be an integer >= 1, got 0"),
        ((X,), {"width": 100}, ValueError, r"`width` must be None with parameterization='ntk'.*got width=100"),
        ((X,), {"depth": 0, "all_depths": True}, ValueError, r"`all_depths=True` returns depths 1..depth"),
        ((X,), {"all_depths": "yes"}, TypeError, r"`all_depths` must be True or False, got 'yes'"),
        ((X,), {"activation": 3}, TypeError, r"`activation` must be a registry name"),
        ((X,), {"activation": "tanh(y)"}, ValueError, r"free symbol\(s\) y besides x"),
    ],
)
def test_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ntktheory.kernels(*args, **kwargs)


def test_one_thread_and_all_threads_give_the_same_kernel():
    """Small kernels run on one thread (ntktheory._threads); the parallel loops give the same
    numbers up to the order of floating-point sums. Run in a fresh process with two numba threads
    (the test workers have one)."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, numba, ntktheory\n"
        "from ntktheory import _threads\n"
        "assert numba.get_num_threads() == 2\n"
        "x = np.random.default_rng(3).standard_normal((40, 6))\n"
        "kw = dict(activation='tanh', depth=3, sigma_w=1.4, sigma_b=0.2)\n"
        "serial = ntktheory.kernels(x, **kw)\n"
        "_threads.SERIAL_BELOW = 0\n"
        "parallel = ntktheory.kernels(x, **kw)\n"
        "for name in ('nngp', 'ntk'):\n"
        f"    np.testing.assert_allclose(parallel[name], serial[name], rtol={tol('reordered_arithmetic')!r}, atol=0)\n"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
