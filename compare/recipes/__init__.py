"""Recipes: the seed papers' central experiments, reproduced and checked claim by claim."""

from ._report import Claim, judge_interval, judge_threshold, write_report

__all__ = ["Claim", "judge_interval", "judge_threshold", "write_report"]
