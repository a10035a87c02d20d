"""ntktheory.layers and kernels(architecture=): references, identities, Monte Carlo, errors.

Independent references:
- neural-tangents stax (data/reference/architectures_nt.npz, made by
  data/reference/make_architecture_reference.py in a separate environment);
- a plain numpy implementation of the same recursion on dense 6-D arrays (reference_cnn.py);
- identities between layers (1x1 convolutions, pooling over the whole image, Flatten in the
  diagonal and the full form, residual branches of vanishing variance, the mlp preset);
- a Monte Carlo of wide random CNNs written here in torch.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest
import reference_cnn  # tests/ntktheory is on sys.path (pytest rootdir import)
from tolerances_ntktheory import tol

import ntktheory
from ntktheory import _kernels
from ntktheory import layers as L

DATA = pathlib.Path(__file__).parents[2] / "data" / "reference"
CASES = json.loads((DATA / "architecture_cases.json").read_text())["cases"]


def build(specs: list[dict]) -> L.Layer:
    """ntktheory layers from the JSON layer dicts shared with the neural-tangents generator."""
    return L.from_spec(specs)


# ---------------------------------------------------------------------- neural-tangents
@pytest.mark.parametrize("name", sorted(CASES))
def test_against_neural_tangents(name):
    """stax's kernels to 1e-10 relative (to max |K|), off the x = x' diagonal and for cross kernels.

    On the diagonal of K(x1, x1), stax computes arccos(c) of a rounded c = 1, which is off by
    ~sqrt(2 eps) ~ 1e-8 for kinked activations (the derivative term 1 - theta/pi); ntktheory
    uses c = 1 exactly there, so the diagonal is compared to 1e-7 only. stax's LayerNorm adds
    eps = 1e-12 to the variances (~1e-12 relative)."""
    case = CASES[name]
    ref = np.load(DATA / "architectures_nt.npz")
    arch = build(case["layers"])
    x1, x2 = ref[f"{name}/x1"], ref[f"{name}/x2"]
    param = case["parameterization"]
    d11 = ntktheory.kernels(x1, architecture=arch, parameterization=param)
    d12 = ntktheory.kernels(x1, x2, architecture=arch, parameterization=param)
    off = ~np.eye(len(x1), dtype=bool)
    for key in ("nngp", "ntk"):
        r11, r12 = ref[f"{name}/{key}11"], ref[f"{name}/{key}12"]
        scale = np.abs(r11).max()
        assert np.abs(d11[key].values - r11)[off].max() <= tol("stax_off_diagonal") * scale
        assert np.abs(d11[key].values - r11).max() <= tol("stax_diagonal") * scale
        assert np.abs(d12[key].values - r12).max() <= tol("stax_off_diagonal") * np.abs(r12).max()
        np.testing.assert_array_equal(d11[key].values, d11[key].values.T)


# ---------------------------------------------------------------------- numpy reference
NUMPY_CASES = {
    "gap_relu_strided": ([{"type": "conv", "channels": 3, "kernel_size": 3, "stride": 2, "padding": "same",
                           "sigma_w": 1.3, "sigma_b": 0.2}, {"type": "act", "name": "relu"},
                          {"type": "conv", "channels": 3, "kernel_size": [2, 3], "padding": "same",
                           "sigma_w": 1.2, "sigma_b": 0.1}, {"type": "act", "name": "erf"},
                          {"type": "gap"}, {"type": "dense", "features": 1, "sigma_w": 1.0, "sigma_b": 0.3}],
                         (2, 7, 5)),
    # conv / closed-form activation layers straight into GlobalAvgPool: the fused chunk path, with
    # strides, a non-square filter, 'valid' padding, a rectangular image and 3 input channels
    "gap_fused_strided_valid": ([{"type": "conv", "channels": 3, "kernel_size": [2, 3], "stride": 2,
                                  "padding": "same", "sigma_w": 1.3, "sigma_b": 0.2}, {"type": "act", "name": "relu"},
                                 {"type": "conv", "channels": 3, "kernel_size": 2, "padding": "valid",
                                  "sigma_w": 1.2, "sigma_b": 0.1}, {"type": "act", "name": "relu"},
                                 {"type": "conv", "channels": 3, "kernel_size": 3, "stride": [1, 2], "padding": "same",
                                  "sigma_w": 1.4, "sigma_b": 0.3}, {"type": "act", "name": "relu"},
                                 {"type": "gap"}, {"type": "dense", "features": 1, "sigma_w": 1.0, "sigma_b": 0.3}],
                                (3, 9, 7)),
    "pool_flatten_valid": ([{"type": "conv", "channels": 3, "kernel_size": 2, "padding": "valid",
                             "sigma_w": 1.1, "sigma_b": 0.0}, {"type": "act", "name": "relu"},
                            {"type": "avgpool", "window": 2, "stride": 1},
                            {"type": "conv", "channels": 3, "kernel_size": 3, "padding": "same",
                             "sigma_w": 1.4, "sigma_b": 0.2}, {"type": "act", "name": "erf"},
                            {"type": "flatten"}, {"type": "dense", "features": 1, "sigma_w": 1.0, "sigma_b": 0.1}],
                           (1, 6, 6)),
    "residual_layernorm": ([{"type": "conv", "channels": 3, "kernel_size": 3, "padding": "same",
                             "sigma_w": 1.1, "sigma_b": 0.1},
                            {"type": "residual", "branch": [{"type": "act", "name": "relu"},
                                                            {"type": "conv", "channels": 3, "kernel_size": 3,
                                                             "padding": "same", "sigma_w": 1.2, "sigma_b": 0.0}]},
                            {"type": "layernorm"}, {"type": "act", "name": "relu"}, {"type": "gap"},
                            {"type": "dense", "features": 1, "sigma_w": 1.0, "sigma_b": 0.0}], (2, 4, 5)),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CASES))
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_against_dense_numpy_recursion(name, parameterization):
    """Exact same maps, independently coded: agreement to rounding (KERNEL_PATHS)."""
    specs, shape = NUMPY_CASES[name]
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((4, *shape)), rng.standard_normal((3, *shape))
    arch = build(specs)
    ours = ntktheory.kernels(x1, x2, architecture=arch, parameterization=parameterization)
    nngp, ntk = reference_cnn.kernels(specs, x1, x2, parameterization)
    assert ("closed_form_fused_blocks" in ours.attrs["quadrature"]) == name.startswith("gap_fused")
    np.testing.assert_allclose(ours.nngp.values, nngp, rtol=0, atol=tol("kernel_paths") * np.abs(nngp).max())
    np.testing.assert_allclose(ours.ntk.values, ntk, rtol=0, atol=tol("kernel_paths") * np.abs(ntk).max())


# ---------------------------------------------------------------------- identities
def _assert_same(a, b, rtol=None):
    rtol = tol("exact_identity") if rtol is None else rtol
    for key in ("nngp", "ntk"):
        scale = np.abs(b[key].values).max()
        np.testing.assert_allclose(a[key].values, b[key].values, rtol=0, atol=rtol * scale)


def test_mlp_preset_is_the_fully_connected_call():
    x = np.random.default_rng(0).standard_normal((5, 4))
    for act in ("tanh", "relu"):
        a = ntktheory.kernels(x, activation=act, depth=3, sigma_w=1.4, sigma_b=0.2)
        b = ntktheory.kernels(x, architecture=L.mlp(depth=3, activation=act, sigma_w=1.4, sigma_b=0.2))
        _assert_same(a, b, 0.0)


def test_one_by_one_convolution_on_one_pixel_is_dense():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    cnn = L.serial(L.Conv(kernel_size=1, sigma_w=1.3, sigma_b=0.2), L.Activation("tanh"),
                   L.Conv(kernel_size=3, sigma_w=1.1, sigma_b=0.1), L.Activation("relu"), L.Flatten(),
                   L.Dense(sigma_w=1.2, sigma_b=0.3))
    # a 3x3 'same' convolution on a 1x1 image sees its one pixel through the centre tap: 1/9 of it
    mlp = L.serial(L.Dense(sigma_w=1.3, sigma_b=0.2), L.Activation("tanh"), L.Dense(sigma_w=1.1 / 3, sigma_b=0.1),
                   L.Activation("relu"), L.Dense(sigma_w=1.2, sigma_b=0.3))
    a = ntktheory.kernels(x[:, :, None, None], architecture=cnn)
    b = ntktheory.kernels(x, architecture=mlp)
    np.testing.assert_allclose(a.nngp.values, b.nngp.values, rtol=tol("reordered_arithmetic"))
    # the NTK: Theta' = Sigma' + sigma_w^2/9 Theta, as a Dense of sigma_w/3 gives with bias unchanged
    np.testing.assert_allclose(a.ntk.values, b.ntk.values, rtol=tol("reordered_arithmetic"))


def test_global_average_pool_is_pooling_over_the_whole_image():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 5, 6))
    body = [L.Conv(kernel_size=3, sigma_w=1.3, sigma_b=0.1), L.Activation("relu")]
    a = ntktheory.kernels(x, architecture=L.serial(*body, L.GlobalAvgPool(), L.Dense(sigma_w=1.1)))
    b = ntktheory.kernels(x, architecture=L.serial(*body, L.AvgPool(window=(5, 6)), L.Flatten(), L.Dense(sigma_w=1.1)))
    _assert_same(a, b)


def test_flatten_is_the_same_in_the_diagonal_and_the_full_form():
    """Flatten + Dense averages the per-position diagonal: the diagonal form (no pooling) and the
    full form (forced by a 1x1 pooling, the identity) agree."""
    rng = np.random.default_rng(3)
    x, x2 = rng.standard_normal((5, 2, 5, 4)), rng.standard_normal((2, 2, 5, 4))
    body = [L.Conv(kernel_size=3, sigma_w=1.3, sigma_b=0.1), L.Activation("tanh"),
            L.Conv(kernel_size=2, sigma_w=1.2, sigma_b=0.2), L.Activation("relu")]
    tail = [L.Flatten(), L.Dense(sigma_w=1.1, sigma_b=0.1)]
    for xb in (None, x2):
        diag = ntktheory.kernels(x, xb, architecture=L.serial(*body, *tail))
        full = ntktheory.kernels(x, xb, architecture=L.serial(*body, L.AvgPool(window=1), *tail))
        assert (diag.attrs["spatial_form"], full.attrs["spatial_form"]) == ("diagonal", "full")
        _assert_same(diag, full, tol("kernel_paths"))


def test_residual_with_vanishing_branch_is_the_identity():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 2, 4, 4))
    head = [L.Conv(kernel_size=3, sigma_w=1.3, sigma_b=0.2)]
    tail = [L.Activation("erf"), L.GlobalAvgPool(), L.Dense(sigma_w=1.0)]
    res = L.Residual(L.Activation("relu"), L.Conv(kernel_size=3, sigma_w=1e-9, sigma_b=0.0))
    a = ntktheory.kernels(x, architecture=L.serial(*head, res, *tail))
    b = ntktheory.kernels(x, architecture=L.serial(*head, *tail))
    _assert_same(a, b, tol("few_operations"))


def test_residual_adds_the_branch_kernels():
    """Residual(f) = z + f(z): Sigma and Theta are the sums of the shortcut's and the branch's."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3))
    branch = L.serial(L.Activation("tanh"), L.Dense(sigma_w=1.2, sigma_b=0.3))
    first = L.Dense(sigma_w=1.1, sigma_b=0.1)
    both = ntktheory.kernels(x, architecture=L.serial(first, L.Residual(branch)))
    alone = ntktheory.kernels(x, architecture=L.serial(first, branch))
    shortcut = ntktheory.kernels(x, architecture=first)
    for key in ("nngp", "ntk"):
        np.testing.assert_allclose(both[key].values, alone[key].values + shortcut[key].values,
                                   rtol=tol("few_operations"))


def test_layer_norm_normalises_flat_kernels():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 3)) * 3.0
    ds = ntktheory.kernels(x, architecture=L.serial(L.Dense(sigma_w=1.4, sigma_b=0.5), L.LayerNorm()))
    raw = ntktheory.kernels(x, architecture=L.Dense(sigma_w=1.4, sigma_b=0.5))
    d = np.sqrt(np.diag(raw.nngp.values))
    np.testing.assert_allclose(ds.nngp.values, raw.nngp.values / np.outer(d, d), rtol=tol("few_operations"))
    np.testing.assert_allclose(ds.ntk.values, raw.ntk.values / np.outer(d, d), rtol=tol("few_operations"))
    np.testing.assert_array_equal(np.diag(ds.nngp.values), 1.0)


def test_hand_computed_linear_cnn():
    """A linear CNN written out by hand: 1 channel, 2x2 image, 2x2 'valid' conv -> one pixel with
    Sigma = Theta = sigma_w^2 <x, x'>/4 + sigma_b^2; then Dense(sigma_w=1, sigma_b=0) keeps Sigma
    and adds it to the NTK: Theta2 = 2 Sigma."""
    x = np.array([[[[1.0, 2.0], [0.0, -1.0]]], [[[0.5, 0.0], [1.0, 1.0]]]])
    arch = L.serial(L.Conv(kernel_size=2, padding="valid", sigma_w=2.0, sigma_b=0.5), L.Flatten(), L.Dense())
    ds = ntktheory.kernels(x, architecture=arch)
    dots = np.einsum("iahw,jahw->ij", x, x)
    sigma = 4.0 * dots / 4 + 0.25
    np.testing.assert_allclose(ds.nngp.values, sigma, rtol=tol("same_arithmetic"))
    np.testing.assert_allclose(ds.ntk.values, 2 * sigma, rtol=tol("same_arithmetic"))


def test_same_padding_hand_computed():
    """'same' 3x3 conv on a 1x3 image row, identity activation: the centre position sees all three
    pixels, the edge ones two (zero padding), normalised by 9 taps; GAP averages the 3x3 grid."""
    x = np.array([[[[1.0, 2.0, 3.0]]]])  # (1, 1, 1, 3)
    arch = L.serial(L.Conv(kernel_size=3, sigma_w=3.0), L.GlobalAvgPool(), L.Dense())
    ds = ntktheory.kernels(x, architecture=arch)
    # positions p, p' in {0, 1, 2}; K_pp' = 9/9 * sum_d x_{p+d} x_{p'+d} (d in -1, 0, 1, inside)
    k = np.zeros((3, 3))
    for p in range(3):
        for q in range(3):
            k[p, q] = sum(x[0, 0, 0, p + d] * x[0, 0, 0, q + d] for d in (-1, 0, 1)
                          if 0 <= p + d < 3 and 0 <= q + d < 3)
    np.testing.assert_allclose(float(ds.nngp[0, 0]), k.mean(), rtol=tol("same_arithmetic"))


def test_symmetric_blocks_equal_cross_kernel_and_small_blocks(monkeypatch):
    """x2 = None (upper triangles, mirrored blocks) equals the cross kernel of x with a copy, and
    splitting into many blocks of input pairs changes nothing."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((7, 2, 4, 4))
    arch = L.serial(L.Conv(kernel_size=3, sigma_w=1.2, sigma_b=0.1), L.Activation("gelu"), L.AvgPool(window=2),
                    L.Conv(kernel_size=2, sigma_w=1.3), L.Activation("tanh"), L.GlobalAvgPool(), L.Dense())
    whole = ntktheory.kernels(x, architecture=arch)
    cross = ntktheory.kernels(x, x.copy(), architecture=arch)
    off = ~np.eye(7, dtype=bool)
    for key in ("nngp", "ntk"):
        np.testing.assert_allclose(whole[key].values[off], cross[key].values[off], rtol=tol("kernel_paths"))
    monkeypatch.setattr(_kernels, "BLOCK_BYTES", 3 * 16**2 * 6 * 8)  # blocks of 3 inputs
    split = ntktheory.kernels(x, architecture=arch)
    _assert_same(split, whole, tol("exact_identity"))
    split_cross = ntktheory.kernels(x, x[:4], architecture=arch)
    for key in ("nngp", "ntk"):
        np.testing.assert_allclose(split_cross[key].values, cross[key].values[:, :4], rtol=tol("kernel_paths"))


def test_all_depths_with_repeat_equals_separate_calls():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 1, 5, 5))
    for readout in ("flatten", "gap"):
        arch = L.cnn(depth=3, kernel_size=3, activation="erf", sigma_w=1.5, sigma_b=0.2, readout=readout)
        every = ntktheory.kernels(x, architecture=arch, all_depths=True)
        assert every.ntk.dims == ("depth", "x1", "x2") and list(every.depth.values) == [1, 2, 3]
        for d in (1, 3):
            one = ntktheory.kernels(x, architecture=L.cnn(depth=d, kernel_size=3, activation="erf", sigma_w=1.5,
                                                          sigma_b=0.2, readout=readout))
            for key in ("nngp", "ntk"):
                np.testing.assert_allclose(every[key].sel(depth=d).values, one[key].values, rtol=tol("few_operations"))


def test_quadrature_activation_in_cnn_matches_closed_form():
    """An expression with a closed form's values but no closed form (quadrature path) agrees with
    the closed form through conv and pooling layers."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 1, 4, 4))
    body = lambda act: L.serial(L.Conv(kernel_size=3, sigma_w=1.4, sigma_b=0.1), L.Activation(act),  # noqa: E731
                                L.AvgPool(window=2), L.Conv(kernel_size=2, sigma_w=1.2), L.Activation(act),
                                L.GlobalAvgPool(), L.Dense())
    a = ntktheory.kernels(x, architecture=body("erf"))
    b = ntktheory.kernels(x, architecture=body("erf(x) + 0*x**2"))
    assert json.loads(b.attrs["quadrature"])[0]["method"] == "quadrature"
    _assert_same(a, b, tol("kernel_paths"))


def test_psd_and_attrs():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((12, 1, 4, 4))
    arch = L.cnn(depth=2, activation="relu", sigma_w=1.4, readout="gap")
    ds = ntktheory.kernels(x, architecture=arch)
    for key in ("nngp", "ntk"):
        eig = np.linalg.eigvalsh(ds[key].values)
        assert eig.min() >= -tol("psd") * eig.max()
    assert ds.attrs["architecture"].startswith("serial(Repeat(serial(Conv(")
    assert "stax conventions" in ds.attrs["conventions"] and json.loads(ds.attrs["in_shape"]) == [1, 4, 4]


# ---------------------------------------------------------------------- Monte Carlo in torch
def _torch_cnn_kernels(x, channels, seed, readout):
    """One random CNN written here: conv(3x3 'same') -> relu -> conv -> relu -> readout -> dense,
    NTK parameterisation, sigma_w = 1.5, sigma_b = 0.2; f(x) f(x') and the empirical NTK."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    sw, sb = 1.5, 0.2
    xt = torch.as_tensor(x)
    c_in = x.shape[1]
    params = [torch.randn(channels, c_in, 3, 3, generator=g, dtype=torch.float64),
              torch.randn(channels, generator=g, dtype=torch.float64),
              torch.randn(channels, channels, 3, 3, generator=g, dtype=torch.float64),
              torch.randn(channels, generator=g, dtype=torch.float64)]
    h, w = x.shape[2:]
    fan_out_in = channels * (h * w if readout == "flatten" else 1)
    params += [torch.randn(1, fan_out_in, generator=g, dtype=torch.float64),
               torch.randn(1, generator=g, dtype=torch.float64)]
    for p in params:
        p.requires_grad_(True)

    def f(z):
        z = F.conv2d(z, params[0], padding=1) * (sw / math.sqrt(c_in * 9)) + sb * params[1][:, None, None]
        z = torch.relu(z)
        z = F.conv2d(z, params[2], padding=1) * (sw / math.sqrt(channels * 9)) + sb * params[3][:, None, None]
        z = torch.relu(z)
        z = z.flatten(1) if readout == "flatten" else z.mean(dim=(2, 3))
        return z @ params[4].T * (sw / math.sqrt(z.shape[1])) + sb * params[5]

    out = f(xt)[:, 0]
    grads = []
    for i in range(len(x)):
        gi = torch.autograd.grad(out[i], params, retain_graph=True)
        grads.append(torch.cat([t.reshape(-1) for t in gi]))
    jac = torch.stack(grads)
    return np.outer(out.detach().numpy(), out.detach().numpy()), (jac @ jac.T).numpy()


@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_monte_carlo_wide_cnn(readout):
    """Mean over 24 random CNNs of 192 channels (written in torch here, not via empirical) equals
    the analytic NNGP and NTK within 4 standard errors plus 4/channels relative (O(1/n) bias)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 1, 5, 5))
    channels, draws = 192, 24
    samples = [_torch_cnn_kernels(x, channels, seed, readout) for seed in range(draws)]
    arch = L.serial(L.Conv(kernel_size=3, sigma_w=1.5, sigma_b=0.2), L.Activation("relu"),
                    L.Conv(kernel_size=3, sigma_w=1.5, sigma_b=0.2), L.Activation("relu"),
                    L.GlobalAvgPool() if readout == "gap" else L.Flatten(), L.Dense(sigma_w=1.5, sigma_b=0.2))
    theory = ntktheory.kernels(x, architecture=arch)
    for k, key in enumerate(("nngp", "ntk")):
        values = np.stack([s[k] for s in samples])
        mean, se = values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(draws)
        expected = theory[key].values
        allowed = tol("mc_standard_errors") * se + 4.0 / channels * np.abs(expected)
        assert np.all(np.abs(mean - expected) <= allowed), (key, mean, expected, se)


# ---------------------------------------------------------------------- errors
X_IMG = np.ones((2, 1, 4, 4))


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: L.Conv(kernel_size=0), ValueError, r"`kernel_size` must be an integer >= 1, got 0"),
        (lambda: L.Conv(kernel_size=(3, 3, 3)), ValueError, r"`kernel_size` must be an integer or a pair"),
        (lambda: L.Conv(padding="full"), ValueError, r"`padding` must be one of 'same', 'valid'; got 'full'"),
        (lambda: L.Conv(sigma_w=-1.0), ValueError, r"`sigma_w` must be > 0, got -1.0"),
        (lambda: L.Dense(features=0), ValueError, r"`features` must be an integer >= 1, got 0"),
        (lambda: L.Dense(sigma_b=-0.1), ValueError, r"`sigma_b` must be >= 0"),
        (lambda: L.AvgPool(window=0), ValueError, r"`window` must be an integer >= 1"),
        (lambda: L.Activation("foo(x)"), ValueError, r"unknown function"),
        (lambda: L.serial(L.Dense(), "relu"), TypeError, r"serial: element 1 must be a layer"),
        (lambda: L.serial(L.Dense(), L.Activation("relu"), L.Activation("tanh")), ValueError,
         r"Activation\('tanh'\) follows Activation\('relu'\), whose output is not Gaussian"),
        (lambda: L.Residual(L.Activation("relu")), ValueError, r"the branch of Residual.*must end in a Dense or Conv"),
        (lambda: L.Residual(), ValueError, r"Residual needs a branch"),
        (lambda: L.Repeat(L.serial(L.LayerNorm(), L.Activation("relu")), times=2), ValueError,
         r"feeds the block's non-Gaussian output back"),
        (lambda: L.Repeat(L.Dense(), times=-1), ValueError, r"`times` must be an integer >= 0"),
        (lambda: L.serial(L.Conv(), L.Activation("relu"), L.LayerNorm()), ValueError,
         r"LayerNorm\(\) follows Activation\('relu'\)"),
        (lambda: L.cnn(readout="max"), ValueError, r"`readout` must be one of 'flatten', 'gap'; got 'max'"),
    ],
)
def test_layer_construction_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    ("arch", "x", "match"),
    [
        (L.serial(L.Activation("relu"), L.Dense()), np.ones((2, 3)),
         r"layer 1, Activation\('relu'\), needs a Gaussian input, but the raw input is not Gaussian"),
        (L.serial(L.Conv(kernel_size=3, padding="valid"), L.Activation("relu"), L.Conv(kernel_size=3, padding="valid"),
                  L.Flatten(), L.Dense()), X_IMG,
         r"layer 3: Conv\(.*padding='valid'\) gets an image of 2x2 positions, whose height \(2\) is smaller than "
         r"the 3x3 kernel; use padding='same'"),
        (L.serial(L.Conv(), L.Flatten(), L.Flatten(), L.Dense()), X_IMG,
         r"layer 3: Flatten\(\) gets a flat input.*flat already"),
        (L.serial(L.Dense(), L.Activation("relu"), L.Dense()), X_IMG,
         r"layer 1: Dense\(\) needs a flat input.*put Flatten\(\) or GlobalAvgPool\(\) before it"),
        (L.serial(L.Conv(), L.Flatten(), L.Dense()), np.ones((2, 3)),
         r"layer 1: Conv\(.*\) needs an image input \(channels, height, width\)"),
        (L.serial(L.Conv(channels=3), L.Residual(L.Activation("relu"), L.Conv(channels=4)), L.Flatten(), L.Dense()),
         X_IMG, r"the branch maps shape \(3, 4, 4\) to \(4, 4, 4\); a residual branch must keep the shape"),
        (L.serial(L.Conv()), X_IMG, r"ends with an image output of shape \(None, 4, 4\); end it with Flatten\(\)"),
        (L.serial(L.Conv(), L.AvgPool(window=5), L.Flatten(), L.Dense()), X_IMG,
         r"layer 2: AvgPool\(window=5\) gets an image of 4x4 positions.*smaller than its window"),
        (L.serial(L.Conv(), L.Activation("tanh"), L.Residual(L.Activation("relu"), L.Conv()), L.Flatten(), L.Dense()),
         X_IMG, r"layer 3.branch.1, Activation\('relu'\), needs a Gaussian input, but the output of layer 2, "
                r"Activation\('tanh'\) is not Gaussian"),
    ],
)
def test_architecture_errors(arch, x, match):
    with pytest.raises(ValueError, match=match):
        ntktheory.kernels(x, architecture=arch)


def test_kernels_argument_errors():
    arch = L.cnn(depth=1)
    with pytest.raises(TypeError, match=r"`architecture` describes the whole network; do not also pass activation, "
                                        r"depth"):
        ntktheory.kernels(X_IMG, architecture=arch, activation="tanh", depth=2)
    with pytest.raises(TypeError, match=r"`architecture` must be a layer from ntktheory.layers"):
        ntktheory.kernels(X_IMG, architecture="cnn")
    with pytest.raises(ValueError, match=r"`x2` has points of shape \(1, 3, 3\) but the other input's are \(1, 4, 4\)"):
        ntktheory.kernels(X_IMG, np.ones((1, 1, 3, 3)), architecture=arch)
    with pytest.raises(ValueError, match=r"`x1` must be 2-D \(n_points, n_features\) or 4-D"):
        ntktheory.kernels(np.ones((2, 4, 4)), architecture=arch)
    with pytest.raises(TypeError, match=r"`x1` must be real; got ndarray of dtype dtype\('complex128'\)"):
        ntktheory.kernels(X_IMG.astype(complex), architecture=arch)
    with pytest.raises(ValueError, match=r"parameterization='standard' needs the width feeding layer 3, Conv"):
        ntktheory.kernels(X_IMG, architecture=L.serial(L.Conv(), L.Activation("relu"), L.Conv(), L.Flatten(),
                                                       L.Dense()), parameterization="standard")
    with pytest.raises(ValueError, match=r"needs exactly one top-level Repeat"):
        ntktheory.kernels(X_IMG, architecture=L.serial(L.Conv(), L.Flatten(), L.Dense()), all_depths=True)
