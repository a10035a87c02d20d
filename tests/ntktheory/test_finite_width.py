"""Finite-width dispersion of the ReLU NTK diagonal: Hanin & Nica's law and its phase dependence,
against a Monte Carlo of exact finite networks (numpy forward/backward written here), exact
homogeneity and the analytic standard-parameterisation NTK."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from tolerances_ntktheory import tol  # tests/ntktheory is on sys.path (pytest rootdir import)

import ntktheory
from ntktheory import _finite_width as fw


def _ntk_diagonal(rng, x, width, depth, sigma_w2, parameterization, samples):
    """Theta(x, x) of `samples` independent zero-bias ReLU nets (scalar output)."""
    d = x.size
    s = math.sqrt(sigma_w2)
    fans = [d] + [width] * depth
    weights = [rng.standard_normal((samples, width, fan)) * (s / math.sqrt(fan)) for fan in fans]
    readout = rng.standard_normal((samples, width)) * (s / math.sqrt(width))
    acts = [np.broadcast_to(x, (samples, d))]
    masks = []
    for w in weights:
        h = np.matmul(w, acts[-1][:, :, None])[:, :, 0]
        masks.append(h > 0)
        acts.append(np.maximum(h, 0.0))
    # gradients w.r.t. the raw weights; NTK parameterisation multiplies each by its fan-in scale
    delta = readout * masks[-1]
    total = np.sum(acts[-1] ** 2, axis=1) * (s**2 / width if parameterization == "ntk" else 1.0)
    if parameterization == "standard":
        total += 1.0  # readout bias
    for layer in range(depth, -1, -1):
        scale = s**2 / fans[layer] if parameterization == "ntk" else 1.0
        a2 = np.sum(acts[layer] ** 2, axis=1)
        d2 = np.sum(delta**2, axis=1)
        total += scale * d2 * a2
        if parameterization == "standard":
            total += d2  # bias of this layer (zero at init, trainable)
        if layer:
            delta = np.matmul(delta[:, None, :], weights[layer])[:, 0, :] * masks[layer - 1]
    return total


def _ratio(k):
    return float(np.mean(k**2) / np.mean(k) ** 2)


def test_beta_and_ratio_values():
    assert fw.hanin_nica_beta([10, 20, 40]) == pytest.approx(0.175, rel=tol("closed_formula"))
    assert fw.hanin_nica_beta(8) == 0.125
    assert fw.hanin_nica_ratio([50] * 10) == pytest.approx(math.exp(1.0), rel=tol("closed_formula"))
    assert fw.hanin_nica_ratio([50] * 10, rate=3.3) == pytest.approx(math.exp(0.66), rel=tol("closed_formula"))


def test_monte_carlo_rate_lies_in_the_hanin_nica_band():
    rng = np.random.default_rng(0)
    width = 32
    x = rng.standard_normal(16)
    betas, logs = [], []
    for depth in (2, 4, 6, 8, 10, 12, 14, 16):
        k = _ntk_diagonal(rng, x, width, depth, 2.0, "ntk", 2500)
        betas.append(fw.hanin_nica_beta([width] * depth))
        logs.append(math.log(_ratio(k)))
    fit = stats.linregress(betas, logs)
    # exp(5 beta) up to constants: the fitted rate is O(5); THEORY.md reports 3.1-3.7 at n = 32..128
    assert 2.3 <= fit.slope <= 5.5, fit
    assert fit.rvalue > 0.97


def test_mean_parts_match_analytic_standard_kernel_and_homogeneity():
    x = np.array([[0.3, -1.2, 0.8, 0.5]])
    for sw2 in (1.0, 2.0, 3.0):
        w, b = fw.relu_ntk_mean_parts(5, sigma_w2=sw2, width=7, x_norm2=float(np.sum(x**2)), in_features=4)
        ds = ntktheory.kernels(x, activation="relu", depth=5, sigma_w=math.sqrt(sw2), sigma_b=0.0,
                               parameterization="standard", width=7)
        assert w + b == pytest.approx(float(ds.ntk.values[0, 0]), rel=tol("finite_width_parts"))
        w2, _ = fw.relu_ntk_mean_parts(5, sigma_w2=2.0, width=7, x_norm2=float(np.sum(x**2)), in_features=4)
        a = sw2 / 2
        assert w == pytest.approx(a**5 * w2, rel=tol("finite_width_homogeneity"))  # weight part: exactly a^L times He's
        assert b == pytest.approx(sum(a**j for j in range(6)), rel=tol("finite_width_homogeneity"))
    w, b = fw.relu_ntk_mean_parts(3, sigma_w2=1.3, width=7, x_norm2=2.0, in_features=4, parameterization="ntk")
    ds = ntktheory.kernels(np.array([[1.0, 1.0, 0.0, 0.0]]), activation="relu", depth=3, sigma_w=math.sqrt(1.3))
    assert b == 0.0 and w == pytest.approx(float(ds.ntk.values[0, 0]), rel=tol("finite_width_parts"))


def test_phase_dependence_limits():
    hn = fw.hanin_nica_ratio([100] * 49)
    kw = {"width": 100, "in_features": 100}
    ordered = [fw.seleznova_kutyniok_dispersion(L, sigma_w2=1.0, **kw) for L in (5, 20, 49, 200)]
    # ordered: the last layers' biases dominate; bounded by their own O(1/n) fluctuation
    assert ordered[-1] - 1 < 0.1 * (hn - 1) and ordered[-1] < math.exp(5 * 2 / 100)
    chaotic = [fw.seleznova_kutyniok_dispersion(L, sigma_w2=3.0, **kw) / fw.hanin_nica_ratio([100] * L)
               for L in (5, 20, 49)]
    assert all(0.9 < r <= 1.0 for r in chaotic)
    critical = fw.seleznova_kutyniok_dispersion(49, sigma_w2=2.0, **kw)
    assert ordered[2] < critical < chaotic[-1] * hn
    # NTK parameterisation, sigma_b = 0: no bias gradients, the dispersion ignores sigma_w^2
    for sw2 in (0.5, 2.0, 3.0):
        assert fw.seleznova_kutyniok_dispersion(49, sigma_w2=sw2, parameterization="ntk", **kw) == pytest.approx(hn)


def test_phase_dependence_against_monte_carlo():
    rng = np.random.default_rng(1)
    width, depth, d = 32, 12, 32
    x = rng.standard_normal(d)
    x *= math.sqrt(d) / np.linalg.norm(x) / math.sqrt(d)  # unit norm as in Seleznova & Kutyniok
    mc = {sw2: _ratio(_ntk_diagonal(rng, x, width, depth, sw2, "standard", 3000)) for sw2 in (1.0, 3.0)}
    he = _ratio(_ntk_diagonal(rng, x, width, depth, 2.0, "ntk", 3000))
    # ordered: nearly deterministic (bias terms dominate); chaotic: Hanin & Nica's dispersion
    assert mc[1.0] - 1 < 0.1 * (he - 1)
    assert mc[3.0] == pytest.approx(he, rel=tol("mc_dispersion_he"))
    # the prediction with the Monte Carlo's own rate reproduces both
    rate = math.log(he) / fw.hanin_nica_beta([width] * depth)
    for sw2 in (1.0, 3.0):
        pred = fw.seleznova_kutyniok_dispersion(depth, sigma_w2=sw2, width=width, in_features=d, rate=rate)
        assert pred == pytest.approx(mc[sw2], rel=tol("mc_dispersion_phase")), (sw2, pred, mc[sw2])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: fw.hanin_nica_beta([]), ValueError, r"`widths` must list at least one hidden layer"),
        (lambda: fw.hanin_nica_beta([10, 0]), ValueError, r"`widths` must be an integer >= 1, got 0"),
        (lambda: fw.hanin_nica_beta("64"), TypeError, r"`widths` must be a sequence"),
        (lambda: fw.hanin_nica_beta([10.5]), TypeError, r"`widths` must be an integer"),
        (lambda: fw.hanin_nica_ratio([10], rate=-1.0), ValueError, r"`rate` must be > 0"),
        (lambda: fw.relu_ntk_mean_parts(0, sigma_w2=2.0, width=3), ValueError, r"`depth` must be an integer >= 1"),
        (lambda: fw.relu_ntk_mean_parts(2, sigma_w2=0.0, width=3), ValueError, r"`sigma_w2` must be > 0"),
        (lambda: fw.relu_ntk_mean_parts(2, sigma_w2=2.0, width=3, parameterization="mup"), ValueError,
         r"`parameterization` must be one of 'standard', 'ntk'; got 'mup'"),
    ],
)
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
