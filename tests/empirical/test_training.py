import numpy as np
import pytest
import torch
from scipy import stats
from tolerances_empirical import tol  # tests/empirical is on sys.path (pytest rootdir import)

import empirical


def data(n=16, m=6, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, dtype=torch.float64, generator=g)
    xt = torch.randn(m, d, dtype=torch.float64, generator=g)
    return x, torch.sin(2 * x[:, :1]), xt


def test_linearized_equals_network_at_step_zero():
    x, y, xt = data()
    net = empirical.MLP(3, width=32, depth=2, activation="tanh", sigma_b=0.1, out_features=2, device="cpu")
    lin = empirical.Linearized(net)
    assert torch.allclose(lin(xt), net(xt), rtol=0, atol=tol("linearized_step0"))
    ds = empirical.train(net, x, torch.cat([y, -y], 1), steps=5, lr_factor=0.5, x_test=xt)
    first = ds.sel(step=0)
    assert np.abs(first.output_test - first.output_test_linearized).max() < tol("linearized_step0")
    assert float(first.function_distance_train) == 0.0
    assert float(first.param_relative_change) == 0.0


@pytest.mark.parametrize("batch_size", [None, 4])
def test_function_space_linearization_equals_parameter_space_gd(batch_size):
    x, y, xt = data()
    net = empirical.MLP(3, width=16, depth=2, activation="erf", sigma_b=0.2, device="cpu")
    ds = empirical.train(net, x, y, steps=12, lr_factor=0.7, x_test=xt, batch_size=batch_size, seed=3,
                         snapshot_steps=[0, 12], measure_ntk=False)
    # the same minibatch order as train(): a CPU generator seeded with `seed`, reshuffled per epoch
    gen = torch.Generator().manual_seed(3)
    order, cursor = torch.randperm(16, generator=gen), 0
    lin = empirical.Linearized(net)
    params = [p for p in lin.parameters() if p.requires_grad]
    lr = ds.attrs["lr"]
    for _ in range(12):
        if batch_size is None:
            idx = torch.arange(16)
        else:
            if cursor + batch_size > 16:
                order, cursor = torch.randperm(16, generator=gen), 0
            idx, cursor = order[cursor : cursor + batch_size], cursor + batch_size
        loss = 0.5 * ((lin(x[idx]) - y[idx]) ** 2).sum() / len(idx)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p.sub_(lr * g)
    atol = tol("function_vs_parameter_linearization")
    assert np.allclose(lin(xt).detach().numpy(), ds.output_test_linearized.sel(step=12).values, atol=atol)
    assert np.allclose(lin(x).detach().numpy(), ds.output_train_linearized.sel(step=12).values, atol=atol)


def test_critical_learning_rate_is_two_n_over_lambda_max():
    x, y, _ = data(n=12)
    net = empirical.MLP(3, width=64, depth=1, activation="relu", device="cpu")
    lam = torch.linalg.eigvalsh(empirical.ntk(net, x)).max().item()
    assert empirical.critical_learning_rate(net, x) == pytest.approx(2 * 12 / lam, rel=tol("critical_learning_rate"))
    ds = empirical.train(net, x, y, steps=1, lr_factor=0.25, snapshot_steps=[0])
    assert ds.attrs["lr"] == pytest.approx(0.25 * 2 * 12 / lam, rel=tol("critical_learning_rate"))
    assert ds.attrs["lambda_max"] == pytest.approx(lam, rel=tol("critical_learning_rate"))


def test_linearized_model_converges_below_and_diverges_above_critical_rate():
    x, y, _ = data(n=10)
    net = empirical.MLP(3, width=32, depth=1, activation="tanh", device="cpu")
    below = empirical.train(net, x, y, steps=400, lr_factor=0.98, measure_ntk=False, snapshot_steps=[0, 400])
    above = empirical.train(net, x, y, steps=400, lr_factor=1.05, measure_ntk=False, snapshot_steps=[0, 400])
    assert below.loss_linearized.sel(step=400) < below.loss_linearized.sel(step=0)
    assert above.attrs["diverged_step_linearized"] > 0
    assert np.isnan(float(above.loss_linearized.sel(step=400)))
    assert bool(above.diverged_linearized.sel(step=400))


def test_divergence_recorded_not_raised():
    x, y, xt = data()
    net = empirical.MLP(3, width=32, depth=2, activation="relu", sigma_w=1.4, device="cpu")
    ds = empirical.train(net, x, y, steps=60, lr_factor=20.0, x_test=xt, snapshot_steps=[0, 30, 60])
    step = ds.attrs["diverged_step"]
    assert 0 < step <= 60
    assert ds.attrs["diverged_loss"] > ds.attrs["divergence_factor"] * (ds.loss_trace[0] + 1) or not np.isfinite(
        ds.attrs["diverged_loss"])
    assert bool(ds.diverged.sel(step=60)) and np.isnan(float(ds.loss.sel(step=60)))
    assert np.isnan(ds.output_test.sel(step=60)).all()
    assert np.isfinite(float(ds.loss.sel(step=0)))
    assert np.isnan(ds.loss_trace[step + 1 :]).all()


def test_distance_to_linearization_shrinks_with_width():
    # Lee et al. 2019: |f - f_lin| = O(1/sqrt(n)) after training; widths 32..512, 2 seeds each.
    x, y, xt = data(n=12, m=8)
    widths = [32, 128, 512]
    dist = []
    for w in widths:
        d = [empirical.train(empirical.MLP(3, width=w, depth=2, activation="tanh", sigma_w=1.5, sigma_b=0.1, seed=s,
                                           device="cpu"),
                             x, y, steps=60, lr_factor=0.5, x_test=xt, measure_ntk=False,
                             snapshot_steps=[60]).function_distance_test.item() for s in (0, 1)]
        dist.append(np.mean(d))
    slope = stats.linregress(np.log(widths), np.log(dist)).slope
    lo, hi = tol("slope_band_linearization")
    assert lo < slope < hi, (dist, slope)


def test_ntk_and_parameter_change_shrink_with_width():
    x, y, _ = data(n=12)
    change = {}
    for w in (32, 512):
        ds = empirical.train(empirical.MLP(3, width=w, depth=2, activation="relu", sigma_w=1.4, device="cpu"), x, y,
                                           steps=50,
                             lr_factor=0.5, snapshot_steps=[0, 50], linearized=False)
        change[w] = (float(ds.ntk_relative_change.sel(step=50)), float(ds.param_relative_change.sel(step=50)))
        assert ds.ntk_empirical.dims == ("step", "x1", "x2")
    assert change[512][0] < 0.5 * change[32][0]
    assert change[512][1] < 0.5 * change[32][1]


def test_cross_entropy_training():
    x, _, _ = data(n=20)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    net = empirical.MLP(3, width=64, depth=1, activation="relu", out_features=3, device="cpu")
    ds = empirical.train(net, x, labels, steps=80, lr=2.0, loss="cross_entropy", snapshot_steps=[0, 80])
    assert ds.loss.sel(step=80) < ds.loss.sel(step=0)
    assert ds.loss_linearized.sel(step=80) < ds.loss_linearized.sel(step=0)
    assert ds.output_train.shape == (2, 20, 3)


def test_dataset_attrs_and_snapshots():
    x, y, xt = data()
    net = empirical.MLP(3, width=16, depth=1, activation="tanh", seed=7, device="cpu")
    ds = empirical.train(net, x, y, steps=30, lr=0.5, x_test=xt)
    assert list(ds.step.values) == sorted(set(ds.step.values)) and ds.step.values[0] == 0 and ds.step.values[-1] == 30
    for key in ("device", "dtype", "conventions", "config", "seeds", "lr", "lr_critical", "seconds", "model_seed"):
        assert key in ds.attrs
    assert ds.attrs["model_seed"] == 7 and ds.attrs["dtype"] == "float64"
    # the user's model is not modified unless inplace=True
    assert torch.equal(net.layers[0].weight, empirical.MLP(3, width=16, depth=1, activation="tanh", seed=7,
                                                           device="cpu").layers[0].weight)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(), ValueError, r"pass exactly one of `lr` \(absolute\) and `lr_factor`"),
        (dict(lr=0.1, lr_factor=0.5), ValueError, r"pass exactly one of `lr`"),
        (dict(lr=-0.1), ValueError, r"`lr` must be > 0, got -0.1"),
        (dict(lr=0.1, loss="hinge"), ValueError, r"`loss` must be one of 'mse', 'cross_entropy'; got 'hinge'"),
        (dict(lr=0.1, batch_size=100), ValueError, r"`batch_size` must be <= the number of training points 16"),
        (dict(lr=0.1, snapshot_steps=[0, 99]), ValueError, r"`snapshot_steps` must lie in 0..steps=5; got 99"),
        (dict(lr=0.1, y_train=torch.zeros(16, 2)), ValueError, r"`y_train` must have shape \(16, 1\)"),
        (dict(lr=0.1, loss="cross_entropy"), ValueError, r"`y_train` for loss='cross_entropy' must be integer"),
        (dict(lr=0.1, steps=-1), ValueError, r"`steps` must be an integer >= 1 \(the number of updates\); got -1"),
        (dict(lr=0.1, steps=0), ValueError, r"`steps` must be an integer >= 1 .*call empirical.ntk / empirical.nngp"),
        (dict(lr=0.1, steps=2.0), TypeError, r"`steps` must be an integer, got 2.0"),
        (dict(lr=0.1, x_train=np.ones((16, 3)) * 1j), TypeError, r"`x_train` must be real; got ndarray of dtype "
         r"dtype\('complex128'\)"),
        (dict(lr=0.1, x_test=torch.ones(4, 3, dtype=torch.complex128)), TypeError,
         r"`x_test` must be real; got Tensor of dtype torch.complex128"),
    ],
)
def test_train_errors(kwargs, exc, match):
    x, y, _ = data()
    net = empirical.MLP(3, width=8, depth=1, activation="tanh", device="cpu")
    args = dict(steps=5) | kwargs
    y_train = args.pop("y_train", y)
    x_train = args.pop("x_train", x)
    with pytest.raises(exc, match=match):
        empirical.train(net, x_train, y_train, **args)
