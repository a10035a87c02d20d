"""Recipes: the seed papers' central experiments, reproduced and checked claim by claim.

``ntkgap recipe list`` shows them; ``ntkgap recipe run NAME --scale small`` runs one and writes
``NAME.nc`` (the measurements), PNG figures and ``report.md`` (each claim, the measured value with
its uncertainty, the criterion (fixed in code, the same for every run), and held / not held / not
testable).
"""

from ._base import SCALES, Recipe, RecipeResult, get_recipe, list_recipes, report_recipe, run_recipe
from ._report import Claim, judge_band, judge_below, judge_interval, judge_threshold, write_report

__all__ = [
    "SCALES",
    "Claim",
    "Recipe",
    "RecipeResult",
    "get_recipe",
    "judge_band",
    "judge_below",
    "judge_interval",
    "judge_threshold",
    "list_recipes",
    "report_recipe",
    "run_recipe",
    "write_report",
]
