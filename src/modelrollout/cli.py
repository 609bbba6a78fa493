"""The ``modelrollout`` command line: one program, one subcommand per component.

Each subcommand lives in ``modelrollout.commands.<name>``, a light module that
defines its arguments and imports its component only when it runs, so
``modelrollout --help`` and ``modelrollout operator`` never import TensorFlow
or scikit-learn.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from modelrollout import __version__, exitcodes

COMMANDS: tuple[str, ...] = ("serve", "evaluate", "operator", "cluster", "demo")
"""Subcommand names, in the order ``--help`` lists them."""


class Command(Protocol):
    """What every module in ``modelrollout.commands`` provides."""

    HELP: str
    DESCRIPTION: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def load_command(name: str) -> Command:
    """Import the light command module (argument definitions only, no component)."""
    return cast(Command, importlib.import_module(f"modelrollout.commands.{name}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrollout",
        description=(
            "Take ML model versions to production safely: evaluate offline against the "
            "version in production, shift traffic in canary steps, promote or roll back "
            "by metric gates."
        ),
        epilog=(
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 missing optional dependencies, "
            "4 bad input, 130 interrupted. Run 'modelrollout COMMAND --help' for details."
        ),
    )
    parser.add_argument("--version", action="version", version=f"modelrollout {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        command = load_command(name)
        sub = subparsers.add_parser(
            name,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(command_module=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    command = cast(Command, args.command_module)
    try:
        return command.run(args)
    except KeyboardInterrupt:
        print("modelrollout: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except MissingExtraError as err:
        print(f"modelrollout {args.command}: {err}", file=sys.stderr)
        return exitcodes.MISSING_EXTRA


class MissingExtraError(RuntimeError):
    """A subcommand's optional dependencies are not installed."""

    def __init__(self, extra: str, missing: str) -> None:
        super().__init__(
            f"needs the '{extra}' extra (missing module '{missing}'); "
            f"install it with: pip install 'modelrollout[{extra}]'"
        )


def require_extra(extra: str, *modules: str) -> None:
    """Fail with an actionable message when an extra's modules are absent."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(extra, module)
