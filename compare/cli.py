"""The ``ntkgap`` command line.

Each subcommand lives in its own module (``compare/_cli_<name>.py``) exposing
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
``ntkgap --help`` lists them; ``ntkgap run`` is the main job.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that contribute subcommands, in the order ``--help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = ("_cli_run", "_cli_report", "_cli_recipe", "_cli_phase", "_cli_kernel",
                                     "_cli_predict")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntkgap",
        description="When does NTK theory describe a real, finite network, and by how much does it miss?",
    )
    parser.add_argument("--version", action="version", version=f"ntkgap {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"compare.{name}").register(sub)
    return parser


def _version() -> str:
    from ntktheory._version import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
