"""Running a recipe's independent tasks: :func:`map_tasks`.

Independent configurations of an experiment run through :func:`map_tasks`: in this process by
default, or as tasks on a ``dask.distributed`` scheduler when an address is given. With a
``label`` it shows which part of the experiment runs and how many of its tasks are left (a
progress bar on stderr, as ``ntkgap run`` shows).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["map_tasks"]


def map_tasks(func: Callable[[Any], Any], tasks: Iterable[Any], scheduler: str | None = None, *,
              label: str | None = None, progress: bool = True) -> list[Any]:
    """``[func(t) for t in tasks]``, here or as tasks on a ``dask.distributed`` scheduler.

    Parameters
    ----------
    func
        A module-level (picklable) function of one task description.
    tasks
        Task descriptions (plain dicts), in order.
    scheduler
        None: run in this process, one after the other. An address (``"tcp://host:8786"``): submit
        every task to that scheduler and gather the results in order.
    label
        The part of the experiment these tasks are (e.g. ``"NTK at init"``), shown before the
        progress bar; default: the function's module and name.
    progress
        Show a progress bar on stderr (tasks done / total, time left), as ``ntkgap run`` does.
    """
    tasks = list(tasks)
    if label is None:
        label = f"{getattr(func, '__module__', '') or ''}.{getattr(func, '__name__', 'task')}".split("recipes.")[-1]
    bar = _progress_bar(label if progress else None, len(tasks))
    try:
        if scheduler is None:
            out = []
            for t in tasks:
                out.append(func(t))
                bar.update(1)
            return out
        from dask.distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = client.map(func, tasks, pure=False)
            for _ in as_completed(futures):
                bar.update(1)
            return client.gather(futures)
    finally:
        bar.close()


def _progress_bar(label: str | None, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="task", disable=label is None or total == 0, file=sys.stderr,
                dynamic_ncols=True, leave=True)
