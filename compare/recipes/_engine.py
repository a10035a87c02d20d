"""Running a recipe's independent tasks on the sweep engine: :func:`map_tasks`.

Independent configurations of an experiment run through :func:`map_tasks`, on the engine of
``ntkgap run`` (:mod:`compare._sweep`): each result is committed to a resumable Zarr store
(:class:`compare._store.SweepStore`, one group per finished task, committed by an atomic
rename) as it arrives, a task whose function raises is recorded as a failure, and a progress bar
on stderr shows how many tasks are left. Tasks run in this process by default (one after the
other, with this process's torch and BLAS settings), or on a ``dask.distributed`` scheduler when
an address is given.

Inside :func:`compare.recipes.run_recipe` the stores live in ``OUT/tasks/``, one per call of
:func:`map_tasks`, named by the task function and a fingerprint of the task descriptions: a
recipe killed part way and run again with the same output folder computes only the tasks that
had not finished. Outside a run (a recipe's ``experiment`` called directly) the store is a
temporary folder, removed afterwards.

A task's result goes through the store both when it is computed and when it is read back on a
resumed run, so both give the same objects: plain Python numbers and strings, numpy scalars and
arrays (same dtype, same values), ``None``, lists and tuples of numbers, and dicts of these by
string keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._schema import provenance_attrs, to_json
from .._store import SweepStore
from .._sweep import run_in_process, run_on_cluster, task_prefix

__all__ = ["RecipeTaskError", "decode_result", "encode_result", "map_tasks", "task_fingerprint", "task_folder"]

#: Where :func:`map_tasks` keeps its stores (set by :func:`task_folder`); None: a temporary folder.
_TASK_FOLDER: contextvars.ContextVar[Path | None] = contextvars.ContextVar("ntkgap_recipe_task_folder", default=None)

#: Root attrs of a committed task group: whether the task failed, the error, who computed it.
FAILED, ERROR, INDEX, PID = "ntkgap_failed", "ntkgap_error", "ntkgap_task_index", "ntkgap_pid"
#: Variable attrs of an encoded result: its Python type and numpy dtype; dataset attr: its shape.
_TYPE, _DTYPE, _KIND, _KEYS = "ntkgap_type", "ntkgap_dtype", "ntkgap_result", "ntkgap_keys"


class RecipeTaskError(RuntimeError):
    """Tasks of a recipe failed or were lost; the others are committed, and a rerun retries these."""


@contextlib.contextmanager
def task_folder(path: str | Path) -> Iterator[Path]:
    """Keep the stores of :func:`map_tasks` calls in ``path`` while the block runs (a run's ``OUT/tasks``)."""
    path = Path(path)
    token = _TASK_FOLDER.set(path)
    try:
        yield path
    finally:
        _TASK_FOLDER.reset(token)


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged byte form of ``obj`` to the hash ``h``."""
    if isinstance(obj, Mapping):
        h.update(b"{%d" % len(obj))
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%s%d" % (type(obj).__name__.encode(), len(obj)))
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, (np.ndarray, np.generic)):
        arr = np.ascontiguousarray(obj)
        if arr.dtype.kind == "O":
            raise TypeError("a task description holds an object array; use numeric or string arrays.")
        h.update(f"a{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"a task description holds a {type(obj).__name__}; tasks must be built of dicts, lists, "
                        "tuples, numbers, strings and numpy arrays, so that they can be fingerprinted.")


def task_fingerprint(tasks: Iterable[Any]) -> str:
    """SHA-256 of the task descriptions' values, types and order (equal tasks, equal fingerprint).

    Examples
    --------
    >>> task_fingerprint([{"a": 1, "b": np.zeros(2)}]) == task_fingerprint([{"b": np.zeros(2), "a": 1}])
    True
    >>> task_fingerprint([1]) == task_fingerprint([1.0])
    False
    """
    h = hashlib.sha256()
    _feed(h, list(tasks))
    return h.hexdigest()


def _encode_value(value: Any) -> tuple[np.ndarray, str]:
    if value is None:
        return np.zeros(0), "none"
    if isinstance(value, np.generic):  # before the Python types: numpy.float64 is a float
        return np.asarray(value), "numpy"
    if type(value) in (bool, int, float, complex, str):
        return np.asarray(value), type(value).__name__
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            raise TypeError("a task returned an object array; return numeric or string arrays.")
        return value, "ndarray"
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind == "O" or type(value)(arr.tolist()) != value or _types(arr.tolist()) != _types(value):
            raise TypeError(f"a task returned a {type(value).__name__} that is not a regular array of plain "
                            "numbers; return a numpy array instead.")
        return arr, type(value).__name__
    raise TypeError(f"a task returned a {type(value).__name__}; tasks return numbers, strings, numpy arrays, None, "
                    "lists or tuples of numbers, or dicts of these.")


def _types(value: Any) -> Any:
    return [_types(v) for v in value] if isinstance(value, (list, tuple)) else type(value)


def encode_result(result: Any) -> xr.Dataset:
    """A task's result as a Dataset for the store (inverse: :func:`decode_result`).

    A dict with string keys becomes one variable per key; anything else one variable ``value``.
    Each variable records its Python type and numpy dtype, so that decoding gives back the same
    objects.

    Raises
    ------
    TypeError
        If the result (or a value of the dict) is of a kind the store does not hold.
    """
    is_dict = isinstance(result, Mapping)
    items = list(result.items()) if is_dict else [("value", result)]
    if is_dict and not all(isinstance(k, str) for k, _ in items):
        raise TypeError("a task returned a dict with keys that are not strings.")
    data = {}
    for j, (_, value) in enumerate(items):
        arr, kind = _encode_value(value)
        dims = tuple(f"v{j}_{d}" for d in range(arr.ndim))
        data[f"v{j}"] = xr.Variable(dims, arr, attrs={_TYPE: kind, _DTYPE: arr.dtype.str})
    ds = xr.Dataset(data)
    ds.attrs = {_KIND: "dict" if is_dict else "value", _KEYS: to_json([k for k, _ in items])}
    return ds


def decode_result(ds: xr.Dataset) -> Any:
    """The object :func:`encode_result` stored (``ds`` read with ``decode_cf=False``)."""
    import json

    out = {}
    for j, key in enumerate(json.loads(ds.attrs[_KEYS])):
        var = ds[f"v{j}"]
        kind = var.attrs[_TYPE]
        arr = np.asarray(var.values).astype(np.dtype(var.attrs[_DTYPE]), copy=False)
        if kind == "none":
            value: Any = None
        elif kind in ("bool", "int", "float", "complex", "str"):
            value = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str}[kind](arr[()])
        elif kind == "numpy":
            value = arr[()]
        elif kind == "ndarray":
            value = arr
        else:
            value = {"list": list, "tuple": tuple}[kind](_nested(arr.tolist(), kind))
        out[key] = value
    return out if ds.attrs[_KIND] == "dict" else out["value"]


def _nested(values: list, kind: str) -> list:
    if kind == "tuple":
        return [tuple(_nested(v, kind)) if isinstance(v, list) else v for v in values]
    return values


def _run_one(func: Callable[[Any], Any], index: int, task: Any) -> xr.Dataset:
    """Run one task and encode its result, turning an exception into a recorded failure."""
    try:
        ds = encode_result(func(task))
        ds.attrs.update({FAILED: 0, ERROR: ""})
    except Exception as err:  # recorded, never raised here: the other tasks go on
        msg = "".join(traceback.format_exception_only(type(err), err)).strip()
        ds = xr.Dataset(attrs={FAILED: 1, ERROR: msg})
    ds.attrs.update({INDEX: index, PID: os.getpid()})
    return ds


def _read(store: SweepStore, key: str) -> xr.Dataset:
    with xr.open_zarr(str(store.tasks_path / key), consolidated=False, decode_cf=False) as ds:
        return ds.load()


def _store_name(func: Callable, fingerprint: str) -> str:
    name = f"{getattr(func, '__module__', '') or ''}.{getattr(func, '__qualname__', 'task')}".split("recipes.")[-1]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + f"-{fingerprint[:16]}.zarr"


def _key(index: int) -> str:
    return f"task-{index:06d}"


def map_tasks(func: Callable[[Any], Any], tasks: Iterable[Any], scheduler: str | None = None, *,
              label: str | None = None, progress: bool = True) -> list[Any]:
    """``[func(t) for t in tasks]`` on the sweep engine: resumable, failures recorded, progress shown.

    Parameters
    ----------
    func
        A module-level (picklable) function of one task description, deterministic: a resumed
        run mixes results of two runs.
    tasks
        Task descriptions (dicts, lists, numbers, strings, numpy arrays), in order; they and the
        function's name identify the store (:func:`task_fingerprint`).
    scheduler
        None: run in this process, one after the other. An address (``"tcp://host:8786"``): run
        the tasks on that ``dask.distributed`` scheduler (or ``"processes"`` / ``"threads"`` for
        a local cluster).
    label
        The part of the experiment these tasks are (e.g. ``"NTK at init"``), shown before the
        progress bar; default: the function's module and name.
    progress
        Show a progress bar on stderr (tasks done / total, time left), as ``ntkgap run`` does.

    Returns
    -------
    list
        The results in the order of ``tasks``, each as it reads back from the store.

    Raises
    ------
    RecipeTaskError
        If tasks failed (their errors are recorded in the store and listed in the message) or
        were lost with a worker; the finished ones stay committed and a rerun retries the rest.
    """
    tasks = list(tasks)
    if label is None:
        label = f"{getattr(func, '__module__', '') or ''}.{getattr(func, '__name__', 'task')}".split("recipes.")[-1]
    folder = _TASK_FOLDER.get()
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ntkgap-recipe-tasks-")))
        return _map(func, tasks, scheduler, label, progress, folder, temporary=_TASK_FOLDER.get() is None)


def _map(func: Callable[[Any], Any], tasks: list[Any], scheduler: str | None, label: str, progress: bool,
         folder: Path, *, temporary: bool) -> list[Any]:
    fingerprint = task_fingerprint(tasks)
    name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"
    identity = to_json({"task": name, "tasks": fingerprint, "n_tasks": len(tasks)})
    folder.mkdir(parents=True, exist_ok=True)
    store = SweepStore(folder / _store_name(func, fingerprint), identity,
                       attrs={"creation_time": provenance_attrs()["creation_time"]})
    done = store.finished()
    for key in sorted(done):  # recorded failures are retried: a recipe needs every result
        if _read(store, key).attrs.get(FAILED):
            store.remove_task(key)
            done.discard(key)
    pending = [(i, t) for i, t in enumerate(tasks) if _key(i) not in done]
    failures: list[str] = []

    def commit(item: tuple[int, Any], ds: xr.Dataset) -> None:
        store.write_task(_key(item[0]), ds)
        if ds.attrs[FAILED]:
            failures.append(f"task {item[0]}: {ds.attrs[ERROR]}")

    show = progress and bool(tasks)
    if scheduler is None:
        n_lost = run_in_process(pending, lambda item: _run_one(func, *item), commit, progress=show,
                                total=len(tasks), desc=label, unit="task")
    else:
        prefix = task_prefix(store.path, identity)
        n_lost = run_on_cluster(
            pending, lambda client, item: client.submit(_run_one, func, *item, key=f"{prefix}-{_key(item[0])}",
                                                        pure=False),
            commit, name=lambda item: _key(item[0]), scheduler=scheduler, n_workers=None, threads_per_worker=1,
            progress=show, total=len(tasks), desc=label, unit="task",
        )
    if failures or n_lost:
        shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
        raise RecipeTaskError(
            f"{label}: {len(failures)} of {len(tasks)} tasks failed" + (f" ({shown})" if failures else "")
            + (f", {n_lost} lost with their worker" if n_lost else "")
            + ("; outside `run_recipe` (no output folder) the finished ones are not kept" if temporary else
               f"; the finished ones are kept in {str(store.path)!r}, and running again with the same output folder "
               "retries only the others")
            + "."
        )
    return [decode_result(_read(store, _key(i))) for i in range(len(tasks))]
