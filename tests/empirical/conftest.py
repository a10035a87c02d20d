"""Shared helpers for the empirical tests: an independent reference recursion for the infinite-width
kernels of closed-form activations (tolerances: tests/empirical/tolerances_empirical.py)."""

from __future__ import annotations

import numpy as np

from ntktheory.activations import get_activation


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
