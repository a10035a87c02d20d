"""
Analytic against empirical NTK as the width grows
=================================================

The mean empirical NTK of an ensemble of finite networks (:func:`empirical.ensemble_kernels`)
against the analytic NTK (:func:`ntktheory.kernels`) of the same architecture: a single network's
relative Frobenius gap shrinks like width^(-1/2).
"""

import matplotlib.pyplot as plt
import numpy as np

import compare
import empirical
import ntktheory

x, _ = compare.sphere_points(8, 5, seed=0)
config = dict(depth=2, activation="tanh", sigma_w=1.5, sigma_b=0.1)
theory = ntktheory.kernels(x, **config).ntk.values
widths = [16, 32, 64, 128, 256]
gaps = []
for w in widths:
    ens = empirical.ensemble_kernels(x, width=w, seeds=6, **config)
    k = ens.ntk_empirical.values  # (seed, x1, x2)
    gaps.append(np.linalg.norm(k - theory, axis=(1, 2)) / np.linalg.norm(theory))
gaps = np.array(gaps)

fig, ax = plt.subplots(figsize=(5, 4))
ax.loglog(widths, gaps.mean(1), "o-", label="one network, mean over 6 seeds")
ax.fill_between(widths, gaps.min(1), gaps.max(1), alpha=0.2)
ax.loglog(widths, gaps.mean(1)[0] * (np.array(widths) / widths[0]) ** -0.5, "k--", label=r"width$^{-1/2}$")
ax.set(xlabel="width", ylabel=r"$\|\Theta_{emp} - \Theta\|_F / \|\Theta\|_F$", title="tanh, depth 2")
ax.set_xticks(widths, [str(w) for w in widths])
ax.minorticks_off()
ax.legend()
fig.tight_layout()
