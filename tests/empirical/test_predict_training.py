"""ntktheory.predict against networks trained by empirical.train.

* The linearised twin (:class:`empirical.Linearized`, trained alongside by ``empirical.train``) is
  exactly kernel gradient descent with its own empirical NTK from its own initial function:
  ``predict_from_kernels`` with that NTK, targets Y - f_0(X) and ``steps`` reproduces it to
  rounding (k = 1; for k = 2 outputs the full (N k) x (N k) NTK, flattened to N k "points" of one
  output, which neural-tangents calls trace_axes=()).
* An ensemble of finite networks (erf, depth 1, NTK parameterisation) trained by full-batch GD
  approaches the infinite-width prediction as the width grows. Each network's deviation d from
  the prediction driven by its own f_0 (g = f_0(x) + Theta(x, X) Theta^-1 E (Y - f_0(X)), whose
  mean and covariance over initialisations are exactly ``predict``'s at depth 1, where f_0 is
  exactly Gaussian-covariance at every width) shrinks like width^-1/2 (Lee et al. 2019, Thm. 2.1);
  the ensemble's mean and variance, estimated with g as a control variate, approach the
  prediction at a fitted rate in a band around -1/2; and at the largest width the plain ensemble
  mean and variance agree with the prediction within Monte Carlo error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)

import empirical
import ntktheory


def _data(n=8, m=6, d=4, k=1, seed=0):
    rng = np.random.default_rng(seed)
    x, xt = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    y = np.stack([np.sin(x[:, 0]), np.cos(x[:, 1])][:k], axis=1)
    return x, y, xt


@pytest.mark.parametrize("k", [1, 2])
def test_linearized_twin_is_predict_with_its_empirical_ntk(k):
    x, y, xt = _data(k=k)
    n, m = len(x), len(xt)
    net = empirical.MLP(x.shape[1], width=64, depth=2, activation="tanh", sigma_w=1.4, sigma_b=0.1, out_features=k,
                        seed=3, device="cpu")
    steps = [0, 1, 7, 30]
    run = empirical.train(net, x, y, steps=30, lr_factor=0.6, x_test=xt, snapshot_steps=steps, measure_ntk=False,
                          linearized=True)
    lr = run.attrs["lr"]
    full = empirical.ntk(net, np.vstack([x, xt]), x, outputs="full").numpy()  # (N + M, N, k, k) at init
    theta = full.transpose(0, 2, 1, 3).reshape((n + m) * k, n * k)  # rows (point, output), cols (point, output)
    f0_train = run["output_train"].values[0].reshape(-1)
    f0_test = run["output_test"].values[0].reshape(-1)
    # empirical.train's loss (1/2N) sum |f - y|^2 is predict's 1/(2 N' k') with N' = N k points, k' = 1 output,
    # and rate eta / N = eta' / (N k): eta' = k eta
    pred = ntktheory.predict_from_kernels(theta[: n * k], theta[n * k :], y.reshape(-1) - f0_train, steps=steps,
                                          learning_rate=k * lr, covariance=False)
    want = pred["mean"].values[..., 0] + f0_test
    got = run["output_test_linearized"].values.reshape(len(steps), -1)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol("linearized_vs_predict"))


def _ensemble_errors(x, y, xt, k_train, k_cross, widths, seeds, steps, lr, var):
    """Per width: RMS deviation of f_t from its own-f_0 prediction g, control-variate errors of the
    ensemble mean and variance (relative); and the last width's trained test outputs (seeds, M)."""
    deviation, mean_err, var_err = [], [], []
    for w in widths:
        f0x, f0t, ft = [], [], []
        for s in range(seeds):
            model = empirical.MLP(x.shape[1], width=w, depth=1, activation="erf", sigma_w=1.5, sigma_b=0.1, seed=s,
                                  device="cpu")
            run = empirical.train(model, x, y, steps=steps, lr=lr, x_test=xt, snapshot_steps=[0, steps],
                                  measure_ntk=False, linearized=False, inplace=True)
            assert not run["diverged"].any()
            f0x.append(run["output_train"].values[0, :, 0])
            f0t.append(run["output_test"].values[0, :, 0])
            ft.append(run["output_test"].values[-1, :, 0])
        f0x, f0t, ft = np.array(f0x), np.array(f0t), np.array(ft)
        # each network's own infinite-width prediction: S outputs at once (rate S eta for the 1/(2 N S) loss)
        g = ntktheory.predict_from_kernels(k_train, k_cross, y - f0x.T, steps=steps, learning_rate=lr * seeds,
                                           covariance=False)["mean"].values[0].T + f0t
        deviation.append(math.sqrt(np.mean((ft - g) ** 2) / np.mean(var)))
        mean_err.append(np.linalg.norm((ft - g).mean(0)) / math.sqrt(np.sum(var)))  # E[g] = mu exactly
        var_err.append(np.mean(np.abs(ft.var(0, ddof=1) - g.var(0, ddof=1))) / np.mean(var))  # Var[g] = var
    return deviation, mean_err, var_err, ft


def test_trained_ensemble_approaches_the_prediction_with_width():
    x, y, xt = _data()
    net = dict(activation="erf", depth=1, sigma_w=1.5, sigma_b=0.1)
    k_train, k_cross = ntktheory.kernels(x, **net), ntktheory.kernels(xt, x, **net)
    k_test = ntktheory.kernels(xt, **net)
    n, steps, seeds = len(x), 30, 24
    lr = 0.5 * 2 * n / np.linalg.eigvalsh(k_train.ntk.values)[-1]  # half the infinite-width stability limit
    p = ntktheory.predict_from_kernels(k_train, k_cross, y, k_test, steps=steps, learning_rate=lr)
    mu, var = p["mean"].values[0, :, 0], np.diagonal(p["covariance"].values[0])
    widths = [64, 128, 256, 512, 1024, 2048, 4096]
    # Dozens of tiny networks: threads only add overhead. Set after ntktheory's numba calls, whose
    # OpenMP threading layer resets the OpenMP thread count that torch shares; restored at the end.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        deviation, mean_err, var_err, ft = _ensemble_errors(x, y, xt, k_train, k_cross, widths, seeds, steps, lr, var)
    finally:
        torch.set_num_threads(threads)
    logw = np.log(widths)
    for name, values in (("deviation", deviation), ("mean", mean_err), ("variance", var_err)):
        slope = scipy.stats.linregress(logw, np.log(values)).slope
        lo, hi = tol(f"slope_band_{name}")
        assert lo <= slope <= hi, (name, slope, values)
    z = np.abs(ft.mean(0) - mu) / np.sqrt(var / seeds)
    assert np.max(z) <= tol("mc_z_max")
    # sample variance of S draws: relative standard error sqrt(2 / (S - 1)) ~ 0.25
    assert np.max(np.abs(ft.var(0, ddof=1) / var - 1)) <= tol("mc_z_max") * math.sqrt(2 / (seeds - 1))
    assert deviation[-1] < 0.1
