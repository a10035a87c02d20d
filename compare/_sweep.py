"""Resumable sweeps: every configuration is a task on Dask, every result is committed to Zarr.

The driver (this process) plans the tasks, submits the unfinished ones to a ``dask.distributed``
cluster (a :class:`~distributed.LocalCluster` by default, or an existing scheduler by address),
and commits each result to the :class:`~compare._store.SweepStore` as it arrives. When every task
is committed, the per-task groups are combined, in the configuration's canonical order, into one
Dataset written at the store's root. Since the combined Dataset depends only on the committed
results and the configuration, an interrupted and resumed sweep ends with the same Dataset as an
uninterrupted one.

A task whose function raises is recorded (``failed`` True, ``error`` the message, values NaN) and
the sweep goes on; a task lost to a crashed worker is not recorded, so a rerun retries it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._config import SweepConfig
from ._plan import KIND_DIMS, STATUS_VARS, Task, kind_dims, plan_tasks, resolve_points, threads_per_task
from ._schema import describe_variables, provenance_attrs, to_json
from ._store import SweepStore
from ._tasks import DEVICE, data_variables, measure

__all__ = ["SweepResult", "Task", "combine_results", "kind_dims", "open_sweep_store", "plan_tasks", "run_in_process",
           "run_on_cluster", "run_sweep", "task_prefix", "threads_per_task"]

TaskFunction = Callable[[Task, SweepConfig], xr.Dataset]


def _task_name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def run_task(task_fn: TaskFunction, task: Task, config: SweepConfig) -> xr.Dataset:
    """Run one task, turning an exception into a recorded failure (runs on a Dask worker)."""
    failed, error = STATUS_VARS[task.kind]
    try:
        ds = task_fn(task, config)
        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"task function returned {type(ds).__name__}, expected an xarray.Dataset")
        ds = ds.copy()
        ds[failed] = False
        ds[error] = ""
    except Exception as err:  # recorded, never raised: the sweep goes on
        msg = "".join(traceback.format_exception_only(type(err), err)).strip()
        ds = xr.Dataset({failed: True, error: msg})
    ds.attrs = {"task": to_json(dataclasses.asdict(task))}
    return ds


def _fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "b":
        return False
    if dtype.kind in "OUST":
        return ""
    return np.nan


def _axes(config: SweepConfig) -> dict[str, list]:
    """Coordinate values of every configuration dim, in the configuration's order."""
    return {
        "architecture": list(config.architecture_list),
        "activation": list(config.activations),
        "init": [p.name for p in config.points],
        "width": list(config.widths),
        "depth": list(config.depths),
        "seed": list(config.seeds),
    }


def _template(kind: str, kind_tasks: Sequence[Task], results: dict[str, xr.Dataset]) -> xr.Dataset | None:
    """The first result of a kind's tasks that did not fail: it sets the variables, their dims and attrs."""
    failed, _ = STATUS_VARS[kind]
    return next((results[t.key] for t in kind_tasks if t.key in results and not bool(results[t.key][failed])), None)


def _allocate(kind: str, template: xr.Dataset | None, dims: tuple[str, ...], shape: tuple[int, ...]
              ) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Arrays on the configuration dims (then each variable's own dims), filled with NaN / False / ""."""
    names = list(template.data_vars) if template is not None else []
    for status in STATUS_VARS[kind]:
        if status not in names:
            names.append(status)
    arrays: dict[str, np.ndarray] = {}
    var_dims: dict[str, tuple[str, ...]] = {}
    for name in names:
        if template is not None and name in template:
            v = template[name]
            dtype = v.dtype if v.dtype.kind not in "iu" else np.dtype(np.float64)
            if dtype.kind in "OUST":
                dtype = np.dtype(object)
            var_dims[name] = dims + v.dims
            arrays[name] = np.full(shape + v.shape, _fill_value(dtype), dtype=dtype)
        else:
            dtype = np.dtype(bool) if name == STATUS_VARS[kind][0] else np.dtype(object)
            var_dims[name] = dims
            arrays[name] = np.full(shape, _fill_value(dtype), dtype=dtype)
    return arrays, var_dims


def _fill(kind: str, kind_tasks: Sequence[Task], results: dict[str, xr.Dataset], arrays: dict[str, np.ndarray]) -> None:
    """Write each finished task's values at its index (a failed task: its status only)."""
    failed, _ = STATUS_VARS[kind]
    for t in kind_tasks:
        if t.key not in results:
            continue
        r = results[t.key]
        is_failed = bool(r[failed])
        for name in arrays:
            if is_failed and name not in STATUS_VARS[kind]:
                continue
            if name not in r:
                raise ValueError(f"task {t.key!r} returned no variable {name!r}; every task of a kind must "
                                 "return the same variables.")
            arrays[name][t.index] = r[name].values


def _kind_dataset(config: SweepConfig, kind: str, kind_tasks: Sequence[Task], results: dict[str, xr.Dataset],
                  axes: dict[str, list]) -> xr.Dataset:
    """One kind's results on its configuration dims (:func:`kind_dims`)."""
    dims = kind_dims(config, kind)
    template = _template(kind, kind_tasks, results)
    arrays, var_dims = _allocate(kind, template, dims, tuple(len(axes[d]) for d in dims))
    _fill(kind, kind_tasks, results, arrays)
    coords: dict[str, Any] = {d: axes[d] for d in dims}
    if template is not None:
        coords.update({c: template.coords[c] for c in template.coords})
    for n, arr in arrays.items():  # text as fixed-width unicode: portable to Zarr v2 and NetCDF
        if arr.dtype == object:
            arrays[n] = arr.astype(str)
    ds = xr.Dataset({n: (var_dims[n], arr) for n, arr in arrays.items()}, coords=coords)
    if template is not None:
        for n in arrays:
            if n in template:
                ds[n].attrs = dict(template[n].attrs)
    return ds


def combine_results(
    config: SweepConfig,
    tasks: Sequence[Task],
    results: dict[str, xr.Dataset],
    data: xr.Dataset | None = None,
) -> xr.Dataset:
    """Combine per-task Datasets into one Dataset on the configuration dims.

    Missing values (failed tasks) are NaN / False / "". The result depends only on ``config``,
    ``tasks`` and ``results``, not on the order in which results arrived. Every variable carries
    ``long_name``, ``units`` and ``description`` (:data:`compare._schema.VARIABLE_ATTRS`).
    """
    axes = _axes(config)
    parts = []
    for kind in KIND_DIMS:
        kind_tasks = [t for t in tasks if t.kind == kind]
        if kind_tasks:
            parts.append(_kind_dataset(config, kind, kind_tasks, results, axes))
    out = xr.merge(parts, compat="equals", join="exact", combine_attrs="drop")
    resolved = resolve_points(config)
    table = np.array([[resolved[(a, p)] for p in axes["init"]] for a in axes["activation"]])
    out = out.assign_coords(
        sigma_w2=(("activation", "init"), table[..., 0]),
        sigma_b2=(("activation", "init"), table[..., 1]),
    )
    if data is not None:
        out = xr.merge([out, data], compat="equals", join="outer", combine_attrs="drop_conflicts")
    return describe_variables(out)


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` did: the combined Dataset (None if tasks are still missing)."""

    dataset: xr.Dataset | None
    store: Path
    n_tasks: int
    n_skipped: int
    n_computed: int
    n_failed: int
    n_lost: int


class _DropSyncCancelRace(logging.Filter):
    """Drop the traceback distributed's ``sync`` logs when Ctrl-C lands before its future exists.

    Its ``cancel`` callback then raises ``NameError: cannot access free variable 'future'`` in the
    event loop, which tornado logs with a traceback; the interrupt itself is handled as usual
    (the cluster closes, finished tasks are kept), so the record says nothing to the user.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        race = isinstance(exc, NameError) and "'future'" in str(exc)
        return not (race and "sync.<locals>.cancel" in record.getMessage())


_SYNC_FILTER = _DropSyncCancelRace()


def _make_client(scheduler: str | None, n_workers: int | None, threads_per_worker: int):
    from distributed import Client, LocalCluster

    logging.getLogger("tornado.application").addFilter(_SYNC_FILTER)  # idempotent

    if scheduler in (None, "processes", "threads"):
        # Worker processes inherit an ignored SIGINT: Ctrl-C then interrupts this process alone, which
        # closes the cluster cleanly, instead of every worker printing its own KeyboardInterrupt traceback.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=scheduler != "threads",
                dashboard_address=":0",  # a free port: no clash with other clusters on this machine
                silence_logs=logging.ERROR,
            )
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        return Client(cluster), cluster
    return Client(scheduler), None


def task_prefix(store: Path, identity: str) -> str:
    """Dask key prefix unique to a store and its configuration: runs sharing a scheduler never collide."""
    return "ntkgap-" + hashlib.sha256(f"{store.resolve()}|{identity}".encode()).hexdigest()[:12]


def run_on_cluster(
    items: Sequence[Any],
    submit: Callable[[Any, Any], Any],
    on_result: Callable[[Any, Any], None],
    *,
    name: Callable[[Any], str],
    scheduler: str | None,
    n_workers: int | None,
    threads_per_worker: int,
    progress: bool,
    total: int,
    desc: str,
    unit: str,
    window_per_thread: int | None = None,
    lost: tuple[type[BaseException], ...] = (Exception,),
) -> int:
    """Run ``items`` as Dask tasks, handing each result to ``on_result`` as it arrives.

    The one loop behind :func:`run_sweep` and :func:`compare.kernel_matrix`: it starts the
    cluster (:func:`_make_client`), shows a progress bar over ``total`` units of which
    ``total - len(items)`` are already done, and closes the cluster whatever happens.

    Parameters
    ----------
    items
        What to run, in submission order.
    submit
        ``submit(client, item) -> Future``.
    on_result
        ``on_result(item, result)`` on this process, in completion order.
    name
        ``name(item)``, for the message about a lost task.
    window_per_thread
        None: submit everything at once. Otherwise keep at most this many tasks per worker thread
        in flight (at least 2), so that the driver and the scheduler hold only that many tasks'
        arguments at a time.
    lost
        Exceptions of ``future.result()`` that mean the task was lost (a crashed worker, a
        cancellation): reported, counted and skipped, so that a rerun retries it. Others propagate.

    Returns
    -------
    int
        The number of lost tasks.
    """
    from distributed import as_completed

    n_lost = 0
    client, cluster = _make_client(scheduler, n_workers, threads_per_worker)
    bar = _progress_bar(total, len(items), desc, unit, progress)
    try:
        queue = iter(items)
        window = len(items)
        if window_per_thread is not None:
            window = max(2, window_per_thread * sum(client.nthreads().values()))
        futures = as_completed()
        by_key: dict[str, Any] = {}

        def submit_next() -> None:
            item = next(queue, None)
            if item is not None:
                fut = submit(client, item)
                by_key[fut.key] = item
                futures.add(fut)

        for _ in range(window):
            submit_next()
        for fut in futures:
            item = by_key.pop(fut.key)
            try:
                result = fut.result()
            except lost as err:  # the worker died (KilledWorker) or the task was cancelled
                n_lost += 1
                bar.write(f"{unit} {name(item)} lost ({type(err).__name__}: {err}); rerun to retry it")
                continue
            finally:
                fut.release()
                submit_next()
            on_result(item, result)
            bar.update(1)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return n_lost


def _progress_bar(total: int, pending: int, desc: str, unit: str, progress: bool) -> Any:
    """The engine's progress bar on stderr: ``total`` units, of which ``total - pending`` are done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=total - pending, desc=desc, unit=unit, disable=not progress,
                file=sys.stderr, dynamic_ncols=True)


def run_in_process(
    items: Sequence[Any],
    call: Callable[[Any], Any],
    on_result: Callable[[Any, Any], None],
    *,
    progress: bool,
    total: int,
    desc: str,
    unit: str,
) -> int:
    """Run ``items`` one after the other in this process, as :func:`run_on_cluster` runs them on Dask.

    The same progress bar (``total`` units, ``total - len(items)`` already done) and the same
    ``on_result(item, result)`` hand-off, in submission order; for work whose numbers must not
    depend on another process's library settings (threads, BLAS), or a machine without a cluster.

    Parameters
    ----------
    items
        What to run, in order.
    call
        ``call(item) -> result``.
    on_result
        ``on_result(item, result)``, right after each call.
    progress, total, desc, unit
        As for :func:`run_on_cluster`.

    Returns
    -------
    int
        The number of lost tasks: always 0 (nothing runs elsewhere); the return value of
        :func:`run_on_cluster`, so that callers treat both alike.
    """
    bar = _progress_bar(total, len(items), desc, unit, progress)
    try:
        for item in items:
            on_result(item, call(item))
            bar.update(1)
    finally:
        bar.close()
    return 0


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    task_fn: TaskFunction | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    progress: bool = True,
    data: xr.Dataset | None = None,
) -> SweepResult:
    """Run (or resume) a sweep into the Zarr store ``out``.

    Parameters
    ----------
    config
        The sweep.
    out
        Store directory. An existing store of the same sweep is resumed; one of another sweep is
        refused (:class:`~compare._store.StoreMismatchError`).
    task_fn
        ``task_fn(task, config) -> xarray.Dataset`` (picklable by reference or by value); defaults
        to :func:`compare._tasks.measure`, which runs the analytic and finite-network measurements.
    scheduler
        None or ``"processes"``: a LocalCluster of processes; ``"threads"``: a LocalCluster of
        threads in this process; otherwise the address of a running ``dask.distributed`` scheduler.
    n_workers, threads_per_worker
        LocalCluster size (default: one worker per core, one thread each). The default task
        function runs torch with one thread per task (``NTKGAP_TORCH_THREADS`` on the workers
        overrides it), so the cluster's cores are used without oversubscription.
    progress
        Show a progress bar (done/total, rate, time left) on stderr.
    data
        Dataset merged into the combined result (inputs and targets); defaults to the task
        module's :func:`~compare._tasks.data_variables` when ``task_fn`` is the default.

    Returns
    -------
    SweepResult
    """
    task_fn, data, provenance = _default_task(config, task_fn, data)
    tasks = plan_tasks(config)  # resolves 'critical' points: fails here, before any work
    identity = to_json({"config": config.to_dict(), "task": _task_name(task_fn)})
    store = SweepStore(out, identity, attrs={"creation_time": provenance_attrs()["creation_time"]})
    done = store.finished()
    pending = [t for t in tasks if t.key not in done]
    n_failed = n_lost = 0
    if pending:
        n_failed, n_lost = _run_pending(config, tasks, pending, task_fn, store, identity, scheduler=scheduler,
                                        n_workers=n_workers, threads_per_worker=threads_per_worker, progress=progress)
    if n_lost:
        return SweepResult(None, store.path, len(tasks), len(tasks) - len(pending), len(pending) - n_lost, n_failed,
                           n_lost)
    combined = _combine_store(config, tasks, store, data, provenance, task_fn)
    n_failed = sum(int(combined[v].sum()) for v in ("failed", "theory_failed") if v in combined)
    return SweepResult(combined, store.path, len(tasks), len(tasks) - len(pending), len(pending), n_failed, 0)


def _default_task(config: SweepConfig, task_fn: TaskFunction | None, data: xr.Dataset | None
                  ) -> tuple[TaskFunction, xr.Dataset | None, dict[str, str]]:
    """(task function, data to merge, provenance attrs): :func:`compare._tasks.measure` and its inputs by default."""
    if task_fn is not None:
        return task_fn, data, {}
    return measure, data_variables(config) if data is None else data, {"device": DEVICE, "dtype": config.dtype}


def _run_pending(config: SweepConfig, tasks: Sequence[Task], pending: Sequence[Task], task_fn: TaskFunction,
                 store: SweepStore, identity: str, *, scheduler: str | None, n_workers: int | None,
                 threads_per_worker: int, progress: bool) -> tuple[int, int]:
    """Run the unfinished tasks on the cluster, committing each result as it arrives; (failed, lost)."""
    n_failed = 0
    prefix = task_prefix(store.path, identity)

    def submit(client, t: Task):
        return client.submit(run_task, task_fn, t, config, key=f"{prefix}-{t.key}", pure=False, priority=t.cost)

    def commit(t: Task, ds: xr.Dataset) -> None:
        nonlocal n_failed
        store.write_task(t.key, ds)
        n_failed += int(bool(ds[STATUS_VARS[t.kind][0]]))

    n_lost = run_on_cluster(pending, submit, commit, name=lambda t: t.key, scheduler=scheduler,
                            n_workers=n_workers, threads_per_worker=threads_per_worker, progress=progress,
                            total=len(tasks), desc=f"sweep {config.name}", unit="task")
    return n_failed, n_lost


def _combine_store(config: SweepConfig, tasks: Sequence[Task], store: SweepStore, data: xr.Dataset | None,
                   provenance: dict[str, str], task_fn: TaskFunction) -> xr.Dataset:
    """Read every committed task, combine them (:func:`combine_results`) and write the result at the store's root."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:  # many small groups: overlap their I/O
        results = dict(zip((t.key for t in tasks), pool.map(store.read_task, (t.key for t in tasks))))
    combined = combine_results(config, tasks, results, data)
    combined.attrs = {
        **provenance_attrs(config.to_dict(), seeds=config.seeds, created=store.attrs.get("creation_time"),
                           **provenance),
        **combined.attrs,
        "task_function": _task_name(task_fn),
    }
    return store.write_combined(combined)


def open_sweep_store(path: str | Path) -> xr.Dataset:
    """The Dataset of a sweep store, finished or not; ``path`` is the store or the run folder holding it.

    A finished store (``ntkgap run`` completed) returns its combined Dataset. An unfinished one
    (interrupted, or still running elsewhere) returns the finished tasks combined as
    :func:`combine_results` does, the missing configurations NaN, with attrs ``sweep_status`` =
    ``"partial"`` and ``tasks_finished`` = ``"<done> of <total>"``. The store is only read, so this
    is safe while a sweep is writing to it.

    Raises
    ------
    FileNotFoundError
        If ``path`` is neither a sweep store nor a folder holding ``sweep.zarr``.
    ValueError
        If no task of the sweep has finished yet.
    """
    import json

    path = Path(path)
    store = path / "sweep.zarr" if not (path / ".zgroup").exists() and (path / "sweep.zarr").is_dir() else path
    if not (store / ".zgroup").exists() or not (store / ".zattrs").exists():
        raise FileNotFoundError(
            f"{str(path)!r} is neither a sweep store written by `ntkgap run` nor a run folder holding one "
            "(OUT/ or OUT/sweep.zarr, for `ntkgap run --out OUT`)."
        )
    root = json.loads((store / ".zattrs").read_text())
    if "ntkgap_sweep" not in root:
        raise FileNotFoundError(f"{str(store)!r} is a Zarr store but not an ntkgap sweep (no 'ntkgap_sweep' attr).")
    has_data = (store / "ntk_empirical").exists() or (store / "ntk_theory").exists()
    if (store / ".zmetadata").exists() and has_data:
        with xr.open_zarr(str(store)) as ds:
            return ds.load()
    identity = json.loads(root["ntkgap_sweep"])
    config = SweepConfig.from_mapping(identity["config"], source=str(store))
    tasks = plan_tasks(config)
    tasks_dir = store / "tasks"
    done = {p.name for p in tasks_dir.iterdir() if p.is_dir() and not p.name.startswith(".")} if tasks_dir.exists() \
        else set()
    results = {}
    for t in tasks:
        if t.key in done:
            with xr.open_zarr(str(tasks_dir / t.key), consolidated=False) as r:
                results[t.key] = r.load()
    if not results:
        raise ValueError(f"{str(store)!r} holds a sweep of which no task has finished yet; nothing to show.")
    data = None
    if identity.get("task") == "compare._tasks.measure":
        data = data_variables(config)
    ds = combine_results(config, tasks, results, data)
    ds.attrs = {
        **provenance_attrs(config.to_dict(), seeds=config.seeds, created=root.get("creation_time")),
        "task_function": identity.get("task", ""),
        "sweep_status": "partial",
        "tasks_finished": f"{len(results)} of {len(tasks)}",
    }
    return ds
