"""
Order-to-chaos phase diagram
============================

The mean-field phase diagram of a tanh network (Schoenholz et al. 2017, Fig. 1): chi_1 over the
(sigma_w^2, sigma_b^2) plane, the critical line chi_1 = 1 from
:func:`ntktheory.critical_sigma_w2`, and contours of the correlation depth scale xi_c, which
diverges on the critical line.
"""

import matplotlib.pyplot as plt
import numpy as np

import ntktheory

ph = ntktheory.phase_diagram("tanh", sigma_w2=np.linspace(0.5, 4, 80), sigma_b2=np.linspace(0, 0.3, 50))

fig, ax = plt.subplots(figsize=(6, 4))
mesh = ax.pcolormesh(ph.sigma_w2, ph.sigma_b2, ph.chi_1.T, cmap="RdBu_r", vmin=0, vmax=2, shading="auto")
fig.colorbar(mesh, ax=ax, label=r"$\chi_1$")
ax.plot(ph.critical_sigma_w2, ph.sigma_b2, "k-", lw=2, label=r"critical line $\chi_1 = 1$")
cs = ax.contour(ph.sigma_w2, ph.sigma_b2, ph.xi_c.T, levels=[2, 5, 10, 20], colors="0.2", linewidths=0.8)
ax.clabel(cs, fmt=r"$\xi_c$=%g", fontsize=7)
ax.set(xlabel=r"$\sigma_w^2$", ylabel=r"$\sigma_b^2$", title="tanh: ordered (left) and chaotic (right)")
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()
