"""Recipe ``xiao-pennington-schoenholz``: trainability and generalisation of deep networks, by phase.

Xiao, Pennington & Schoenholz 2020 (Disentangling Trainability and Generalization in Deep Neural
Networks, arXiv:1912.13053, ICML 2020, Sec. 3-4): for very wide, very deep networks
the NTK keeps only a weak dependence on the data. In the ordered phase (chi_1 < 1) its spectrum
degenerates: kappa grows like 1 / (l chi_1^l) and gradient descent fails to train beyond a few
xi_1 = -1 / log chi_1 layers. In the chaotic phase (chi_1 > 1) the NTK becomes nearly diagonal:
networks train (memorise the training set) but the mean predictor Theta(test, train) Theta^-1 Y
loses its data dependence like (chi_c* / chi_1)^l, so test accuracy falls to chance beyond a few
xi* = -1 / (log chi_c* - log chi_1) layers. CNNs without pooling behave almost like FCNs (their
Flatten readout only reads the per-position diagonal); global average pooling reads the spatial
off-diagonal terms too, and changes generalisation.

As in the authors' notebook: erf, sigma_b^2 = 0.18, a grid of sigma_w^2 across the order/chaos
boundary (about 1.75 here), every depth 1..L from one kernel pass per sigma_w^2 column
(``ntktheory.kernels(..., all_depths=True)``), one-hot targets (not centred), the infinite-width
gradient-descent mean prediction (Lee et al. 2019, Eq. 16; ``ntktheory.predict_from_kernels``) at
a finite time t with learning rate eta = 2 N k / lambda_max(Theta(X, X)) (loss 1 / (2 N k) |f - Y|^2)
and diag_reg 1e-4, accuracy = argmax over the 10 outputs; 8 xi_1 and 8 xi* drawn over the heat maps.
With one-hot targets the constant mode of Theta carries the class frequencies, so where the
data-dependent part of the prediction is lost every input is assigned the most frequent training
class (the "chance" accuracy here is 1/10; that class's share of the test set is in attrs).

Finite width: CNN and CNN-GAP networks (``empirical.build``, float32, NTK parameterisation) at a few
grid points, trained by full-batch gradient descent at ``lr_factor`` of their own critical rate
2N / lambda_max(Theta_0) for t / lr_factor... steps, i.e. the same time t in the same units.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._analysis import bootstrap_interval
from ._engine import map_tasks
from ._registry import Recipe
from ._report import Claim, judge_ci_threshold

ARCHITECTURES = ("fcn", "cnn", "cnn-gap")
#: The multiple of the depth scales drawn over the heat maps (the authors' notebook: 8 xi_1, 8 xi*).
XI_MULTIPLE = 8.0
#: Cells "beyond" a line lie at depth >= BEYOND * 8 xi; cells "before" it at depth <= BEFORE * 8 xi.
BEYOND, BEFORE = 1.5, 0.5
#: Test accuracy counted as "near chance": at most chance + NEAR_CHANCE; train accuracy "high": at least HIGH.
NEAR_CHANCE, HIGH = 0.1, 0.9
#: Training has "failed" when the train accuracy is closer to chance than to a fitted training set:
#: below the midpoint (chance + 1) / 2. (Not "at chance": in the ordered phase a collapsed NTK still
#: adds each training point's own label through its larger diagonal, which lifts the train accuracy of
#: an untrained network above chance.)
def failed_threshold(chance: float) -> float:
    """(chance + 1) / 2: below it a network has not learned its training set."""
    return (chance + 1.0) / 2.0
#: CNN without pooling "agrees closely" with the FCN: mean |test-accuracy difference| over the grid below this.
CLOSE = 0.05
#: CNN-GAP differs "by much more": its mean |difference| from the CNN is at least this factor times the CNN-FCN one.
MUCH_MORE = 2.0
#: Bootstrap resamples of the claims' intervals (over training or test points).
N_BOOT = 500
#: Environment variable naming the extracted ``cifar-10-batches-py`` folder (scale ``paper``).
CIFAR10_ENV = "NTKGAP_CIFAR10"
SOURCE_ABSTRACT = "Abstract"
SOURCE_LARGE_DEPTH = "Sec. 3-4, Table 1"
PAPER = "Xiao, Pennington & Schoenholz 2020"


# ---------------------------------------------------------------------- data
def load_task_data(config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, labels_train, x_test, labels_test): images (N, C, H, W) on the sphere, integer labels.

    ``config["data"]`` is ``"digits"`` (bundled sklearn digits, 8 x 8) or ``"cifar10"`` (the user's
    extracted ``cifar-10-batches-py`` folder: ``config["data_path"]``, or the environment variable
    ``NTKGAP_CIFAR10`` when set). A random, disjoint train/test split of the pool (seed
    ``config["data_seed"]``).

    Raises
    ------
    FileNotFoundError
        CIFAR-10 not found: the message names the folder looked in and how to point to another.
    """
    from .. import _data

    n, m, seed = int(config["n_train"]), int(config["n_test"]), int(config.get("data_seed", 0))
    if config["data"] == "digits":
        x, y = _data.load_digits(images=True)
        idx = np.random.default_rng(seed).permutation(len(x))[: n + m]
        return x[idx[:n]], y[idx[:n]], x[idx[n:]], y[idx[n:]]
    if config["data"] != "cifar10":
        raise ValueError(f"`data` must be 'digits' or 'cifar10'; got {config['data']!r}.")
    path = Path(os.environ.get(CIFAR10_ENV) or config.get("data_path") or "cifar-10-batches-py")
    if not (path / "data_batch_1").exists() or not (path / "test_batch").exists():
        raise FileNotFoundError(
            f"CIFAR-10 not found in {str(path.resolve())!r} (need data_batch_1..5 and test_batch of the python "
            f"version). Scale 'paper' of xiao-pennington-schoenholz reads your local copy; set {CIFAR10_ENV}="
            "/path/to/cifar-10-batches-py (ntkgap does not download data)."
        )
    xtr, ytr = _data.load_cifar10(path, split="train", limit=None, images=True)
    xte, yte = _data.load_cifar10(path, split="test", limit=None, images=True)
    rng = np.random.default_rng(seed)
    i, j = rng.permutation(len(xtr))[:n], rng.permutation(len(xte))[:m]
    return xtr[i], ytr[i], xte[j], yte[j]


def _inputs(arch: str, x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1) if arch == "fcn" else x


def architecture(name: str, *, depth: int, sigma_w2: float, sigma_b2: float, activation: str,
                 classes: int, width: int | None = None):
    """The ``ntktheory.layers`` preset ``name`` ("fcn", "cnn", "cnn-gap"): depth x (Dense or 3x3 Conv, act)."""
    from ntktheory import layers as L

    return L.preset(name, depth=depth, width=width, activation=activation, sigma_w=math.sqrt(sigma_w2),
                    sigma_b=math.sqrt(sigma_b2), out_features=classes)


# ---------------------------------------------------------------------- infinite width
def _column_task(task: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """One (architecture, sigma_w^2) column: kernels at every depth from one pass, GD predictions at every
    time, per-example correctness."""
    import warnings

    import ntktheory

    arch = architecture(task["architecture"], depth=task["depth"], sigma_w2=task["sigma_w2"],
                        sigma_b2=task["sigma_b2"], activation=task["activation"], classes=1)
    xtr, xte = _inputs(task["architecture"], task["x_train"]), _inputs(task["architecture"], task["x_test"])
    ytr, yte = np.asarray(task["y_train"]), np.asarray(task["y_test"])
    k = int(task["classes"])
    targets = np.eye(k)[ytr]
    times = np.asarray(task["times"], dtype=float)
    k_train = ntktheory.kernels(xtr, architecture=arch, all_depths=True)["ntk"].values
    k_cross = ntktheory.kernels(xte, xtr, architecture=arch, all_depths=True)["ntk"].values
    n, m, depth = len(xtr), len(xte), task["depth"]
    out = {"train_correct": np.zeros((depth, times.size, n), bool),
           "test_correct": np.zeros((depth, times.size, m), bool),
           "lambda_max": np.full(depth, np.nan), "lambda_min": np.full(depth, np.nan)}
    for d in range(depth):
        theta = k_train[d]
        if not np.all(np.isfinite(theta)):
            continue
        ev = np.linalg.eigvalsh(0.5 * (theta + theta.T))
        out["lambda_max"][d], out["lambda_min"][d] = ev[-1], ev[0]
        eta = task["lr_factor"] * n * k / ev[-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ntktheory.KernelConditionWarning)
            pred = ntktheory.predict_from_kernels(theta, np.vstack([theta, k_cross[d]]), targets, time=times,
                                                  learning_rate=eta, diag_reg=task["diag_reg"], covariance=False)
        mean = pred["mean"].values  # (time, N + M, k)
        out["train_correct"][d] = mean[:, :n].argmax(-1) == ytr
        out["test_correct"][d] = mean[:, n:].argmax(-1) == yte
    return out


# ---------------------------------------------------------------------- finite width
def _finite_task(task: Mapping[str, Any]) -> np.ndarray:
    """Train one finite CNN / CNN-GAP (float32) for the same time t; (train acc, test acc, diverged, lr, steps).

    The rate is ``lr_factor`` x 2N / lambda_max of the *analytic* NTK at the same grid point (the units of the
    infinite-width prediction; the empirical lambda_max of a narrow network fluctuates around it, and
    computing it would cost more than the training). A run that diverges is recorded as such."""
    import torch

    import empirical

    arch = architecture(task["architecture"], depth=task["depth"], sigma_w2=task["sigma_w2"],
                        sigma_b2=task["sigma_b2"], activation=task["activation"], classes=task["classes"],
                        width=task["channels"])
    xtr, xte = np.asarray(task["x_train"]), np.asarray(task["x_test"])
    ytr, yte = np.asarray(task["y_train"]), np.asarray(task["y_test"])
    net = empirical.build(arch, in_shape=xtr.shape[1:], seed=task["seed"], dtype=torch.float32, device="cpu")
    steps = finite_steps(task["time"], task["lr_factor_inf"], task["lr_factor"])
    run = empirical.train(net, xtr.astype(np.float32), np.eye(task["classes"], dtype=np.float32)[ytr],
                          steps=steps, lr=task["lr"], x_test=xte.astype(np.float32),
                          snapshot_steps=[0, steps], measure_ntk=False, linearized=False, inplace=True)
    diverged = bool(run["diverged"].any())
    f_train, f_test = run["output_train"].values[-1], run["output_test"].values[-1]
    if diverged:
        return np.array([np.nan, np.nan, 1.0, float(run.attrs["lr"]), steps])
    return np.array([float(np.mean(f_train.argmax(1) == ytr)), float(np.mean(f_test.argmax(1) == yte)), 0.0,
                     float(run.attrs["lr"]), steps])


def finite_steps(time: float, lr_factor_inf: float, lr_factor: float) -> int:
    """GD steps at ``lr_factor`` x 2N / lambda_max that reach the infinite-width time ``time`` at
    eta = ``lr_factor_inf`` N k / lambda_max: eta t = (2 lr_factor N k / lambda_max) steps.

    Examples
    --------
    >>> finite_steps(64, 2.0, 0.5)   # eta = 2 N k / lambda_max for t = 64 is 128 steps at half the critical rate
    128
    """
    return math.ceil(time * lr_factor_inf / (2.0 * lr_factor))


def mean_field_table(sigma_w2: np.ndarray, sigma_b2: float, activation: str) -> dict[str, np.ndarray]:
    """chi_1, chi_c*, q*, c*, phase, xi_1 = -1/log chi_1 (inf unless ordered) and
    xi* = -1/(log chi_c* - log chi_1) (inf unless chaotic), per sigma_w^2 (``ntktheory.mean_field``)."""
    import ntktheory

    mf = ntktheory.mean_field(activation, np.asarray(sigma_w2, dtype=float), sigma_b2)
    chi_1, chi_c = np.asarray(mf.chi_1, float), np.asarray(mf.chi_c, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_1 = np.where(chi_1 < 1, -1.0 / np.log(chi_1), np.inf)
        xi_star = np.where(chi_1 > 1, -1.0 / (np.log(chi_c) - np.log(chi_1)), np.inf)
    return {"chi_1": chi_1, "chi_c": chi_c, "q_star": np.asarray(mf.q_star, float),
            "c_star": np.asarray(mf.c_star, float), "xi_1": xi_1, "xi_star": xi_star,
            "phase": np.asarray(mf.phase_names())}


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse an inconsistent configuration before any work (the message names the key)."""
    sw2 = [float(v) for v in config["sigma_w2"]]
    times = [float(t) for t in config["times"]]
    for key in ("time", "finite_time"):
        if float(config[key]) not in times:
            raise ValueError(f"`{key}` = {config[key]!r} must be one of `times` {times!r}.")
    unknown = sorted(set(config["architectures"]) - set(ARCHITECTURES))
    if unknown:
        raise ValueError(f"`architectures` must be among {ARCHITECTURES!r}; got {unknown!r}.")
    for p in config["finite_points"]:
        if not any(math.isclose(float(p["sigma_w2"]), v) for v in sw2) or not 1 <= int(p["depth"]) <= config["depth"]:
            raise ValueError(f"finite point {p!r} must lie on the grid: sigma_w2 in {sw2!r}, 1 <= depth <= "
                             f"{config['depth']!r}.")
    missing = sorted(set(config["finite_architectures"]) - set(config["architectures"]))
    if missing:
        raise ValueError(f"`finite_architectures` {missing!r} must also be in `architectures` (their learning "
                         "rate comes from the grid's analytic lambda_max).")


def experiment(config: Mapping[str, Any], scheduler: str | None) -> xr.Dataset:
    """Infinite-width accuracies on the (architecture, sigma_w2, depth, time) grid, mean field, finite-width probes."""
    import ntktheory

    check_config(config)
    x_train, y_train, x_test, y_test = load_task_data(config)  # a missing CIFAR-10 fails here, before any work
    archs, sw2, depth = list(config["architectures"]), np.asarray(config["sigma_w2"], float), int(config["depth"])
    sb2, act, classes = float(config["sigma_b2"]), config["activation"], int(config["classes"])
    times = [float(t) for t in config["times"]]
    data = dict(sigma_b2=sb2, activation=act, classes=classes, x_train=x_train, y_train=y_train, x_test=x_test,
                y_test=y_test)
    tasks = [dict(architecture=a, sigma_w2=float(s), depth=depth, times=times, lr_factor=config["lr_factor"],
                  diag_reg=config["diag_reg"], **data) for a in archs for s in sw2]
    cols = map_tasks(_column_task, tasks, scheduler,
                     label=f"infinite width: kernels of every depth 1..{depth}, one task per (architecture, σ_w²)")

    def grid(key: str) -> np.ndarray:
        return np.stack([c[key] for c in cols]).reshape(len(archs), len(sw2), *cols[0][key].shape)

    train_correct, test_correct, lam_max = grid("train_correct"), grid("test_correct"), grid("lambda_max")
    mf = mean_field_table(sw2, sb2, act)
    points, f_archs, seeds = list(config["finite_points"]), list(config["finite_architectures"]), config["finite_seeds"]
    n = len(x_train)
    f_tasks = []
    for a in f_archs:
        for p in points:
            i, j = archs.index(a), int(np.argmin(np.abs(sw2 - float(p["sigma_w2"]))))
            lr = config["finite_lr_factor"] * 2 * n / float(lam_max[i, j, int(p["depth"]) - 1])
            f_tasks += [dict(architecture=a, sigma_w2=float(sw2[j]), depth=int(p["depth"]), seed=s,
                             channels=config["channels"], time=config["finite_time"], lr=lr,
                             lr_factor=config["finite_lr_factor"], lr_factor_inf=config["lr_factor"], **data)
                        for s in range(seeds)]
    fin = np.zeros((len(f_archs), len(points), seeds, 5))
    if f_tasks:
        fin = np.stack(map_tasks(_finite_task, f_tasks, scheduler,
                                 label=f"finite width: {config['channels']}-channel networks trained by GD"))
        fin = fin.reshape(len(f_archs), len(points), seeds, 5)
    main = times.index(float(config["time"]))
    majority = int(np.bincount(y_train, minlength=classes).argmax())
    grid_dims = ("architecture", "sigma_w2", "depth")
    fdims = ("finite_architecture", "point", "finite_seed")
    ds = xr.Dataset(
        {
            "train_accuracy": (grid_dims, train_correct[:, :, :, main].mean(-1)),
            "test_accuracy": (grid_dims, test_correct[:, :, :, main].mean(-1)),
            "train_accuracy_by_time": ((*grid_dims, "time"), train_correct.mean(-1)),
            "test_accuracy_by_time": ((*grid_dims, "time"), test_correct.mean(-1)),
            "train_correct": ((*grid_dims, "time", "train"), train_correct),
            "test_correct": ((*grid_dims, "time", "test"), test_correct),
            "lambda_max": (grid_dims, lam_max),
            "lambda_min": (grid_dims, grid("lambda_min")),
            **{k: (("sigma_w2",), v) for k, v in mf.items()},
            "finite_train_accuracy": (fdims, fin[..., 0]),
            "finite_test_accuracy": (fdims, fin[..., 1]),
            "finite_diverged": (fdims, fin[..., 2].astype(bool)),
            "finite_learning_rate": (fdims, fin[..., 3]),
        },
        coords={
            "architecture": archs, "sigma_w2": sw2, "depth": np.arange(1, depth + 1), "time": times,
            "train": np.arange(n), "test": np.arange(len(x_test)),
            "label_train": ("train", y_train), "label_test": ("test", y_test),
            "finite_architecture": f_archs, "finite_seed": np.arange(seeds),
            "point": [p["label"] for p in points],
            "point_sigma_w2": ("point", [float(p["sigma_w2"]) for p in points]),
            "point_depth": ("point", [int(p["depth"]) for p in points]),
        },
        attrs={
            "chance_accuracy": 1.0 / classes,
            "majority_class": majority,
            "majority_class_test_accuracy": float(np.mean(y_test == majority)),
            "critical_sigma_w2": float(ntktheory.critical_sigma_w2(act, sb2)),
            "xi_multiple": XI_MULTIPLE,
            "main_time": float(config["time"]),
            "finite_time": float(config["finite_time"]),
            "finite_steps": finite_steps(config["finite_time"], config["lr_factor"], config["finite_lr_factor"]),
            "channels": int(config["channels"]),
            "data": config["data"],
            "input_shape": list(x_train.shape[1:]),
        },
    )
    ds["train_accuracy"].attrs["long_name"] = (
        f"infinite-width GD mean prediction at time t = {config['time']:g} (eta = {config['lr_factor']:g} N k / "
        f"lambda_max, diag_reg {config['diag_reg']:g}), argmax accuracy on the training points")
    ds["test_accuracy"].attrs["long_name"] = "the same on the held-out test points"
    ds["train_accuracy_by_time"].attrs["long_name"] = "train accuracy of the same prediction at each time t"
    ds["test_accuracy_by_time"].attrs["long_name"] = "test accuracy of the same prediction at each time t"
    ds["train_correct"].attrs["long_name"] = "per training point: prediction's argmax == label"
    ds["test_correct"].attrs["long_name"] = "per test point: prediction's argmax == label"
    ds["lambda_max"].attrs["long_name"] = "largest eigenvalue of the analytic NTK Theta(X, X) (one output)"
    ds["lambda_min"].attrs["long_name"] = (
        "smallest eigenvalue of Theta(X, X) (float64: rounding below ~1e-16 lambda_max)")
    ds["xi_1"].attrs["long_name"] = "-1 / log chi_1 (trainability depth scale; inf outside the ordered phase)"
    ds["xi_star"].attrs["long_name"] = (
        "-1 / (log chi_c* - log chi_1) (generalisation depth scale; inf outside the chaotic phase)")
    ds["finite_train_accuracy"].attrs["long_name"] = (
        f"finite network ({config['channels']} channels, float32, NTK parameterisation) after "
        f"{ds.attrs['finite_steps']} GD steps at finite_lr_factor x 2N / lambda_max(analytic Theta) (time t = "
        f"{config['finite_time']:g} in the units of the grid): train accuracy (NaN if diverged)")
    ds["finite_test_accuracy"].attrs["long_name"] = "the same, test accuracy"
    return ds


# ---------------------------------------------------------------------- analysis (from the Dataset alone)
def _main_time(ds: xr.Dataset) -> float:
    return float(ds.attrs.get("main_time", ds.time.values[-1]))


def depth_lines(ds: xr.Dataset) -> xr.Dataset:
    """The drawn lines: ``line_xi_1`` = 8 xi_1 (ordered columns, else NaN), ``line_xi_star`` = 8 xi* (chaotic)."""
    m = float(ds.attrs.get("xi_multiple", XI_MULTIPLE))
    xi_1 = ds["xi_1"].where(np.isfinite(ds["xi_1"]))
    xi_star = ds["xi_star"].where(np.isfinite(ds["xi_star"]))
    return xr.Dataset({"line_xi_1": m * xi_1, "line_xi_star": m * xi_star})


def regions(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Boolean (sigma_w2, depth) masks: ordered / chaotic cells before (depth <= 0.5 x 8 xi) and beyond
    (depth >= 1.5 x 8 xi) the drawn line. Fixed fractions of the paper's lines, not fitted to the data."""
    lines = depth_lines(ds)
    depth = ds["depth"]
    out = {}
    for phase, line in (("ordered", lines["line_xi_1"]), ("chaotic", lines["line_xi_star"])):
        ok = np.isfinite(line)
        out[f"{phase}_before"] = ok & (depth <= BEFORE * line)
        out[f"{phase}_beyond"] = ok & (depth >= BEYOND * line)
    return {k: v.transpose("sigma_w2", "depth") for k, v in out.items()}


def region_accuracy(correct: xr.DataArray, mask: xr.DataArray, *, example_dim: str,
                    seed: int = 0) -> tuple[float, float, float, int]:
    """Mean accuracy over the cells of ``mask`` and all examples, with a 95% bootstrap interval over examples.

    ``correct`` is (sigma_w2, depth, example) booleans of one architecture. The bootstrap resamples
    the examples (the same ones in every cell), so the interval reflects the finite train or test
    set. Returns (value, lower, upper, number of cells); NaNs and 0 when the mask is empty.
    """
    m = mask.transpose("sigma_w2", "depth").values
    if not m.any():
        return math.nan, math.nan, math.nan, 0
    vals = correct.transpose(example_dim, "sigma_w2", "depth").values[:, m].astype(float)  # (example, cell)
    value, lo, hi = bootstrap_interval(vals, lambda a: float(a.mean()), n_boot=N_BOOT, seed=seed)
    return value, lo, hi, int(m.sum())


def _both(*verdicts: bool | None) -> bool | None:
    """Conjunction of verdicts: False if any is False, True if all are True, else None."""
    if any(v is False for v in verdicts):
        return False
    return True if all(v is True for v in verdicts) else None


def _fmt(v: float, lo: float, hi: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _half_width(lo: float, hi: float) -> float | None:
    return (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None


def _trainability_claim(ds: xr.Dataset, arch: str, masks: dict[str, xr.DataArray]) -> Claim:
    chance = float(ds.attrs["chance_accuracy"])
    train = ds["train_correct"].sel(architecture=arch, time=_main_time(ds))
    beyond = region_accuracy(train, masks["ordered_beyond"], example_dim="train", seed=1)
    before = region_accuracy(train, masks["ordered_before"], example_dim="train", seed=2)
    failed = failed_threshold(chance)
    held = _both(judge_ci_threshold(beyond[1], beyond[2], failed, above=False),
                 judge_ci_threshold(before[1], before[2], HIGH, above=True))
    return Claim(
        f"{arch}: in the ordered phase, gradient descent fails to train networks deeper than a few ξ₁ = −1/log χ₁ "
        "(κ grows like 1/(l χ₁^l)), while shallower ones train",
        f"train accuracy at depth ≥ {BEYOND:g} × {XI_MULTIPLE:g}ξ₁ (ordered columns, {beyond[3]} cells; 95% "
        "bootstrap CI over training points)",
        beyond[0], _half_width(beyond[1], beyond[2]),
        f"reproduced if that CI lies below (chance + 1)/2 = {failed:.2f} (not trained) and the train "
        f"accuracy at depth ≤ {BEFORE:g} × {XI_MULTIPLE:g}ξ₁ has its CI above {HIGH:g}; not reproduced if either "
        "CI lies entirely on the other side; else inconclusive",
        held,
        f"beyond: {_fmt(*beyond[:3])}; before ({before[3]} cells): {_fmt(*before[:3])}. "
        + ("No grid cell lies beyond the line at this scale. " if beyond[3] == 0 else ""),
        source=f"{SOURCE_LARGE_DEPTH}; 8ξ₁ lines of the authors' notebook",
    )


def _memorisation_claim(ds: xr.Dataset, arch: str, masks: dict[str, xr.DataArray]) -> Claim:
    chance = float(ds.attrs["chance_accuracy"])
    test = ds["test_correct"].sel(architecture=arch, time=_main_time(ds))
    train = ds["train_correct"].sel(architecture=arch, time=_main_time(ds))
    beyond_test = region_accuracy(test, masks["chaotic_beyond"], example_dim="test", seed=3)
    beyond_train = region_accuracy(train, masks["chaotic_beyond"], example_dim="train", seed=4)
    before_test = region_accuracy(test, masks["chaotic_before"], example_dim="test", seed=5)
    held = _both(judge_ci_threshold(beyond_test[1], beyond_test[2], chance + NEAR_CHANCE, above=False),
                 judge_ci_threshold(beyond_train[1], beyond_train[2], HIGH, above=True),
                 judge_ci_threshold(before_test[1], before_test[2], chance + NEAR_CHANCE, above=True))
    return Claim(
        f"{arch}: in the chaotic phase, networks deeper than a few ξ* = −1/(log χ_c* − log χ₁) still reach "
        "high training accuracy (they memorise) but their test accuracy falls to chance",
        f"test accuracy at depth ≥ {BEYOND:g} × {XI_MULTIPLE:g}ξ* (chaotic columns, {beyond_test[3]} cells; 95% "
        "bootstrap CI over test points)",
        beyond_test[0], _half_width(beyond_test[1], beyond_test[2]),
        f"reproduced if that CI lies below chance + {NEAR_CHANCE:g}, the train accuracy there has its CI above "
        f"{HIGH:g}, and the test accuracy at depth ≤ {BEFORE:g} × {XI_MULTIPLE:g}ξ* has its CI above chance + "
        f"{NEAR_CHANCE:g}; not reproduced if any CI lies entirely on the other side; else inconclusive",
        held,
        f"beyond: test {_fmt(*beyond_test[:3])}, train {_fmt(*beyond_train[:3])}; before ({before_test[3]} cells): "
        f"test {_fmt(*before_test[:3])}. Chance = {chance:.2f}; predicting the most frequent training class scores "
        f"{float(ds.attrs['majority_class_test_accuracy']):.3f} on the test set. "
        + ("No grid cell lies beyond the line at this scale. " if beyond_test[3] == 0 else ""),
        source=f"{SOURCE_ABSTRACT}; {SOURCE_LARGE_DEPTH}",
    )


def _correct(ds: xr.Dataset, arch: str, split: str = "test") -> np.ndarray:
    """(example, sigma_w2, depth) float correctness of ``arch`` at the main time."""
    c = ds[f"{split}_correct"].sel(architecture=arch, time=_main_time(ds))
    return c.transpose(split, "sigma_w2", "depth").values.astype(float)


def _diff_stat(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over cells of |accuracy(a) - accuracy(b)|; a, b are (example, cell) correctness."""
    return float(np.mean(np.abs(a.mean(0) - b.mean(0))))


def architecture_differences(ds: xr.Dataset, *, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Mean |test-accuracy difference| over the grid, CNN-FCN and CNN-GAP-CNN, and their ratio (95% bootstrap
    CIs over test points, paired: the same test points for every architecture)."""
    def flat(arch: str) -> np.ndarray:
        c = _correct(ds, arch)
        return c.reshape(c.shape[0], -1)

    fcn, cnn, gap = flat("fcn"), flat("cnn"), flat("cnn-gap")
    return {
        "cnn_fcn": bootstrap_interval((cnn, fcn), _diff_stat, n_boot=N_BOOT, seed=seed),
        "gap_cnn": bootstrap_interval((gap, cnn), _diff_stat, n_boot=N_BOOT, seed=seed + 1),
        "ratio": bootstrap_interval((fcn, cnn, gap), lambda f, c, g: _diff_stat(g, c) / _diff_stat(c, f),
                                    n_boot=N_BOOT, seed=seed + 2),
    }


def gap_advantage(ds: xr.Dataset, *, seed: int = 0) -> dict[str, Any]:
    """Where CNN-GAP beats the CNN, cross-fitted: the cell of largest test-accuracy gain is chosen on the
    even-numbered test points and measured (95% bootstrap CI) on the odd-numbered ones."""
    gap, cnn = _correct(ds, "cnn-gap"), _correct(ds, "cnn")
    select, measure = np.arange(gap.shape[0]) % 2 == 0, np.arange(gap.shape[0]) % 2 == 1
    gain = gap[select].mean(0) - cnn[select].mean(0)
    i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
    value, lo, hi = bootstrap_interval((gap[measure][:, i, j], cnn[measure][:, i, j]),
                                       lambda g, c: float(g.mean() - c.mean()), seed=seed)
    return {"value": value, "low": lo, "high": hi, "sigma_w2": float(ds.sigma_w2[i]), "depth": int(ds.depth[j]),
            "gain_selection": float(gain[i, j])}


def finite_pattern(ds: xr.Dataset, *, seed: int = 0) -> xr.Dataset:
    """Per (finite_architecture, point): finite accuracies (mean over seeds, 95% bootstrap CI), the infinite-width
    values at the same grid cell, and whether each side "trains" / "generalises" (above the midpoint
    between chance and 1 for training; between chance and the architecture's best test accuracy for test)."""
    chance = float(ds.attrs["chance_accuracy"])
    rows = []
    for a in ds.finite_architecture.values:
        best_test = float(ds["test_accuracy_by_time"].sel(architecture=a, time=float(ds.attrs["finite_time"])).max())
        thresholds = {"train": (chance + 1.0) / 2, "test": (chance + best_test) / 2}
        for p in ds.point.values:
            at = dict(sigma_w2=float(ds.point_sigma_w2.sel(point=p)), depth=int(ds.point_depth.sel(point=p)))
            row = {}
            for split in ("train", "test"):
                inf = float(ds[f"{split}_accuracy_by_time"].sel(architecture=a, time=float(ds.attrs["finite_time"]))
                            .sel(**at, method="nearest"))
                fin = ds[f"finite_{split}_accuracy"].sel(finite_architecture=a, point=p).values
                fin = fin[np.isfinite(fin)]
                v, lo, hi = (bootstrap_interval(fin, np.mean, seed=seed) if fin.size else (math.nan,) * 3)
                thr = thresholds[split]
                inf_side = inf > thr
                fin_side = judge_ci_threshold(lo, hi, thr, above=True) if fin.size >= 2 else (
                    None if not fin.size else bool(v > thr))
                match = None if fin_side is None else bool(fin_side == inf_side)
                row.update({f"{split}_infinite": inf, f"{split}_finite": v, f"{split}_finite_low": lo,
                            f"{split}_finite_high": hi, f"{split}_threshold": thr,
                            f"{split}_match": np.nan if match is None else float(match)})
            rows.append(row)
    shape = (ds.sizes["finite_architecture"], ds.sizes["point"])
    return xr.Dataset({k: (("finite_architecture", "point"), np.array([r[k] for r in rows]).reshape(shape))
                       for k in rows[0]}, coords={"finite_architecture": ds.finite_architecture, "point": ds.point}) \
        if rows else xr.Dataset()


def analyse(ds: xr.Dataset, out_dir: Path) -> tuple[list[Claim], list[Path]]:
    """Claims and figures from the dataset alone."""
    masks = regions(ds)
    archs = list(ds.architecture.values)
    claims = [_trainability_claim(ds, a, masks) for a in archs]
    claims += [_memorisation_claim(ds, a, masks) for a in archs if a != "cnn-gap"]
    if {"fcn", "cnn", "cnn-gap"} <= set(archs):
        diffs = architecture_differences(ds)
        v, lo, hi = diffs["cnn_fcn"]
        claims.append(Claim(
            "CNNs without global average pooling behave almost identically to FCNs",
            "mean over the (σ_w², depth) grid of |test accuracy CNN − FCN| (95% paired bootstrap CI over test "
            "points)", v, _half_width(lo, hi),
            f"reproduced if the CI lies below {CLOSE:g}, not reproduced if above, else inconclusive",
            judge_ci_threshold(lo, hi, CLOSE, above=False),
            f"CI [{lo:.3f}, {hi:.3f}]; per-cell differences in the second figure.",
            source=SOURCE_ABSTRACT,
        ))
        r, rlo, rhi = diffs["ratio"]
        g, glo, ghi = diffs["gap_cnn"]
        claims.append(Claim(
            "CNNs with global average pooling have markedly different generalisation from CNNs without",
            "mean |test accuracy CNN-GAP − CNN| / mean |test accuracy CNN − FCN| over the grid (95% paired bootstrap "
            "CI)", r, _half_width(rlo, rhi),
            f"reproduced if the CI lies above {MUCH_MORE:g}, not reproduced if below, else inconclusive",
            judge_ci_threshold(rlo, rhi, MUCH_MORE, above=True),
            f"CI [{rlo:.3g}, {rhi:.3g}]; mean |CNN-GAP − CNN| = {_fmt(g, glo, ghi)}, mean |CNN − FCN| = "
            f"{_fmt(*diffs['cnn_fcn'])}.",
            source=SOURCE_ABSTRACT,
        ))
        adv = gap_advantage(ds)
        claims.append(Claim(
            "... and often better generalisation: CNN-GAP beats the CNN somewhere on the grid",
            f"test accuracy CNN-GAP − CNN at the cell of largest gain (σ_w² = {adv['sigma_w2']:g}, depth "
            f"{adv['depth']}), chosen on the even test points, measured on the odd ones (95% bootstrap CI)",
            adv["value"], _half_width(adv["low"], adv["high"]),
            "reproduced if the CI lies above 0, not reproduced if below, else inconclusive",
            judge_ci_threshold(adv["low"], adv["high"], 0.0, above=True),
            f"CI [{adv['low']:.3f}, {adv['high']:.3f}]; gain on the selection half {adv['gain_selection']:.3f}. "
            "Cross-fitting keeps the choice of the cell from inflating the measured gain.",
            source=SOURCE_ABSTRACT,
        ))
    pattern = finite_pattern(ds) if ds.sizes.get("finite_seed", 0) and ds.sizes.get("point", 0) else xr.Dataset()
    if pattern.data_vars:
        matches = np.concatenate([pattern["train_match"].values.ravel(), pattern["test_match"].values.ravel()])
        decided = matches[np.isfinite(matches)]
        frac = float(decided.mean()) if decided.size else math.nan
        held = None if not decided.size else (False if (decided == 0).any() else (
            True if decided.size == matches.size else None))
        parts = []
        for a in pattern.finite_architecture.values:
            for p in pattern.point.values:
                r = pattern.sel(finite_architecture=a, point=p)
                parts.append(f"{a} {p}: train finite {float(r.train_finite):.2f} vs ∞ {float(r.train_infinite):.2f}, "
                             f"test finite {float(r.test_finite):.2f} vs ∞ {float(r.test_infinite):.2f}")
        claims.append(Claim(
            "finite-width CNNs trained by gradient descent follow the infinite-width pattern (trainable or not, "
            "generalising or not) at the probed points",
            f"fraction of (architecture, point, train/test) cases where the finite networks ({ds.sizes['finite_seed']} "
            "seeds, mean) and the infinite-width prediction fall on the same side of the threshold",
            frac, None,
            "threshold: midpoint between chance and 1 (train) or between chance and the architecture's best "
            "test accuracy (test); reproduced if every case agrees, each decided by the 95% bootstrap CI over "
            "seeds; not reproduced if any case decidedly disagrees; else inconclusive",
            held,
            "; ".join(parts) + f". Channels: finite networks are {int(ds.attrs.get('channels', 0)) or 'few'}-channel.",
            source=f"{SOURCE_ABSTRACT} (corroborated experimentally)",
        ))
    figures = [out_dir / "xps_accuracy_heatmaps.png", out_dir / "xps_pooling_difference.png"]
    _heatmap_figure(ds, figures[0])
    _difference_figure(ds, figures[1])
    if pattern.data_vars:
        figures.append(out_dir / "xps_finite_width.png")
        _finite_figure(ds, pattern, figures[2])
    return claims, figures


# ---------------------------------------------------------------------- figures
def _edges(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _draw_lines(ax: Any, ds: xr.Dataset, *, legend: bool = False) -> None:
    lines = depth_lines(ds)
    sw2 = ds.sigma_w2.values
    m = float(ds.attrs.get("xi_multiple", XI_MULTIPLE))
    for name, style, label in (("line_xi_1", "--", f"{m:g} ξ₁"), ("line_xi_star", ":", f"{m:g} ξ*")):
        y = lines[name].values
        ok = np.isfinite(y)
        if ok.any():
            ax.plot(sw2[ok], y[ok], style, color="white", lw=2.2, label=label)
    crit = float(ds.attrs.get("critical_sigma_w2", math.nan))
    if math.isfinite(crit):
        ax.axvline(crit, color="white", lw=0.8, alpha=0.7)
    ax.set_ylim(0.5, float(ds.depth.max()) + 0.5)
    ax.set_xlim(_edges(sw2)[0], _edges(sw2)[-1])
    if legend:
        ax.legend(fontsize=7, loc="upper center", framealpha=0.3, labelcolor="white", facecolor="0.3")


def _heatmap_figure(ds: xr.Dataset, path: Path) -> None:
    archs = list(ds.architecture.values)
    fig = Figure(figsize=(4.2 * len(archs) + 1, 7.6), constrained_layout=True)
    axes = fig.subplots(2, len(archs), squeeze=False)
    chance = float(ds.attrs["chance_accuracy"])
    mesh = None
    for i, split in enumerate(("train", "test")):
        for j, a in enumerate(archs):
            ax = axes[i, j]
            vals = ds[f"{split}_accuracy"].sel(architecture=a).transpose("depth", "sigma_w2").values
            mesh = ax.pcolormesh(_edges(ds.sigma_w2.values), _edges(ds.depth.values), vals, cmap="viridis",
                                 vmin=0.0, vmax=1.0, shading="flat")
            _draw_lines(ax, ds, legend=(i == 0 and j == 0))
            if i == 0 and j == 0 and "point_sigma_w2" in ds and ds.sizes.get("finite_seed", 0):
                ax.plot(ds.point_sigma_w2, ds.point_depth, "o", mfc="none", mec="red", mew=1.5, ms=8)
            ax.set_title(f"{a}: {split} accuracy", fontsize=10)
            ax.set_xlabel("σ_w²")
            ax.set_ylabel("depth l")
    fig.colorbar(mesh, ax=axes, shrink=0.8, label=f"accuracy (chance {chance:.2f})")
    cfg = json.loads(ds.attrs["config"]) if "config" in ds.attrs else {}
    fig.suptitle(
        f"Infinite-width GD at t = {_main_time(ds):g} ({cfg.get('activation', 'erf')}, σ_b² = "
        f"{cfg.get('sigma_b2', '?')}, {ds.sizes['train']} train / {ds.sizes['test']} test {ds.attrs.get('data', '')}); "
        "white: 8 ξ₁ (--, ordered), 8 ξ* (:, chaotic), critical σ_w² (thin)", fontsize=10)
    fig.savefig(path, dpi=100)


def _difference_figure(ds: xr.Dataset, path: Path) -> None:
    pairs = [(a, b) for a, b in (("cnn", "fcn"), ("cnn-gap", "cnn")) if {a, b} <= set(ds.architecture.values)]
    if not pairs:
        pairs = [(ds.architecture.values[0], ds.architecture.values[0])]
    fig = Figure(figsize=(5.0 * len(pairs) + 1, 4.4), constrained_layout=True)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    diffs = [ds["test_accuracy"].sel(architecture=a) - ds["test_accuracy"].sel(architecture=b) for a, b in pairs]
    lim = max(0.05, max(float(np.nanmax(np.abs(d))) for d in diffs))
    mesh = None
    for ax, (a, b), d in zip(axes, pairs, diffs):
        mesh = ax.pcolormesh(_edges(ds.sigma_w2.values), _edges(ds.depth.values),
                             d.transpose("depth", "sigma_w2").values, cmap="RdBu", vmin=-lim, vmax=lim, shading="flat")
        lines = depth_lines(ds)
        for name, style in (("line_xi_1", "--"), ("line_xi_star", ":")):
            y = lines[name].values
            ok = np.isfinite(y)
            if ok.any():
                ax.plot(ds.sigma_w2.values[ok], y[ok], style, color="k", lw=1.8)
        ax.set_ylim(0.5, float(ds.depth.max()) + 0.5)
        ax.set_title(f"test accuracy {a} − {b}", fontsize=10)
        ax.set_xlabel("σ_w²")
        ax.set_ylabel("depth l")
    fig.colorbar(mesh, ax=axes, label="difference in test accuracy (blue: first is better)")
    fig.savefig(path, dpi=100)


def _finite_figure(ds: xr.Dataset, pattern: xr.Dataset, path: Path) -> None:
    fig = Figure(figsize=(10, 4.0), constrained_layout=True)
    axes = fig.subplots(1, 2)
    points = list(pattern.point.values)
    x = np.arange(len(points))
    for ax, split in zip(axes, ("train", "test")):
        for k, a in enumerate(pattern.finite_architecture.values):
            r = pattern.sel(finite_architecture=a)
            off = (k - 0.5) * 0.25
            fin, lo, hi = r[f"{split}_finite"].values, r[f"{split}_finite_low"].values, r[f"{split}_finite_high"].values
            err = np.nan_to_num(np.array([fin - lo, hi - fin]), nan=0.0)
            ax.errorbar(x + off, fin, yerr=err, fmt="o", color=f"C{k}", capsize=3, label=f"{a}, finite")
            ax.plot(x + off, r[f"{split}_infinite"].values, "x", color=f"C{k}", ms=10, mew=2, label=f"{a}, ∞ width")
        ax.axhline(float(ds.attrs["chance_accuracy"]), color="grey", ls=":", label="chance")
        labels = [f"{p}\nσ_w²={float(ds.point_sigma_w2.sel(point=p)):g}, l={int(ds.point_depth.sel(point=p))}"
                  for p in points]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"{split} accuracy")
        ax.set_title(f"{split}: finite networks (mean, 95% CI over seeds) vs infinite width", fontsize=9)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)


RECIPE = Recipe(
    name="xiao-pennington-schoenholz",
    title="Disentangling Trainability and Generalization in Deep Neural Networks",
    reference="Xiao, Pennington & Schoenholz 2020, arXiv:1912.13053 (ICML 2020)",
    summary=(
        "Infinitely wide erf networks (σ_b² = 0.18, NTK parameterisation) — fully connected (fcn), convolutional "
        "with a Flatten readout (cnn) and with global average pooling (cnn-gap), 3×3 'same' convolutions — over a "
        "grid of σ_w² across the order/chaos boundary and every depth up to L (one kernel pass per σ_w² column): "
        "the gradient-descent mean prediction at time t with η = 2Nk/λ_max (the authors' notebook), its train and "
        "test accuracy with one-hot targets, and the mean-field depth scales ξ₁ and ξ* (8ξ lines drawn as in the "
        "paper); finite CNN and CNN-GAP networks trained for the same time at a few grid points."
    ),
    scales={
        "tiny": dict(data="digits", n_train=20, n_test=20, classes=10, data_seed=0, activation="erf", sigma_b2=0.18,
                     sigma_w2=[0.5, 1.0, 2.5, 4.5], depth=12, times=[8.0, 1024.0], time=1024.0, finite_time=8.0,
                     lr_factor=2.0, diag_reg=1e-4, architectures=list(ARCHITECTURES),
                     finite_architectures=["cnn", "cnn-gap"], channels=4, finite_seeds=2, finite_lr_factor=0.5,
                     finite_points=[dict(label="ordered-shallow", sigma_w2=1.0, depth=2),
                                    dict(label="ordered-deep", sigma_w2=0.5, depth=8),
                                    dict(label="chaotic-deep", sigma_w2=4.5, depth=12)]),
        "small": dict(data="digits", n_train=64, n_test=64, classes=10, data_seed=0, activation="erf", sigma_b2=0.18,
                      sigma_w2=[0.5, 0.75, 1.0, 1.3, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], depth=30,
                      times=[16.0, 32.0, 64.0, 256.0, 1024.0], time=1024.0, finite_time=32.0, lr_factor=2.0,
                      diag_reg=1e-4, architectures=list(ARCHITECTURES), finite_architectures=["cnn", "cnn-gap"],
                      channels=16, finite_seeds=2, finite_lr_factor=0.5,
                      finite_points=[dict(label="ordered-shallow", sigma_w2=1.0, depth=3),
                                     dict(label="ordered-deep", sigma_w2=0.5, depth=12),
                                     dict(label="chaotic-deep", sigma_w2=4.5, depth=22)]),
        "paper": dict(data="cifar10", data_path="cifar-10-batches-py", n_train=256, n_test=256, classes=10,
                      data_seed=0, activation="erf", sigma_b2=0.18,
                      sigma_w2=[round(0.5 + 0.1 * i, 2) for i in range(41)], depth=100,
                      times=[1.0, 8.0, 64.0, 512.0, 4096.0], time=4096.0, finite_time=512.0, lr_factor=2.0,
                      diag_reg=1e-4, architectures=list(ARCHITECTURES), finite_architectures=["cnn", "cnn-gap"],
                      channels=256, finite_seeds=4, finite_lr_factor=0.5,
                      finite_points=[dict(label="ordered-shallow", sigma_w2=1.2, depth=4),
                                     dict(label="ordered-deep", sigma_w2=0.6, depth=40),
                                     dict(label="chaotic-deep", sigma_w2=4.0, depth=80)]),
    },
    experiment=experiment,
    analyse=analyse,
)
