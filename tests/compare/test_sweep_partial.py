"""A sweep that has not finished (interrupted, or still running) can be looked at: report and export
show what is there, marked as partial, without touching the store."""

import json

import numpy as np
import pytest
import xarray as xr
from compare_toy_tasks import toy_config, toy_task

import compare
from compare._schema import to_json
from compare._store import SweepStore
from compare._sweep import _task_name, open_sweep_store, plan_tasks, run_sweep, run_task
from compare.cli import main


def _partial_store(path, config, keep):
    """A store holding the first ``keep`` tasks of ``config``, as an interrupted ``ntkgap run`` leaves it."""
    identity = to_json({"config": config.to_dict(), "task": _task_name(toy_task)})
    store = SweepStore(path, identity)
    tasks = plan_tasks(config)
    for t in tasks[:keep]:
        store.write_task(t.key, run_task(toy_task, t, config))
    return tasks


def test_partial_store_opens_with_missing_values_nan(tmp_path):
    cfg = toy_config()
    tasks = _partial_store(tmp_path / "run" / "sweep.zarr", cfg, keep=20)
    before = sorted(p.name for p in (tmp_path / "run" / "sweep.zarr" / "tasks").iterdir())
    ds = open_sweep_store(tmp_path / "run")  # the run folder, as `ntkgap run --out` names it
    assert ds.attrs["sweep_status"] == "partial" and ds.attrs["tasks_finished"] == f"20 of {len(tasks)}"
    done = [t for t in tasks[:20] if t.kind == "empirical"]
    missing = [t for t in tasks[20:] if t.kind == "empirical"]
    assert done and missing
    assert np.isfinite(ds.ntk_empirical.sel(done[0].coords)).all() or bool(ds.diverged.sel(done[0].coords))
    assert np.isnan(ds.ntk_empirical.sel(missing[0].coords)).all()
    # the same values as the finished sweep where they exist
    full = run_sweep(cfg, tmp_path / "full.zarr", task_fn=toy_task, scheduler="threads", progress=False).dataset
    sel = done[-1].coords
    xr.testing.assert_identical(ds.ntk_empirical.sel(sel), full.ntk_empirical.sel(sel))
    # only read: a sweep still writing to the store is not disturbed
    assert sorted(p.name for p in (tmp_path / "run" / "sweep.zarr" / "tasks").iterdir()) == before
    assert json.loads(ds.attrs["config"]) == json.loads(to_json(cfg.to_dict()))


def test_report_and_export_mark_a_partial_sweep(tmp_path, capsys):
    cfg = toy_config()
    run = tmp_path / "run"
    tasks = _partial_store(run / "sweep.zarr", cfg, keep=40)
    assert main(["report", str(run)]) == 0
    note = f"40 of {len(tasks)} tasks finished (the others are NaN); run the same `ntkgap run` command to finish it"
    printed = capsys.readouterr().out
    assert printed.startswith(f"Partial sweep, {note}.")
    assert (run / "summary.txt").read_text().startswith("Partial sweep")
    assert (run / "figures" / "gap_vs_width.png").exists()
    assert main(["export", str(run / "sweep.zarr"), "--to", str(tmp_path / "p.nc")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'p.nc'} (partial sweep, {note})"
    with xr.open_dataset(tmp_path / "p.nc") as back:
        assert back.attrs["sweep_status"] == "partial"


def test_a_store_without_finished_tasks_or_no_store_is_one_line(tmp_path, capsys):
    _partial_store(tmp_path / "empty.zarr", toy_config(), keep=0)
    assert main(["report", str(tmp_path / "empty.zarr")]) == 2
    assert "no task has finished yet; nothing to show" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--to", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "is neither a sweep store written by `ntkgap run` nor a run folder holding one" in err
    assert err.count("\n") == 1


def test_finished_store_is_returned_as_written(tmp_path):
    res = run_sweep(toy_config(), tmp_path / "out" / "sweep.zarr", task_fn=toy_task, scheduler="threads",
                    progress=False)
    for path in (tmp_path / "out", tmp_path / "out" / "sweep.zarr"):
        ds = open_sweep_store(path)
        assert "sweep_status" not in ds.attrs
        xr.testing.assert_identical(ds, res.dataset)


@pytest.mark.parametrize("name", ["gaps", "width_exponent"])
def test_accessor_on_partial_data(tmp_path, name):
    _partial_store(tmp_path / "s.zarr", toy_config(), keep=30)
    ds = compare._sweep.open_sweep_store(tmp_path / "s.zarr")
    out = ds.ntkgap.gaps() if name == "gaps" else ds.ntkgap.width_exponent("ntk")
    assert isinstance(out, xr.Dataset)
