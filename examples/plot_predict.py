"""
Predictions of an infinitely wide network through training
==========================================================

:func:`ntktheory.predict` gives the mean and variance over initialisations of an infinitely wide
network trained by gradient flow on the squared loss, at any time: from the NNGP prior at t = 0 to
NTK regression at t = infinity.
"""

import matplotlib.pyplot as plt
import numpy as np

import ntktheory

rng = np.random.default_rng(0)
t_train = np.sort(rng.uniform(-np.pi, np.pi, 8))
t_test = np.linspace(-np.pi, np.pi, 120)
x, x_test = np.stack([np.cos(t_train), np.sin(t_train)], 1), np.stack([np.cos(t_test), np.sin(t_test)], 1)
y = np.sin(2 * t_train)
p = ntktheory.predict(x, y, x_test, time=[0.0, 3.0, 30.0, np.inf], activation="relu", depth=2,
                      sigma_w=np.sqrt(2.0), sigma_b=0.1, diag_reg=1e-6)

fig, ax = plt.subplots(figsize=(6, 4))
for i, t in enumerate(p.time.values):
    mean = p["mean"].isel(time=i).values[:, 0]
    std = np.sqrt(np.clip(np.diagonal(p["covariance"].isel(time=i).values), 0, None))
    (line,) = ax.plot(t_test, mean, label=f"t = {t:g}")
    ax.fill_between(t_test, mean - std, mean + std, color=line.get_color(), alpha=0.12)
ax.plot(t_train, y, "ko", label="training points")
ax.set(xlabel="angle of the input on the circle", ylabel="f(x)", title="relu, depth 2: mean +- std")
ax.legend(fontsize=8)
fig.tight_layout()
