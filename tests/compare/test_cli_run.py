"""``ntkgap run`` as a user meets it: configuration mistakes in one line, Ctrl-C without tracebacks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare.cli import main

HERE = Path(__file__).parent

GOOD = """
name = "t"
activations = ["tanh"]
widths = [8]
depths = [1]
seeds = 1
[data]
source = "sphere"
n_train = 4
n_test = 2
"""


@pytest.mark.parametrize(
    "text,message",
    [
        (GOOD + "widht = [3]\n", None),  # a top-level key after a table belongs to the table
        (GOOD.replace('name = "t"', 'name = "t"\nwidht = [3]'),
         r"unknown key(s) ['widht'] (did you mean 'widths'?); allowed top-level keys"),
        (GOOD.replace('name = "t"', 'name = "t"\nparameterisation = "ntk"'),
         r"unknown key(s) ['parameterisation'] (did you mean 'parameterization'?)"),
        (GOOD.replace("n_test = 2", "n_tset = 2"), "sweep config key `data`: unknown key(s) ['n_tset']"),
        (GOOD.replace('name = "t"', 'name = "t" = 1'), "is not valid TOML"),
    ],
)
def test_configuration_mistakes_are_one_line(tmp_path, capfd, text, message):
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "--scheduler", "threads"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("ntkgap run: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert (message or "sweep config key `data`: unknown key(s) ['widht']") in err
    assert not (tmp_path / "o" / "sweep.zarr").exists()


_DRIVER = """
import signal
import sys

# a terminal's process: Ctrl-C raises KeyboardInterrupt (the test worker may hand an ignored
# SIGINT down to its children, as seen once in CI, which would make the interrupt a no-op)
signal.signal(signal.SIGINT, signal.default_int_handler)
from compare_toy_tasks import toy_config, toy_task
from compare import run_sweep
try:
    run_sweep(toy_config(), sys.argv[1], task_fn=toy_task, n_workers=2, progress=False)
except KeyboardInterrupt:
    print("interrupted; finished configurations are saved", file=sys.stderr)
    sys.exit(130)
"""


def test_ctrl_c_on_a_process_cluster_prints_no_worker_tracebacks(tmp_path):
    """Ctrl-C reaches the whole foreground process group: the Dask workers as well as the driver."""
    store = tmp_path / "s.zarr"
    env = {**os.environ, "NTKGAP_TOY_DELAY": "0.3", "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(store)], env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            tasks = store / "tasks"
            if tasks.exists() and len([p for p in tasks.iterdir() if not p.name.startswith(".")]) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().endswith("interrupted; finished configurations are saved")


def test_distributed_sync_cancel_race_is_not_printed():
    """Ctrl-C that lands before distributed's ``sync`` has its future makes tornado log a NameError
    traceback from the event loop; ntkgap drops exactly that record, and no other."""
    import logging

    from compare._sweep import _SYNC_FILTER

    def record(exc, msg="Exception in callback functools.partial(<function sync.<locals>.cancel at 0x7f>)"):
        return logging.LogRecord("tornado.application", logging.ERROR, __file__, 1, msg, None, (type(exc), exc, None))

    race = NameError("cannot access free variable 'future' where it is not associated with a value in enclosing scope")
    assert not _SYNC_FILTER.filter(record(race))
    assert _SYNC_FILTER.filter(record(ValueError("a real error")))
    assert _SYNC_FILTER.filter(record(race, msg="Exception in callback something_else"))
