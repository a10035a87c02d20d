"""Interrupted sweeps (kill -9, Ctrl-C) resume to exactly the uninterrupted dataset."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from compare_toy_tasks import toy_config, toy_task

import compare
from compare import run_sweep

HERE = Path(__file__).parent


def _run(cfg, path, **kw):
    return run_sweep(cfg, path, task_fn=toy_task, scheduler="threads", n_workers=2, progress=False, **kw)


_DRIVER = """
import signal
import sys

# a terminal's process: Ctrl-C raises KeyboardInterrupt (the test worker may hand an ignored
# SIGINT down to its children, as seen once in CI, which would make the interrupt a no-op)
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {here!r})
from compare_toy_tasks import toy_config, toy_task
from compare import run_sweep
try:
    run_sweep(toy_config(activations=("tanh",)), {store!r}, task_fn=toy_task, scheduler="threads", n_workers=1,
              progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_resume_after_interruption_gives_the_uninterrupted_dataset(tmp_path, sig):
    store = tmp_path / "killed.zarr"
    env = {**os.environ, "NTKGAP_TOY_DELAY": "0.05"}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER.format(here=str(HERE), store=str(store))], env=env)
    tasks = store / "tasks"
    try:
        while proc.poll() is None:
            if tasks.exists() and len([p for p in tasks.iterdir() if not p.name.startswith(".")]) >= 10:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the driver finished before it could be killed"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == (-9 if sig == signal.SIGKILL else 130)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = {p.name for p in tasks.iterdir() if not p.name.startswith(".")}
    cfg = toy_config(activations=("tanh",))
    total = len(compare.plan_tasks(cfg))
    assert 10 <= len(committed) < total
    assert not (store / "ntk_empirical").exists()  # no combined view from an unfinished sweep
    resumed = _run(cfg, store)
    assert resumed.n_skipped == len(committed) and resumed.n_computed == total - len(committed)
    fresh = _run(cfg, tmp_path / "fresh.zarr").dataset
    a = xr.open_zarr(store).load()
    b = xr.open_zarr(tmp_path / "fresh.zarr").load()
    for ds in (a, b, fresh):
        ds.attrs.pop("creation_time")
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(a, fresh)
    assert not list(tasks.glob(".tmp-*"))
