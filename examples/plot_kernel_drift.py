"""
Kernel drift during training
============================

:func:`empirical.train` runs full-batch gradient descent at half the critical learning rate and
records the empirical NTK at snapshots. Its relative change from initialisation shrinks with the
width: wide networks train in the lazy (kernel) regime.
"""

import matplotlib.pyplot as plt
import numpy as np

import compare
import empirical

x, _ = compare.sphere_points(8, 4, seed=1)
y = np.sin(2 * x[:, 0])

fig, ax = plt.subplots(figsize=(5, 4))
for w in [16, 64, 256]:
    change = []
    for seed in range(3):
        net = empirical.MLP(in_features=4, width=w, depth=2, activation="relu", sigma_w=np.sqrt(2.0), seed=seed)
        run = empirical.train(net, x, y, steps=30, lr_factor=0.5, snapshot_steps=[0, 5, 10, 20, 30])
        change.append(run.ntk_relative_change.sel(step=slice(1, None)).values)
    ax.plot(run.step.sel(step=slice(1, None)), np.mean(change, 0), "o-", label=f"width {w}")
ax.set(xlabel="gradient-descent step", ylabel=r"$\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F$ (mean of 3 seeds)",
       yscale="log", title="relu, depth 2")
ax.legend()
fig.tight_layout()
