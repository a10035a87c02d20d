"""Figure of a mean-field phase diagram, as in Schoenholz et al. 2017 (arXiv:1611.01232), Fig. 1.

chi_1 as a colour map with a diverging colormap centred at 1 (blue: ordered, red: chaotic), the
order/chaos boundary chi_1 = 1 as a black line, and labelled contours of the correlation depth
scale xi_c, which diverges along the boundary. Axes: sigma_w^2 (x), sigma_b^2 (y). Uses
matplotlib's Agg canvas directly, so the global backend is never changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_phase_diagram"]

#: xi_c contour levels (layers).
XI_C_LEVELS = (2, 3, 5, 10, 20, 50, 100)


def plot_phase_diagram(ds, path: str | Path, *, dpi: int = 130) -> Path:
    """Write a PNG of ``ds`` (a :func:`ntktheory.phase_diagram` Dataset) to ``path``.

    Parameters
    ----------
    ds
        Dataset with ``chi_1`` and ``xi_c`` on ("sigma_w2", "sigma_b2"); ``critical_sigma_w2`` on
        ``sigma_b2`` is drawn when present.
    path
        Output file (PNG).
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, ntktheory
    >>> ds = ntktheory.phase_diagram("tanh", sigma_w2=np.linspace(0.5, 3, 20), sigma_b2=np.linspace(0, .2, 10))
    >>> plot_phase_diagram(ds, tempfile.mkdtemp() + "/phase.png").suffix
    '.png'
    """
    from matplotlib import colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for name in ("chi_1", "xi_c"):
        if name not in ds:
            raise ValueError(
                f"`ds` must be a phase_diagram Dataset with variable {name!r}; got {list(ds.data_vars)!r}."
            )
    w = ds.sigma_w2.values
    b = ds.sigma_b2.values
    chi = ds.chi_1.transpose("sigma_b2", "sigma_w2").values
    xi = ds.xi_c.transpose("sigma_b2", "sigma_w2").values

    fig = Figure(figsize=(7.2, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite = chi[np.isfinite(chi)]
    lo = min(float(finite.min()) if finite.size else 0.5, 0.999)
    hi = max(float(finite.max()) if finite.size else 1.5, 1.001)
    span = max(1.0 - lo, hi - 1.0)
    norm = colors.TwoSlopeNorm(vcenter=1.0, vmin=1.0 - span, vmax=1.0 + span)
    mesh = ax.pcolormesh(w, b, chi, cmap="RdBu_r", norm=norm, shading="nearest", rasterized=True)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(r"$\chi_1$  (< 1 ordered, > 1 chaotic)")

    xi_plot = np.where(np.isfinite(xi), xi, np.nan)
    if w.size > 1 and b.size > 1 and np.isfinite(xi_plot).any():
        cs = ax.contour(w, b, xi_plot, levels=list(XI_C_LEVELS), colors="0.15", linewidths=0.8,
                        linestyles="dashed")
        ax.clabel(cs, fmt=lambda v: rf"$\xi_c$={v:g}", fontsize=8)
    if "length_diverges" in ds and int(ds.length_diverges.sum()) and w.size > 1 and b.size > 1:
        div = ds.length_diverges.transpose("sigma_b2", "sigma_w2").values.astype(float)
        ax.contourf(w, b, div, levels=[0.5, 1.5], colors="none", hatches=["//"])
        ax.plot([], [], color="none", label=r"hatched: $q^*=\infty$ (length diverges)")
    if "critical_sigma_w2" in ds:
        crit = ds.critical_sigma_w2.values
        ok = np.isfinite(crit)
        ax.plot(crit[ok], b[ok], color="black", linewidth=2.2, label=r"critical line $\chi_1 = 1$")
        ax.legend(loc="upper right", framealpha=0.9)
    if (chi < 1).any():
        ax.text(0.03, 0.92, "ordered", transform=ax.transAxes, ha="left", fontsize=13, weight="bold",
                color="navy", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
    if (chi > 1).any():
        ax.text(0.97, 0.06, "chaotic", transform=ax.transAxes, ha="right", fontsize=13, weight="bold",
                color="darkred", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
    ax.set_xlim(w.min(), w.max())
    ax.set_ylim(b.min(), b.max())
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    ax.set_title(f"Mean-field phase diagram, {ds.attrs.get('activation', '')}"
                 r": $\chi_1$ and depth scale $\xi_c$")
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
