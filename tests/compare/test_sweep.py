from pathlib import Path

import cloudpickle
import compare_toy_tasks
import numpy as np
import pytest
import xarray as xr
from compare_toy_tasks import toy_config, toy_task
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

from compare import InitPoint, StoreMismatchError, run_sweep

HERE = Path(__file__).parent


def _run(cfg, path, **kw):
    return run_sweep(cfg, path, task_fn=toy_task, scheduler="threads", n_workers=2, progress=False, **kw)


def test_failed_and_diverged_tasks_are_recorded_while_others_finish(tmp_path):
    cfg = toy_config()
    res = _run(cfg, tmp_path / "s.zarr")
    ds = res.dataset
    assert res.n_tasks == 2 * 2 * 2 + 2 * 2 * 3 * 2 * 3
    assert res.n_failed == 2  # the failing (relu, chaotic, 64, seed 1) at both depths
    bad = ds.sel(activation="relu", init="chaotic", width=64, seed=1)
    assert bad.failed.all() and "simulated failure" in str(bad.error.values[0])
    assert np.isnan(bad.ntk_empirical).all()
    div = ds.sel(init="chaotic", width=16, seed=0)
    assert div.diverged.all() and np.isnan(div.ntk_empirical).all()
    ok = ds.sel(activation="tanh", init="ordered", width=256)
    assert not ok.failed.any() and np.isfinite(ok.ntk_empirical).all()
    assert int(ds.failed.sum()) == 2 and set(ds.error.sel(activation="tanh").values.ravel()) == {""}
    # theory is stored once per (activation, init, depth), with the resolved sigma's as coordinates
    assert ds.ntk_theory.dims == ("activation", "init", "depth", "x1", "x2")
    assert float(ds.sigma_w2.sel(activation="relu", init="chaotic")) == 4.0
    # the store's root is the combined dataset, readable by plain xarray
    with xr.open_zarr(tmp_path / "s.zarr") as back:
        xr.testing.assert_identical(back.load(), ds)


def test_gap_shrinks_like_inverse_sqrt_width_in_toy_sweep(tmp_path):
    ds = _run(toy_config(activations=("tanh",), depths=(1,), seeds=tuple(range(6))), tmp_path / "s.zarr").dataset
    fit = ds.sel(init="ordered").ntkgap.width_exponent("ntk")
    assert float(np.abs(fit.slope + 0.5).max()) < tol("sweep_slope")


def test_store_of_another_configuration_is_refused(tmp_path):
    _run(toy_config(seeds=(0,)), tmp_path / "s.zarr")
    with pytest.raises(StoreMismatchError, match=r"different sweep configuration \(seeds: store has \[0\]"):
        _run(toy_config(seeds=(0, 1)), tmp_path / "s.zarr")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(StoreMismatchError, match="is not an ntkgap sweep store"):
        _run(toy_config(), tmp_path / "other")


def test_rerun_of_finished_sweep_computes_nothing(tmp_path):
    first = _run(toy_config(seeds=(0,)), tmp_path / "s.zarr")
    again = _run(toy_config(seeds=(0,)), tmp_path / "s.zarr")
    assert again.n_computed == 0 and again.n_skipped == first.n_tasks
    xr.testing.assert_identical(first.dataset, again.dataset)


def test_local_cluster_of_processes_runs_tiny_grid(tmp_path):
    cloudpickle.register_pickle_by_value(compare_toy_tasks)
    try:
        cfg = toy_config(activations=("tanh",), points=(InitPoint("ordered", 0.5, 0.0),), widths=(16, 64),
                         seeds=(0, 1), depths=(1,))
        res = run_sweep(cfg, tmp_path / "p.zarr", task_fn=toy_task, n_workers=2, progress=False)
    finally:
        cloudpickle.unregister_pickle_by_value(compare_toy_tasks)
    ref = _run(cfg, tmp_path / "t.zarr").dataset
    xr.testing.assert_identical(res.dataset.drop_attrs(), ref.drop_attrs())
