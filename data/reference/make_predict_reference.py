"""Generate data/reference/predict_reference.npz: neural-tangents' predictions for small MLPs.

Run with the separate neural-tangents environment (never a dependency of ntkgap)::

    /work/.venv-nt/bin/python data/reference/make_predict_reference.py

(built by shared/tools/setup_neural_tangents.sh: jax 0.4.30, neural-tangents 0.6.5, float64).
For each network (relu with sigma_w^2 = 2, sigma_b = 0; erf with sigma_w = 1.5, sigma_b = 0.1;
depths 1-3; stax.serial(Dense, phi, ..., Dense) with W_std = sigma_w, b_std = sigma_b, NTK
parameterisation) it stores stax's analytic kernel blocks (nngp/ntk on train-train, test-train,
test-test) and, for each diag_reg, the outputs of

* ``predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate, diag_reg,
  diag_reg_absolute_scale)`` at the times in ``times`` (t = inf included, eigendecomposition path)
  and at t = None (its Cholesky path), for get = "ntk" and "nngp", with compute_cov=True;
* ``predict.gp_inference(k_train_train, y_train, diag_reg, diag_reg_absolute_scale)`` for
  get = "nngp" and "ntkgp" (the exact GP posteriors with the NNGP / NTK as prior).

Inputs: x_train (12, 6), x_test (5, 6) standard normal, y_train (12, 2) (two outputs, so that
the loss normalisation 1/(2 N k) is exercised), default trace_axes=(-1,).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import predict, stax  # noqa: E402

OUT = Path(__file__).resolve().parent / "predict_reference.npz"
NETWORKS = {"relu": (np.sqrt(2.0), 0.0), "erf": (1.5, 0.1)}
DEPTHS = (1, 2, 3)
DIAG_REGS = (1e-6, 1e-4, 1e-3)
LEARNING_RATE = 0.7
TIMES = np.array([0.0, 0.3, 3.0, 30.0, 300.0, 3000.0, np.inf])


def network(activation: str, depth: int):
    sw, sb = NETWORKS[activation]
    phi = stax.Relu() if activation == "relu" else stax.Erf()
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=sw, b_std=sb), phi]
    layers.append(stax.Dense(2, W_std=sw, b_std=sb))
    return stax.serial(*layers)[2]


def main() -> None:
    rng = np.random.default_rng(20261123)
    x_train = rng.standard_normal((12, 6))
    x_test = rng.standard_normal((5, 6))
    y_train = np.stack([np.sin(x_train[:, 0]), np.cos(x_train[:, 1]) * x_train[:, 2]], axis=1)
    out = {"x_train": x_train, "x_test": x_test, "y_train": y_train, "times": TIMES,
           "learning_rate": np.array(LEARNING_RATE), "diag_regs": np.array(DIAG_REGS),
           "neural_tangents_version": np.array(nt.__version__), "jax_version": np.array(jax.__version__)}
    cases = []
    for act in NETWORKS:
        for depth in DEPTHS:
            kernel_fn = network(act, depth)
            net = f"{act}-d{depth}"
            k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
            k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"))
            k_tt = kernel_fn(x_test, None, ("nngp", "ntk"))
            for g in ("nngp", "ntk"):
                out[f"{net}__{g}_train_train"] = np.asarray(getattr(k_dd, g))
                out[f"{net}__{g}_test_train"] = np.asarray(getattr(k_td, g))
                out[f"{net}__{g}_test_test"] = np.asarray(getattr(k_tt, g))
            regs = [(r, False) for r in DIAG_REGS] + ([(1e-4, True)] if (act, depth) == ("relu", 2) else [])
            for reg, absolute in regs:
                case = f"{net}__reg{reg:g}{'abs' if absolute else ''}"
                cases.append(case)
                fn = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate=LEARNING_RATE,
                                                           diag_reg=reg, diag_reg_absolute_scale=absolute)
                for g in ("ntk", "nngp"):
                    res = fn(t=TIMES, x_test=x_test, get=g, compute_cov=True)
                    out[f"{case}__gd_{g}_mean"] = np.asarray(res.mean)
                    out[f"{case}__gd_{g}_cov"] = np.asarray(res.covariance)
                    res = fn(t=None, x_test=x_test, get=g, compute_cov=True)
                    out[f"{case}__inf_{g}_mean"] = np.asarray(res.mean)
                    out[f"{case}__inf_{g}_cov"] = np.asarray(res.covariance)
                gp = predict.gp_inference(k_dd, y_train, diag_reg=reg, diag_reg_absolute_scale=absolute)
                res = gp(get=("nngp", "ntkgp"), k_test_train=k_td, k_test_test=k_tt)
                for g in ("nngp", "ntkgp"):
                    out[f"{case}__bayes_{g}_mean"] = np.asarray(getattr(res, g).mean)
                    out[f"{case}__bayes_{g}_cov"] = np.asarray(getattr(res, g).covariance)
    out["cases"] = np.array(cases)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB, {len(cases)} cases)")


if __name__ == "__main__":
    main()
