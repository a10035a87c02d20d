"""Sweeps in the standard parameterisation: the analytic NTK grows with the width, so the theory is
computed per width and every finite network is compared with the kernel of its own width."""

import math

import numpy as np
import pytest
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

import empirical
import ntktheory
from compare import InitPoint, SweepConfig, run_sweep
from compare._config import DataSpec, TrainingSpec
from compare._report import summary_table
from compare._tasks import load_points


def _config(**kw):
    base = dict(activations=("relu",), widths=(16, 64, 256), depths=(1,), seeds=(0, 1), parameterization="standard",
                points=(InitPoint("he", 2.0, 0.0),), measure=("ntk", "nngp", "training"),
                data=DataSpec(source="sphere", n_train=6, n_test=3, dim=5), training=TrainingSpec(steps=3, snapshots=2))
    base.update(kw)
    return SweepConfig(**base)


@pytest.fixture(scope="module")
def standard_sweep(tmp_path_factory):
    cfg = _config()
    return cfg, run_sweep(cfg, tmp_path_factory.mktemp("std") / "s.zarr", scheduler="threads", progress=False)


def test_theory_has_a_width_dim_and_matches_ntktheory(standard_sweep):
    cfg, res = standard_sweep
    ds = res.dataset
    assert res.n_failed == 0 and res.n_tasks == 3 + 3 * 2  # a theory task per width
    assert ds.ntk_theory.dims == ("activation", "init", "width", "depth", "x1", "x2")
    x, _, _ = load_points(cfg.data)
    for w in cfg.widths:
        k = ntktheory.kernels(x, activation="relu", depth=1, sigma_w=math.sqrt(2.0), parameterization="standard",
                              width=w)
        np.testing.assert_allclose(ds.ntk_theory.sel(width=w).squeeze().values, k.ntk.values,
                                   rtol=tol("sweep_vs_kernels"))
        np.testing.assert_allclose(ds.nngp_theory.sel(width=w).squeeze().values, k.nngp.values,
                                   rtol=tol("sweep_vs_kernels"))
    # the NTK grows with the width, the NNGP does not
    diag = ds.ntk_theory.isel(x1=0, x2=0).squeeze()
    assert float(diag.sel(width=256)) > 10 * float(diag.sel(width=16))
    np.testing.assert_allclose(ds.nngp_theory.sel(width=16).values, ds.nngp_theory.sel(width=256).values,
                               rtol=tol("width_free_nngp"))


def test_finite_networks_are_standard_and_approach_their_own_width_kernel(standard_sweep):
    cfg, res = standard_sweep
    ds = res.dataset
    x, _, _ = load_points(cfg.data)
    net = empirical.MLP(x.shape[1], width=64, depth=1, activation="relu", sigma_w=math.sqrt(2.0),
                        parameterization="standard", seed=1,
                        device="cpu")
    np.testing.assert_allclose(ds.ntk_empirical.sel(width=64, seed=1).squeeze().values,
                               empirical.ntk(net, x).numpy(), rtol=tol("sweep_vs_empirical"))
    gap = ds.ntkgap.relative_frobenius("ntk").mean("seed").squeeze()
    assert float(gap.sel(width=256)) < float(gap.sel(width=16)) < 1.0
    text, rows = summary_table(ds)
    assert "kappa_theory@256" in text and np.isfinite(rows[0]["kappa_theory@256"])
    assert np.isfinite(ds.loss).all()  # trained at the rate of each width's analytic NTK


def test_ntk_parameterisation_keeps_one_theory_kernel_for_all_widths():
    from compare._sweep import kind_dims, plan_tasks

    cfg = _config(parameterization="ntk")
    assert kind_dims(cfg, "theory") == ("activation", "init", "depth")
    assert sum(t.kind == "theory" for t in plan_tasks(cfg)) == 1
    assert kind_dims(_config(), "theory") == ("activation", "init", "width", "depth")
