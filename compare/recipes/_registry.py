"""The recipe registry: a table of the built-in recipes, loaded lazily; it imports none of them.

Each built-in recipe module defines its :class:`Recipe` as ``RECIPE``; :data:`BUILTIN` names
where, and :func:`get_recipe` imports the module (with :mod:`importlib`) the first time the
recipe is asked for. Recipe modules import from here; nothing here imports them by name, so the
imports form no cycle. :func:`register` adds a recipe defined elsewhere.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from ._report import Claim

__all__ = ["BUILTIN", "SCALES", "Recipe", "get_recipe", "list_recipes", "register"]

#: The scales every recipe defines, smallest first.
SCALES: tuple[str, ...] = ("tiny", "small", "paper")

#: The built-in recipes, in the order ``ntkgap recipe list`` shows (that of the tracker issue):
#: name -> "module:attribute" of its :class:`Recipe`, imported on first use (so the registry
#: imports none of its members, and running one recipe imports only that recipe's module).
BUILTIN: dict[str, str] = {
    "seleznova-kutyniok": "compare.recipes.seleznova_kutyniok:RECIPE",
    "hanin-nica": "compare.recipes.hanin_nica:RECIPE",
    "lee-wide-linear": "compare.recipes.lee_wide_linear:RECIPE",
    "liu-zhu-belkin": "compare.recipes.liu_zhu_belkin:RECIPE",
    "wenger-dangel-kristiadi": "compare.recipes.wenger_dangel_kristiadi:RECIPE",
    "xiao-pennington-schoenholz": "compare.recipes.xiao_pennington_schoenholz:RECIPE",
}

#: Recipes loaded from :data:`BUILTIN` or added by :func:`register`, by name.
_REGISTRY: dict[str, Recipe] = {}


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


def register(recipe: Recipe) -> Recipe:
    """Add a recipe defined outside :data:`BUILTIN` to the registry (its name must be new).

    Raises
    ------
    ValueError
        If a recipe of that name is built in or already registered.
    """
    if recipe.name in BUILTIN or recipe.name in _REGISTRY:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered.")
    _REGISTRY[recipe.name] = recipe
    return recipe


def _names() -> list[str]:
    return [*BUILTIN, *(n for n in _REGISTRY if n not in BUILTIN)]


def _load(name: str) -> Recipe:
    """The built-in recipe ``name``, imported from its module on first use."""
    if name not in _REGISTRY:
        module, attr = BUILTIN[name].split(":")
        recipe = getattr(importlib.import_module(module), attr)
        if not isinstance(recipe, Recipe) or recipe.name != name:
            raise TypeError(f"{BUILTIN[name]} is not the Recipe named {name!r}; fix the table BUILTIN in "
                            f"{__name__}.")
        _REGISTRY[name] = recipe
    return _REGISTRY[name]


def list_recipes() -> list[Recipe]:
    """The available recipes (the built-in ones in the tracker's order, then any registered later).

    Imports every built-in recipe's module.
    """
    return [_load(n) for n in _names()]


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (importing only its module).

    Raises
    ------
    ValueError
        If no recipe has that name (the message lists the available ones).
    """
    if name not in BUILTIN and name not in _REGISTRY:
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(_names())}.")
    return _load(name)
