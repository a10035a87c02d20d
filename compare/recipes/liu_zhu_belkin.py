"""Recipe ``liu-zhu-belkin``: transition to linearity is a property of the linear readout.

Liu, Zhu & Belkin 2020 (On the linearity of large non-linear models: when and why the tangent
kernel is constant, arXiv:2010.01092): for a network with a linear last layer the spectral norm of
the model Hessian decays like ~sqrt(log m / m) in the width m (Thm. 3.2), so the model becomes
linear in its parameters and its NTK stays constant in training; with a non-linear output
g = phi(f), H_g = phi'(f) H_f + phi''(f) grad f grad f^T keeps an Omega(1) norm (grad f grad f^T has
the NTK's scale) and the NTK changes in training at every width (Sec. 4).

We measure, against width, the Hessian spectral norm of f(x) (linear readout) and of tanh(f(x))
(non-linear readout) at initialisation, for one-hidden-layer tanh networks (NTK parameterisation)
on digits, and the relative NTK change of both during full-batch gradient descent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from matplotlib.figure import Figure
from torch import nn

from .._data import digits_task
from .._metrics import width_scaling_exponent
from ._common import label_widths, slope_claim_values
from ._engine import map_tasks
from ._registry import Recipe
from ._report import Claim, judge_band

READOUTS = ("linear", "tanh")
MAX_HALF_WIDTH = 0.25


class TanhReadout(nn.Module):
    """g(x) = tanh(f(x)): ``net`` with a non-linear last layer (Liu, Zhu & Belkin 2020, Sec. 4)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


def _task(task: Mapping[str, Any]) -> np.ndarray:
    import empirical

    x, y = np.asarray(task["x"]), np.asarray(task["y"])
    net = empirical.MLP(x.shape[1], width=task["width"], depth=task["depth"], activation=task["activation"],
                        sigma_w=task["sigma_w"],
                        sigma_b=task["sigma_b"], parameterization="ntk", seed=task["seed"], device="cpu")
    psi = None if task["readout"] == "linear" else "tanh"
    hess = [empirical.model_hessian_norm(net, xi, output_activation=psi, iterations=task["hessian_iterations"],
                                         seed=task["seed"]) for xi in x[: task["n_hessian"]]]
    model = net if psi is None else TanhReadout(net)
    run = empirical.train(model, x, y * task["target_scale"], steps=task["steps"], lr_factor=task["lr_factor"],
                          snapshot_steps=[0, task["steps"]], linearized=False, inplace=True)
    diverged = bool(run["diverged"].any())
    change = math.nan if diverged else float(run["ntk_relative_change"].values[-1])
    return np.array([float(np.mean(hess)), change, float(diverged)])


def experiment(config: Mapping[str, Any], scheduler: str | None) -> xr.Dataset:
    """Hessian norms at init and NTK change in training, per (readout, width, seed)."""
    x, y, _, _ = digits_task(config["n_train"], 0, rule="below-5")
    widths, seeds = config["widths"], config["seeds"]
    tasks = [dict(x=x, y=y, width=w, seed=s, readout=r, **{k: config[k] for k in (
        "depth", "activation", "sigma_w", "sigma_b", "n_hessian", "hessian_iterations", "lr_factor", "steps",
        "target_scale")}) for r in READOUTS for w in widths for s in range(seeds)]
    out = np.stack(map_tasks(_task, tasks, scheduler, label="Hessian norms and training runs"))
    out = out.reshape(len(READOUTS), len(widths), seeds, 3)
    dims = ("readout", "width", "seed")
    ds = xr.Dataset(
        {"hessian_norm": (dims, out[..., 0]), "kernel_change": (dims, out[..., 1]),
         "diverged": (dims, out[..., 2].astype(bool))},
        coords={"readout": list(READOUTS), "width": widths, "seed": np.arange(seeds)},
    )
    ds["hessian_norm"].attrs["long_name"] = (
        "spectral norm of the parameter Hessian of the output at one input, mean over inputs "
        "(empirical.model_hessian_norm, Lanczos)")
    ds["kernel_change"].attrs["long_name"] = "|Theta_T - Theta_0|_F / |Theta_0|_F after GD on the training points"
    return ds


def analyse(ds: xr.Dataset, out_dir: Path) -> tuple[list[Claim], list[Path]]:
    """Claims and figure from the dataset alone: width exponents of Hessian norm and NTK change per readout."""
    fits = {(r, v): width_scaling_exponent(ds[v].sel(readout=r)) for r in READOUTS
            for v in ("hessian_norm", "kernel_change")}
    note = f"{ds.sizes['seed']} seeds per width; widths {ds.width.values.tolist()}."
    crit = f"reproduced if the 95% CI (half-width ≤ {MAX_HALF_WIDTH:g}, else inconclusive) overlaps"
    s, h = slope_claim_values(fits["linear", "hessian_norm"])
    claims = [Claim("linear readout: the Hessian's spectral norm decays like ~1/sqrt(width)",
                    "log-log slope of ||H_f|| vs width (95% CI)", s, h, f"{crit} [−0.6, −0.4], else not reproduced",
                    judge_band(s, h, -0.6, -0.4, max_half_width=MAX_HALF_WIDTH),
                    note + " The bound is sqrt(log m / m): a slightly shallower slope than −1/2 is expected.",
                    source="Thm. 3.2")]
    s, h = slope_claim_values(fits["tanh", "hessian_norm"])
    claims.append(Claim("non-linear (tanh) readout: the Hessian's spectral norm does not decay with width",
                        "log-log slope of ||H_g|| vs width (95% CI)", s, h, f"{crit} [−0.1, 0.1], else not reproduced",
                        judge_band(s, h, -0.1, 0.1, max_half_width=MAX_HALF_WIDTH), source="Sec. 4"))
    s, h = slope_claim_values(fits["linear", "kernel_change"])
    claims.append(Claim("linear readout: the NTK's change in training vanishes with width",
                        "log-log slope of the relative NTK change vs width (95% CI)", s, h,
                        f"{crit} [−1.0, −0.4], else not reproduced",
                        judge_band(s, h, -1.0, -0.4, max_half_width=MAX_HALF_WIDTH),
                        source="Thm. 3.2 and Sec. 3 (a small Hessian keeps the tangent kernel constant)"))
    s, h = slope_claim_values(fits["tanh", "kernel_change"])
    claims.append(Claim("non-linear (tanh) readout: the NTK's change in training does not vanish with width",
                        "log-log slope of the relative NTK change vs width (95% CI)", s, h,
                        f"{crit} [−0.1, 0.1], else not reproduced",
                        judge_band(s, h, -0.1, 0.1, max_half_width=MAX_HALF_WIDTH), source="Sec. 4"))
    path = out_dir / "liu_zhu_belkin.png"
    _figure(ds, fits, path)
    return claims, [path]


def _figure(ds: xr.Dataset, fits, path: Path) -> None:
    fig = Figure(figsize=(11, 4.2), constrained_layout=True)
    widths = ds.width.values.astype(float)
    for j, (v, ylabel) in enumerate((("hessian_norm", "Hessian spectral norm at init"),
                                     ("kernel_change", "relative NTK change in training"))):
        ax = fig.add_subplot(1, 2, j + 1)
        for r, colour in zip(READOUTS, ("C0", "C3")):
            vals = ds[v].sel(readout=r)
            ax.loglog(np.repeat(widths, vals.sizes["seed"]), vals.values.ravel(), ".", color=colour, alpha=0.4)
            fit = fits[r, v]
            ax.loglog(widths, np.exp(np.log(vals).mean("seed")), "o-", color=colour,
                      label=f"{r} readout: slope {float(fit.slope):.2f} "
                            f"[{float(fit.slope_low):.2f}, {float(fit.slope_high):.2f}]")
        first = float(np.exp(np.log(ds[v].sel(readout="linear")).mean("seed"))[0])
        ax.loglog(widths, first * (widths / widths[0]) ** -0.5, "k--", label="∝ width^-1/2")
        ax.set_xlabel("width m")
        label_widths(ax, widths)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Transition to linearity: linear vs non-linear (tanh) last layer, 1 hidden tanh layer")
    fig.savefig(path, dpi=110)


RECIPE = Recipe(
    name="liu-zhu-belkin",
    title="On the linearity of large non-linear models: when and why the tangent kernel is constant",
    reference="Liu, Zhu & Belkin 2020, arXiv:2010.01092 (NeurIPS 2020), Thm. 3.2 and Sec. 4",
    summary=(
        "One-hidden-layer tanh networks (NTK parameterisation, σ_w = 1, σ_b = 0) on sklearn digits: spectral norm "
        "of the parameter Hessian of the output at initialisation (Lanczos on Hessian-vector products, "
        "mean over a few inputs), with a linear readout f and with a non-linear readout g = tanh(f), and the "
        "relative NTK change during full-batch GD (rate half the critical 2N/λ_max), against width."
    ),
    scales={
        "tiny": dict(widths=[16, 32, 64], seeds=2, depth=1, activation="tanh", sigma_w=1.0, sigma_b=0.0, n_train=8,
                     n_hessian=1, hessian_iterations=12, lr_factor=0.5, steps=10, target_scale=0.5),
        "small": dict(widths=[64, 128, 256, 512, 1024, 2048, 4096], seeds=3, depth=1, activation="tanh", sigma_w=1.0,
                      sigma_b=0.0, n_train=32, n_hessian=4, hessian_iterations=40, lr_factor=0.5, steps=200,
                      target_scale=0.5),
        "paper": dict(widths=[64, 256, 1024, 4096, 16384, 65536], seeds=10, depth=1, activation="tanh", sigma_w=1.0,
                      sigma_b=0.0, n_train=256, n_hessian=16, hessian_iterations=200, lr_factor=0.5, steps=2000,
                      target_scale=0.5),
    },
    experiment=experiment,
    analyse=analyse,
)
