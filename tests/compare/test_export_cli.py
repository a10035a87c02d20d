import json
import subprocess
import sys

import pytest
import xarray as xr
from compare_toy_tasks import toy_config, toy_task
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

from compare import run_sweep
from compare._report import export_netcdf
from compare.cli import main

TINY = """
name = "tiny"
activations = ["tanh", "relu"]
widths = [16, 32, 64]
depths = [1]
seeds = 2
measure = ["ntk", "nngp", "training"]

[[points]]
name = "ordered"
sigma_w2 = "0.5*critical"
sigma_b2 = 0.05

[[points]]
name = "chaotic"
sigma_w2 = 3.0
sigma_b2 = 0.05

[data]
source = "sphere"
n_train = 8
n_test = 4
dim = 6

[training]
steps = 4
snapshots = 2
"""

_PLAIN = """
import sys, json
import xarray as xr
nc = xr.open_dataset(sys.argv[1]).load()
zr = xr.open_zarr(sys.argv[2]).load()
assert not any(m.split(".")[0] in ("compare", "ntktheory", "empirical") for m in sys.modules), "ntkgap was imported"
print(json.dumps({
    "nc_vars": sorted(nc.data_vars), "zarr_vars": sorted(zr.data_vars),
    "nc_sum": float(nc["ntk_empirical"].sum()), "zarr_sum": float(zr["ntk_empirical"].sum()),
    "dims": dict(nc.sizes), "config": nc.attrs["config"],
}))
"""


def test_netcdf_and_zarr_round_trip_preserve_values_dims_attrs(tmp_path):
    ds = run_sweep(toy_config(), tmp_path / "s.zarr", task_fn=toy_task, scheduler="threads", progress=False).dataset
    export_netcdf(ds, tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc") as nc:
        xr.testing.assert_identical(nc.load(), ds)
    with xr.open_zarr(tmp_path / "s.zarr") as zr:
        xr.testing.assert_identical(zr.load(), ds)
    assert ds.failed.dtype == bool and ds.error.dtype.kind == "U"
    assert json.loads(ds.attrs["config"])["widths"] == [16, 64, 256]


def test_cli_end_to_end_on_tiny_sweep(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "ntk_slope" in printed and "relu" in printed and "chaotic" in printed
    for name in ("sweep.zarr", "sweep.nc", "summary.txt", "summary.csv", "figures/gap_vs_width.png",
                 "figures/kernel_change_vs_width.png", "figures/phase_diagram.png"):
        assert (out / name).exists(), name
    ds = xr.open_zarr(out / "sweep.zarr").load()
    assert ds.ntk_empirical.dims == ("activation", "init", "width", "depth", "seed", "x1", "x2")
    assert not ds.failed.any() and not ds.theory_failed.any()
    # the empirical kernels scatter around theory, closer at larger width
    gap = ds.ntkgap.relative_frobenius("ntk").mean(["seed", "activation", "init", "depth"])
    assert float(gap.sel(width=64)) < float(gap.sel(width=16)) < 1.0
    assert "device" in ds.attrs and "creation_time" in ds.attrs and ds.attrs["seeds"] == "[0, 1]"

    # rerun: nothing recomputed, same dataset
    assert main(["run", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "0 computed" in capsys.readouterr().out

    # a different configuration into the same store is refused with an explanation
    cfg2 = tmp_path / "tiny2.toml"
    cfg2.write_text(TINY.replace("seeds = 2", "seeds = 3"))
    assert main(["run", "--config", str(cfg2), "--out", str(out), "--no-progress"]) == 2
    assert "different sweep configuration (seeds: store has [0, 1], this run has [0, 1, 2])" in capsys.readouterr().err

    # report and export from the store
    rep = tmp_path / "rep"
    assert main(["report", str(out / "sweep.zarr"), "--out", str(rep)]) == 0
    assert (rep / "figures" / "gap_vs_width.png").exists()
    assert (rep / "summary.txt").read_text().startswith("At initialisation")
    nc = tmp_path / "export.nc"
    assert main(["export", str(out / "sweep.zarr"), "--to", str(nc)]) == 0
    res = subprocess.run([sys.executable, "-c", _PLAIN, str(nc), str(out / "sweep.zarr")], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    plain = json.loads(res.stdout)
    assert plain["nc_vars"] == plain["zarr_vars"] == sorted(ds.data_vars)
    assert plain["nc_sum"] == pytest.approx(float(ds.ntk_empirical.sum()), rel=tol("export_sums"))
    assert plain["zarr_sum"] == pytest.approx(float(ds.ntk_empirical.sum()), rel=tol("export_sums"))
    assert plain["dims"]["width"] == 3 and json.loads(plain["config"])["name"] == "tiny"


def test_cli_errors_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("widths = [16, 32, 64]", "widths = [16, -32]"))
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "sweep config key `widths`" in capsys.readouterr().err
    assert not (tmp_path / "o" / "sweep.zarr").exists()
    assert main(["export", str(tmp_path / "nowhere.zarr"), "--to", str(tmp_path / "x.nc")]) == 2
    assert "is neither a sweep store written by `ntkgap run` nor a run folder holding one" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere.zarr"), "--to", str(tmp_path / "x.csv")]) == 2
    assert "--to must name a .nc file" in capsys.readouterr().err
