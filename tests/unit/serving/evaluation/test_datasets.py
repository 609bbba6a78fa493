"""Datasets: every source format, hold-out identical to train_test_split, canonical digest."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import train_test_split

from modelrollout import exitcodes
from modelrollout.serving.evaluation import datasets
from modelrollout.serving.evaluation.datasets import DatasetSettings
from modelrollout.serving.evaluation.errors import EvaluationError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"a": [1.5, 2.0, 3.25, 4.0], "y": [0, 1, 0, 1], "b": [10, 20, 30, 40]},
    )


def test_sklearn_holdout_is_exactly_train_test_split() -> None:
    x, y = load_iris(return_X_y=True)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    data = datasets.load(DatasetSettings("sklearn://iris", holdout_fraction=0.3, seed=0))
    np.testing.assert_array_equal(data.features, x_test)
    np.testing.assert_array_equal(data.labels, y_test)
    assert data.rows_read == 150
    assert data.feature_names[0] == "sepal length (cm)"
    assert data.label_name == "target"


def test_stratified_holdout_and_row_cap() -> None:
    x, y = load_wine(return_X_y=True)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=3, stratify=y)
    settings = DatasetSettings("sklearn://wine", holdout_fraction=0.25, seed=3, stratify=True)
    data = datasets.load(settings)
    np.testing.assert_array_equal(data.features, x_test)
    np.testing.assert_array_equal(data.labels, y_test)
    capped = datasets.load(DatasetSettings("sklearn://wine", max_rows=10))
    assert len(capped.labels) == 10
    assert capped.digest != datasets.load(DatasetSettings("sklearn://wine")).digest


@pytest.mark.parametrize("name", datasets.SKLEARN_DATASETS)
def test_every_bundled_dataset_loads(name: str) -> None:
    data = datasets.load(DatasetSettings(f"sklearn://{name}", max_rows=20))
    assert data.features.shape[0] == 20
    assert data.features.dtype == np.float64
    assert data.digest.startswith("sha256:")


def test_formats_share_one_digest(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    digests = set()
    for name in ("d.csv", "d.parquet", "d.jsonl"):
        for uri in (str(tmp_path / name), (tmp_path / name).as_uri()):
            data = datasets.load(DatasetSettings(uri, label="y"))
            assert data.feature_names == ("a", "b")  # file order, label excluded
            np.testing.assert_array_equal(data.features[:, 1], [10, 20, 30, 40])
            digests.add(data.digest)
    assert len(digests) == 1


def test_explicit_features_set_order_and_change_digest(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "d.csv", index=False)
    default = datasets.load(DatasetSettings(str(tmp_path / "d.csv"), label="y"))
    swapped = datasets.load(
        DatasetSettings(str(tmp_path / "d.csv"), label="y", features=("b", "a"))
    )
    np.testing.assert_array_equal(swapped.features, default.features[:, ::-1])
    assert swapped.digest != default.digest


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[str]:
    _frame().to_csv(tmp_path / "d.csv", index=False)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_dataset(http_dir: str) -> None:
    data = datasets.load(DatasetSettings(f"{http_dir}/d.csv", label="y"))
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 1])
    with pytest.raises(EvaluationError, match="cannot read dataset") as info:
        datasets.load(DatasetSettings(f"{http_dir}/missing.csv", label="y"))
    assert info.value.exit_code == exitcodes.BAD_INPUT


@pytest.mark.parametrize(
    ("settings", "frame", "message"),
    [
        (DatasetSettings("x.csv", label="z"), _frame(), "label column 'z' not in dataset"),
        (DatasetSettings("x.csv", label="y", features=("c",)), _frame(), "not in dataset: c"),
        (DatasetSettings("x.csv", label="y"), _frame().iloc[:0], "has no rows"),
        (
            DatasetSettings("x.csv", label="y"),
            _frame().assign(a=["p", "q", "r", "s"]),
            "not numeric: a",
        ),
        (
            DatasetSettings("x.csv", label="y"),
            _frame().assign(y=[0, None, 1, 1]),
            "1 missing values",
        ),
        (DatasetSettings("x.csv", label="y", holdout_fraction=1.5), _frame(), "between 0 and 1"),
        (DatasetSettings("x.csv", label="y", max_rows=0), _frame(), "no rows left"),
    ],
)
def test_bad_selections_are_bad_input(
    settings: DatasetSettings, frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(EvaluationError, match=message) as info:
        datasets.prepare(frame, settings, settings.label or "y")
    assert info.value.exit_code == exitcodes.BAD_INPUT


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sklearn://mnist", "unknown sklearn:// dataset"),
        ("/no/such/file.csv", "no such file"),
        ("data.xlsx", "cannot tell the format"),
        ("ftp://host/d.csv", "unsupported dataset URI scheme"),
    ],
)
def test_unreadable_sources_are_bad_input(uri: str, message: str) -> None:
    with pytest.raises(EvaluationError, match=message) as info:
        datasets.load(DatasetSettings(uri, label="y"))
    assert info.value.exit_code == exitcodes.BAD_INPUT


def test_corrupt_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "d.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EvaluationError, match="cannot read dataset") as info:
        datasets.load(DatasetSettings(str(tmp_path / "d.parquet"), label="y"))
    assert info.value.exit_code == exitcodes.BAD_INPUT


def test_string_labels_stay_strings(tmp_path: Path) -> None:
    frame = _frame().assign(y=["cat", "dog", "cat", "dog"])
    data = datasets.prepare(frame, DatasetSettings("x.csv", label="y"), "y")
    assert data.labels.tolist() == ["cat", "dog", "cat", "dog"]
