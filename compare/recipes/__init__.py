"""Recipes: the seed papers' central experiments, reproduced and checked claim by claim.

``ntkgap recipe list`` shows them; ``ntkgap recipe run NAME --scale small`` runs one and writes
``NAME.nc`` (the measurements), PNG figures and ``report.md``: each of the paper's claims (with
where the paper makes it), the measured value with its uncertainty, the criterion (fixed in code,
the same for every run), and the verdict reproduced / not reproduced / inconclusive.
"""

from ._base import SCALES, Recipe, RecipeResult, get_recipe, list_recipes, report_recipe, run_recipe
from ._report import (
    LEGACY_VERDICTS,
    PAPER_VERDICTS,
    Claim,
    judge_band,
    judge_below,
    judge_ci_threshold,
    judge_interval,
    judge_threshold,
    verdict_counts,
    write_report,
)

__all__ = [
    "LEGACY_VERDICTS",
    "PAPER_VERDICTS",
    "SCALES",
    "Claim",
    "Recipe",
    "RecipeResult",
    "get_recipe",
    "judge_band",
    "judge_below",
    "judge_ci_threshold",
    "judge_interval",
    "judge_threshold",
    "list_recipes",
    "report_recipe",
    "run_recipe",
    "verdict_counts",
    "write_report",
]
