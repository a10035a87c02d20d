"""The runner that turns a recipe into a dataset, figures and ``report.md``.

A :class:`Recipe` is a configuration per scale (``tiny`` for tests, ``small`` for a laptop,
``paper`` for the paper's scale on a cluster), an ``experiment`` that measures and returns an
xarray Dataset, and an ``analyse`` step that reads only that Dataset and returns the claims and
figures. Keeping the analysis a function of the Dataset alone means a report can be regenerated
from a stored ``.nc`` file, and the analysis can be tested on synthetic Datasets.

The registry lives in :mod:`compare.recipes._registry`, the task runner :func:`map_tasks` in
:mod:`compare.recipes._engine` (both re-exported here). :func:`run_recipe` keeps the tasks'
resumable stores in ``OUT/tasks/``: run again with the same output folder, a recipe computes only
the tasks that had not finished.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from .._schema import provenance_attrs
from ._engine import map_tasks, task_folder
from ._registry import SCALES, Recipe, get_recipe, list_recipes, register
from ._report import PAPER_VERDICTS, Claim, write_report

#: The sub-folder of a run's output folder holding the stores of its tasks (:func:`map_tasks`).
TASK_FOLDER = "tasks"

__all__ = [
    "SCALES", "TASK_FOLDER", "Recipe", "RecipeResult", "get_recipe", "list_recipes", "map_tasks", "register",
    "report_recipe", "run_recipe",
]


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """Paths written by :func:`run_recipe`, the claims, and the wall time of the run."""

    dataset: Path
    report: Path
    figures: tuple[Path, ...]
    claims: tuple[Claim, ...]
    seconds: float


def _finalise(ds: xr.Dataset, recipe: Recipe, scale: str, config: Mapping[str, Any]) -> xr.Dataset:
    seeds = config.get("seeds")
    attrs = provenance_attrs(
        {"recipe": recipe.name, "scale": scale, **config},
        seeds=list(range(seeds)) if isinstance(seeds, int) else seeds,
        device="cpu",
        dtype="float64",
    )
    ds = ds.copy()
    ds.attrs.update(attrs)
    ds.attrs.update({"recipe": recipe.name, "scale": scale, "title": recipe.title, "reference": recipe.reference})
    return ds


def run_recipe(
    name: str,
    *,
    scale: str = "small",
    out: str | Path | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
) -> RecipeResult:
    """Run a recipe: measure, write ``<name>.nc``, analyse, write figures and ``report.md``.

    Parameters
    ----------
    name
        A recipe name (see :func:`list_recipes`).
    scale
        ``"tiny"``, ``"small"`` (default) or ``"paper"``.
    out
        Output folder (default ``recipe-<name>-<scale>`` in the working directory). Its ``tasks/``
        holds every finished task: a run killed part way and started again with the same folder
        computes only the tasks that had not finished.
    scheduler
        Optional ``dask.distributed`` scheduler address for the experiment's tasks.
    threads
        torch intra-op threads in this process during the run (restored afterwards); None keeps
        torch's setting. On a busy machine 1 avoids spin-waiting threads on the small matrices of
        ``tiny`` runs. Workers of a scheduler keep their own setting.

    Returns
    -------
    RecipeResult

    Raises
    ------
    compare.recipes._engine.RecipeTaskError
        If tasks failed (recorded in ``tasks/``; a rerun retries them) or were lost with a worker.
    """
    recipe = get_recipe(name)
    config = recipe.config(scale)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`threads` must be a positive integer or None; got {threads!r}.")
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(recipe, scale, config, out, scheduler)
    finally:
        torch.set_num_threads(previous)


def _run(recipe: Recipe, scale: str, config: dict[str, Any], out: str | Path | None,
         scheduler: str | None) -> RecipeResult:
    name = recipe.name
    out_dir = Path(out) if out is not None else Path(f"recipe-{name}-{scale}")
    out_dir.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    print(f"ntkgap recipe run: {name} ({scale}) -> {out_dir}", file=sys.stderr)
    with task_folder(out_dir / TASK_FOLDER):  # the tasks' resumable stores: a rerun skips finished tasks
        ds = _finalise(recipe.experiment(config, scheduler), recipe, scale, config)
    seconds_experiment = time.perf_counter() - start
    ds.attrs["experiment_seconds"] = round(seconds_experiment, 2)
    ds.attrs["experiment_cpu_seconds"] = round(time.process_time() - cpu_start, 2)
    nc = out_dir / f"{name}.nc"
    ds.to_netcdf(nc)
    return _analyse(recipe, ds, nc, out_dir, start)


def _analyse(recipe: Recipe, ds: xr.Dataset, nc: Path, out_dir: Path, start: float) -> RecipeResult:
    claims, figures = recipe.analyse(ds, out_dir)
    seconds = time.perf_counter() - start
    scale = ds.attrs["scale"]
    timing = f"experiment {ds.attrs.get('experiment_seconds', math.nan):.0f} s"
    if "experiment_cpu_seconds" in ds.attrs:
        timing += f" wall, {ds.attrs['experiment_cpu_seconds']:.0f} s CPU (this process)"
    paper = bool(claims) and all(c.vocabulary is PAPER_VERDICTS for c in claims)
    verdicts = (
        "Each row is a claim of the paper, in the paper's direction, with where the paper makes it; a claim is "
        "reproduced when the measurement agrees with it by the criterion, not reproduced when it contradicts it, "
        "and inconclusive when the 95% interval straddles the criterion or the scale run cannot decide."
        if paper else
        "A claim that does not hold at this scale is reported as not held, and one whose 95% interval straddles "
        "the threshold as not testable."
    )
    summary = (
        f"{recipe.summary}\n\nScale `{scale}`; {timing} "
        f"(created {ds.attrs.get('creation_time', '?')}). Dataset: `{nc.name}` (opens with plain "
        "`xarray.open_dataset`). Each criterion is fixed in the recipe's code and applied identically to every run "
        f"and scale (see `compare/recipes/` and its git history for how criteria were set). {verdicts}"
    )
    report = write_report(
        out_dir / "report.md",
        title=f"{recipe.title} — {recipe.name} ({scale})",
        reference=recipe.reference,
        summary=summary,
        claims=claims,
        figures=figures,
        configuration={"recipe": recipe.name, "scale": scale, **json.loads(ds.attrs["config"])},
    )
    return RecipeResult(nc, report, tuple(figures), tuple(claims), seconds)


def report_recipe(dataset: str | Path, *, out: str | Path | None = None) -> RecipeResult:
    """Re-run a recipe's analysis on a dataset it wrote: figures and ``report.md``, no measuring.

    Parameters
    ----------
    dataset
        A ``<name>.nc`` written by :func:`run_recipe` (its attrs name the recipe and scale).
    out
        Output folder (default: the dataset's folder).

    Raises
    ------
    ValueError
        If the file was not written by a recipe (no ``recipe`` attribute).
    """
    path = Path(dataset)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    if "recipe" not in ds.attrs:
        raise ValueError(f"{str(path)!r} was not written by `ntkgap recipe run` (no 'recipe' attribute).")
    recipe = get_recipe(ds.attrs["recipe"])
    out_dir = Path(out) if out is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    return _analyse(recipe, ds, path, out_dir, time.perf_counter())
