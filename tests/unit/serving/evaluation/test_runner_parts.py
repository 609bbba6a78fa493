"""Small pure parts of the runner: progress lines, one-line reasons, tensors, arguments."""

from __future__ import annotations

import io

import numpy as np
import pytest

from modelrollout import cli, exitcodes
from modelrollout.serving import client, protos
from modelrollout.serving.evaluation import arguments, runner


def test_progress_is_quiet_on_short_runs_and_reports_long_ones() -> None:
    quiet = io.StringIO()
    report = runner.Progress(3600.0, quiet).phase("candidate rows", 10)
    for done in (5, 10):
        report(done)
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    report = runner.Progress(0.0, loud).phase("candidate rows", 10)
    report(5)
    report(10)
    assert loud.getvalue().splitlines() == [
        "evaluate: candidate rows 5/10 (50%)",
        "evaluate: candidate rows 10/10 (100%)",
    ]


def test_one_line_flattens_and_escapes() -> None:
    assert runner.one_line("a\n  b\x00c") == "a b\\x00c"
    assert len(runner.one_line("x" * 1000)) == 500


@pytest.mark.parametrize(
    "array",
    [np.arange(6, dtype=np.int64).reshape(3, 2), np.array([0.5, 1.25]), np.array([True, False])],
)
def test_tensor_roundtrip(array: np.ndarray) -> None:
    tensor_pb2 = protos.load("tensorflow.core.framework.tensor_pb2")
    dtype = {"i": 9, "f": 2, "b": 10}[array.dtype.kind]
    t = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        t.tensor_shape.dim.add(size=size)
    getattr(t, {9: "int64_val", 2: "double_val", 10: "bool_val"}[dtype]).extend(array.ravel())
    np.testing.assert_array_equal(client.tensor_to_array(t), array)


def test_features_go_out_as_packed_float64() -> None:
    x = np.array([[1.0, 2.5], [3.0, 4.0]])
    t = client.array_to_tensor(x)
    assert t.dtype == 2
    np.testing.assert_array_equal(client.tensor_to_array(t), x)


def test_string_labels_decode_to_str() -> None:
    tensor_pb2 = protos.load("tensorflow.core.framework.tensor_pb2")
    t = tensor_pb2.TensorProto(dtype=7)
    t.tensor_shape.dim.add(size=2)
    t.string_val.extend([b"setosa", b"virginica"])
    assert client.tensor_to_array(t).tolist() == ["setosa", "virginica"]


def _args(*extra: str) -> object:
    parser = cli.build_parser()
    base = ["evaluate", "--dataset", "sklearn://iris", "--candidate", "h:1", "--model", "m"]
    return parser.parse_args([*base, *extra])


def test_arguments_build_settings() -> None:
    gates = '{"minRows": 5, "metrics": [{"metric": "accuracy", "min": 0.5}]}'
    settings = arguments.settings_from_args(
        _args(
            "--baseline", "h:2", "--baseline-label", "stable", "--gates", gates, "--min-rows", "9"
        )  # type: ignore[arg-type]
    )
    assert isinstance(settings, runner.EvaluationSettings)
    assert settings.gates.min_rows == 9
    assert settings.baseline is not None
    assert settings.baseline.label == "stable"
    assert settings.baseline.model == "m"


@pytest.mark.parametrize(
    "extra",
    [
        ("--gates", "{not json"),
        ("--gates", '{"metrics": [{"metric": "acc"}]}'),
        ("--candidate-version", "1", "--candidate-label", "x"),
        ("--batch-size", "0"),
    ],
)
def test_bad_arguments_are_bad_input(
    extra: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert arguments.settings_from_args(_args(*extra)) == exitcodes.BAD_INPUT  # type: ignore[arg-type]
    assert capsys.readouterr().err.startswith("modelrollout evaluate: ")
