"""
Convolutional networks: one description, two interpretations
============================================================

A CNN with global average pooling written once with :mod:`ntktheory.layers`: the analytic NTK from
:func:`ntktheory.kernels` and the torch network from :func:`empirical.build`. The empirical NTK of
built networks approaches the analytic one as the number of channels grows, the relative gap of
one network falling like channels^(-1/2) (four images of 6 x 6 pixels, eight seeds per width; the
bars are standard errors of the mean over seeds).
"""

import matplotlib.pyplot as plt
import numpy as np

import empirical
import ntktheory
from ntktheory import layers as L

images = np.random.default_rng(0).standard_normal((4, 1, 6, 6))  # NCHW


def arch(channels):
    return L.serial(
        L.Conv(channels=channels, kernel_size=3, sigma_w=1.5, sigma_b=0.1),
        L.Activation("relu"),
        L.Conv(channels=channels, kernel_size=3, sigma_w=1.5, sigma_b=0.1),
        L.Activation("relu"),
        L.GlobalAvgPool(),
        L.Dense(features=1, sigma_w=1.5, sigma_b=0.1),
    )


theory = ntktheory.kernels(images, architecture=arch(1)).ntk.values  # the analytic kernel ignores channels
channels = [8, 32, 128, 512]
seeds = 8
gaps = []
for c in channels:
    ks = [empirical.ntk(empirical.build(arch(c), in_shape=(1, 6, 6), seed=s), images).numpy() for s in range(seeds)]
    gaps.append([np.linalg.norm(k - theory) / np.linalg.norm(theory) for k in ks])
gaps = np.array(gaps)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.8))
im = ax0.imshow(theory, cmap="viridis")
fig.colorbar(im, ax=ax0)
ax0.set(title="analytic CNN-GAP NTK", xlabel="x2", ylabel="x1", xticks=range(4), yticks=range(4))
ax1.errorbar(channels, gaps.mean(1), yerr=gaps.std(1) / np.sqrt(seeds), fmt="o-", capsize=3,
             label=f"mean ± s.e. over {seeds} seeds")
ax1.set(xscale="log", yscale="log")
ax1.loglog(channels, gaps.mean(1)[0] * (np.array(channels) / channels[0]) ** -0.5, "k--",
           label=r"channels$^{-1/2}$")
ax1.set(xlabel="channels", ylabel="relative Frobenius gap", title="empirical vs analytic")
ax1.set_xticks(channels, [str(c) for c in channels])
ax1.minorticks_off()
ax1.legend()
fig.tight_layout()
