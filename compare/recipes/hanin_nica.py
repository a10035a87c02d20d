"""Recipe ``hanin-nica``: the NTK of a deep ReLU network is random when depth/width is not small.

Hanin & Nica 2019 (arXiv:1909.05989, Thm. 1): for a ReLU network at sigma_w^2 = 2, sigma_b = 0 (NTK
parameterisation), E[Theta(x,x)^2] / E[Theta(x,x)]^2 ~ exp(5 beta) with beta = sum_l 1/n_l, up to
constants and corrections in 1/n. We measure the ratio over seeds on a grid of widths and
beta = depth / width, fit its exponential rate with a confidence interval, and compare it with
the paper's asymptotic 5 and with the effective exponent that Monte Carlo gives at small widths
(about 3.1-3.7 by Monte Carlo).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .._data import sphere_points
from ._analysis import bootstrap_interval, fit_exponential_rate, second_moment_ratio
from ._engine import map_tasks
from ._registry import Recipe
from ._report import Claim, judge_band, judge_ci_threshold, judge_interval

PAPER_RATE = 5.0
SMALL_WIDTH_RANGE = (3.1, 3.7)
#: A rate whose 95% CI is wider than this (half-width) cannot decide "the rate is 5".
MAX_HALF_WIDTH = 1.0
THEOREM = "Thm. 1"
#: Rates at two widths "agree" when their difference lies within this.
RATE_AGREEMENT = 1.0


def _task(task: Mapping[str, Any]) -> np.ndarray:
    import empirical

    x, _ = sphere_points(task["n_inputs"], task["in_features"], correlation=0.0, seed=0)
    ds = empirical.ensemble_kernels(
        x, width=task["width"], depth=task["depth"], activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.0,
        parameterization="ntk", seeds=range(task["seed0"], task["seed0"] + task["seeds"]), device="cpu",
        seed_batch=task["seed_batch"],
    )
    k = ds["ntk_empirical"].values
    return np.diagonal(k, axis1=1, axis2=2).copy()  # (seed, x)


def experiment(config: Mapping[str, Any], scheduler: str | None) -> xr.Dataset:
    """Diagonal NTK of ReLU networks over seeds, on the (width, beta) grid of ``config``."""
    widths, betas = list(config["widths"]), list(config["betas"])
    depths = np.array([[max(1, round(b * w)) for b in betas] for w in widths])
    tasks = [
        dict(width=w, depth=int(depths[i, j]), seeds=config["seeds"], seed0=0, n_inputs=config["n_inputs"],
             in_features=config["in_features"], seed_batch=config["seed_batch"])
        for i, w in enumerate(widths) for j in range(len(betas))
    ]
    results = map_tasks(_task, tasks, scheduler, label="NTK at init over seeds")
    diag = np.stack(results).reshape(len(widths), len(betas), config["seeds"], config["n_inputs"])
    beta_actual = depths / np.array(widths)[:, None]
    import ntktheory

    theory = np.array([[ntktheory.hanin_nica_ratio([w] * int(depths[i, j])) for j in range(len(betas))]
                       for i, w in enumerate(widths)])
    ds = xr.Dataset(
        {
            "ntk_diag_empirical": (("width", "beta", "seed", "x"), diag),
            "beta_actual": (("width", "beta"), beta_actual),
            "ratio_theory": (("width", "beta"), theory),
        },
        coords={"width": widths, "beta": betas, "seed": np.arange(config["seeds"]), "x": np.arange(config["n_inputs"]),
                "depth": (("width", "beta"), depths)},
    )
    ds["ntk_diag_empirical"].attrs["long_name"] = (
        "Theta(x, x) of a relu MLP, NTK parameterisation, sigma_w^2 = 2, sigma_b = 0"
    )
    ds["beta_actual"].attrs["long_name"] = "depth / width actually used (depth rounded to an integer)"
    ds["ratio_theory"].attrs["long_name"] = (
        "ntktheory.hanin_nica_ratio: exp(5 beta), Hanin & Nica Thm. 1 (up to constants)"
    )
    return ds


def ratio_table(ds: xr.Dataset) -> xr.Dataset:
    """E[Theta^2]/E[Theta]^2 per (width, beta) with the bootstrap standard error of its log."""
    vals = ds["ntk_diag_empirical"].values
    shape = vals.shape[:2]
    ratio, se, hw = (np.empty(shape) for _ in range(3))
    for i in range(shape[0]):
        for j in range(shape[1]):
            ratio[i, j], se[i, j], hw[i, j] = second_moment_ratio(vals[i, j], seed=i * 100 + j)
    dims = ("width", "beta")
    return xr.Dataset({"ratio": (dims, ratio), "se_log_ratio": (dims, se), "ratio_ci_half_width": (dims, hw)},
                      coords={"width": ds.width, "beta": ds.beta})


def analyse(ds: xr.Dataset, out_dir: Path) -> tuple[list[Claim], list[Path]]:
    """Claims and figure from the dataset alone: ratio per (width, beta), pooled rate fit vs 5 and 3.1-3.7."""
    table = ratio_table(ds)
    beta = ds["beta_actual"].values.ravel()
    fit = fit_exponential_rate(beta, table["ratio"].values.ravel(), table["se_log_ratio"].values.ravel())
    per_width = {int(w): fit_exponential_rate(ds["beta_actual"].sel(width=w).values, table["ratio"].sel(width=w).values,
                                              table["se_log_ratio"].sel(width=w).values)
                 for w in ds.width.values}
    widths_txt = ", ".join(f"n={w}: {f.rate:.2f} ± {f.half_width:.2f}" for w, f in per_width.items())
    n_seeds = ds.sizes["seed"]
    lo_s, hi_s = SMALL_WIDTH_RANGE
    small = judge_interval(fit.rate, fit.half_width, lo_s, hi_s)
    claims = [
        Claim(
            "the NTK's relative second moment E[Θ(x,x)²]/E[Θ(x,x)]² grows exponentially in β = depth/width",
            "fitted rate r of ratio ~ C exp(r β), pooled over widths (weighted LS, 95% CI); r² of the fit",
            fit.rate, fit.half_width,
            "reproduced if the rate's CI lies above 0 and the weighted r² ≥ 0.9; not reproduced if the CI lies "
            "below 0 or r² < 0.9; else inconclusive",
            None if not math.isfinite(fit.rate) else (
                False if fit.r2 < 0.9 else judge_ci_threshold(fit.rate - fit.half_width, fit.rate + fit.half_width,
                                                              0.0, above=True)),
            f"r² = {fit.r2:.3f}; per-width rates {widths_txt}; {n_seeds} seeds per point.",
            source=THEOREM,
        ),
        Claim(
            "the exponential rate is 5: E[Θ(x,x)²]/E[Θ(x,x)]² ≈ exp(5β) (up to constants and 1/n corrections)",
            "fitted rate r (95% CI)", fit.rate, fit.half_width,
            f"reproduced if the CI (half-width ≤ {MAX_HALF_WIDTH:g}, else inconclusive) overlaps [4.5, 5.5], "
            "else not reproduced",
            judge_band(fit.rate, fit.half_width, 4.5, 5.5, max_half_width=MAX_HALF_WIDTH),
            "The theorem is asymptotic in width, up to constants; small widths give a smaller effective rate: an "
            f"independent Monte Carlo at n = 32..128 gives about {lo_s}-{hi_s}, and this fit's CI "
            + ("overlaps" if small else "does not overlap" if small is False else "cannot be compared with")
            + " that range.",
            source=THEOREM,
        ),
    ]
    w_lo, w_hi = int(ds.width.min()), int(ds.width.max())
    f_lo, f_hi = per_width[w_lo], per_width[w_hi]
    diff = f_hi.rate - f_lo.rate
    diff_hw = math.hypot(f_lo.half_width, f_hi.half_width)
    same = None
    if math.isfinite(diff) and math.isfinite(diff_hw):
        if abs(diff) + diff_hw <= RATE_AGREEMENT:
            same = True
        elif abs(diff) - diff_hw > RATE_AGREEMENT:
            same = False
    claims.append(Claim(
        "the dispersion depends on depth and width only through β = Σ 1/n_l: networks of different widths at the "
        "same β have the same exponential rate",
        f"rate at width {w_hi} − rate at width {w_lo} (95% CI, the two intervals combined in quadrature)",
        diff, diff_hw if math.isfinite(diff_hw) else None,
        f"reproduced if the CI lies within ±{RATE_AGREEMENT:g}, not reproduced if entirely outside, else "
        "inconclusive",
        same, f"per-width rates {widths_txt}.",
        source=THEOREM,
    ))
    largest = table["ratio"].isel(beta=-1)
    w_big = int(largest.argmax("width"))
    vals = ds["ntk_diag_empirical"].isel(beta=-1, width=w_big).transpose("seed", "x").values
    r_big, lo_big, hi_big = bootstrap_interval(
        vals, lambda a: float(np.mean(np.mean(a**2, axis=0) / np.mean(a, axis=0) ** 2)), seed=3)
    claims.append(Claim(
        "when depth and width are comparable the NTK is not deterministic at initialisation (its relative variance "
        "is not small)",
        f"E[Θ²]/E[Θ]² at β = {float(ds.beta[-1]):.3g}, largest over widths (width {int(ds.width[w_big])}; 95% "
        "bootstrap CI over seeds)",
        r_big, (hi_big - lo_big) / 2 if math.isfinite(lo_big) and math.isfinite(hi_big) else None,
        "reproduced if the CI lies above 1.5 (relative variance above 0.5), not reproduced if below, else "
        "inconclusive",
        judge_ci_threshold(lo_big, hi_big, 1.5, above=True),
        f"CI [{lo_big:.3g}, {hi_big:.3g}].",
        source=f"{THEOREM} and Abstract",
    ))
    fig_path = out_dir / "hanin_nica_ratio.png"
    _figure(ds, table, fit, fig_path)
    return claims, [fig_path]


def _figure(ds: xr.Dataset, table: xr.Dataset, fit, path: Path) -> None:
    fig = Figure(figsize=(6.4, 4.4), constrained_layout=True)
    ax = fig.add_subplot()
    for w in ds.width.values:
        b = ds["beta_actual"].sel(width=w).values
        r = table["ratio"].sel(width=w).values
        se = table["se_log_ratio"].sel(width=w).values
        ax.errorbar(b, np.log(r), yerr=1.96 * se, fmt="o", capsize=3, label=f"measured, width {int(w)}")
    bb = np.linspace(0, float(ds["beta_actual"].max()) * 1.05, 50)
    if math.isfinite(fit.rate):
        ax.plot(bb, fit.intercept + fit.rate * bb, "k-", label=f"fit: rate {fit.rate:.2f} ± {fit.half_width:.2f}")
    if "ratio_theory" in ds:
        order = np.argsort(ds["beta_actual"].values.ravel())
        ax.plot(ds["beta_actual"].values.ravel()[order], np.log(ds["ratio_theory"].values.ravel()[order]), "r--",
                label="ntktheory.hanin_nica_ratio: 5β")
    else:
        ax.plot(bb, PAPER_RATE * bb, "r--", label="Hanin & Nica: 5β")
    ax.set_xlabel("β = depth / width")
    ax.set_ylabel("log E[Θ(x,x)²] / E[Θ(x,x)]²")
    ax.set_title("ReLU NTK dispersion at init (σ_w² = 2, σ_b = 0)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


RECIPE = Recipe(
    name="hanin-nica",
    title="Finite depth and width corrections to the neural tangent kernel",
    reference="Hanin & Nica 2019, arXiv:1909.05989 (ICLR 2020), Thm. 1",
    summary=(
        "Relative second moment E[Θ(x,x)²]/E[Θ(x,x)]² of the diagonal NTK of ReLU networks "
        "(NTK parameterisation, σ_w² = 2, σ_b = 0, inputs on the sphere) over seeds, against β = depth/width; "
        "the exponential rate is fitted with a 95% interval and compared with the paper's exp(5β)."
    ),
    scales={
        "tiny": dict(widths=[8, 16], betas=[0.125, 0.25, 0.5], seeds=48, n_inputs=2, in_features=8, seed_batch=48),
        "small": dict(widths=[16, 32, 64], betas=[0.0625, 0.125, 0.25, 0.375, 0.5], seeds=600, n_inputs=2,
                      in_features=16, seed_batch=150),
        "paper": dict(widths=[32, 64, 128, 256], betas=[0.0625, 0.125, 0.25, 0.5, 0.75, 1.0], seeds=10000,
                      n_inputs=4, in_features=32, seed_batch=250),
    },
    experiment=experiment,
    analyse=analyse,
)
