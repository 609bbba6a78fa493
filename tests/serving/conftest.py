"""Fixtures for tests that run the real model server: trained artifacts, running servers."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serving.harness import Server, launch, wait_ready
from tests.serving.slow_model import SlowRegressor

TREE_TYPE = "sklearn.tree._tree.Tree"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/serving carries the ``serving`` marker."""
    for item in items:
        if "tests/serving/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.serving)


@dataclass(frozen=True)
class Trained:
    """A fitted estimator, its data and its artifact on disk."""

    estimator: Any
    x: np.ndarray
    path: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """iris (LR pipeline), breast_cancer RF (untrusted tree type), diabetes Ridge, slow pickle."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dump

    out = tmp_path_factory.mktemp("artifacts")
    iris, cancer, diabetes = load_iris(), load_breast_cancer(), load_diabetes()
    fitted = {
        "iris": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
                iris.data, iris.target
            ),
            iris.data,
        ),
        "cancer_rf": (
            RandomForestClassifier(n_estimators=10, random_state=0).fit(cancer.data, cancer.target),
            cancer.data,
        ),
        "diabetes": (Ridge().fit(diabetes.data, diabetes.target), diabetes.data),
    }
    result = {}
    for key, (estimator, x) in fitted.items():
        path = out / f"{key}.skops"
        dump(estimator, path)
        result[key] = Trained(estimator, x, path)
    iris_pickle = out / "iris.joblib"
    iris_pickle.write_bytes(pickle.dumps(fitted["iris"][0]))
    result["iris_pickle"] = Trained(fitted["iris"][0], iris.data, iris_pickle)
    slow = out / "slow.pkl"
    slow.write_bytes(pickle.dumps(SlowRegressor()))
    result["slow"] = Trained(SlowRegressor(), np.zeros((1, 2)), slow)
    return result


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


def _serve(path: Path, workdir: Path, name: str, *args: str) -> Iterator[Server]:
    server = wait_ready(launch(str(path), workdir, name=name, args=args))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def iris_server(artifacts: dict[str, Trained], workdir: Path) -> Iterator[Server]:
    """iris LR pipeline as model ``iris`` version 3, labels stable→3 and canary→4."""
    yield from _serve(
        artifacts["iris"].path,
        workdir,
        "iris",
        "--model-version",
        "3",
        "--version-label",
        "stable=3",
        "--version-label",
        "canary=4",
        "--runtime",
        "sklearn",
    )


@pytest.fixture(scope="module")
def ridge_server(artifacts: dict[str, Trained], workdir: Path) -> Iterator[Server]:
    """diabetes Ridge regressor as model ``diabetes`` version 1."""
    yield from _serve(artifacts["diabetes"].path, workdir, "diabetes", "--runtime", "sklearn")
