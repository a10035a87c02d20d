"""``ntkgap recipe``: list the seed papers' recipes, or run one to a dataset, figures and report.md."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``recipe list`` and ``recipe run NAME [--scale ...] [--out ...] [--scheduler ...]``."""
    from .recipes import SCALES

    parser = subparsers.add_parser(
        "recipe",
        help="reproduce a seed paper's experiment and check its claims (report.md)",
        description="Each recipe reproduces one paper's central experiment and writes NAME.nc, figures and "
        "report.md (each claim, the measured value, held / not held).",
    )
    sub = parser.add_subparsers(dest="recipe_command", metavar="ACTION")
    lister = sub.add_parser("list", help="list the available recipes")
    lister.set_defaults(func=_list)
    runner = sub.add_parser("run", help="run one recipe")
    runner.add_argument("name", help="recipe name (see `ntkgap recipe list`)")
    runner.add_argument("--scale", default="small", help=f"one of {', '.join(SCALES)} (default: small)")
    runner.add_argument("--out", default=None, help="output folder (default: recipe-NAME-SCALE)")
    runner.add_argument("--scheduler", default=None, help="dask.distributed scheduler address (default: in process)")
    runner.add_argument("--threads", type=int, default=None,
                        help="torch threads in this process (default: torch's; 1 helps on a busy machine)")
    runner.set_defaults(func=_run)
    reporter = sub.add_parser("report", help="re-analyse a recipe's NAME.nc: figures and report.md, no measuring")
    reporter.add_argument("dataset", help="a NAME.nc written by `ntkgap recipe run`")
    reporter.add_argument("--out", default=None, help="output folder (default: the dataset's folder)")
    reporter.set_defaults(func=_report)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _list(args: argparse.Namespace) -> int:
    from .recipes import list_recipes

    for recipe in list_recipes():
        print(f"{recipe.name:26s} {recipe.reference}")
        print(f"{'':26s} {recipe.title}")
    return 0


def _print(result) -> None:
    for c in result.claims:
        print(f"{c.verdict:13s} {c.measured():>18s}  {c.statement}")


def _report(args: argparse.Namespace) -> int:
    from .recipes import report_recipe

    try:
        result = report_recipe(args.dataset, out=args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"ntkgap recipe report: error: {err}", file=sys.stderr)
        return 2
    _print(result)
    print(f"wrote {result.report} and {len(result.figures)} figure(s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .recipes import get_recipe, run_recipe

    try:
        get_recipe(args.name).config(args.scale)  # validate name and scale before any work
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be a positive integer; got {args.threads!r}.")
    except ValueError as err:
        print(f"ntkgap recipe run: error: {err}", file=sys.stderr)
        return 2
    from .recipes._engine import RecipeTaskError

    try:
        result = run_recipe(args.name, scale=args.scale, out=args.out, scheduler=args.scheduler, threads=args.threads)
    except RecipeTaskError as err:  # the finished tasks are kept; the message says how to retry the others
        print(f"ntkgap recipe run: error: {err}", file=sys.stderr)
        return 1
    _print(result)
    print(f"wrote {result.dataset}, {result.report} and {len(result.figures)} figure(s) in {result.seconds:.0f} s")
    return 0
