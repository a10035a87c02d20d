"""What a user does with a finished sweep, as the README suggests: open the store with
``xarray.open_zarr`` and use ``ds.ntkgap``; ``ntkgap report`` / ``export`` on the run folder; read
summary.csv as numbers; read the variables' attrs."""

import csv
import math
import warnings

import numpy as np
import pytest
import xarray as xr
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

from compare.cli import main

TINY = """
name = "outputs"
activations = ["tanh"]
widths = [8, 16, 32]
depths = [1]
seeds = 2
measure = ["ntk", "nngp", "training"]

[[points]]
name = "critical"
sigma_w2 = "critical"
sigma_b2 = 0.05

[data]
source = "sphere"
n_train = 6
n_test = 3
dim = 5

[training]
steps = 3
snapshots = 2
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny.toml").write_text(TINY)
    out = root / "out"
    assert main(["run", "--config", str(root / "tiny.toml"), "--out", str(out), "--scheduler", "threads",
                 "--no-progress"]) == 0
    return out


ACCESSOR_CALLS = {
    "width_exponent": lambda ds: ds.ntkgap.width_exponent("ntk"),
    "gaps": lambda ds: ds.ntkgap.gaps(),
    "diagonal_relative_variance": lambda ds: ds.ntkgap.diagonal_relative_variance(),
    "relative_variance": lambda ds: ds.ntkgap.relative_variance("nngp"),
    "spectra": lambda ds: ds.ntkgap.spectra(),
    "condition_numbers": lambda ds: ds.ntkgap.condition_numbers(),
    "cka": lambda ds: ds.ntkgap.cka(),
    "kernel_change": lambda ds: ds.ntkgap.kernel_change(),
    "kernel_regression_distance": lambda ds: ds.ntkgap.kernel_regression_distance(),
}


@pytest.mark.parametrize("name", sorted(ACCESSOR_CALLS))
def test_accessor_on_open_zarr_matches_loaded_data_without_warnings(run_folder, name):
    call = ACCESSOR_CALLS[name]
    with xr.open_zarr(run_folder / "sweep.zarr") as lazy:
        assert lazy["ntk_empirical"].chunks is not None  # Dask-backed, as a user gets it
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # neither Dask's "not implemented" warnings nor numpy's
            result = call(lazy).compute()
        eager = call(lazy.load())
    xr.testing.assert_allclose(result, eager, rtol=tol("lazy_vs_eager"))
    values = result.to_array() if isinstance(result, xr.Dataset) else result
    assert np.isfinite(values).any()


def test_report_and_export_take_the_run_folder(run_folder, tmp_path, capsys):
    assert main(["report", str(run_folder), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert "ntk_slope" in printed and "partial" not in printed.lower()
    assert (tmp_path / "rep" / "figures" / "gap_vs_width.png").exists()
    nc = tmp_path / "missing" / "dir" / "x.nc"  # folders are created, as `ntkgap phase --out` does
    assert main(["export", str(run_folder), "--to", str(nc)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {nc}"
    with xr.open_dataset(nc) as back, xr.open_zarr(run_folder / "sweep.zarr") as store:
        xr.testing.assert_identical(back.load(), store.load())


def test_export_to_an_unwritable_place_is_one_line(run_folder, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["export", str(run_folder), "--to", str(blocker / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ntkgap export: error: cannot write '{blocker / 'x.nc'}': ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_summary_csv_intervals_are_numbers(run_folder):
    with open(run_folder / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "ntk_slope_ci95" not in rows[0]
    for row in rows:
        low, slope, high = (float(row[k]) for k in ("ntk_slope_low", "ntk_slope", "ntk_slope_high"))
        assert low <= slope <= high
    text = (run_folder / "summary.txt").read_text()
    assert "ntk_slope_ci95" in text and f"[{low:.2f}, {high:.2f}]" in text  # the text keeps "[low, high]"


def test_every_variable_says_what_it_is(run_folder):
    with xr.open_dataset(run_folder / "sweep.nc") as ds:
        for name in ds.variables:
            attrs = ds[name].attrs
            assert attrs.get("long_name") and attrs.get("description"), name
            if ds[name].dtype.kind not in "USO":
                assert attrs.get("units") == "1", name  # all quantities are dimensionless
        assert "Theta" in ds.ntk_theory.attrs["description"]


def test_empirical_tasks_reuse_the_theory_tasks_kernels(tmp_path, monkeypatch):
    """The analytic kernels are computed once per theory configuration (per process): the empirical
    tasks' learning rate reads the training block of the theory task's NTK instead of computing it
    again, and that block equals the NTK computed on the training points alone (to rounding)."""
    import tomllib

    import ntktheory
    from compare import _tasks
    from compare._config import SweepConfig
    from compare._plan import plan_tasks

    config = SweepConfig.from_mapping(tomllib.loads(TINY))
    _tasks._theory_kernels.cache_clear()
    calls = []
    original = ntktheory.kernels

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(ntktheory, "kernels", counting)
    tasks = plan_tasks(config)
    results = {task.key: _tasks.measure(task, config) for task in tasks}
    assert sum(t.kind == "empirical" for t in tasks) == 6 and calls == [9]  # one call, all 6 + 3 points
    theory = next(results[t.key] for t in tasks if t.kind == "theory")
    x, _, train = _tasks.load_points(config.data)
    alone = original(x[train], activation="tanh", depth=1, sigma_w=math.sqrt(tasks[0].sigma_w2),
                     sigma_b=math.sqrt(tasks[0].sigma_b2)).ntk.values
    np.testing.assert_allclose(theory.ntk_theory.values[:6, :6], alone, rtol=tol("theory_block"), atol=0)
    rates = {float(results[t.key].learning_rate) for t in tasks if t.kind == "empirical"}
    assert len(rates) == 1
    assert rates.pop() == pytest.approx(_tasks.learning_rate(config, alone), rel=tol("theory_block"))
