import math

import numpy as np
import pytest
import torch
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)
from torch import nn

import empirical
from ntktheory.activations import get_activation, leaky_relu, registry_names


def explicit_forward(net: empirical.MLP, x: torch.Tensor) -> torch.Tensor:
    """The formula of the README's conventions written out from the raw parameters."""
    z = x
    for i, layer in enumerate(net.layers):
        W, b = layer.weight, layer.bias
        if net.parameterization == "ntk":
            h = net.sigma_w / math.sqrt(W.shape[1]) * z @ W.T + net.sigma_b * b
        else:
            h = z @ W.T + b
        z = net.phi(h) if i < len(net.layers) - 1 else h
    return z


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_forward_is_design_formula(parameterization):
    net = empirical.MLP(5, width=16, depth=3, activation="tanh", sigma_w=1.3, sigma_b=0.2,
                        parameterization=parameterization,
                        out_features=2, device="cpu")
    x = torch.randn(7, 5, dtype=torch.float64)
    assert torch.allclose(net(x), explicit_forward(net, x), rtol=0, atol=tol("explicit_forward"))
    assert len(net.layers) == 4
    assert net(x).shape == (7, 2)


def test_ntk_and_standard_are_the_same_function():
    kw = dict(in_features=4, width=32, depth=2, activation="erf", sigma_w=1.7, sigma_b=0.3, seed=5, device="cpu")
    x = torch.randn(6, 4, dtype=torch.float64)
    a = empirical.MLP(parameterization="ntk", **kw)(x)
    b = empirical.MLP(parameterization="standard", **kw)(x)
    assert torch.allclose(a, b, rtol=tol("explicit_formula"), atol=tol("explicit_formula"))


@pytest.mark.parametrize("sigma_w,sigma_b", [(1.0, 0.0), (2.0, 0.5)])
def test_initialisation_statistics(sigma_w, sigma_b):
    # 5 standard errors of the sample variance (sqrt(2/m) relative for Gaussians).
    ntk_net = empirical.MLP(64, width=512, depth=2, activation="relu", sigma_w=sigma_w, sigma_b=sigma_b, device="cpu")
    std_net = empirical.MLP(64, width=512, depth=2, activation="relu", sigma_w=sigma_w, sigma_b=sigma_b,
                            parameterization="standard", device="cpu")
    for layer in ntk_net.layers:
        for p in (layer.weight, layer.bias):
            m = p.numel()
            if m < 100:  # the readout bias: too few draws for a variance
                continue
            assert abs(p.mean().item()) < 5 / math.sqrt(m)
            assert abs(p.var().item() - 1.0) < 5 * math.sqrt(2 / m)
    for layer in std_net.layers:
        w, m = layer.weight, layer.weight.numel()
        expected = sigma_w**2 / w.shape[1]
        assert abs(w.var().item() / expected - 1.0) < 5 * math.sqrt(2 / m) + 0.02 * (m < 2000)
        if sigma_b == 0:
            assert torch.count_nonzero(layer.bias) == 0
            assert layer.bias.requires_grad  # trained from zero
        elif layer.bias.numel() > 100:
            assert abs(layer.bias.var().item() / sigma_b**2 - 1.0) < 5 * math.sqrt(2 / layer.bias.numel())


def test_seed_reproducible_and_distinct():
    a = empirical.MLP(3, width=8, depth=2, activation="tanh", seed=3, device="cpu")
    b = empirical.MLP(3, width=8, depth=2, activation="tanh", seed=3, device="cpu")
    c = empirical.MLP(3, width=8, depth=2, activation="tanh", seed=4, device="cpu")
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q)
        assert not torch.equal(p, r)


def test_float32_model_matches_float64_draw():
    a = empirical.MLP(3, width=8, depth=1, activation="tanh", seed=1, dtype=torch.float32, device="cpu")
    b = empirical.MLP(3, width=8, depth=1, activation="tanh", seed=1, device="cpu")
    assert a.layers[0].weight.dtype == torch.float32
    assert torch.allclose(a.layers[0].weight.double(), b.layers[0].weight, atol=tol("weights_draw", "float32"))


SPECS = [*registry_names(), leaky_relu(negative_slope=0.2), "x*tanh(x)", "Max(x, 0) + 0.1*sin(x)",
         "log(1+exp(x))", "x**2/(1+x**2)"]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_activations_match_ntktheory(spec):
    phi = empirical.torch_activation(spec)
    act = get_activation(spec)
    u = torch.linspace(-6, 6, 241, dtype=torch.float64)
    assert np.allclose(phi(u).numpy(), act.phi(u.numpy()), rtol=0, atol=tol("activation_vs_ntktheory"))
    # derivatives by autograd equal ntktheory's phi' (kink conventions included)
    uu = u.clone().requires_grad_(True)
    (d,) = torch.autograd.grad(phi(uu).sum(), uu)
    assert np.allclose(d.numpy(), act.dphi(u.numpy()), rtol=0, atol=tol("activation_derivative"))


def test_registry_names_use_torch_builtins():
    assert empirical.torch_activation("relu")._fn is torch.relu
    assert empirical.torch_activation("tanh")._fn is torch.tanh
    assert empirical.torch_activation("swish")._fn is nn.functional.silu


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(width=0), ValueError, r"`width` must be an integer >= 1, got 0"),
        (dict(width=2.5), TypeError, r"`width` must be an integer, got 2.5"),
        (dict(depth=-1), ValueError, r"`depth` must be an integer >= 0, got -1"),
        (dict(sigma_w=0.0), ValueError, r"`sigma_w` must be > 0, got 0.0"),
        (dict(sigma_b=-0.1), ValueError, r"`sigma_b` must be >= 0, got -0.1"),
        (dict(parameterization="mup"), ValueError, r"`parameterization` must be one of 'ntk', 'standard'; got 'mup'"),
        (dict(activation="foo(x)"), ValueError, r"activation 'foo\(x\)' calls unknown function"),
        (dict(activation=3), TypeError, r"`activation` must be a registry name"),
        (dict(dtype=torch.int32), TypeError, r"`dtype` must be a floating torch dtype"),
        (dict(device="tpu9"), ValueError, r"`device` must be 'auto', 'cpu', 'cuda'"),
        (dict(device=3), TypeError, r"`device` must be 'auto', a device string or a torch.device; got 3"),
        (dict(seed=-1), ValueError, r"`seed` must be an integer >= 0, got -1"),
    ],
)
def test_mlp_errors(kwargs, exc, match):
    args = dict(in_features=3, width=4, depth=1, activation="relu", device="cpu") | kwargs
    with pytest.raises(exc, match=match):
        empirical.MLP(**args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_unavailable_error():
    with pytest.raises(ValueError, match="CUDA is not available here"):
        empirical.MLP(3, width=4, depth=1, activation="relu", device="cuda")


def test_untranslatable_expression_error():
    with pytest.raises(ValueError, match=r"cannot translate .* into torch"):
        empirical.torch_activation("atanh(tanh(x)/2)")


def test_deepcopy_after_ntktheory_compiled_the_activation():
    import copy

    net = empirical.MLP(2, width=4, depth=1, activation="tanh", device="cpu")
    _ = net.activation.compiled  # ntktheory caches a numba module on the (shared) Activation
    twin = copy.deepcopy(net)
    x = torch.randn(3, 2, dtype=torch.float64)
    assert torch.equal(twin(x), net(x)) and twin.activation is net.activation
