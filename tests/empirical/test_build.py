"""empirical.build: torch networks of ntktheory.layers architectures, their structured NTK, and the
Monte Carlo convergence of their kernels to ntktheory's.

References: torch.func Jacobian contraction (the structured NTK must equal it to rounding);
torch's own conv2d with explicit jax-style padding; ntktheory.kernels(architecture=) for the
ensemble means (z-scores as in test_ensemble.py) and for the 1/sqrt(channels) rate of the
single-network gap (a fitted slope, not one value).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)

import empirical
import ntktheory
from ntktheory import layers as L

RNG = np.random.default_rng(0)
X_IMG = RNG.standard_normal((4, 2, 6, 6))


def _cnn_gap(channels, act="relu"):
    return L.serial(L.Conv(channels=channels, kernel_size=3, sigma_w=1.5, sigma_b=0.2), L.Activation(act),
                    L.Conv(channels=channels, kernel_size=3, sigma_w=1.5, sigma_b=0.2), L.Activation(act),
                    L.GlobalAvgPool(), L.Dense(features=1, sigma_w=1.5, sigma_b=0.2))


def _resnet(channels):
    return L.serial(L.Conv(channels=channels, kernel_size=3, sigma_w=1.3, sigma_b=0.1),
                    L.Residual(L.Activation("relu"), L.Conv(channels=channels, kernel_size=3, sigma_w=1.2)),
                    L.LayerNorm(), L.Activation("tanh"), L.AvgPool(window=2),
                    L.Flatten(), L.Dense(features=1, sigma_w=1.2, sigma_b=0.1))


ARCHS = {
    "cnn_gap": _cnn_gap(6),
    "resnet_layernorm": _resnet(5),
    "strided_even_same": L.serial(L.Conv(channels=4, kernel_size=(2, 4), stride=2, sigma_w=1.4, sigma_b=0.3),
                                  L.Activation("gelu"), L.Conv(channels=3, kernel_size=2, padding="valid"),
                                  L.Activation("x*tanh(x)"), L.Flatten(), L.Dense(features=4, sigma_b=0.1),
                                  L.Activation("erf"), L.Dense(features=2)),
}


def test_mlp_is_the_mlp_preset():
    a = empirical.MLP(5, width=16, depth=2, activation="tanh", sigma_w=1.3, sigma_b=0.2, seed=4, device="cpu")
    b = empirical.build(L.mlp(depth=2, width=16, activation="tanh", sigma_w=1.3, sigma_b=0.2), 5, seed=4,
                        device="cpu")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    x = torch.randn(3, 5, dtype=torch.float64)
    assert torch.equal(a(x), b(x))


def test_convolution_matches_torch_with_jax_padding():
    """'same' with an even kernel and a stride pads (before, after) = jax's split."""
    arch = L.serial(L.Conv(channels=3, kernel_size=(2, 4), stride=(2, 1), sigma_w=1.7, sigma_b=0.4), L.Flatten(),
                    L.Dense(features=1))
    net = empirical.build(arch, (2, 5, 6), device="cpu", seed=1)
    conv = net[0]
    assert conv.padding == ((0, 1), (1, 2))  # H: out 3, total (3-1)*2+2-5 = 1; W: total 3
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    expected = F.conv2d(F.pad(x, (1, 2, 0, 1)), conv.weight, stride=(2, 1)) * (1.7 / math.sqrt(2 * 8)) \
        + 0.4 * conv.bias[:, None, None]
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=tol("explicit_formula"))
    assert net[0](x).shape[2:] == (3, 6)


def test_standard_parameterisation_draws_scaled_parameters():
    arch = _cnn_gap(4)
    ntk_net = empirical.build(arch, (2, 6, 6), seed=2, device="cpu")
    std_net = empirical.build(arch, (2, 6, 6), parameterization="standard", seed=2, device="cpu")
    conv_n, conv_s = ntk_net[0], std_net[0]
    torch.testing.assert_close(conv_s.weight, conv_n.weight * 1.5 / math.sqrt(2 * 9))
    torch.testing.assert_close(conv_s.bias, conv_n.bias * 0.2)
    x = torch.as_tensor(X_IMG)
    torch.testing.assert_close(std_net(x), ntk_net(x), rtol=0, atol=tol("explicit_formula"))  # same function


@pytest.mark.parametrize("name", sorted(ARCHS))
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_structured_equals_jacobian_contraction(name, parameterization):
    net = empirical.build(ARCHS[name], (2, 6, 6), parameterization=parameterization, seed=3, device="cpu")
    x, x2 = torch.as_tensor(X_IMG), torch.as_tensor(RNG.standard_normal((3, 2, 6, 6)))
    for outputs in ("mean", "full"):
        for xb in (None, x2):
            a = empirical.ntk(net, x, xb, method="structured", outputs=outputs, chunk_size=3)
            b = empirical.ntk(net, x, xb, method="jacobian", outputs=outputs)
            scale = float(b.abs().max())
            torch.testing.assert_close(a, b, rtol=0, atol=tol("ntk_methods_agree") * scale)


def test_auto_uses_structured_and_foreign_modules_use_jacobian():
    net = empirical.build(ARCHS["cnn_gap"], (2, 6, 6), seed=0, device="cpu")
    x = torch.as_tensor(X_IMG)
    torch.testing.assert_close(empirical.ntk(net, x), empirical.ntk(net, x, method="structured"), rtol=0, atol=0)
    foreign = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                  torch.nn.Linear(48, 1)).double()
    k_auto = empirical.ntk(foreign, x)
    k_vp = empirical.ntk(foreign, x, method="ntk_vp")
    torch.testing.assert_close(k_auto, k_vp, rtol=0, atol=tol("ntk_methods_agree") * float(k_vp.abs().max()))
    with pytest.raises(NotImplementedError, match=r"method='structured' needs a network from empirical.build"):
        empirical.ntk(foreign, x, method="structured")


def test_readout_nngp_of_a_cnn():
    net = empirical.build(ARCHS["cnn_gap"], (2, 6, 6), seed=5, device="cpu")
    x = torch.as_tensor(X_IMG)
    with torch.no_grad():
        z = net[:-1](x)
    expected = 1.5**2 / 6 * z @ z.T + 0.2**2
    torch.testing.assert_close(empirical.nngp(net, x), expected, rtol=0, atol=tol("explicit_formula"))


@pytest.mark.parametrize("name", ["cnn_gap", "resnet"])
def test_ensemble_mean_matches_ntktheory(name):
    """Mean over 48 seeds of 64-channel networks within z_max standard errors of the analytic
    kernels, plus 6/channels relative for the O(1/n) bias through two hidden layers."""
    channels, seeds = 64, 48
    arch = _cnn_gap(channels) if name == "cnn_gap" else _resnet(channels)
    x = X_IMG[:3, :, :4, :4]
    ds = empirical.ensemble_kernels(x, architecture=arch, seeds=seeds, device="cpu")
    theory = ntktheory.kernels(x, architecture=arch)
    for key in ("ntk", "nngp"):
        mean, sem = ds[f"{key}_empirical_mean"].values, ds[f"{key}_empirical_sem"].values
        ref = theory[key].values
        z = np.abs(mean - ref) / (sem + 6.0 / channels * np.abs(ref) / tol("mc_z_max"))
        assert z.max() <= tol("mc_z_max"), (key, mean, ref, sem)
    assert ds.attrs["architecture"].startswith("serial(Conv(channels=64")


@pytest.mark.parametrize("name", ["cnn_gap", "resnet"])
def test_gap_to_theory_falls_like_inverse_sqrt_channels(name):
    """Relative Frobenius gap of one network's NTK to the analytic one, mean over 6 seeds, at 8..128
    channels: the fitted log-log slope lies in [-0.75, -0.3] around the theoretical -1/2."""
    x = X_IMG[:3, :, :4, :4]
    channel_list = [8, 16, 32, 64, 128]
    make = _cnn_gap if name == "cnn_gap" else _resnet
    gaps = []
    for c in channel_list:
        theory = ntktheory.kernels(x, architecture=make(c)).ntk.values
        per_seed = []
        for s in range(6):
            net = empirical.build(make(c), x.shape[1:], seed=s, device="cpu")
            k = empirical.ntk(net, x).numpy()
            per_seed.append(np.linalg.norm(k - theory) / np.linalg.norm(theory))
        gaps.append(np.mean(per_seed))
    fit = stats.linregress(np.log(channel_list), np.log(gaps))
    lo, hi = tol("slope_band_gap")
    assert lo <= fit.slope <= hi, (fit.slope, gaps)


def test_train_accepts_images():
    net = empirical.build(_cnn_gap(8), (2, 6, 6), seed=1, device="cpu")
    y = np.array([1.0, -1.0, 0.5, 0.0])
    ds = empirical.train(net, X_IMG, y, steps=5, lr_factor=0.5, measure_ntk=True)
    assert np.isfinite(ds.loss.values).all() and ds.loss.values[-1] < ds.loss.values[0]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: empirical.build(_cnn_gap(None), (2, 6, 6), device="cpu"), ValueError,
         r"empirical.build: layer 1, Conv\(kernel_size=3.*has no `channels`"),
        (lambda: empirical.build(_cnn_gap(4), (6,), device="cpu"), ValueError, r"needs an image input"),
        (lambda: empirical.build(_cnn_gap(4), (2, 6), device="cpu"), ValueError,
         r"`in_shape` must be \(features,\) for flat inputs or \(channels, height, width\)"),
        (lambda: empirical.build(_cnn_gap(4), (2, 6, 6), parameterization="mup", device="cpu"), ValueError,
         r"`parameterization` must be one of 'ntk', 'standard'"),
        (lambda: empirical.ntk(empirical.build(_cnn_gap(4), (2, 6, 6), device="cpu"), np.ones((2, 2, 5, 6))),
         ValueError, r"`x1` has points of shape \(2, 5, 6\) but the model's are \(2, 6, 6\)"),
        (lambda: empirical.nngp(empirical.build(L.serial(L.Dense(features=3), L.Activation("relu")), 4,
                                                device="cpu"), np.ones((2, 4))),
         ValueError, r"nngp: the network must end in a Dense readout"),
        (lambda: empirical.ensemble_kernels(X_IMG, architecture=_cnn_gap(4), width=3, seeds=2), TypeError,
         r"`architecture` describes the whole network; do not also pass width"),
        (lambda: empirical.ensemble_kernels(X_IMG[:, 0, 0], seeds=2), TypeError,
         r"ensemble_kernels needs width, depth, activation"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
