"""``modelrollout evaluate`` against real ``modelrollout serve`` processes on 127.0.0.1.

Every number the runner reports is checked against scikit-learn computed here,
in-process, on the same rows (iris, train_test_split(test_size=0.3, random_state=0)).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as m
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from skops.io import dump

from modelrollout import exitcodes
from modelrollout.core import gates
from modelrollout.serving.evaluation import datasets
from tests.serving.harness import HOST, REPO, Server, free_port, launch, wait_ready

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass
class Fleet:
    """The fitted models and the servers that serve them."""

    split: Split
    models: dict[str, Any]
    servers: dict[str, Server]
    artifacts: dict[str, Path]

    def grpc(self, key: str) -> str:
        return self.servers[key].grpc_target

    def rest(self, key: str) -> str:
        return f"{HOST}:{self.servers[key].rest_port}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """SVC (the champion), a worse SVC, a LogisticRegression (probabilities), a Ridge."""
    workdir = tmp_path_factory.mktemp("evaluate")
    x, y = load_iris(return_X_y=True)
    split = Split(*train_test_split(x, y, test_size=0.3, random_state=0))
    rng = np.random.default_rng(0)
    dx, dy = load_diabetes(return_X_y=True)
    dx_train, _, dy_train, _ = train_test_split(dx, dy, test_size=0.3, random_state=0)
    models = {
        "svc": SVC(kernel="linear", C=1).fit(split.x_train, split.y_train),
        # Trained on shuffled labels: a deliberately worse model with the same interface.
        "worse": SVC(kernel="linear", C=1).fit(split.x_train, rng.permutation(split.y_train)),
        "logreg": LogisticRegression(max_iter=1000).fit(split.x_train, split.y_train),
        "ridge": Ridge().fit(dx_train, dy_train),
        "cancer": make_pipeline(StandardScaler(), LogisticRegression()).fit(*_cancer_split()[::2]),
    }
    servers: dict[str, Server] = {}
    artifacts = {key: workdir / f"{key}.skops" for key in models}
    try:
        for key, model in models.items():
            path = artifacts[key]
            dump(model, path)
            version = "2" if key != "svc" else "1"
            args = ["--model-version", version, "--version-label", f"stable={version}"]
            servers[key] = launch(str(path), workdir, name="iris", args=args)
        for server in servers.values():
            wait_ready(server)
        yield Fleet(split, models, servers, artifacts)
    finally:
        for server in servers.values():
            server.stop()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    termination: str

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def evaluate(tmp_path: Path, *args: str) -> Run:
    """Run the real CLI; the compact result goes to a file in tmp_path."""
    term = tmp_path / "termination-log"
    common = ["--termination-message-path", str(term), "--bootstrap-samples", "300"]
    proc = subprocess.run(
        [sys.executable, "-m", "modelrollout", "evaluate", *args, *common],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    text = term.read_text() if term.exists() else ""
    return Run(proc.returncode, proc.stdout, proc.stderr, text)


IRIS = ("--dataset", "sklearn://iris", "--holdout", "0.3", "--seed", "0", "--model", "iris")


def _expected_classification(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    out = {
        "accuracy": m.accuracy_score(y, pred),
        "balanced_accuracy": m.balanced_accuracy_score(y, pred),
    }
    for avg in ("macro", "micro", "weighted"):
        kw: dict[str, Any] = {"average": avg, "zero_division": 0.0}
        out[f"precision_{avg}"] = m.precision_score(y, pred, **kw)
        out[f"recall_{avg}"] = m.recall_score(y, pred, **kw)
        out[f"f1_{avg}"] = m.f1_score(y, pred, **kw)
    return out


def test_svc_metrics_equal_sklearn_in_process(fleet: Fleet, tmp_path: Path) -> None:
    run = evaluate(tmp_path, *IRIS, "--candidate", fleet.grpc("svc"), "--candidate-version", "1")
    assert run.code == exitcodes.OK, run.stderr
    result = run.result
    split = fleet.split
    pred = fleet.models["svc"].predict(split.x_test)
    assert result["schema"] == "modelrollout.evaluation/v1"
    assert result["task"] == "classification"
    assert result["dataset"]["rows"] == len(split.y_test) == 45
    assert result["dataset"]["digest"] == datasets.digest(
        FEATURES, "target", split.x_test, split.y_test
    )
    got = result["candidate"]["metrics"]
    for name, value in _expected_classification(split.y_test, pred).items():
        assert got[name] == value, name
    assert (
        result["candidate"]["confusion_matrix"] == m.confusion_matrix(split.y_test, pred).tolist()
    )
    # SVC without probability estimates: probability metrics are absent, and say why.
    unavailable = result["candidate"]["unavailable"]
    assert got["roc_auc"] is None
    assert got["log_loss"] is None
    assert unavailable["roc_auc"] == "the model returned no probabilities"
    assert "exactly 2 classes" in unavailable["f1_binary"]
    assert got["error_rate"] == 0.0
    assert got["latency_p50_ms"] > 0
    assert got["rows_per_second"] > 0
    compact = json.loads(run.termination)
    assert compact["candidate"]["accuracy"] == got["accuracy"]
    assert compact["passed"] is True


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_probability_metrics_equal_sklearn(fleet: Fleet, tmp_path: Path, protocol: str) -> None:
    address = fleet.grpc("logreg") if protocol == "grpc" else fleet.rest("logreg")
    run = evaluate(tmp_path, *IRIS, "--candidate", address, "--protocol", protocol)
    assert run.code == exitcodes.OK, run.stderr
    got = run.result["candidate"]["metrics"]
    model, split = fleet.models["logreg"], fleet.split
    proba = model.predict_proba(split.x_test)
    expected = _expected_classification(split.y_test, model.predict(split.x_test))
    expected["roc_auc"] = m.roc_auc_score(split.y_test, proba, multi_class="ovr", labels=[0, 1, 2])
    expected["log_loss"] = m.log_loss(split.y_test, proba, labels=[0, 1, 2])
    for name, value in expected.items():
        assert got[name] == value, name


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_classes_absent_from_the_rows_come_from_the_model(
    fleet: Fleet, tmp_path: Path, protocol: str
) -> None:
    """Only setosa rows: 3 probability columns, 1 label seen; Classify names the columns."""
    split = fleet.split
    rows = split.y_test == 0
    path = tmp_path / "setosa.csv"
    frame = {name: split.x_test[rows, i] for i, name in enumerate(FEATURES)}
    pd.DataFrame(frame).assign(target=split.y_test[rows]).to_csv(path, index=False)
    address = fleet.grpc("logreg") if protocol == "grpc" else fleet.rest("logreg")
    args = ("--dataset", str(path), "--label", "target", "--model", "iris")
    run = evaluate(tmp_path, *args, "--candidate", address, "--protocol", protocol)
    assert run.code == exitcodes.OK, run.stderr
    result = run.result
    proba = fleet.models["logreg"].predict_proba(split.x_test[rows])
    assert result["labels"] == [0, 1, 2]
    got = result["candidate"]["metrics"]
    assert got["log_loss"] == m.log_loss(split.y_test[rows], proba, labels=[0, 1, 2])
    assert got["roc_auc"] is None  # one class only: undefined, and said so
    assert "undefined on these rows" in result["candidate"]["unavailable"]["roc_auc"]


def test_regressor_metrics_equal_sklearn(fleet: Fleet, tmp_path: Path) -> None:
    args = ("--dataset", "sklearn://diabetes", "--holdout", "0.3", "--model", "iris")
    run = evaluate(tmp_path, *args, "--candidate", fleet.grpc("ridge"), "--task", "regression")
    assert run.code == exitcodes.OK, run.stderr
    dx, dy = load_diabetes(return_X_y=True)
    _, x_test, _, y_test = train_test_split(dx, dy, test_size=0.3, random_state=0)
    pred = fleet.models["ridge"].predict(x_test)
    got = run.result["candidate"]["metrics"]
    assert got["mse"] == m.mean_squared_error(y_test, pred)
    assert got["rmse"] == m.root_mean_squared_error(y_test, pred)
    assert got["mae"] == m.mean_absolute_error(y_test, pred)
    assert got["r2"] == m.r2_score(y_test, pred)
    assert got["mape"] == m.mean_absolute_percentage_error(y_test, pred)
    assert got["max_error"] == m.max_error(y_test, pred)


def _cancer_split() -> list[np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    split: list[np.ndarray] = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return split


def test_binary_metrics_equal_sklearn(fleet: Fleet, tmp_path: Path) -> None:
    args = ("--dataset", "sklearn://breast_cancer", "--holdout", "0.3", "--stratify")
    run = evaluate(tmp_path, *args, "--model", "iris", "--candidate", fleet.grpc("cancer"))
    assert run.code == exitcodes.OK, run.stderr
    _, x_test, _, y_test = _cancer_split()
    model = fleet.models["cancer"]
    pred, proba = model.predict(x_test), model.predict_proba(x_test)
    expected = _expected_classification(y_test, pred)
    for name in ("precision", "recall", "f1"):
        fn = getattr(m, f"{name}_score")
        expected[f"{name}_binary"] = fn(y_test, pred, average="binary", pos_label=1)
    expected["roc_auc"] = m.roc_auc_score(y_test, proba[:, 1])
    expected["log_loss"] = m.log_loss(y_test, proba, labels=[0, 1])
    result = run.result
    assert result["dataset"]["rows"] == len(y_test)
    assert result["candidate"]["unavailable"] == {}
    for name, value in expected.items():
        assert result["candidate"]["metrics"][name] == value, name


GATES = json.dumps(
    {
        "minRows": 30,
        "metrics": [
            {"metric": "accuracy", "min": 0.8, "maxRegression": 0.02, "significantOnly": True},
            {"metric": "f1_macro", "maxRegression": 0.05},
        ],
    }
)


def test_worse_model_is_flagged_as_regression(fleet: Fleet, tmp_path: Path) -> None:
    run = evaluate(
        tmp_path,
        *IRIS,
        "--candidate",
        fleet.grpc("worse"),
        "--candidate-version",
        "2",
        "--baseline",
        fleet.grpc("svc"),
        "--baseline-version",
        "1",
        "--gates",
        GATES,
    )
    assert run.code == exitcodes.OK, run.stderr  # the evaluation ran: exit 0 whatever the verdict
    result = run.result
    assert result["verdict"] == "failed"
    failed = {v["gate"] for v in result["gates"]["verdicts"] if not v["passed"]}
    assert {"accuracy.min", "accuracy.max_regression", "f1_macro.max_regression"} <= failed
    split = fleet.split
    worse = fleet.models["worse"].predict(split.x_test)
    champion = fleet.models["svc"].predict(split.x_test)
    comparison = result["comparison"]
    acc = comparison["metrics"]["accuracy"]
    expected_delta = m.accuracy_score(split.y_test, worse) - m.accuracy_score(
        split.y_test, champion
    )
    assert acc["delta"] == expected_delta
    assert acc["ci_low"] <= expected_delta <= acc["ci_high"] < 0
    assert comparison["mcnemar"]["p_value"] < 0.05
    # The operator re-applies the same gate function to the compact numbers: same verdicts.
    spec = gates.gate_spec_from_dict(json.loads(GATES))
    compact = json.loads(run.termination)
    assert len(run.termination.encode()) <= 4096
    reapplied = gates.apply_gates(spec, gates.gate_input_from_result(compact))
    assert not reapplied.passed
    assert gates.verdicts_to_dicts(reapplied) == result["gates"]["verdicts"]
    assert "failed: " in run.stderr


def test_same_model_against_itself_is_not_a_regression(fleet: Fleet, tmp_path: Path) -> None:
    run = evaluate(
        tmp_path,
        *IRIS,
        "--candidate",
        fleet.grpc("svc"),
        "--baseline",
        fleet.grpc("svc"),
        "--baseline-label",
        "stable",
        "--gates",
        GATES,
    )
    assert run.code == exitcodes.OK, run.stderr
    result = run.result
    assert result["baseline"]["target"]["label"] == "stable"
    assert result["verdict"] == "passed", result["gates"]
    for name, comp in result["comparison"]["metrics"].items():
        if not name.startswith(("latency", "rows_per_second")):
            assert comp["delta"] == 0.0, name
    assert result["comparison"]["mcnemar"]["p_value"] == 1.0
    assert json.loads(run.termination)["passed"] is True


def test_report_dir_has_html_and_charts(fleet: Fleet, tmp_path: Path) -> None:
    report = tmp_path / "report"
    run = evaluate(
        tmp_path,
        *IRIS,
        "--candidate",
        fleet.grpc("logreg"),
        "--baseline",
        fleet.grpc("svc"),
        "--report-dir",
        str(report),
        "--no-stdout",
        "--output",
        str(tmp_path / "full.json"),
    )
    assert run.code == exitcodes.OK, run.stderr
    assert run.stdout == ""
    assert json.loads((tmp_path / "full.json").read_text())["form"] == "full"
    for name in ("roc.png", "confusion_candidate.png", "metrics.png", "deltas.png"):
        assert (report / name).read_bytes().startswith(b"\x89PNG"), name
    page = (report / "index.html").read_text()
    assert "roc.png" in page
    assert "Evaluation passed" in page


def _empty_csv(tmp_path: Path) -> str:
    path = tmp_path / "empty.csv"
    path.write_text(",".join([*FEATURES, "target"]) + "\n")
    return str(path)


BAD_INPUTS = [
    pytest.param(
        lambda p, f: ["--dataset", str(p / "missing.parquet"), "--label", "y"],
        exitcodes.BAD_INPUT,
        "cannot read dataset",
        id="unreadable-dataset",
    ),
    pytest.param(
        lambda p, f: ["--dataset", "sklearn://iris", "--label", "species"],
        exitcodes.BAD_INPUT,
        "label column 'species' not in dataset",
        id="missing-label",
    ),
    pytest.param(
        lambda p, f: ["--dataset", "sklearn://iris", "--features", ",".join(FEATURES[:2])],
        exitcodes.BAD_INPUT,
        "expects 4 features per row, received 2",
        id="feature-count-rejected",
    ),
    pytest.param(
        lambda p, f: ["--dataset", _empty_csv(p), "--label", "target"],
        exitcodes.BAD_INPUT,
        "has no rows",
        id="empty-data",
    ),
    pytest.param(
        lambda p, f: ["--dataset", "sklearn://iris", "--candidate-version", "7"],
        exitcodes.BAD_INPUT,
        "NOT_FOUND",
        id="unknown-version",
    ),
]


@pytest.mark.parametrize(("make_args", "code", "message"), BAD_INPUTS)
def test_bad_input_gives_clear_error_and_exit_code(
    fleet: Fleet, tmp_path: Path, make_args: Any, code: int, message: str
) -> None:
    args = make_args(tmp_path, fleet)
    run = evaluate(tmp_path, *args, "--model", "iris", "--candidate", fleet.grpc("svc"))
    assert run.code == code, run.stderr
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert message in lines[0]
    assert lines[0].startswith("modelrollout evaluate: ")
    assert json.loads(run.termination)["form"] == "error"


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_unreachable_target_fails_after_retries(tmp_path: Path, protocol: str) -> None:
    address = f"{HOST}:{free_port()}"  # nothing listens there
    run = evaluate(
        tmp_path,
        *IRIS,
        "--candidate",
        address,
        "--protocol",
        protocol,
        "--retries",
        "2",
        "--backoff",
        "0.05",
    )
    assert run.code == exitcodes.FAILURE
    reason = f"target {protocol}://{address}/iris unreachable after 3 attempts"
    assert reason in run.stderr
    assert reason in json.loads(run.termination)["error"]


def test_retries_until_a_late_server_answers(fleet: Fleet, tmp_path: Path) -> None:
    """The runner starts first; the server comes up only after it has logged a retry."""
    grpc_port, rest_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "modelrollout", "evaluate", *IRIS]
    cmd += ["--candidate", f"{HOST}:{grpc_port}", "--retries", "12", "--backoff", "0.2"]
    cmd += ["--termination-message-path", "", "--bootstrap-samples", "0"]
    runner = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr = runner.stderr
    assert stderr is not None

    def read() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    server: Server | None = None
    try:
        first = lines.get(timeout=120)
        assert "UNAVAILABLE" in first
        assert "retry 1/12" in first
        log_path = tmp_path / "late-server.log"
        with log_path.open("wb") as log:
            serve = [sys.executable, "-m", "modelrollout", "serve", "--model-name", "iris"]
            serve += ["--model-uri", str(fleet.artifacts["svc"]), "--host", HOST]
            serve += ["--grpc-port", str(grpc_port), "--rest-port", str(rest_port)]
            serve += ["--termination-log", str(tmp_path / "late-term")]
            proc = subprocess.Popen(
                serve,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        server = Server(proc, "iris", grpc_port, rest_port, log_path, tmp_path / "late-term")
        assert runner.wait(timeout=120) == exitcodes.OK
        assert runner.stdout is not None
        result = json.loads(runner.stdout.read())
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
        if server is not None:
            server.stop()
    metrics = result["candidate"]["metrics"]
    assert metrics["error_rate"] > 0  # the failed attempts before the server came up count
    pred = fleet.models["svc"].predict(fleet.split.x_test)
    assert metrics["accuracy"] == m.accuracy_score(fleet.split.y_test, pred)
