"""The command line: subcommands listed, lazy imports, meaningful exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelrollout import cli, exitcodes

HEAVY_MODULES = ("tensorflow", "tensorflow_serving", "sklearn", "kopf", "kubernetes", "grpc")


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelrollout", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_subcommand() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in cli.COMMANDS:
        assert name in result.stdout


def test_no_subcommand_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == exitcodes.USAGE
    assert "COMMAND" in result.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == exitcodes.USAGE


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_subcommand_help_explains_itself(name: str) -> None:
    result = run_cli(name, "--help")
    assert result.returncode == 0
    first_words = " ".join(cli.load_command(name).DESCRIPTION.split()[:4])
    assert first_words in " ".join(result.stdout.split())


def test_building_the_parser_imports_no_component() -> None:
    code = (
        "import sys\n"
        "from modelrollout.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_stdlib_operator_is_not_shadowed() -> None:
    import operator

    import modelrollout.operator

    assert hasattr(operator, "itemgetter")
    assert modelrollout.operator.__name__ == "modelrollout.operator"


def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(cli.MissingExtraError, match=r"pip install 'modelrollout\[serving\]'"):
        cli.require_extra("serving", "a_module_that_does_not_exist_anywhere")
