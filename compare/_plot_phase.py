"""Figure of a mean-field phase diagram, as in Schoenholz et al. 2017 (arXiv:1611.01232), Fig. 1.

chi_1 as a colour map with a diverging colormap centred at 1 (blue: ordered, red: chaotic), the
order/chaos boundary chi_1 = 1 as a black line, labelled contours of the correlation depth scale
xi_c, which diverges along the boundary, and hatching where the length map has no finite fixed
point (q* = inf, e.g. ReLU beyond sigma_w^2 = 2). Axes: sigma_w^2 (x), sigma_b^2 (y).

:func:`draw_phase_diagram` draws into a given Axes (``ntkgap run``'s figure marks the sweep's
initialisations on it); :func:`plot_phase_diagram` writes a PNG with matplotlib's Agg canvas
directly, so the global backend is never changed (``ntkgap phase``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_phase_diagram", "plot_phase_diagram"]

#: xi_c contour levels (layers).
XI_C_LEVELS = (2, 3, 5, 10, 20, 50, 100)
#: Contour labels keep this distance (fraction of the axes) from the critical line, the frame and each other.
_LABEL_CLEARANCE = (0.05, 0.07, 0.09)


def _check(ds) -> None:
    for name in ("chi_1", "xi_c"):
        if name not in ds:
            raise ValueError(
                f"`ds` must be a phase_diagram Dataset with variable {name!r}; got {list(ds.data_vars)!r}."
            )


def _label_positions(segments_per_level, w, b, crit) -> list[tuple[float, float]]:
    """One label position per contour segment, spread over heights and kept clear of the critical line.

    Labels of every level would otherwise gather where the contours converge on the critical line
    (and at the frame, where matplotlib clips them). Each level gets a target height (levels
    staggered by the golden ratio); on each of its segments, the vertex nearest that height is
    taken among those far enough from the critical line, the frame and the labels already placed.
    """
    x_span, y_span = float(w.max() - w.min()), float(b.max() - b.min())
    line_gap, frame_gap, label_gap = _LABEL_CLEARANCE
    ok_crit = np.isfinite(crit)
    positions: list[tuple[float, float]] = []
    for i, segments in enumerate(segments_per_level):
        target = 0.15 + 0.6 * ((i * 0.618) % 1.0)
        for seg in segments:
            if len(seg) < 2:
                continue
            u = (seg[:, 0] - w.min()) / x_span
            v = (seg[:, 1] - b.min()) / y_span
            keep = (u > frame_gap) & (u < 1 - frame_gap) & (v > frame_gap) & (v < 1 - 2 * frame_gap)
            if ok_crit.sum() >= 2:
                line = np.interp(seg[:, 1], b[ok_crit], crit[ok_crit])
                keep &= np.abs(seg[:, 0] - line) / x_span > line_gap
            for pu, pv in positions:
                keep &= np.hypot(u - (pu - w.min()) / x_span, v - (pv - b.min()) / y_span) > label_gap
            if not keep.any():
                continue
            j = np.flatnonzero(keep)[np.argmin(np.abs(v[keep] - target))]
            positions.append((float(seg[j, 0]), float(seg[j, 1])))
    return positions


def draw_phase_diagram(ds, ax, *, colorbar: bool = True, legend: bool = True):
    """Draw the phase diagram of ``ds`` into the matplotlib Axes ``ax``.

    Parameters
    ----------
    ds
        A :func:`ntktheory.phase_diagram` Dataset: ``chi_1`` and ``xi_c`` on ("sigma_w2",
        "sigma_b2"); ``critical_sigma_w2`` (on ``sigma_b2``) and ``length_diverges`` are drawn
        when present.
    ax
        The Axes.
    colorbar
        Add a chi_1 colour bar beside ``ax``.
    legend
        Add a legend (critical line, hatching).

    Returns
    -------
    list
        The legend entries drawn (critical line, hatching), for a legend of your own.

    Examples
    --------
    >>> import ntktheory
    >>> from matplotlib.figure import Figure
    >>> ds = ntktheory.phase_diagram("relu", sigma_w2=np.linspace(0.5, 4, 30), sigma_b2=np.linspace(0, .3, 10))
    >>> ax = Figure().add_subplot()
    >>> handles = draw_phase_diagram(ds, ax)
    >>> [h.get_label() for h in handles]
    ['critical line $\\\\chi_1 = 1$', 'hatched: $q^*=\\\\infty$ (length diverges)']
    """
    from matplotlib import colors
    from matplotlib.patches import Patch

    _check(ds)
    w = ds.sigma_w2.values
    b = ds.sigma_b2.values
    chi = ds.chi_1.transpose("sigma_b2", "sigma_w2").values
    xi = ds.xi_c.transpose("sigma_b2", "sigma_w2").values
    crit = ds.critical_sigma_w2.values if "critical_sigma_w2" in ds else np.full(b.shape, np.nan)

    finite = chi[np.isfinite(chi)]
    lo = min(float(finite.min()) if finite.size else 0.5, 0.999)
    hi = max(float(finite.max()) if finite.size else 1.5, 1.001)
    span = max(1.0 - lo, hi - 1.0)
    norm = colors.TwoSlopeNorm(vcenter=1.0, vmin=1.0 - span, vmax=1.0 + span)
    mesh = ax.pcolormesh(w, b, chi, cmap="RdBu_r", norm=norm, shading="nearest", rasterized=True)
    if colorbar:
        cbar = ax.figure.colorbar(mesh, ax=ax)
        cbar.set_label(r"$\chi_1$  (< 1 ordered, > 1 chaotic)")

    grid2d = w.size > 1 and b.size > 1
    xi_plot = np.where(np.isfinite(xi), xi, np.nan)
    if grid2d and np.isfinite(xi_plot).any():
        cs = ax.contour(w, b, xi_plot, levels=list(XI_C_LEVELS), colors="0.15", linewidths=0.8,
                        linestyles="dashed")
        positions = _label_positions(cs.allsegs, w, b, crit)
        if positions:
            ax.clabel(cs, fmt=lambda v: rf"$\xi_c$={v:g}", fontsize=8, manual=positions, inline_spacing=3)
    handles = []
    if "critical_sigma_w2" in ds:
        ok = np.isfinite(crit)
        (line,) = ax.plot(crit[ok], b[ok], color="black", linewidth=2.2, label=r"critical line $\chi_1 = 1$")
        handles.append(line)
    if "length_diverges" in ds and int(ds.length_diverges.sum()) and grid2d:
        div = ds.length_diverges.transpose("sigma_b2", "sigma_w2").values.astype(float)
        ax.contourf(w, b, div, levels=[0.5, 1.5], colors="none", hatches=["//"])
        handles.append(Patch(facecolor="none", edgecolor="0.1", hatch="//",
                             label=r"hatched: $q^*=\infty$ (length diverges)"))
    if legend and handles:
        ax.legend(handles=handles, loc="upper right", framealpha=0.9, fontsize=8)
    box = {"facecolor": "white", "alpha": 0.7, "edgecolor": "none"}
    if (chi < 1).any():
        ax.text(0.03, 0.92, "ordered", transform=ax.transAxes, ha="left", fontsize=13, weight="bold", color="navy",
                bbox=box)
    if (chi > 1).any():
        ax.text(0.97, 0.06, "chaotic", transform=ax.transAxes, ha="right", fontsize=13, weight="bold",
                color="darkred", bbox=box)
    ax.set_xlim(w.min(), w.max())
    ax.set_ylim(b.min(), b.max())
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    return handles


def plot_phase_diagram(ds, path: str | Path, *, dpi: int = 130) -> Path:
    """Write a PNG of ``ds`` (a :func:`ntktheory.phase_diagram` Dataset) to ``path``.

    Parameters
    ----------
    ds
        Dataset with ``chi_1`` and ``xi_c`` on ("sigma_w2", "sigma_b2"); ``critical_sigma_w2`` on
        ``sigma_b2`` and ``length_diverges`` are drawn when present (see
        :func:`draw_phase_diagram`).
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check(ds)
    fig = Figure(figsize=(7.2, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_phase_diagram(ds, ax)
    ax.set_title(f"Mean-field phase diagram, {ds.attrs.get('activation', '')}"
                 r": $\chi_1$ and depth scale $\xi_c$")
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
