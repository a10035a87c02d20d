"""Recipe ``wenger-dangel-kristiadi``: where the NTK's practical predictions hold, against width.

Wenger, Dangel & Kristiadi 2023 (On the Disconnect Between Theory and Practice of Neural Networks:
Limits of the NTK Perspective, arXiv:2310.00137) test three benefits that NTK theory promises and
find that none materialises at practical widths. We measure each against width and depth, for
ReLU MLPs (NTK parameterisation, sigma_w^2 = 2, sigma_b = 0) trained by full-batch GD on digits:

(a) optimisation: the training loss after t steps against kernel gradient descent with the
    analytic NTK from the same f_0 (each eigendirection converging at rate eta lambda_i / N);
(b) uncertainty: the predictive variance over a deep ensemble (independent initialisations, same
    training) against the NTK-GP variance of Lee et al. 2019 (Eq. 16) at the same step;
(c) continual learning: the increase of task 1's loss after training on task 2 (forgetting)
    against the forgetting of the infinite-width linear model; we also report how close the
    lazy limit comes to "no forgetting".

For each part, the relative error of the prediction per width and the smallest width from which it
stays within 10% (or that none did).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .._data import load_digits
from ._analysis import first_width_within, kernel_gd, ntk_gp_variance, predicted_train_loss
from ._base import Recipe, label_widths, map_tasks, register
from ._report import Claim, judge_below, judge_threshold
from .lee_wide_linear import analytic_relu_kernels

SIGMA_W = math.sqrt(2.0)
TOLERANCE = 0.1


def _digits(classes: tuple[int, int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n digits of the two classes (on the sphere), targets +1 for the first class, -1 for the second."""
    x, y = load_digits()
    keep = np.flatnonzero(np.isin(y, classes))
    idx = np.random.default_rng(seed).permutation(keep)[:n]
    return x[idx], np.where(y[idx] == classes[0], 1.0, -1.0)


def _loss(f: np.ndarray, y: np.ndarray) -> float:
    return float(0.5 * np.mean((f - y) ** 2))


def _outputs(run: xr.Dataset, var: str) -> np.ndarray:
    return run[var].values[..., 0]  # (step, point), single output


def _task(task: Mapping[str, Any]) -> dict[str, Any]:
    import empirical

    def mlp() -> Any:
        return empirical.MLP(task["x"].shape[1], task["width"], task["depth"], "relu", sigma_w=SIGMA_W, sigma_b=0.0,
                             parameterization="ntk", seed=task["seed"], device="cpu")

    steps = [int(s) for s in task["snapshots"]]
    x, y, xt = task["x"], task["y"], task["x_test"]
    n = len(x)
    # (a) + (b): one training run on the regression task
    run = empirical.train(mlp(), x, y, steps=steps[-1], lr=task["lr"], x_test=xt, snapshot_steps=steps,
                          measure_ntk=False, linearized=False, inplace=True)
    f0 = _outputs(run, "output_train")[0]
    th = task["ntk"]
    loss_pred = predicted_train_loss(th[:n, :n], f0 - y, steps, learning_rate=task["lr"])
    # (c): task 1 then task 2 on the same network, task 1's outputs recorded throughout
    x1, y1, x2, y2 = task["x1"], task["y1"], task["x2"], task["y2"]
    n1, t = len(x1), task["task_steps"]
    net = mlp()
    r1 = empirical.train(net, x1, y1, steps=t, lr=task["lr1"], x_test=x2, snapshot_steps=[0, t],
                         measure_ntk=False, linearized=False, inplace=True)
    r2 = empirical.train(net, x2, y2, steps=t, lr=task["lr2"], x_test=x1, snapshot_steps=[t],
                         measure_ntk=False, linearized=False, inplace=True)
    g0 = np.concatenate([_outputs(r1, "output_train")[0], _outputs(r1, "output_test")[0]])
    th12 = task["ntk12"]
    _, g1 = kernel_gd(th12[:n1, :n1], th12[:, :n1], y1, [t], learning_rate=task["lr1"], f0_train=g0[:n1], f0_test=g0)
    _, g2 = kernel_gd(th12[n1:, n1:], th12[:, n1:], y2, [t], learning_rate=task["lr2"], f0_train=g1[0, n1:],
                      f0_test=g1[0])
    return {
        "loss_net": run["loss"].values,
        "loss_ntk": loss_pred,
        "f_test": _outputs(run, "output_test")[-1],
        "task1_loss_init": _loss(g0[:n1], y1),
        "task1_loss_after_task1": _loss(_outputs(r1, "output_train")[-1], y1),
        "task1_loss_after_task2": _loss(_outputs(r2, "output_test")[-1], y1),
        "task1_loss_after_task1_ntk": _loss(g1[0, :n1], y1),
        "task1_loss_after_task2_ntk": _loss(g2[0, :n1], y1),
        "diverged": bool(run["diverged"].any() or r1["diverged"].any() or r2["diverged"].any()),
    }


def experiment(config: Mapping[str, Any], scheduler: str | None) -> xr.Dataset:
    """Train ensembles at every (depth, width): loss curves, test outputs, forgetting; NTK predictions."""
    n, m = config["n_train"], config["n_test"]
    xa, ya = _digits((0, 1), n + m, seed=0)  # regression task for (a) and (b): 0 -> +1, 1 -> -1
    x, y, xt = xa[:n], ya[:n], xa[n:]
    x1, y1 = _digits((2, 3), config["n_task"], seed=1)
    x2, y2 = _digits((4, 5), config["n_task"], seed=2)
    depths, widths, seeds = config["depths"], config["widths"], config["seeds"]
    tasks, theory = [], {}
    for L in depths:
        nngp, ntk = analytic_relu_kernels(np.concatenate([x, xt]), depth=L)
        _, ntk12 = analytic_relu_kernels(np.concatenate([x1, x2]), depth=L)
        lam = float(np.linalg.eigvalsh(ntk[:n, :n])[-1])
        k1 = len(x1)
        lr = config["lr_factor"] * 2 * n / lam
        lr1 = config["lr_factor"] * 2 * k1 / float(np.linalg.eigvalsh(ntk12[:k1, :k1])[-1])
        lr2 = config["lr_factor"] * 2 * len(x2) / float(np.linalg.eigvalsh(ntk12[k1:, k1:])[-1])
        gp_var = ntk_gp_variance(ntk[:n, :n], ntk[n:, :n], nngp[:n, :n], nngp[n:, :n], np.diag(nngp)[n:],
                                 float(config["snapshots"][-1]), learning_rate=lr)
        theory[L] = dict(gp_var=gp_var, lr=lr, lr1=lr1, lr2=lr2)
        for w in widths:
            for s in range(seeds):
                tasks.append(dict(width=w, depth=L, seed=s, x=x, y=y, x_test=xt, ntk=ntk, x1=x1, y1=y1, x2=x2, y2=y2,
                                  ntk12=ntk12, lr=lr, lr1=lr1, lr2=lr2, snapshots=config["snapshots"],
                                  task_steps=config["task_steps"]))
    results = map_tasks(_task, tasks, scheduler)
    shape = (len(depths), len(widths), seeds)

    def gather(key: str) -> np.ndarray:
        return np.stack([np.asarray(r[key], dtype=float) for r in results]).reshape(*shape, *np.shape(results[0][key]))

    dims = ("depth", "width", "seed")
    data = {
        "loss_net": ((*dims, "step"), gather("loss_net")),
        "loss_ntk": ((*dims, "step"), gather("loss_ntk")),
        "f_test": ((*dims, "test"), gather("f_test")),
        "ntk_gp_variance": (("depth", "test"), np.stack([theory[L]["gp_var"] for L in depths])),
        "learning_rate": (("depth",), [theory[L]["lr"] for L in depths]),
        "diverged": (dims, gather("diverged").astype(bool)),
    }
    for key in ("task1_loss_init", "task1_loss_after_task1", "task1_loss_after_task2", "task1_loss_after_task1_ntk",
                "task1_loss_after_task2_ntk"):
        data[key] = (dims, gather(key))
    ds = xr.Dataset(data, coords={"depth": depths, "width": widths, "seed": np.arange(seeds),
                                  "step": config["snapshots"], "test": np.arange(m)})
    ds["loss_ntk"].attrs["long_name"] = "training loss predicted by analytic-NTK kernel GD from the same f_0"
    ds["ntk_gp_variance"].attrs["long_name"] = "NTK-GP predictive variance at the last step (Lee et al. 2019, Eq. 16)"
    ds["f_test"].attrs["long_name"] = "trained network's outputs on the test points at the last step"
    return ds


def errors(ds: xr.Dataset) -> xr.Dataset:
    """Relative error of each NTK prediction per (depth, width) (mean over seeds), with standard errors."""
    ok = ~ds["diverged"]
    final_net, final_ntk = ds["loss_net"].isel(step=-1), ds["loss_ntk"].isel(step=-1)
    rel_a = (np.abs(final_net - final_ntk) / final_ntk).where(ok)
    f_test = ds["f_test"].where(ok)
    ens_var = f_test.var("seed", ddof=1).mean("test")
    gp_var = ds["ntk_gp_variance"].mean("test")
    rel_b = np.abs(ens_var / gp_var - 1.0)
    # bootstrap over seeds for the ensemble variance's relative error
    rng = np.random.default_rng(0)
    S = ds.sizes["seed"]
    boots = []
    for _ in range(200):
        idx = rng.integers(0, S, size=S)
        boots.append(np.abs(f_test.isel(seed=idx).var("seed", ddof=1).mean("test") / gp_var - 1.0))
    rel_b_se = xr.concat(boots, "boot").std("boot")
    forget_net = ds["task1_loss_after_task2"] - ds["task1_loss_after_task1"]
    forget_ntk = ds["task1_loss_after_task2_ntk"] - ds["task1_loss_after_task1_ntk"]
    rel_c = (np.abs(forget_net - forget_ntk) / np.abs(forget_ntk)).where(ok)
    return xr.Dataset({
        "rel_error_convergence": rel_a.mean("seed"),
        "rel_error_convergence_se": rel_a.std("seed", ddof=1) / math.sqrt(S),
        "rel_error_variance": rel_b,
        "rel_error_variance_se": rel_b_se,
        "rel_error_forgetting": rel_c.mean("seed"),
        "rel_error_forgetting_se": rel_c.std("seed", ddof=1) / math.sqrt(S),
        "forgetting_net": (forget_net / ds["task1_loss_init"]).where(ok).mean("seed"),
        "forgetting_ntk": (forget_ntk / ds["task1_loss_init"]).mean("seed"),
    })


def analyse(ds: xr.Dataset, out_dir: Path) -> tuple[list[Claim], list[Path]]:
    """Claims and figure from the dataset alone: relative error of each NTK prediction against width."""
    e = errors(ds)
    w_max = int(ds.width.max())
    claims: list[Claim] = []
    parts = [
        ("rel_error_convergence", "(a) optimisation: the NTK spectrum predicts GD's training loss",
         "|L_net(T) − L_NTK(T)| / L_NTK(T) at the last step"),
        ("rel_error_variance", "(b) uncertainty: the NTK-GP predictive variance equals the deep ensemble's",
         "|mean ensemble variance / mean NTK-GP variance − 1| on test points"),
        ("rel_error_forgetting", "(c) continual learning: the lazy-limit (NTK) model predicts forgetting of task 1",
         "|F_net − F_NTK| / |F_NTK|, F = rise of task-1 loss during task-2 training"),
    ]
    for var, statement, quantity in parts:
        for L in ds.depth.values:
            sel = e.sel(depth=L)
            value, se = float(sel[var].sel(width=w_max)), float(sel[var + "_se"].sel(width=w_max))
            first = first_width_within(ds.width.values, sel[var].values, TOLERANCE)
            where = (f"within 10% from width {int(first)} on" if math.isfinite(first)
                     else "within 10% at no tested width")
            per_width = ", ".join(f"{int(w)}: {v:.3g}" for w, v in zip(ds.width.values, sel[var].values))
            claims.append(Claim(
                f"{statement} within 10% at the widths tested (depth {int(L)})",
                f"{quantity}, width {w_max} (mean ± s.e. over seeds)", value, se,
                f"relative error < {TOLERANCE:g} at width {w_max}: held if value + 1.96 s.e. < {TOLERANCE:g}, not held "
                f"if value − 1.96 s.e. > {TOLERANCE:g}, else not testable", judge_below(value, se, TOLERANCE),
                f"Prediction {where}; per width {per_width}.",
            ))
    for L in ds.depth.values:
        f_net = float(e["forgetting_net"].sel(depth=L, width=w_max))
        f_ntk = float(e["forgetting_ntk"].sel(depth=L, width=w_max))
        claims.append(Claim(
            f"(c) wide networks do not forget (lazy limit: no forgetting), depth {int(L)}",
            f"rise of task-1 loss during task 2 / task-1 loss at init, width {w_max} (mean over seeds)", f_net, None,
            "< 0.1", judge_threshold(f_net, 0.1, above=False),
            f"The infinite-width linear model itself gives {f_ntk:.3g}: plain GD forgets even in the lazy limit "
            "unless the tasks' NTK blocks are orthogonal.",
        ))
    path = out_dir / "wenger_dangel_kristiadi.png"
    _figure(ds, e, path)
    return claims, [path]


def _figure(ds: xr.Dataset, e: xr.Dataset, path: Path) -> None:
    fig = Figure(figsize=(13, 4.2), constrained_layout=True)
    titles = {"rel_error_convergence": "(a) training loss vs NTK prediction",
              "rel_error_variance": "(b) ensemble variance vs NTK-GP",
              "rel_error_forgetting": "(c) forgetting vs NTK prediction"}
    widths = ds.width.values
    for j, (var, title) in enumerate(titles.items()):
        ax = fig.add_subplot(1, 3, j + 1)
        for L in ds.depth.values:
            sel = e.sel(depth=L)
            ax.errorbar(widths, sel[var], yerr=1.96 * sel[var + "_se"], fmt="o-", capsize=3, label=f"depth {int(L)}")
        ax.axhline(TOLERANCE, color="k", ls="--", lw=1, label="10%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width")
        label_widths(ax, widths)
        ax.set_ylabel("relative error of the NTK prediction")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)


RECIPE = register(Recipe(
    name="wenger-dangel-kristiadi",
    title="On the Disconnect Between Theory and Practice of Neural Networks: Limits of the NTK Perspective",
    reference="Wenger, Dangel & Kristiadi 2023, arXiv:2310.00137",
    summary=(
        "ReLU MLPs (NTK parameterisation, σ_w² = 2, σ_b = 0) on sklearn digits, full-batch GD at half the critical "
        "rate 2N/λ_max of the analytic NTK: (a) training loss vs the NTK-spectrum prediction, (b) deep-ensemble "
        "predictive variance vs the NTK-GP's, (c) forgetting of task 1 (digits 2 vs 3) after task 2 (4 vs 5) vs "
        "the infinite-width linear model's — against width and depth, with the width from which each prediction "
        "stays within 10%. The paper's finding: at practical widths none of these predictions materialises."
    ),
    scales={
        "tiny": dict(depths=[1], widths=[16, 32, 64], seeds=3, n_train=10, n_test=6, n_task=8,
                     snapshots=[0, 5, 20], task_steps=10, lr_factor=0.5),
        "small": dict(depths=[1, 2], widths=[32, 64, 128, 256, 512, 1024], seeds=6, n_train=32, n_test=16, n_task=24,
                      snapshots=[0, 10, 50, 150], task_steps=100, lr_factor=0.5),
        "paper": dict(depths=[1, 2, 4, 8], widths=[64, 128, 256, 512, 1024, 2048, 4096, 8192], seeds=32, n_train=256,
                      n_test=128, n_task=128, snapshots=[0, 10, 100, 1000, 5000], task_steps=2000, lr_factor=0.5),
    },
    experiment=experiment,
    analyse=analyse,
))
