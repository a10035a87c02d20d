"""Summary table and figures of a finished sweep (the output of ``ntkgap run`` / ``ntkgap report``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from . import _accessor  # noqa: F401  (Dataset.ntkgap)
from ._metrics import width_scaling_exponent
from ._plot_phase import draw_phase_diagram

__all__ = ["export_netcdf", "partial_note", "plot_gap_vs_width", "plot_kernel_change", "plot_phase_points",
           "summary_table", "write_report"]


def _fit_or_nan(da: xr.DataArray) -> xr.Dataset | None:
    if "width" not in da.dims or da.sizes["width"] < 2:
        return None
    return width_scaling_exponent(da)


def summary_table(ds: xr.Dataset) -> tuple[str, list[dict]]:
    """One row per (activation, init, depth): the gaps at the extreme widths and the fitted exponents.

    Returns the table as aligned text and as a list of dicts (for CSV), whose values are numbers
    (the slope's 95% interval as ``ntk_slope_low`` and ``ntk_slope_high``; the text shows it as
    ``ntk_slope_ci95`` = "[low, high]").
    """
    gaps = ds.ntkgap.gaps()
    ntk_fit = _fit_or_nan(gaps["ntk_gap"]) if "ntk_gap" in gaps else None
    chg_fit = _fit_or_nan(gaps["ntk_change"]) if "ntk_change" in gaps else None
    krd = gaps.get("kernel_regression_distance")
    w_lo, w_hi = int(ds.width.min()), int(ds.width.max())
    cond = ds.ntkgap.condition_numbers("ntk") if {"ntk_empirical", "ntk_theory"} <= set(ds.variables) else None
    rows = []
    for a in ds.activation.values:
        for i in ds.init.values:
            for d in ds.depth.values:
                sel = {"activation": a, "init": i, "depth": d}
                row: dict = {
                    "activation": str(a), "init": str(i),
                    "sigma_w2": float(ds.sigma_w2.sel(activation=a, init=i)),
                    "sigma_b2": float(ds.sigma_b2.sel(activation=a, init=i)),
                    "depth": int(d),
                }
                if "ntk_gap" in gaps:
                    g = gaps["ntk_gap"].sel(sel)
                    row[f"ntk_gap@{w_lo}"] = float(g.sel(width=w_lo).mean("seed"))
                    row[f"ntk_gap@{w_hi}"] = float(g.sel(width=w_hi).mean("seed"))
                if ntk_fit is not None:
                    f = ntk_fit.sel(sel)
                    row["ntk_slope"] = float(f.slope)
                    row["ntk_slope_low"] = float(f.slope_low)  # the 95% interval, as numbers (CSV)
                    row["ntk_slope_high"] = float(f.slope_high)
                if "ntk_diagonal_relative_variance" in gaps:
                    row[f"diag_relvar@{w_lo}"] = float(gaps["ntk_diagonal_relative_variance"].sel(sel).sel(width=w_lo))
                    if str(a) == "relu" and "width" in ds.dims:
                        row[f"hanin_nica@{w_lo}"] = float(ds.ntkgap.hanin_nica_prediction().sel(
                            activation=a, depth=d, width=w_lo))
                    else:
                        row[f"hanin_nica@{w_lo}"] = float("nan")
                if cond is not None:
                    kappa = cond["ntk_cond_theory"].sel(sel)
                    if "width" in kappa.dims:  # standard parameterisation: the analytic NTK of each width
                        row[f"kappa_theory@{w_hi}"] = float(kappa.sel(width=w_hi))
                    else:
                        row["kappa_theory"] = float(kappa)
                    row[f"kappa@{w_hi}"] = float(cond["ntk_cond_empirical"].sel(sel).sel(width=w_hi).median("seed"))
                if chg_fit is not None:
                    row[f"ntk_change@{w_hi}"] = float(gaps["ntk_change"].sel(sel).sel(width=w_hi).mean("seed"))
                    row["change_slope"] = float(chg_fit.sel(sel).slope)
                if "lin_distance" in gaps:
                    row[f"lin_dist@{w_hi}"] = float(gaps["lin_distance"].sel(sel).sel(width=w_hi).mean("seed"))
                if krd is not None:
                    row[f"kr_dist@{w_hi}"] = float(krd.sel(sel).sel(width=w_hi).mean("seed"))
                bad = 0
                for v in ("failed", "diverged"):
                    if v in ds:
                        bad += int(ds[v].sel(sel).sum())
                row["failed+diverged"] = bad
                rows.append(row)
    shown = [_ci_text(r) for r in rows]  # the text table shows the interval as "[low, high]"
    cols = list(shown[0]) if shown else []
    cols = [c for c in cols if all(c in r for r in shown)]

    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if np.isfinite(v) else "nan"
        return str(v)

    key = ["activation", "init", "sigma_w2", "sigma_b2", "depth"]
    training = ("ntk_change", "change_slope", "lin_dist", "kr_dist", "failed")
    blocks = [
        ("At initialisation (finite NTK vs analytic NTK)",
         [c for c in cols if c not in key and not c.startswith(training)]),
        ("After training (gradient descent on the training points)",
         [c for c in cols if c.startswith(training)]),
    ]
    lines: list[str] = []
    for title, block in blocks:
        if not block:
            continue
        bcols = key + block
        cells = [[fmt(r[c]) for c in bcols] for r in shown]
        widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(bcols)]
        lines += [title,
                  "  ".join(c.rjust(w) for c, w in zip(bcols, widths)),
                  "  ".join("-" * w for w in widths)]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        lines.append("")
    legend = (
        "ntk_gap = |Theta_emp - Theta_theory|_F / |Theta_theory|_F at init (mean over seeds); ntk_slope = "
        "log-log slope vs width with 95% CI (theory -1/2); diag_relvar = Var/E^2 of Theta(x,x) over seeds, "
        "hanin_nica = exp(5 depth/width) - 1 (relu, zero bias; up to constants); kappa = condition number "
        "lambda_max/lambda_min of the NTK on the training points (analytic; finite net, median over seeds); "
        "ntk_change = relative NTK change after training; "
        "lin_dist = |f_net - f_lin| / |f_lin| on test points; kr_dist = |f_net - f_kr| / |f_kr| with f_kr "
        "the infinite-width kernel-regression prediction from the same initialisation (Lee et al. 2019)."
    )
    import textwrap

    return "\n".join(lines) + "\n" + "\n".join(textwrap.wrap(legend, 100)), rows


def partial_note(ds: xr.Dataset) -> str:
    """What a partial sweep (:func:`compare._sweep.open_sweep_store`) lacks, in words; "" when it is finished."""
    if ds.attrs.get("sweep_status") != "partial":
        return ""
    return (f"partial sweep, {ds.attrs.get('tasks_finished', 'some')} tasks finished (the others are NaN); run the "
            "same `ntkgap run` command to finish it")


def _ci_text(row: dict) -> dict:
    """``row`` with ``ntk_slope_low``/``_high`` shown as one ``ntk_slope_ci95`` text cell "[low, high]"."""
    out = {}
    for key, value in row.items():
        if key == "ntk_slope_low":
            out["ntk_slope_ci95"] = f"[{value:.2f}, {row['ntk_slope_high']:.2f}]"
        elif key != "ntk_slope_high":
            out[key] = value
    return out


def _panel_grid(n: int, height: float = 4.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(6.4 * n, height), squeeze=False, sharey=False)
    return fig, axes[0]


def _width_plot(ds: xr.Dataset, values: xr.DataArray, *, ylabel: str, title: str, reference: float | None,
                path: Path, reference_label: str = "theory") -> Path:
    import matplotlib.pyplot as plt

    fig, axes = _panel_grid(ds.sizes["activation"], height=4.8)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    widths = ds.width.values.astype(float)
    fit = width_scaling_exponent(values) if ds.sizes["width"] >= 2 else None
    for ax, a in zip(axes, ds.activation.values):
        panel = values.sel(activation=a)
        if not bool((np.isfinite(panel) & (panel > 0)).any()):  # a partial sweep: nothing measured here yet
            ax.text(0.5, 0.5, "no finished networks yet", transform=ax.transAxes, ha="center", va="center")
            ax.set_title(f"{a}")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        for ii, i in enumerate(ds.init.values):
            for jd, d in enumerate(ds.depth.values):
                v = values.sel(activation=a, init=i, depth=d)
                mean = v.mean("seed").values
                err = v.std("seed", ddof=1).values / np.sqrt(max(v.sizes.get("seed", 1), 1))
                label = f"{i} σw²={float(ds.sigma_w2.sel(activation=a, init=i)):.2f} L={int(d)}"
                if fit is not None:
                    s = fit.sel(activation=a, init=i, depth=d)
                    label += (f": slope {float(s.slope):+.2f} [{float(s.slope_low):+.2f}, "
                              f"{float(s.slope_high):+.2f}]")
                ax.errorbar(widths, mean, yerr=err, color=colors[ii % len(colors)], ls=styles[jd % len(styles)],
                            marker="o", ms=3, capsize=2, label=label)
        if reference is not None:
            good = values.sel(activation=a).mean("seed")
            anchor = float(good.isel(width=0).median(skipna=True))
            if np.isfinite(anchor) and anchor > 0:
                ax.plot(widths, anchor * (widths / widths[0]) ** reference, color="k", ls="--", lw=1.2,
                        label=f"∝ width^{reference:g} ({reference_label})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width n")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{a}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False,
                  title="init, depth L: fitted log-log slope [95% CI]", title_fontsize=7.5)
    fig.suptitle(title + (f"\n[{partial_note(ds)}]" if partial_note(ds) else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _titled(title: str, architecture: str) -> str:
    return f"{architecture}: {title}" if architecture else title


def plot_gap_vs_width(ds: xr.Dataset, path: str | Path, *, architecture: str = "") -> Path:
    """Relative Frobenius NTK gap at init vs width, log-log, fitted slopes and the -1/2 reference."""
    return _width_plot(
        ds, ds.ntkgap.relative_frobenius("ntk"),
        ylabel="|Θ_emp − Θ_∞|_F / |Θ_∞|_F at init",
        title=_titled("Finite-width NTK vs infinite-width theory (mean ± s.e. over seeds)", architecture),
        reference=-0.5, path=Path(path),
    )


def plot_kernel_change(ds: xr.Dataset, path: str | Path, *, architecture: str = "") -> Path:
    """Relative NTK change after training vs width, log-log, with fitted slopes."""
    steps = int(ds.step.values[-1])
    return _width_plot(
        ds, ds.ntkgap.kernel_change(),
        ylabel=f"|Θ_t − Θ_0|_F / |Θ_0|_F after {steps} GD steps",
        title=_titled("NTK change during training (lazy regime: → 0 with width; log-log slopes fitted)", architecture),
        reference=-0.5, path=Path(path), reference_label="Lee et al. 2019 bound",
    )


def plot_phase_points(ds: xr.Dataset, path: str | Path) -> Path:
    """Order/chaos phase diagram of each activation with the sweep's initialisations marked.

    Each panel is the figure of ``ntkgap phase`` (:func:`compare._plot_phase.draw_phase_diagram`:
    chi_1, the critical line, xi_c contours, and hatching where q* = inf) over a grid that holds
    every initialisation of the sweep, with the initialisations as stars.
    """
    import matplotlib.pyplot as plt

    import ntktheory

    path = Path(path)
    sw2 = ds.sigma_w2.values
    sb2 = ds.sigma_b2.values
    # the critical line rises like a square root from sigma_b2 = 0: resolve it geometrically
    sb_grid = np.concatenate([[0.0], np.geomspace(1e-5, max(0.3, 1.5 * float(np.max(sb2))), 48)])
    sw_max = max(4.0, 1.2 * float(np.max(sw2)))
    fig, axes = _panel_grid(ds.sizes["activation"])
    for ax, a in zip(axes, ds.activation.values):
        ph = ntktheory.phase_diagram(str(a), sigma_w2=np.linspace(0.05, sw_max, 96), sigma_b2=sb_grid)
        handles = draw_phase_diagram(ph, ax, legend=False)
        ia = list(ds.activation.values).index(a)
        for ii, i in enumerate(ds.init.values):
            handles += ax.plot(sw2[ia, ii], sb2[ia, ii], marker="*", ms=14, mec="k", ls="none", label=f"sweep: {i}")
        ax.set_title(f"{a}: sweep initialisations on the phase diagram")
        ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def export_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to NetCDF-4 (readable by plain ``xarray.open_dataset``)."""
    path = Path(path)
    ds = ds.copy()
    for name in ds.variables:
        ds[name].encoding = {}
    ds.to_netcdf(path, engine="netcdf4")
    return path


def write_report(ds: xr.Dataset, out: str | Path) -> dict[str, Path | str]:
    """Figures, the summary table (text and CSV) of a sweep into directory ``out``.

    A partial sweep (``sweep_status`` = "partial") is marked as such in the table and the titles.

    A sweep over architectures gets one gap and one kernel-change figure per architecture
    (``gap_vs_width_<architecture>.png``) and an ``architecture`` column in the table.
    """
    import csv

    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path | str] = {}
    if "architecture" in ds.dims:
        parts = [(str(a), ds.sel(architecture=a, drop=True)) for a in ds.architecture.values]
    else:
        parts = [("", ds)]
    texts, rows = [], []
    for arch, sub in parts:
        suffix = f"_{arch}" if arch else ""
        if "ntk_empirical" in sub and "ntk_theory" in sub:
            written[f"gap_vs_width{suffix}"] = plot_gap_vs_width(sub, fig_dir / f"gap_vs_width{suffix}.png",
                                                                 architecture=arch)
        if "ntk_change" in sub:
            written[f"kernel_change{suffix}"] = plot_kernel_change(
                sub, fig_dir / f"kernel_change_vs_width{suffix}.png", architecture=arch)
        text, sub_rows = summary_table(sub)
        texts.append(f"Architecture {arch}\n{text}" if arch else text)
        rows += [{"architecture": arch, **r} for r in sub_rows] if arch else sub_rows
    written["phase_diagram"] = plot_phase_points(parts[0][1], fig_dir / "phase_diagram.png")
    text = "\n\n".join(texts)
    if partial_note(ds):
        text = f"{partial_note(ds)[0].upper()}{partial_note(ds)[1:]}.\n\n{text}"
    (out / "summary.txt").write_text(text + "\n")
    with open(out / "summary.csv", "w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    written["summary"] = text
    return written
