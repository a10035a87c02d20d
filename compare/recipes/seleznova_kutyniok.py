"""Recipe ``seleznova-kutyniok``: whether a finite network is in the NTK regime depends on its phase.

Seleznova & Kutyniok 2022 (Analyzing Finite Neural Networks: Can We Trust NTK Theory?,
arXiv:2012.04477, MSML 2022 / ICML 2022 code): with exploding gradients (chaotic side) deep
networks leave the NTK regime -- the NTK at initialisation is random (E[K^2]/E[K]^2 well above 1)
and changes a lot in training -- while with vanishing gradients (ordered side) the NTK stays
deterministic but deep networks become untrainable.

As in their code (THEORY.md): standard parameterisation (W ~ N(0, sigma_w^2 / fan_in), trainable
biases initialised at zero), unit-norm inputs, a grid of sigma_w^2 crossing the order/chaos
boundary (ReLU: sigma_w^2 = 2; logistic sigmoid: about 103, so the whole grid is ordered), several
depths and widths. Inputs are sklearn digits scaled to unit norm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._analysis import second_moment_ratio
from ._base import Recipe, map_tasks, register
from ._report import Claim, judge_threshold
from .lee_wide_linear import digits_task


def critical_sigma_w2(activation: str) -> float:
    """The order/chaos boundary at sigma_b = 0 (:func:`ntktheory.critical_sigma_w2`)."""
    import ntktheory

    return float(ntktheory.critical_sigma_w2(activation, 0.0))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _init_task(task: Mapping[str, Any]) -> np.ndarray:
    import empirical

    ds = empirical.ensemble_kernels(np.asarray(task["x"]), width=task["width"], depth=task["depth"],
                          activation=task["activation"], sigma_w=math.sqrt(task["sigma_w2"]), sigma_b=0.0,
                          parameterization="standard", seeds=task["seeds"], device="cpu",
                          seed_batch=task["seed_batch"])
    return np.diagonal(ds["ntk_empirical"].values, axis1=1, axis2=2).copy()


def _train_task(task: Mapping[str, Any]) -> np.ndarray:
    import empirical

    x, y = np.asarray(task["x"]), np.asarray(task["y"])
    net = empirical.MLP(x.shape[1], task["width"], task["depth"], task["activation"],
                        sigma_w=math.sqrt(task["sigma_w2"]), sigma_b=0.0, parameterization="standard",
                        seed=task["seed"], device="cpu")
    run = empirical.train(net, x, y, steps=task["steps"], lr_factor=task["lr_factor"],
                          snapshot_steps=[0, task["steps"]], linearized=False, inplace=True)
    diverged = bool(run["diverged"].any())
    loss_ratio = float(run["loss"][-1] / run["loss"][0])
    change = float(run["ntk_relative_change"][-1])
    return np.array([np.nan if diverged else loss_ratio, np.nan if diverged else change, float(diverged),
                     run.attrs["lr"]])


def experiment(config: Mapping[str, Any], scheduler: str | None) -> xr.Dataset:
    """NTK diagonal over seeds at init on the (activation, sigma_w2, depth, width) grid; training runs."""
    acts, sw2, depths, widths = config["activations"], config["sigma_w2"], config["depths"], config["widths"]
    critical = [critical_sigma_w2(a) for a in acts]  # analytic and cheap: first, so a failure costs nothing
    x_train, y_train, _, _ = digits_task(config["n_train"], 0)
    x_train = _unit(x_train)
    x_init = x_train[: config["n_inputs"]]
    import ntktheory

    theory = np.full((len(acts), len(sw2), len(depths), len(widths)), np.nan)
    if "relu" in acts:
        theory[acts.index("relu")] = [[[ntktheory.seleznova_kutyniok_dispersion(
            L, sigma_w2=s, width=w, x_norm2=1.0, in_features=x_init.shape[1], parameterization="standard")
            for w in widths] for L in depths] for s in sw2]
    init_tasks = [dict(x=x_init, width=w, depth=L, activation=a, sigma_w2=s, seeds=config["seeds"],
                       seed_batch=config["seed_batch"])
                  for a in acts for s in sw2 for L in depths for w in widths]
    init = np.stack(map_tasks(_init_task, init_tasks, scheduler)).reshape(
        len(acts), len(sw2), len(depths), len(widths), config["seeds"], config["n_inputs"])
    train_tasks = [dict(x=x_train, y=y_train, width=config["train_width"], depth=L, activation=a, sigma_w2=s,
                        seed=seed, steps=config["steps"], lr_factor=config["lr_factor"])
                   for a in acts for s in sw2 for L in depths for seed in range(config["train_seeds"])]
    train = np.stack(map_tasks(_train_task, train_tasks, scheduler)).reshape(
        len(acts), len(sw2), len(depths), config["train_seeds"], 4)
    grid = ("activation", "sigma_w2", "depth")
    ds = xr.Dataset(
        {
            "ntk_diag_empirical": ((*grid, "width", "seed", "x"), init),
            "loss_ratio": ((*grid, "train_seed"), train[..., 0]),
            "kernel_change": ((*grid, "train_seed"), train[..., 1]),
            "diverged": ((*grid, "train_seed"), train[..., 2].astype(bool)),
            "learning_rate": ((*grid, "train_seed"), train[..., 3]),
            "critical_sigma_w2": (("activation",), critical),
            "ratio_theory": ((*grid, "width"), theory),
        },
        coords={"activation": acts, "sigma_w2": sw2, "depth": depths, "width": widths,
                "seed": np.arange(config["seeds"]), "x": np.arange(config["n_inputs"]),
                "train_seed": np.arange(config["train_seeds"]), "train_width": config["train_width"]},
    )
    ds["ntk_diag_empirical"].attrs["long_name"] = "Theta(x, x), standard parameterisation, unit-norm digits"
    ds["loss_ratio"].attrs["long_name"] = f"training loss after {config['steps']} GD steps / initial loss"
    ds["kernel_change"].attrs["long_name"] = "|Theta_T - Theta_0|_F / |Theta_0|_F on the training points"
    ds["learning_rate"].attrs["long_name"] = "lr_factor * 2N / lambda_max(empirical Theta_0)"
    ds["critical_sigma_w2"].attrs["long_name"] = "order/chaos boundary at sigma_b = 0 (ntktheory.critical_sigma_w2)"
    ds["ratio_theory"].attrs["long_name"] = (
        "ntktheory.seleznova_kutyniok_dispersion: leading-order E[K^2]/E[K]^2 (ReLU only; NaN otherwise)")
    return ds


def dispersion(ds: xr.Dataset) -> xr.Dataset:
    """E[K^2]/E[K]^2 of the diagonal NTK over seeds, and its bootstrap CI half-width, per grid point."""
    vals = ds["ntk_diag_empirical"].transpose("activation", "sigma_w2", "depth", "width", "seed", "x").values
    out = np.empty((*vals.shape[:4], 2))
    for idx in np.ndindex(*vals.shape[:4]):
        r, _, hw = second_moment_ratio(vals[idx], seed=int(np.ravel_multi_index(idx, vals.shape[:4])))
        out[idx] = (r, hw)
    dims = ("activation", "sigma_w2", "depth", "width")
    coords = {d: ds[d] for d in dims}
    return xr.Dataset({"ratio": (dims, out[..., 0]), "ratio_ci_half_width": (dims, out[..., 1])}, coords=coords)


def analyse(ds: xr.Dataset, out_dir: Path) -> tuple[list[Claim], list[Path]]:
    """Claims and heat maps from the dataset alone: dispersion, NTK change and trainability across phases."""
    disp = dispersion(ds)
    w_max, deep, shallow = int(ds.width.max()), int(ds.depth.max()), int(ds.depth.min())
    s_lo, s_hi = float(ds.sigma_w2.min()), float(ds.sigma_w2.max())
    loss = ds["loss_ratio"].median("train_seed")
    change = ds["kernel_change"].median("train_seed")
    claims: list[Claim] = []
    acts = list(ds.activation.values)
    if "relu" in acts:
        r = disp.sel(activation="relu", width=w_max, depth=deep, sigma_w2=s_hi)
        claims.append(Claim(
            f"chaotic side (ReLU, σ_w² = {s_hi:g} > 2): a deep network's NTK at init is random",
            f"E[K²]/E[K]² of the diagonal NTK over seeds, depth {deep}, width {w_max} (95% bootstrap CI)",
            float(r.ratio), float(r.ratio_ci_half_width), "ratio > 1.2",
            judge_threshold(float(r.ratio), 1.2, above=True),
            f"{ds.sizes['seed']} seeds. Seleznova & Kutyniok report ~5 at depth 49, width 100 for σ_w² ≥ 2.",
        ))
        r = disp.sel(activation="relu", width=w_max, sigma_w2=s_lo)
        worst = int(r.ratio.argmax("depth"))
        claims.append(Claim(
            f"ordered side (ReLU, σ_w² = {s_lo:g} < 2): the NTK at init stays deterministic at every depth",
            f"largest E[K²]/E[K]² over depths ≤ {deep}, width {w_max} (95% bootstrap CI)",
            float(r.ratio[worst]), float(r.ratio_ci_half_width[worst]), "ratio < 1.1",
            judge_threshold(float(r.ratio[worst]), 1.1, above=False),
        ))
        ch_hi = float(change.sel(activation="relu", depth=deep, sigma_w2=s_hi))
        ch_lo = float(change.sel(activation="relu", depth=deep, sigma_w2=s_lo))
        factor = ch_hi / ch_lo if ch_lo > 0 else math.nan
        claims.append(Claim(
            "chaotic deep networks leave the NTK regime in training: "
            "the NTK changes much more than on the ordered side",
            f"relative NTK change at depth {deep}: chaotic (σ_w² = {s_hi:g}) / ordered (σ_w² = {s_lo:g}) "
            "(median over seeds)",
            factor, None, "factor ≥ 3", judge_threshold(factor, 3.0, above=True),
            f"changes: chaotic {ch_hi:.3g}, ordered {ch_lo:.3g}; training width {int(ds.train_width)}.",
        ))
        l_deep = float(loss.sel(activation="relu", depth=deep, sigma_w2=s_lo))
        l_shallow = float(loss.sel(activation="relu", depth=shallow, sigma_w2=s_lo))
        claims.append(Claim(
            f"vanishing gradients (ReLU, σ_w² = {s_lo:g}): deep networks become untrainable while shallow ones train",
            f"loss after training / initial loss at depth {deep} (median over seeds)", l_deep, None,
            f"ratio > 0.5 at depth {deep} and < 0.5 at depth {shallow}",
            None
            if not (math.isfinite(l_deep) and math.isfinite(l_shallow))
            else bool(l_deep > 0.5 and l_shallow < 0.5),
            f"depth {shallow}: {l_shallow:.3g}. Learning rate half the critical 2N/λ_max of each network's NTK.",
        ))
        if "ratio_theory" in ds:
            meas = disp.ratio.sel(activation="relu", width=w_max)
            pred = ds["ratio_theory"].sel(activation="relu", width=w_max)
            dev = np.abs(meas - pred) / pred
            worst = dev.argmax(...)
            value = float(dev.max())
            at = {k: float(v) for k, v in ((d, meas[d][worst[d]]) for d in ("sigma_w2", "depth"))}
            claims.append(Claim(
                "ntktheory's phase-dependent dispersion model (Hanin & Nica's exp(5β) per layer, ReLU) predicts "
                "E[K²]/E[K]² across the phases",
                f"largest |measured − predicted| / predicted over the ReLU grid, width {w_max}", value, None,
                "≤ 0.2", judge_threshold(value, 0.2, above=False),
                f"worst at σ_w² = {at['sigma_w2']:g}, depth {int(at['depth'])}: measured "
                f"{float(meas.sel(sigma_w2=at['sigma_w2'], depth=at['depth'])):.3g}, predicted "
                f"{float(pred.sel(sigma_w2=at['sigma_w2'], depth=at['depth'])):.3g}. The model uses the paper's "
                "asymptotic rate 5; small widths show a smaller effective rate (see the hanin-nica recipe).",
            ))
        l_chaos = float(loss.sel(activation="relu", depth=deep, sigma_w2=s_hi))
        claims.append(Claim(
            "chaotic deep networks stay trainable (the NTK becomes nearly diagonal, κ → 1)",
            f"loss after training / initial loss, ReLU, σ_w² = {s_hi:g}, depth {deep} (median over seeds)",
            l_chaos, None, "ratio < 0.5", judge_threshold(l_chaos, 0.5, above=False),
        ))
    if "sigmoid" in acts:
        r = disp.sel(activation="sigmoid", width=w_max)
        idx = np.unravel_index(int(np.nanargmax(r.ratio.values)), r.ratio.shape)
        value, hw = float(r.ratio.values[idx]), float(r.ratio_ci_half_width.values[idx])
        crit = float(ds["critical_sigma_w2"].sel(activation="sigmoid"))
        claims.append(Claim(
            "sigmoid networks (ordered at every usual σ_w², critical near 103) keep a deterministic NTK at every depth",
            f"largest E[K²]/E[K]² over the grid, width {w_max} (95% bootstrap CI)", value, hw, "ratio < 1.1",
            judge_threshold(value, 1.1, above=False),
            f"critical σ_w² (ntktheory) = {crit:.4g}." if math.isfinite(crit) else "",
        ))
    fig_path = out_dir / "seleznova_kutyniok_heatmaps.png"
    _figure(ds, disp, loss, change, fig_path)
    return claims, [fig_path]


def _figure(ds: xr.Dataset, disp: xr.Dataset, loss: xr.DataArray, change: xr.DataArray, path: Path) -> None:
    acts = list(ds.activation.values)
    w_max = int(ds.width.max())
    panels = [
        ("E[K²]/E[K]² at init", disp.ratio.sel(width=w_max), "viridis", None),
        ("log10 relative NTK change", np.log10(change), "magma", None),
        ("log10 (final loss / initial loss)", np.log10(loss), "coolwarm", (-3, 0)),
    ]
    fig = Figure(figsize=(13, 3.8 * len(acts)), constrained_layout=True)
    sw2 = ds.sigma_w2.values
    depths = ds.depth.values
    for i, a in enumerate(acts):
        crit = float(ds["critical_sigma_w2"].sel(activation=a))
        for j, (title, data, cmap, lim) in enumerate(panels):
            ax = fig.add_subplot(len(acts), len(panels), i * len(panels) + j + 1)
            vals = np.asarray(data.sel(activation=a).transpose("depth", "sigma_w2").values, dtype=float)
            kw = {} if lim is None else {"vmin": lim[0], "vmax": lim[1]}
            mesh = ax.pcolormesh(np.arange(len(sw2) + 1) - 0.5, np.arange(len(depths) + 1) - 0.5, vals,
                                 cmap=cmap, shading="flat", **kw)
            fig.colorbar(mesh, ax=ax)
            ax.set_xticks(range(len(sw2)), [f"{s:g}" for s in sw2])
            ax.set_yticks(range(len(depths)), [str(d) for d in depths])
            ax.set_xlabel("σ_w²")
            ax.set_ylabel("depth")
            if math.isfinite(crit) and sw2.min() <= crit <= sw2.max():
                xc = np.interp(crit, sw2, np.arange(len(sw2)))
                ax.axvline(xc, color="white", lw=2, ls="--", label=f"critical σ_w² = {crit:.3g}")
                ax.legend(fontsize=7, loc="upper left")
                ax.set_title(f"{a}: {title}", fontsize=9)
            else:
                extra = f"critical σ_w² = {crit:.3g}, off grid" if math.isfinite(crit) else "critical σ_w² off grid"
                ax.set_title(f"{a}: {title}\n({extra}: all ordered)", fontsize=9)
    fig.savefig(path, dpi=100)


RECIPE = register(Recipe(
    name="seleznova-kutyniok",
    title="Analyzing Finite Neural Networks: Can We Trust Neural Tangent Kernel Theory?",
    reference="Seleznova & Kutyniok 2022, arXiv:2012.04477 (MSML 2022)",
    summary=(
        "ReLU and logistic-sigmoid MLPs in the standard parameterisation (W ~ N(0, σ_w²/fan_in), zero-initialised "
        "trainable biases, as the authors' code), unit-norm sklearn digits, over a σ_w² grid crossing ReLU's "
        "order/chaos boundary σ_w² = 2 and several depths and widths: the NTK's dispersion E[K²]/E[K]² over seeds "
        "at init, its relative change during full-batch GD, and trainability (loss reduction at a learning "
        "rate half the critical 2N/λ_max)."
    ),
    scales={
        "tiny": dict(activations=["relu", "sigmoid"], sigma_w2=[0.5, 3.5], depths=[1, 6], widths=[24],
                     seeds=24, seed_batch=24, n_inputs=2, train_width=24, train_seeds=1, n_train=10, steps=15,
                     lr_factor=0.5),
        "small": dict(activations=["relu", "sigmoid"], sigma_w2=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
                      depths=[1, 5, 10, 20, 30], widths=[50, 100], seeds=120, seed_batch=60, n_inputs=4,
                      train_width=100, train_seeds=2, n_train=32, steps=200, lr_factor=0.5),
        "paper": dict(activations=["relu", "sigmoid"], sigma_w2=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
                      depths=[1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 49], widths=[100, 500], seeds=500, seed_batch=100,
                      n_inputs=8, train_width=100, train_seeds=10, n_train=256, steps=2000, lr_factor=0.5),
    },
    experiment=experiment,
    analyse=analyse,
))
