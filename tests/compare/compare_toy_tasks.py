"""Small deterministic task functions for testing the sweep engine without torch."""

from __future__ import annotations

import os
import time

import numpy as np
import xarray as xr

from compare import InitPoint, SweepConfig, TrainingSpec


def toy_config(**overrides) -> SweepConfig:
    kwargs = dict(
        activations=("tanh", "relu"),
        points=(InitPoint("ordered", 0.5, 0.0), InitPoint("chaotic", 4.0, 0.1)),
        widths=(16, 64, 256),
        depths=(1, 2),
        seeds=(0, 1, 2),
        training=TrainingSpec(steps=3, snapshots=2),
        name="toy",
    )
    kwargs.update(overrides)
    return SweepConfig(**kwargs)


def toy_task(task, config) -> xr.Dataset:
    """Theory: sigma_w2 * depth * I; empirical: theory + N(0, 1/width) noise, seeded."""
    delay = float(os.environ.get("NTKGAP_TOY_DELAY", "0"))
    if delay:
        time.sleep(delay)
    base = np.eye(3) * task.sigma_w2 * task.depth + 0.5
    if task.kind == "theory":
        return xr.Dataset({"ntk_theory": (("x1", "x2"), base)})
    if task.activation == "relu" and task.init == "chaotic" and task.width == 64 and task.seed == 1:
        raise RuntimeError("simulated failure in the task function")
    rng = np.random.default_rng([task.seed, task.width, task.depth, len(task.init)])
    noise = rng.standard_normal((3, 3)) / np.sqrt(task.width)
    diverged = task.init == "chaotic" and task.width == 16 and task.seed == 0
    k = base + (noise + noise.T) / 2
    if diverged:
        k = k * np.nan
    return xr.Dataset(
        {
            "ntk_empirical": (("x1", "x2"), k),
            "loss": (("step",), np.array([1.0, 1.0 / task.width])),
            "diverged": diverged,
        },
        coords={"step": [0, 3]},
    )
