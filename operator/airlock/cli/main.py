"""The ``airlock`` / ``kubectl-airlock`` command: one sub-command per module.

Each sub-command module exposes ``register(subparsers)`` that adds its parser
and sets ``func``; this file only wires them, so a verb's code lives in one place.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from airlock.cli import connection

# Modules under airlock.cli, each with register(subparsers).  Listed, not
# discovered, so the order of `airlock --help` is deliberate.
COMMANDS = ("run", "guard", "crds", "demo", "runbook", "postmortem", "incident", "drill", "control", "backtest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="airlock: AI incident containment for Kubernetes.",
    )
    connection.add_global_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"airlock.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"airlock.cli.{name}":
                continue  # not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = connection.apply_global_arguments(args)
    if problem is not None:
        parser.error(f"{problem} ({args.command or 'no command'})")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
