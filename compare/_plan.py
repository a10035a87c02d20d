"""Sweep planning: the tasks of a configuration, their dims, and the thread policy of one task.

:func:`plan_tasks` lists a sweep's :class:`Task` objects in canonical order; :func:`kind_dims`
gives the configuration dims of each kind of task; :func:`threads_per_task` sizes a task's
numeric library on a Dask worker. The sweep engine (:mod:`compare._sweep`) and the task
functions (:mod:`compare._tasks`, :mod:`compare._kernel_matrix`) both import from here, so
neither imports the other's module for these names.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ._config import SweepConfig

__all__ = ["KIND_DIMS", "STATUS_VARS", "Task", "kind_dims", "plan_tasks", "resolve_points", "threads_per_task"]

#: Configuration dims of each task kind, in canonical order.
KIND_DIMS: dict[str, tuple[str, ...]] = {
    "theory": ("activation", "init", "depth"),
    "empirical": ("activation", "init", "width", "depth", "seed"),
}
#: Status variables each kind gets (names differ so the kinds merge without clashes).
STATUS_VARS: dict[str, tuple[str, str]] = {
    "theory": ("theory_failed", "theory_error"),
    "empirical": ("failed", "error"),
}


def kind_dims(config: SweepConfig, kind: str) -> tuple[str, ...]:
    """Configuration dims of a task kind; ``architecture`` first when the config sweeps architectures.

    In the standard parameterisation the analytic NTK depends on the width, so theory tasks get a
    ``width`` dim too (one analytic kernel per width).
    """
    dims = KIND_DIMS[kind]
    if kind == "theory" and config.parameterization == "standard":
        dims = ("activation", "init", "width", "depth")
    return ("architecture", *dims) if config.architectures is not None else dims


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work: a theory task per ([architecture,] activation, init, depth) (and width, in
    the standard parameterisation), an empirical task per ([architecture,] activation, init, width,
    depth, seed)."""

    kind: str
    activation: str
    init: str
    sigma_w2: float
    sigma_b2: float
    depth: int
    width: int | None = None
    seed: int | None = None
    index: tuple[int, ...] = ()
    architecture: str = "fcn"
    dims: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable, file-system-safe name: the kind and the indices into the config's lists."""
        return f"{self.kind}-" + "-".join(str(i) for i in self.index)

    @property
    def coords(self) -> dict[str, Any]:
        """The task's value on each of its configuration dims."""
        return {d: getattr(self, d) for d in (self.dims or KIND_DIMS[self.kind])}

    @property
    def cost(self) -> float:
        """Rough relative cost, used as the Dask priority (expensive tasks first)."""
        return float((self.width or 1) ** 2 * self.depth)


def resolve_points(config: SweepConfig) -> dict[tuple[str, str], tuple[float, float]]:
    """(activation, point name) -> (sigma_w2, sigma_b2), with 'critical' resolved per activation."""
    return {(a, p.name): p.resolve(a) for a in config.activations for p in config.points}


def plan_tasks(config: SweepConfig) -> list[Task]:
    """All tasks of a sweep, in canonical order (theory first, then empirical)."""
    resolved = resolve_points(config)
    sweeping = config.architectures is not None
    tasks: list[Task] = []
    for kind in ("theory", "empirical"):
        dims = kind_dims(config, kind)
        for iarch, arch in enumerate(config.architecture_list):
            lead = (iarch,) if sweeping else ()
            for ia, a in enumerate(config.activations):
                for ip, p in enumerate(config.points):
                    sw2, sb2 = resolved[(a, p.name)]
                    if kind == "theory" and "width" not in dims:
                        for idd, d in enumerate(config.depths):
                            tasks.append(Task("theory", a, p.name, sw2, sb2, d, index=(*lead, ia, ip, idd),
                                              architecture=arch, dims=dims))
                        continue
                    if kind == "theory":  # standard parameterisation: one analytic kernel per width
                        for iw, w in enumerate(config.widths):
                            for idd, d in enumerate(config.depths):
                                tasks.append(Task("theory", a, p.name, sw2, sb2, d, w, index=(*lead, ia, ip, iw, idd),
                                                  architecture=arch, dims=dims))
                        continue
                    for iw, w in enumerate(config.widths):
                        for idd, d in enumerate(config.depths):
                            for isd, s in enumerate(config.seeds):
                                tasks.append(Task("empirical", a, p.name, sw2, sb2, d, w, s,
                                                  index=(*lead, ia, ip, iw, idd, isd), architecture=arch, dims=dims))
    return tasks


def threads_per_task(variable: str) -> int | None:
    """How many threads one task should give its numeric library, on a Dask worker; None elsewhere.

    A worker with n threads runs up to n tasks at once on (by Dask's convention) n cores, so each
    task uses one thread: the worker's cores are all busy, none oversubscribed. A worker that runs
    one task at a time on several cores (``dask worker --nthreads 1`` on a big node) sets the
    environment variable ``variable`` (e.g. ``NTKGAP_TORCH_THREADS``) to the cores per task.
    """
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return None
    return max(1, int(os.environ.get(variable, "1")))
