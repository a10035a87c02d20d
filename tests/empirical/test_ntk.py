import numpy as np
import pytest
import torch
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)
from torch import nn

import empirical


def make(parameterization="ntk", k=1, depth=2, activation="tanh", sigma_b=0.2, width=24, seed=0):
    return empirical.MLP(4, width=width, depth=depth, activation=activation, sigma_w=1.3, sigma_b=sigma_b,
                         parameterization=parameterization, out_features=k, seed=seed, device="cpu")


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("outputs", ["mean", "trace", "full"])
@pytest.mark.parametrize("same", [True, False])
def test_three_methods_agree(parameterization, k, outputs, same):
    net = make(parameterization, k)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(5, 4, dtype=torch.float64, generator=g)
    x2 = None if same else torch.randn(3, 4, dtype=torch.float64, generator=g)
    ks = {m: empirical.ntk(net, x1, x2, method=m, outputs=outputs) for m in ("structured", "jacobian", "ntk_vp")}
    shape = (5, 5 if same else 3) + ((k, k) if outputs == "full" else ())
    for K in ks.values():
        assert K.shape == shape
    atol = tol("ntk_methods_agree")
    assert torch.allclose(ks["structured"], ks["jacobian"], rtol=0, atol=atol)
    assert torch.allclose(ks["structured"], ks["ntk_vp"], rtol=0, atol=atol)
    assert ks["structured"].abs().max() > 0.1  # not trivially zero


def test_outputs_relations():
    net = make(k=3)
    x = torch.randn(4, 4, dtype=torch.float64)
    full = empirical.ntk(net, x, outputs="full")
    atol = tol("output_reductions")
    assert torch.allclose(empirical.ntk(net, x, outputs="trace"), torch.einsum("ijaa->ij", full), atol=atol)
    assert torch.allclose(empirical.ntk(net, x, outputs="mean"), torch.einsum("ijaa->ij", full) / 3, atol=atol)
    # symmetric positive semi-definite as a (N k) x (N k) Gram matrix
    flat = full.permute(0, 2, 1, 3).reshape(12, 12)
    assert torch.allclose(flat, flat.T, atol=atol)
    assert torch.linalg.eigvalsh(flat).min() > -tol("psd")


@pytest.mark.parametrize("method", ["structured", "jacobian", "ntk_vp"])
def test_chunking_is_exact(method):
    net = make(k=2)
    x1 = torch.randn(7, 4, dtype=torch.float64)
    x2 = torch.randn(5, 4, dtype=torch.float64)
    for xx in (None, x2):
        whole = empirical.ntk(net, x1, xx, method=method, outputs="full")
        chunked = empirical.ntk(net, x1, xx, method=method, outputs="full", chunk_size=2)
        assert torch.allclose(whole, chunked, rtol=0, atol=tol("same_network_twice"))


def test_structured_on_sequential_and_auto():
    seq = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Identity(),
                        nn.Linear(8, 2)).double()
    seq[2].bias.requires_grad_(False)  # frozen parameters do not count
    x = torch.randn(6, 4, dtype=torch.float64)
    ref = empirical.ntk(seq, x, method="jacobian", outputs="full")
    assert torch.allclose(empirical.ntk(seq, x, method="structured", outputs="full"), ref, rtol=0,
                          atol=tol("ntk_methods_agree"))
    assert torch.allclose(empirical.ntk(seq, x, outputs="full"), ref, rtol=0, atol=tol("ntk_methods_agree"))


def test_generic_module_falls_back_to_jacobian():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 1)

        def forward(self, x):
            return self.b(x + torch.tanh(self.a(x)))

    model = Res().double()
    x = torch.randn(4, 3, dtype=torch.float64)
    auto = empirical.ntk(model, x)
    assert torch.allclose(auto, empirical.ntk(model, x, method="ntk_vp"), atol=tol("same_network_twice"))
    with pytest.raises(NotImplementedError, match="Use method='jacobian' or method='ntk_vp'"):
        empirical.ntk(model, x, method="structured")


def test_ntk_parameterisation_one_hidden_layer_closed_form():
    # depth 1, identity: f = s_w/sqrt(n) W2 (s_w/sqrt(d) W1 x + s_b b1) + s_b b2, so
    # Theta = s_w^2/n |v|^2 ... written out from the gradients by hand.
    net = empirical.MLP(3, width=10, depth=1, activation="identity", sigma_w=1.5, sigma_b=0.4, device="cpu")
    x = torch.randn(4, 3, dtype=torch.float64)
    W2 = net.layers[1].weight[0].detach()
    h1 = net.layers[0](x).detach()
    sw, sb, d, n = 1.5, 0.4, 3, 10
    readout = sw**2 / n * h1 @ h1.T + sb**2
    first = (sw**2 / n) * (W2 @ W2) * (sw**2 / d * x @ x.T + sb**2)
    eps = tol("closed_form_ntk")
    assert torch.allclose(empirical.ntk(net, x), readout + first, rtol=eps, atol=eps)


def test_nngp_formula_and_layers():
    net = make(depth=3, sigma_b=0.3)
    x = torch.randn(5, 4, dtype=torch.float64)
    layers = empirical.nngp(net, x, layers="all")
    assert layers.shape == (4, 5, 5)
    assert torch.allclose(layers[0], 1.3**2 * x @ x.T / 4 + 0.3**2, atol=tol("explicit_forward"))
    z = x
    for layer in net.layers[:-1]:
        z = net.phi(layer(z))
    expected = 1.3**2 / 24 * z @ z.T + 0.3**2
    assert torch.allclose(empirical.nngp(net, x), expected.detach(), atol=tol("explicit_formula"))
    x2 = torch.randn(2, 4, dtype=torch.float64)
    joint = empirical.nngp(net, torch.cat([x, x2]))
    assert torch.allclose(empirical.nngp(net, x, x2), joint[:5, 5:], atol=tol("explicit_formula"))
    # the standard parameterisation has the same NNGP (same forward distribution, same draw)
    std = make("standard", depth=3, sigma_b=0.3)
    assert torch.allclose(empirical.nngp(std, x), empirical.nngp(net, x), atol=tol("same_network_twice"))


def test_inputs_converted_from_numpy():
    net = make()
    x = np.random.default_rng(0).normal(size=(3, 4))
    assert torch.allclose(empirical.ntk(net, x), empirical.ntk(net, torch.as_tensor(x)))


class _Foreign(nn.Module):
    """A model empirical did not build: ntk falls back to Jacobians, nngp cannot know its variances."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1).double()

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda net, x: empirical.ntk(net, x, method="svd"), ValueError,
         r"`method` must be one of 'auto', 'structured', 'jacobian', 'ntk_vp'; got 'svd'"),
        (lambda net, x: empirical.ntk(net, x, outputs="diag"), ValueError,
         r"`outputs` must be one of 'mean', 'trace', 'full'; got 'diag'"),
        (lambda net, x: empirical.ntk(net, x[0]), ValueError, r"`x1` must be 2-D .* got shape \(4,\)"),
        (lambda net, x: empirical.ntk(net, x, x[:, :2]), ValueError, r"`x2` has 2 features but the model has 4"),
        (lambda net, x: empirical.ntk(net, x[:, :3]), ValueError, r"`x1` has 3 features but the model has 4"),
        (lambda net, x: empirical.ntk(net, x * float("nan")), ValueError, r"`x1` must be finite"),
        (lambda net, x: empirical.ntk(net, x[:0]), ValueError, r"`x1` must have at least one point"),
        (lambda net, x: empirical.ntk(net, x, chunk_size=0), ValueError, r"`chunk_size` must be an integer >= 1"),
        (lambda net, x: empirical.ntk("net", x), TypeError, r"`model` must be a torch.nn.Module; got 'net'"),
        (lambda net, x: empirical.ntk(net, "abc"), TypeError,
         r"`x1` must be an array of real numbers, 2-D with shape \(n_points, n_features\); got str"),
        (lambda net, x: empirical.nngp(net, x, layers="first"), ValueError,
         r"`layers` must be one of 'readout', 'all'; got 'first'"),
        (lambda net, x: empirical.nngp(nn.Sequential(nn.Linear(4, 1)).double(), x), ValueError,
         r"nngp needs the initial weight and bias variances"),
        (lambda net, x: empirical.nngp(nn.Sequential(nn.Conv1d(1, 1, 1)), x), NotImplementedError,
         r"^nngp needs a network from empirical.build.*found Conv1d at its position\.$"),
        (lambda net, x: empirical.nngp(_Foreign(), x), NotImplementedError,
         r"^nngp needs a network from empirical.build \(or empirical.MLP\) .*; got _Foreign\.$"),
        (lambda net, x: empirical.ntk(net, x.numpy() * 1j), TypeError,
         r"`x1` must be real; got ndarray of dtype dtype\('complex128'\)"),
        (lambda net, x: empirical.ntk(net, x, x.to(torch.complex128)), TypeError,
         r"`x2` must be real; got Tensor of dtype torch.complex128"),
        (lambda net, x: empirical.nngp(net, x.numpy().astype(object)), TypeError,
         r"`x1` must be an array of real numbers, 2-D .*; got ndarray of dtype dtype\('O'\)"),
        (lambda net, x: empirical.ntk(net, x > 0), TypeError,
         r"`x1` must be an array of real numbers, .*got Tensor of dtype torch.bool"),
    ],
)
def test_ntk_errors(call, exc, match):
    """Every message names the argument and what is allowed; none points to an option the function lacks."""
    net = make()
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(exc, match=match):
        call(net, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    cpu = make()
    gpu = make()
    gpu.to("cuda")
    x = torch.randn(5, 4, dtype=torch.float64)
    assert torch.allclose(empirical.ntk(gpu, x).cpu(), empirical.ntk(cpu, x), atol=tol("device_agree"))
