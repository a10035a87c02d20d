"""Shared fixtures for the empirical tests: tolerances by dtype and quantity, and an independent
reference recursion for the infinite-width kernels of closed-form activations."""

from __future__ import annotations

import numpy as np
import pytest

from ntktheory.activations import get_activation

#: One table of tolerances, keyed by (dtype, quantity).
TOLERANCES = {
    ("float64", "ntk_methods_agree"): 1e-10,  # absolute, entries O(1)
    ("float64", "linearized_step0"): 1e-12,
    ("float64", "function_vs_parameter_linearization"): 1e-10,
    ("float64", "hessian_norm_lanczos"): 1e-9,  # relative
    ("float64", "hessian_norm_power"): 1e-6,  # relative
    ("float64", "activation_vs_ntktheory"): 1e-12,
    ("monte_carlo", "z_max"): 4.5,  # max |mean - reference| / standard error over all entries
}


@pytest.fixture
def tol():
    return TOLERANCES


def reference_kernels(x1, x2, *, activation, depth, sigma_w, sigma_b, parameterization="ntk", width=None):
    """(NNGP, NTK) of the readout by the recursion of the README's conventions, written independently of ntktheory's
    kernels, with the closed-form Gaussian expectations (relu, erf, ...)."""
    act = get_activation(activation)
    same = x2 is None
    x1 = np.asarray(x1, float)
    x2 = x1 if same else np.asarray(x2, float)
    d = x1.shape[1]
    sw2, sb2 = sigma_w**2, sigma_b**2
    s12 = sw2 * x1 @ x2.T / d + sb2
    s11 = sw2 * (x1 * x1).sum(1) / d + sb2
    s22 = sw2 * (x2 * x2).sum(1) / d + sb2
    if same:  # exact c = 1 on the diagonal: arccos is sqrt(eps)-sensitive there
        np.fill_diagonal(s12, s11)
    if parameterization == "ntk":
        theta = s12.copy()
    else:
        theta = x1 @ x2.T + 1.0
    for _ in range(depth):
        q1 = np.broadcast_to(s11[:, None], s12.shape)
        q2 = np.broadcast_to(s22[None, :], s12.shape)
        e_pp, e_dd = act.gaussian_expectations(q1, q2, s12)
        e11, _ = act.gaussian_expectations(s11, s11, s11)
        e22, _ = act.gaussian_expectations(s22, s22, s22)
        new12 = sw2 * e_pp + sb2
        if parameterization == "ntk":
            theta = new12 + sw2 * e_dd * theta
        else:
            theta = width * e_pp + 1.0 + sw2 * e_dd * theta
        s12, s11, s22 = new12, sw2 * e11 + sb2, sw2 * e22 + sb2
        if same:
            np.fill_diagonal(s12, s11)
    return s12, theta
