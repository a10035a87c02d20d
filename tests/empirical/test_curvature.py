import numpy as np
import pytest
import torch
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)
from torch.func import functional_call

import empirical


def full_hessian(net, scalar_fn):
    """Dense Hessian of scalar_fn(outputs) w.r.t. all trainable parameters, by autograd."""
    named = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(flat):
        params = {k: q.view(p.shape) for (k, p), q in zip(named, torch.split(flat, sizes))}
        return scalar_fn(lambda x: functional_call(net, params, (x,)))

    return torch.autograd.functional.hessian(f, theta)


def spectral(H):
    return torch.linalg.eigvalsh(H).abs().max().item()


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_model_hessian_norm_matches_dense_hessian(parameterization):
    net = empirical.MLP(3, width=5, depth=2, activation="tanh", sigma_b=0.3, out_features=2,
                        parameterization=parameterization,
                        device="cpu")
    x = torch.tensor([[0.3, -0.7, 1.1]], dtype=torch.float64)
    dense = [spectral(full_hessian(net, lambda f, a=a: f(x)[0, a])) for a in range(2)]
    n_params = sum(p.numel() for p in net.parameters())
    lanczos = empirical.model_hessian_norm(net, x, iterations=n_params)
    assert lanczos == pytest.approx(max(dense), rel=tol("hessian_norm_lanczos"))
    power = empirical.model_hessian_norm(net, x[0], method="power", iterations=3000)
    assert power == pytest.approx(max(dense), rel=tol("hessian_norm_power"))
    v = torch.tensor([0.6, -0.8], dtype=torch.float64)
    along = spectral(full_hessian(net, lambda f: f(x)[0] @ v))
    got = empirical.model_hessian_norm(net, x, direction=v, iterations=n_params)
    assert got == pytest.approx(along, rel=tol("hessian_norm_lanczos"))


def test_nonlinear_output_hessian_matches_dense():
    net = empirical.MLP(2, width=6, depth=1, activation="relu", sigma_b=0.2, device="cpu")
    x = torch.tensor([[0.5, -1.2]], dtype=torch.float64)
    dense = spectral(full_hessian(net, lambda f: torch.tanh(f(x)[0, 0])))
    n_params = sum(p.numel() for p in net.parameters())
    got = empirical.model_hessian_norm(net, x, output_activation="tanh", iterations=n_params)
    assert got == pytest.approx(dense, rel=tol("hessian_norm_lanczos"))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_loss_hessian_norm_matches_dense(loss):
    net = empirical.MLP(2, width=4, depth=1, activation="tanh", sigma_b=0.2, out_features=2, device="cpu")
    x = torch.randn(5, 2, dtype=torch.float64)
    if loss == "mse":
        y = torch.randn(5, 2, dtype=torch.float64)
        dense = spectral(full_hessian(net, lambda f: 0.5 * ((f(x) - y) ** 2).sum() / 5))
    else:
        y = torch.tensor([0, 1, 1, 0, 1])
        dense = spectral(full_hessian(net, lambda f: torch.nn.functional.cross_entropy(f(x), y)))
    n_params = sum(p.numel() for p in net.parameters())
    got = empirical.loss_hessian_norm(net, x, y, loss=loss, iterations=n_params)
    assert got == pytest.approx(dense, rel=tol("hessian_norm_lanczos"))


def test_transition_to_linearity():
    # Liu, Zhu & Belkin 2020: the linear-readout model Hessian norm decays with width, while with a
    # non-linear output it stays of order one. Mean over 3 seeds at widths 64 and 1024.
    x = torch.tensor([[0.6, -0.8]], dtype=torch.float64)

    def mean_norm(width, **kw):
        return np.mean([empirical.model_hessian_norm(
            empirical.MLP(2, width=width, depth=1, activation="tanh", sigma_w=1.5, seed=s, device="cpu"), x,
                          iterations=20, **kw)
            for s in range(3)])

    linear = {w: mean_norm(w) for w in (64, 1024)}
    nonlinear = {w: mean_norm(w, output_activation="sigmoid") for w in (64, 1024)}
    assert linear[1024] < 0.5 * linear[64]
    assert nonlinear[1024] > 0.5 * nonlinear[64]


def test_gradient_norms():
    net = empirical.MLP(3, width=8, depth=2, activation="tanh", sigma_b=0.1, device="cpu")
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.randn(4, 1, dtype=torch.float64)
    g = empirical.gradient_norms(net, x, y)
    loss = 0.5 * ((net(x) - y) ** 2).sum() / 4
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert np.allclose(g.values, [q.norm().item() for q in grads], rtol=tol("gradient_norms"))
    assert g.dims == ("parameter",) and g.sizes["parameter"] == 6
    assert empirical.gradient_norms(net, x).sizes["parameter"] == 6


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda n, x: empirical.model_hessian_norm(n, torch.zeros(2, 3)), ValueError,
         r"`x` must be one input, shape \(d,\) or \(1, d\); got shape \(2, 3\)"),
        (lambda n, x: empirical.model_hessian_norm(n, x, method="arnoldi"), ValueError,
         r"`method` must be one of 'lanczos', 'power'; got 'arnoldi'"),
        (lambda n, x: empirical.model_hessian_norm(n, x, iterations=0), ValueError,
         r"`iterations` must be an integer >= 1, got 0"),
        (lambda n, x: empirical.model_hessian_norm(n, x, direction=[1.0, 2.0]), ValueError,
         r"`direction` must have length 1 \(the number of outputs\); got 2"),
        (lambda n, x: empirical.loss_hessian_norm(n, x, torch.zeros(1, 1), loss="l1"), ValueError,
         r"`loss` must be one of 'mse', 'cross_entropy'; got 'l1'"),
        (lambda n, x: empirical.gradient_norms([1], x), TypeError, r"`model` must be a torch.nn.Module; got \[1\]"),
    ],
)
def test_curvature_errors(call, exc, match):
    net = empirical.MLP(3, width=4, depth=1, activation="tanh", device="cpu")
    with pytest.raises(exc, match=match):
        call(net, torch.zeros(1, 3))
