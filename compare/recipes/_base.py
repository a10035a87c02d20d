"""The recipe registry and the runner that turns a recipe into a dataset, figures and ``report.md``.

A :class:`Recipe` is a configuration per scale (``tiny`` for tests, ``small`` for a laptop,
``paper`` for the paper's scale on a cluster), an ``experiment`` that measures and returns an
xarray Dataset, and an ``analyse`` step that reads only that Dataset and returns the claims and
figures. Keeping the analysis a function of the Dataset alone means a report can be regenerated
from a stored ``.nc`` file, and the analysis can be tested on synthetic Datasets.

Independent configurations of an experiment run through :func:`map_tasks`: in this process by
default, or as tasks on a ``dask.distributed`` scheduler when an address is given. With a
``label`` it shows which part of the experiment runs and how many of its tasks are left (a
progress bar on stderr, as ``ntkgap run`` shows).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._schema import provenance_attrs
from ._report import PAPER_VERDICTS, Claim, write_report

__all__ = [
    "SCALES", "Recipe", "RecipeResult", "get_recipe", "list_recipes", "map_tasks", "register", "report_recipe",
    "run_recipe",
]

#: The scales every recipe defines, smallest first.
SCALES: tuple[str, ...] = ("tiny", "small", "paper")

_REGISTRY: dict[str, Recipe] = {}

#: The order ``ntkgap recipe list`` shows (that of the tracker issue); later registrations follow.
_ORDER = ("seleznova-kutyniok", "hanin-nica", "lee-wide-linear", "liu-zhu-belkin", "wenger-dangel-kristiadi",
          "xiao-pennington-schoenholz")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One paper's central experiment, at several scales, with its claims.

    Attributes
    ----------
    name
        Command-line name, e.g. ``"hanin-nica"``.
    title, reference
        Paper title and citation (authors, year, arXiv id).
    summary
        What the recipe measures, in a few sentences (goes at the top of ``report.md``).
    scales
        Configuration per scale; must have exactly the keys of :data:`SCALES`.
    experiment
        ``experiment(config, scheduler) -> xarray.Dataset`` with every measured number.
    analyse
        ``analyse(dataset, out_dir) -> (claims, figure paths)``; reads only the Dataset.
    """

    name: str
    title: str
    reference: str
    summary: str
    scales: Mapping[str, Mapping[str, Any]]
    experiment: Callable[[Mapping[str, Any], str | None], xr.Dataset]
    analyse: Callable[[xr.Dataset, Path], tuple[list[Claim], list[Path]]]

    def __post_init__(self) -> None:
        if set(self.scales) != set(SCALES):
            raise ValueError(f"recipe {self.name!r} must define scales {SCALES!r}; got {sorted(self.scales)!r}.")

    def config(self, scale: str) -> dict[str, Any]:
        """The configuration of ``scale`` (a copy)."""
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r} for recipe {self.name!r}; allowed: {', '.join(SCALES)}.")
        return json.loads(json.dumps(self.scales[scale]))


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """Paths written by :func:`run_recipe`, the claims, and the wall time of the run."""

    dataset: Path
    report: Path
    figures: tuple[Path, ...]
    claims: tuple[Claim, ...]
    seconds: float


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry (its name must be new)."""
    if recipe.name in _REGISTRY:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered.")
    _REGISTRY[recipe.name] = recipe
    return recipe


def list_recipes() -> list[Recipe]:
    """The available recipes (in the tracker's order, then any registered later)."""
    _load_all()
    rank = {name: i for i, name in enumerate(_ORDER)}
    return sorted(_REGISTRY.values(), key=lambda r: rank.get(r.name, len(rank)))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises
    ------
    ValueError
        If no recipe has that name (the message lists the available ones).
    """
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(r.name for r in list_recipes())}.")
    return _REGISTRY[name]


def _load_all() -> None:
    from . import (  # noqa: F401
        hanin_nica,
        lee_wide_linear,
        liu_zhu_belkin,
        seleznova_kutyniok,
        wenger_dangel_kristiadi,
        xiao_pennington_schoenholz,
    )


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
        Output folder (default ``recipe-<name>-<scale>`` in the working directory).
    scheduler
        Optional ``dask.distributed`` scheduler address for the experiment's tasks.
    threads
        torch intra-op threads in this process during the run (restored afterwards); None keeps
        torch's setting. On a busy machine 1 avoids spin-waiting threads on the small matrices of
        ``tiny`` runs. Workers of a scheduler keep their own setting.

    Returns
    -------
    RecipeResult
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


def slope_claim_values(fit: xr.Dataset) -> tuple[float, float]:
    """(slope, half-width of its interval) from a :func:`compare._metrics.width_scaling_exponent` fit."""
    slope = float(fit["slope"])
    half = float(fit["slope_high"] - fit["slope_low"]) / 2
    return slope, half if math.isfinite(half) else math.nan


def as_dataarray(values: np.ndarray, dims: Sequence[str], coords: Mapping[str, Any]) -> xr.DataArray:
    """A DataArray with the given dims and only the coords that belong to them."""
    return xr.DataArray(np.asarray(values), dims=tuple(dims), coords={d: coords[d] for d in dims if d in coords})


def label_widths(ax: Any, widths: Sequence[float]) -> None:
    """Log-scaled width axis labelled with the widths themselves (no 2x10^1-style ticks)."""
    ax.set_xscale("log")
    ax.set_xticks([float(w) for w in widths], [str(int(w)) for w in widths])
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
