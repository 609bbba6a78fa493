"""Command line → ServerSettings, and the import cost contract."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelrollout.cli import build_parser
from modelrollout.commands.serve import settings_from_args
from modelrollout.serving.settings import ServerSettings, parse_version_label


def test_defaults_follow_tf_serving() -> None:
    args = build_parser().parse_args(["serve", "--model-name", "m", "--model-uri", "/x.skops"])
    settings = settings_from_args(args)
    assert (settings.grpc_port, settings.rest_port) == (8500, 8501)
    assert settings.model_version == 1
    assert not settings.allow_unsafe_pickle
    assert settings.trusted_types == ()


def test_every_flag_reaches_settings() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--model-name=m",
            "--model-uri=s3://b/k",
            "--model-version=7",
            "--sha256=ab",
            "--trust=a.B",
            "--trust=c.D",
            "--allow-unsafe-pickle",
            "--version-label=stable=6",
            "--version-label=canary=7",
            "--host=127.0.0.1",
            "--grpc-port=1",
            "--rest-port=2",
            "--max-concurrency=3",
            "--termination-log=",
        ]
    )
    s = settings_from_args(args)
    assert s.trusted_types == ("a.B", "c.D")
    assert s.version_labels == {"stable": 6, "canary": 7}
    assert (s.model_version, s.sha256, s.allow_unsafe_pickle) == (7, "ab", True)
    assert (s.host, s.grpc_port, s.rest_port, s.max_concurrency) == ("127.0.0.1", 1, 2, 3)
    assert s.termination_log_path is None


def test_bad_version_label_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(
            ["serve", "--model-name=m", "--model-uri=x", "--version-label=stable"]
        )
    assert info.value.code == 2


@pytest.mark.parametrize("text", ["stable", "=3", "a=b", "a="])
def test_parse_version_label_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="LABEL=VERSION"):
        parse_version_label(text)


def test_termination_log_explicit_path() -> None:
    s = ServerSettings(model_name="m", model_uri="x", termination_log="/tmp/t")
    assert s.termination_log_path == "/tmp/t"


def test_server_modules_do_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from modelrollout.serving import grpc_server, rest, server, tensors\n"
        "print(sorted(m for m in sys.modules if m.startswith('tensorflow.python')"
        " or m == 'keras'))\n"
        "print(getattr(sys.modules['tensorflow'], '__modelrollout_shell__', False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["[]", "True"]
