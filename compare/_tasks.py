"""The measurements one sweep task makes: analytic kernels, or one finite network at init and in training.

:func:`measure` is the default task function of :func:`compare.run_sweep`; it runs on a Dask
worker. A theory task returns ``nngp_theory`` / ``ntk_theory`` on all points (train then test);
an empirical task returns the finite network's kernels at initialisation, and with training
enabled the snapshots of full-batch gradient descent on (1/2N)|f - Y|^2 (run by
:func:`empirical.train`): ``loss``, ``ntk_change`` (relative Frobenius change of the NTK on the
training points from init), ``f_test`` (outputs on the test points), ``f_lin_test`` (the
linearised network's outputs, Lee et al. 2019, arXiv:1902.06720, Eq. 9) and ``lin_distance``
(their relative distance).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import xarray as xr

from . import _data
from ._config import DataSpec, SweepConfig
from ._metrics import function_distance
from ._plan import Task, threads_per_task

__all__ = ["DEVICE", "architecture", "data_variables", "learning_rate", "load_points", "measure", "task_inputs"]

#: Where the finite networks of a sweep run: the CPU, so that a result does not depend on which
#: worker (with or without a GPU) ran it.
DEVICE = "cpu"

#: A loss above this multiple of the initial loss (or a non-finite one) counts as diverged.
DIVERGENCE_FACTOR = 1e6


@functools.lru_cache(maxsize=8)
def load_points(spec: DataSpec, *, images: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, is_train): ``n_train`` then ``n_test`` points drawn from the source with ``spec.seed``.

    Targets are +1 for even labels and -1 for odd ones (one output). ``images``: x as
    (N, C, H, W) (the same points and numbers), for convolutional architectures.
    """
    n = spec.n_train + spec.n_test
    if spec.source == "digits":
        x, labels = _data.load_digits(images=images)
    elif spec.source == "sphere":
        if images:
            raise ValueError("data.source = 'sphere' gives flat points; convolutional architectures need images.")
        x, labels = _data.sphere_points(n, spec.dim, correlation=spec.correlation, seed=spec.seed)
    elif spec.source == "file":
        x, labels = _data.load_user_arrays(spec.path, images=images)
    elif spec.source == "mnist":
        x, labels = _data.load_mnist(spec.path, limit=max(n, 1000), images=images)
    else:
        x, labels = _data.load_cifar10(spec.path, limit=max(n, 1000), images=images)
    if len(x) < n:
        raise ValueError(f"data.n_train + data.n_test = {n} but the {spec.source!r} data has only {len(x)} points.")
    idx = np.random.default_rng(spec.seed).choice(len(x), size=n, replace=False)
    y = _data.binary_targets(labels[idx], "parity")
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


def architecture(task: Task, width: int | None):
    """The task's network as an :mod:`ntktheory.layers` description (a named preset)."""
    from ntktheory import layers

    return layers.preset(task.architecture, depth=task.depth, width=width, activation=task.activation,
                         sigma_w=math.sqrt(task.sigma_w2), sigma_b=math.sqrt(task.sigma_b2))


def task_inputs(task: Task, config: SweepConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, is_train) in the form the task's network takes: flat, or images for CNNs."""
    return load_points(config.data, images=task.architecture != "fcn")


def _theory(task: Task, config: SweepConfig) -> xr.Dataset:
    """The analytic kernels of the task's network on all the sweep's points (train then test).

    One computation per theory configuration and process (:func:`_theory_kernels`): the theory
    task and the empirical tasks of the same (architecture, activation, init, depth), which need
    the analytic NTK on the training points for their learning rate, share it.
    """
    # the standard parameterisation's NTK grows with the width: the task's own (a theory task per width)
    width = task.width if config.parameterization == "standard" else None
    key = dataclasses.replace(task, kind="theory", width=width, seed=None, index=(), dims=())
    ntk, nngp = _theory_kernels(key, config.parameterization, config.data)
    return xr.Dataset({"ntk_theory": (("x1", "x2"), ntk), "nngp_theory": (("x1", "x2"), nngp)})


@functools.lru_cache(maxsize=16)
def _theory_kernels(task: Task, parameterization: str, data: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """(ntk, nngp) of the theory ``task`` (width None unless standard) on the points of ``data``
    (read-only arrays: they are shared between the tasks of a process)."""
    import ntktheory

    x = load_points(data, images=task.architecture != "fcn")[0]
    if task.architecture == "fcn":
        k = ntktheory.kernels(
            x.reshape(len(x), -1),
            activation=task.activation,
            depth=task.depth,
            sigma_w=math.sqrt(task.sigma_w2),
            sigma_b=math.sqrt(task.sigma_b2),
            parameterization=parameterization,
            width=task.width,
        )
    else:
        k = ntktheory.kernels(x, architecture=architecture(task, task.width), parameterization=parameterization)
    out = tuple(np.asarray(k[name].values, dtype=np.float64) for name in ("ntk", "nngp"))
    for a in out:
        a.flags.writeable = False
    return out


def learning_rate(config: SweepConfig, ntk_train: np.ndarray | None) -> float:
    """The training learning rate: absolute, or relative to 2N / lambda_max of the analytic NTK."""
    if config.training.learning_rate is not None:
        return float(config.training.learning_rate)
    lam_max = float(np.linalg.eigvalsh(0.5 * (ntk_train + ntk_train.T))[-1])
    return config.training.relative_learning_rate * 2.0 * ntk_train.shape[0] / lam_max


def _size_torch_threads() -> None:
    """Size torch's thread pool for a task running on a Dask worker (:func:`~compare._plan.threads_per_task`:
    one thread per task, ``NTKGAP_TORCH_THREADS`` overrides). Outside a worker nothing changes."""
    import torch  # here, not at the top: ``import compare`` stays free of torch

    n = threads_per_task("NTKGAP_TORCH_THREADS")
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _empirical(task: Task, config: SweepConfig, x: np.ndarray, y: np.ndarray, train: np.ndarray) -> xr.Dataset:
    import torch

    import empirical

    _size_torch_threads()
    dtype = getattr(torch, config.dtype)
    if task.architecture == "fcn":
        net = empirical.MLP(
            x.shape[1], width=task.width, depth=task.depth, activation=task.activation,
            sigma_w=math.sqrt(task.sigma_w2), sigma_b=math.sqrt(task.sigma_b2),
            parameterization=config.parameterization, out_features=1, seed=task.seed, dtype=dtype, device=DEVICE,
        )
    else:
        net = empirical.build(architecture(task, task.width), x.shape[1:], parameterization=config.parameterization,
                              seed=task.seed, dtype=dtype, device=DEVICE)
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


def _train(net, xt, y: np.ndarray, train: np.ndarray, k0: np.ndarray, task: Task, config: SweepConfig) -> xr.Dataset:
    """Full-batch GD with :func:`empirical.train` (network and linearisation side by side).

    The step size is one per (activation, init, depth), from the analytic NTK (see
    :func:`learning_rate`), so that all widths and seeds train at the same rate as the
    infinite-width kernel-regression prediction they are compared with.
    """
    import torch

    import empirical

    steps = list(config.training.snapshot_steps)
    tr_mask, te_mask = torch.as_tensor(train), torch.as_tensor(~train)
    if config.training.learning_rate is None:  # relative to the analytic NTK of the training points
        n_train = int(train.sum())
        eta = learning_rate(config, _theory(task, config)["ntk_theory"].values[:n_train, :n_train])
    else:
        eta = learning_rate(config, None)
    rec = empirical.train(
        net, xt[tr_mask], torch.as_tensor(y[train], dtype=xt.dtype)[:, None], steps=steps[-1], lr=eta,
        x_test=xt[te_mask], snapshot_steps=steps, measure_ntk=True, linearized=True,
        divergence_factor=DIVERGENCE_FACTOR, inplace=True,
    )
    f_test = rec["output_test"].isel(output=0).values
    f_lin = rec["output_test_linearized"].isel(output=0).values
    ds = xr.Dataset(
        {
            "loss": (("step",), rec["loss"].values, {"description": "(1/2N)|f(X) - Y|^2 on the training points"}),
            "ntk_change": (("step",), rec["ntk_relative_change"].values,
                           {"description": "|Theta_t - Theta_0|_F / |Theta_0|_F on the training points"}),
            "f_test": (("step", "test"), f_test, {"description": "network outputs on the test points"}),
            "f_lin_test": (("step", "test"), f_lin,
                           {"description": "linearised network (Taylor model at init) trained alongside"}),
            "lin_distance": (("step",), np.asarray(function_distance(f_test, f_lin)),
                             {"description": "|f_test - f_lin_test| / |f_lin_test| on the test points"}),
            "f0_train": (("train",), rec["output_train"].isel(step=0, output=0).values,
                         {"description": "network outputs on the training points at initialisation"}),
            "learning_rate": ((), eta, {"description": "gradient-descent step size eta"}),
        },
        coords={"step": steps},
    )
    ds.attrs["diverged"] = bool(rec["diverged"].any())
    return ds


def measure(task: Task, config: SweepConfig) -> xr.Dataset:
    """The default task function: theory kernels or one finite network's measurements.

    Parameters
    ----------
    task
        A :class:`compare._plan.Task`.
    config
        The sweep configuration (data, training schedule, what to measure).

    Returns
    -------
    xarray.Dataset
        Without configuration dims; :func:`compare._sweep.combine_results` adds them.
    """
    if task.kind == "theory":
        return _theory(task, config)
    x, y, train = task_inputs(task, config)
    return _empirical(task, config, x, y, train)
