"""A recipe killed part way (SIGKILL) and run again with the same output folder recomputes only
the tasks that had not finished, and ends with the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from compare.recipes._engine import PID, RecipeTaskError, map_tasks, task_folder

#: Runs hanin-nica at the tiny scale with its task function wrapped: each execution is logged
#: (pid, width, depth) and followed by a pause, so that a kill lands between tasks. The wrapper
#: keeps the function's module and name, hence the store, and returns the task's own result.
#: With a gate file it imports first and starts the run once the file exists (a rerun that is
#: ready the moment the first run is killed).
_SCRIPT = """
import functools, os, sys, time
import empirical, matplotlib.pyplot
from compare.recipes import hanin_nica, run_recipe

out, log, pause, gate = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
while gate and not os.path.exists(gate):
    time.sleep(0.02)
original = hanin_nica._task

@functools.wraps(original)
def logged(task):
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {task['width']} {task['depth']}\\n")
    result = original(task)
    time.sleep(pause)
    return result

hanin_nica._task = logged
run_recipe("hanin-nica", scale="tiny", out=out, threads=1)
"""
N_TASKS = 6  # hanin-nica tiny: 2 widths x 3 betas


def _committed(out: Path) -> dict[str, int]:
    """Committed task key -> pid of the process that computed it (from the store's records)."""
    return {p.name: json.loads((p / ".zattrs").read_text())[PID]
            for p in out.glob("tasks/*.zarr/tasks/task-*") if (p / ".zattrs").exists()}


def _run(out: Path, log: Path, pause: float, gate: Path | str = "") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(out), str(log), str(pause), str(gate)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _claim_rows(report: Path) -> list[str]:
    return [line for line in report.read_text().splitlines() if line.startswith("| ") and line[2].isdigit()]


def test_killed_recipe_resumes_without_recomputing_finished_tasks(tmp_path: Path) -> None:
    out, log = tmp_path / "killed", tmp_path / "executions.txt"
    fresh = _run(tmp_path / "fresh", tmp_path / "fresh.txt", pause=0.0)  # uninterrupted, alongside (2 cores)
    first = _run(out, log, pause=1.0)
    gate = tmp_path / "go"
    second = _run(out, log, pause=0.0, gate=gate)  # imports now, runs once the first is killed
    deadline = time.monotonic() + 120  # generous: a busy machine slows the imports, not the logic
    while len(_committed(out)) < 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _committed(out)
    assert first.returncode == -signal.SIGKILL and 2 <= len(before) < N_TASKS, (first.returncode, before)
    assert not (out / "hanin-nica.nc").exists()

    gate.touch()
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    after = _committed(out)
    assert len(after) == N_TASKS
    assert {k: after[k] for k in before} == before  # the first run's records are untouched
    runs: dict[int, list[tuple[int, int]]] = {}
    for line in log.read_text().split("\n"):
        if line:
            pid, width, depth = map(int, line.split())
            runs.setdefault(pid, []).append((width, depth))
    assert set(runs) == {first.pid, second.pid}
    assert len(runs[second.pid]) == N_TASKS - len(before)  # only the unfinished tasks ran again
    assert len(runs[first.pid]) + len(runs[second.pid]) <= N_TASKS + 1  # at most the one cut short twice

    _, err = fresh.communicate(timeout=120)
    assert fresh.returncode == 0, err
    with xr.open_dataset(out / "hanin-nica.nc") as resumed, \
            xr.open_dataset(tmp_path / "fresh" / "hanin-nica.nc") as uninterrupted:
        xr.testing.assert_identical(resumed.drop_attrs(), uninterrupted.drop_attrs())
    assert _claim_rows(out / "report.md") == _claim_rows(tmp_path / "fresh" / "report.md")


_CALLS: list[int] = []


def _fails_on_two(t: int) -> int:
    _CALLS.append(t)
    if t == 2:
        raise ValueError("two is not allowed")
    return t * 10


def test_failures_are_recorded_and_retried(tmp_path: Path) -> None:
    with task_folder(tmp_path), pytest.raises(RecipeTaskError, match=r"1 of 4 tasks failed \(task 2: ValueError: "
                                                                    r"two is not allowed\).*retries only the others"):
        map_tasks(_fails_on_two, [0, 1, 2, 3], progress=False)
    records = {p.name: json.loads((p / ".zattrs").read_text()) for p in tmp_path.glob("*.zarr/tasks/task-*")}
    assert len(records) == 4 and records["task-000002"]["ntkgap_failed"] == 1
    assert "two is not allowed" in records["task-000002"]["ntkgap_error"]
    with task_folder(tmp_path), pytest.raises(RecipeTaskError, match="1 of 4 tasks failed"):
        map_tasks(_fails_on_two, [0, 1, 2, 3], progress=False)  # retried, fails again; the others are not rerun
    assert _CALLS == [0, 1, 2, 3, 2]


def test_results_read_back_as_they_were_returned(tmp_path: Path) -> None:
    result = {"array": np.arange(3.0), "float": 1.5, "bool": True, "np_float": np.float64(2.0), "text": "x",
              "none": None, "list": [1.0, 2.0], "int": 3, "float32": np.float32(0.25), "empty": np.zeros((2, 0)),
              "mask": np.array([True, False]), "nan": np.array([np.nan, 1e-300])}
    with task_folder(tmp_path):
        (back,) = map_tasks(lambda _: result, [0], progress=False)
    assert list(back) == list(result)
    for key, value in result.items():
        assert type(back[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value, equal_nan=True), key
        else:
            assert back[key] == value, key
    with pytest.raises(RecipeTaskError, match="TypeError: a task returned a set"):
        map_tasks(lambda _: {1}, [0], progress=False)
