"""The measurements one sweep task makes: analytic kernels, or one finite network at init and in training.

:func:`measure` is the default task function of :func:`compare.run_sweep`; it runs on a Dask
worker. A theory task returns ``nngp_theory`` / ``ntk_theory`` on all points (train then test);
an empirical task returns the finite network's kernels at initialisation, and with training
enabled the snapshots of full-batch gradient descent on (1/2N)|f - Y|^2: ``loss``,
``ntk_change`` (relative Frobenius change of the NTK from init), ``f_test`` (outputs on the test
points), ``f_lin_test`` (the linearised network's outputs, Lee et al. 2019, arXiv:1902.06720,
Eq. 9, in discrete time) and ``lin_distance`` (their relative distance).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import xarray as xr

from . import _data
from ._config import DataSpec, SweepConfig
from ._metrics import function_distance, kernel_regression_prediction, relative_kernel_change

__all__ = ["data_variables", "learning_rate", "load_points", "measure"]

#: A loss above this multiple of the initial loss (or a non-finite one) counts as diverged.
DIVERGENCE_FACTOR = 1e6


@functools.lru_cache(maxsize=8)
def load_points(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, is_train): ``n_train`` then ``n_test`` points drawn from the source with ``spec.seed``.

    Targets are +1 for even labels and -1 for odd ones (one output).
    """
    n = spec.n_train + spec.n_test
    if spec.source == "digits":
        x, labels = _data.load_digits()
    elif spec.source == "sphere":
        x, labels = _data.sphere_points(n, spec.dim, correlation=spec.correlation, seed=spec.seed)
    elif spec.source == "file":
        x, labels = _data.load_user_arrays(spec.path)
    elif spec.source == "mnist":
        x, labels = _data.load_mnist(spec.path, limit=max(n, 1000))
    else:
        x, labels = _data.load_cifar10(spec.path, limit=max(n, 1000))
    if len(x) < n:
        raise ValueError(f"data.n_train + data.n_test = {n} but the {spec.source!r} data has only {len(x)} points.")
    idx = np.random.default_rng(spec.seed).choice(len(x), size=n, replace=False)
    y = np.where(labels[idx] % 2 == 0, 1.0, -1.0)
    return x[idx], y, np.arange(n) < spec.n_train


def data_variables(config: SweepConfig) -> xr.Dataset:
    """The sweep's inputs and targets as Dataset variables (``x``, ``y_train``, ``y_test``)."""
    x, y, train = load_points(config.data)
    split = np.where(train, "train", "test")
    return xr.Dataset(
        {
            "x": (("x1", "feature"), x, {"description": "inputs, train points first (norm sqrt(d))"}),
            "y_train": (("train",), y[train], {"description": "training targets (+1 even label, -1 odd)"}),
            "y_test": (("test",), y[~train], {"description": "test targets"}),
        },
        coords={"x1": np.arange(len(x)), "x2": np.arange(len(x)), "split": ("x1", split)},
    )


def _theory(task, config: SweepConfig, x: np.ndarray) -> xr.Dataset:
    import ntktheory

    k = ntktheory.kernels(
        x,
        activation=task.activation,
        depth=task.depth,
        sigma_w=math.sqrt(task.sigma_w2),
        sigma_b=math.sqrt(task.sigma_b2),
        parameterization=config.parameterization,
    )
    return xr.Dataset(
        {
            "ntk_theory": (("x1", "x2"), np.asarray(k["ntk"].values, dtype=np.float64)),
            "nngp_theory": (("x1", "x2"), np.asarray(k["nngp"].values, dtype=np.float64)),
        }
    )


def learning_rate(config: SweepConfig, ntk_train: np.ndarray) -> float:
    """The training learning rate: absolute, or relative to 2N / lambda_max of the analytic NTK."""
    if config.training.learning_rate is not None:
        return float(config.training.learning_rate)
    lam_max = float(np.linalg.eigvalsh(0.5 * (ntk_train + ntk_train.T))[-1])
    return config.training.relative_learning_rate * 2.0 * ntk_train.shape[0] / lam_max


def _size_torch_threads() -> None:
    """One torch thread per Dask worker thread (never oversubscribe the worker's cores)."""
    import torch

    try:
        from distributed import get_worker

        n = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _empirical(task, config: SweepConfig, x: np.ndarray, y: np.ndarray, train: np.ndarray) -> xr.Dataset:
    import torch

    import empirical

    _size_torch_threads()
    dtype = getattr(torch, config.dtype)
    net = empirical.MLP(
        x.shape[1], task.width, task.depth, task.activation,
        sigma_w=math.sqrt(task.sigma_w2), sigma_b=math.sqrt(task.sigma_b2),
        parameterization=config.parameterization, out_features=1, seed=task.seed, dtype=dtype, device="cpu",
    )
    xt = torch.as_tensor(x, dtype=dtype)
    with torch.no_grad():
        k0 = empirical.ntk(net, xt).double().numpy()
        g0 = empirical.nngp(net, xt).double().numpy()
    ds = xr.Dataset({"ntk_empirical": (("x1", "x2"), k0), "nngp_empirical": (("x1", "x2"), g0)})
    diverged = not (np.all(np.isfinite(k0)) and np.all(np.isfinite(g0)))
    if "training" in config.measure:
        tr = _train(net, xt, y, train, k0, task, config)
        diverged = diverged or tr.attrs.pop("diverged")
        ds = ds.merge(tr)
    if diverged:
        for name in ds.data_vars:
            if ds[name].dtype.kind == "f":
                ds[name] = ds[name] * np.nan
    ds["diverged"] = diverged
    return ds


def _train(net, xt, y: np.ndarray, train: np.ndarray, k0: np.ndarray, task, config: SweepConfig) -> xr.Dataset:
    """Full-batch GD on (1/2N)|f(X) - Y|^2 with snapshots; divergence is recorded, not raised."""
    import torch

    import empirical

    steps = config.training.snapshot_steps
    x_train, x_test = xt[torch.as_tensor(train)], xt[torch.as_tensor(~train)]
    y_train = torch.as_tensor(y[train], dtype=xt.dtype)
    n = int(train.sum())
    theory_train = _theory(task, config, xt[torch.as_tensor(train)].double().numpy())["ntk_theory"].values
    eta = learning_rate(config, theory_train)
    with torch.no_grad():
        f0_train = net(x_train)[:, 0].double().numpy()
        f0_test = net(x_test)[:, 0].double().numpy()
    f_lin = kernel_regression_prediction(
        k0[np.ix_(~train, train)], k0[np.ix_(train, train)], y[train], np.asarray(steps, dtype=float),
        learning_rate=eta, f0_test=f0_test, f0_train=f0_train, time="discrete",
    )
    opt = torch.optim.SGD(net.parameters(), lr=eta)
    loss_rec, change, f_test = [], [], []
    diverged = False
    loss0 = None
    for step in range(steps[-1] + 1):
        if step in steps:
            with torch.no_grad():
                loss = 0.5 * float(torch.mean((net(x_train)[:, 0] - y_train) ** 2))
                f_test.append(net(x_test)[:, 0].double().numpy())
            loss0 = loss if loss0 is None else loss0
            loss_rec.append(loss)
            if not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * max(loss0, 1e-12):
                diverged = True
                break
            if step == 0:
                change.append(0.0)
            else:
                with torch.no_grad():
                    kt = empirical.ntk(net, xt).double().numpy()
                change.append(float(relative_kernel_change(kt, k0)))
        if step == steps[-1]:
            break
        opt.zero_grad()
        loss_t = 0.5 * torch.mean((net(x_train)[:, 0] - y_train) ** 2)
        loss_t.backward()
        opt.step()
    m = len(steps)
    pad = m - len(loss_rec)
    loss_arr = np.concatenate([loss_rec, np.full(pad, np.nan)])
    change_arr = np.concatenate([change, np.full(m - len(change), np.nan)])
    f_arr = np.concatenate([np.asarray(f_test).reshape(-1, int((~train).sum())),
                            np.full((m - len(f_test), int((~train).sum())), np.nan)])
    ds = xr.Dataset(
        {
            "loss": (("step",), loss_arr, {"description": "(1/2N)|f(X) - Y|^2 on the training points"}),
            "ntk_change": (("step",), change_arr,
                           {"description": "|Theta_t - Theta_0|_F / |Theta_0|_F on all points"}),
            "f_test": (("step", "test"), f_arr, {"description": "network outputs on the test points"}),
            "f_lin_test": (("step", "test"), f_lin,
                           {"description": "linearised network (empirical NTK at init), discrete-time GD"}),
            "lin_distance": (("step",), np.asarray(function_distance(f_arr, f_lin)),
                             {"description": "|f_test - f_lin_test| / |f_lin_test|"}),
            "learning_rate": ((), eta, {"description": "gradient-descent step size eta"}),
        },
        coords={"step": list(steps)},
    )
    ds.attrs["diverged"] = diverged
    return ds


def measure(task, config: SweepConfig) -> xr.Dataset:
    """The default task function: theory kernels or one finite network's measurements.

    Parameters
    ----------
    task
        A :class:`compare._sweep.Task`.
    config
        The sweep configuration (data, training schedule, what to measure).

    Returns
    -------
    xarray.Dataset
        Without configuration dims; :func:`compare._sweep.combine_results` adds them.
    """
    x, y, train = load_points(config.data)
    if task.kind == "theory":
        return _theory(task, config, x)
    return _empirical(task, config, x, y, train)
