"""Runtime choice and verified equivalence, in process (real skl2onnx and ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelrollout.serving import equivalence, runtimes
from modelrollout.serving.compiled import (
    ConversionUnsupported,
    OnnxRuntime,
    classify_outputs,
    convert,
)
from modelrollout.serving.model import ModelInfo, Runtime, ServedModel, describe


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


class Tampered:
    """A compiled runtime whose graph was altered: one label flipped."""

    name = "onnx"

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_both(x)[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.inner.predict_proba(x)

    def predict_both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, proba = self.inner.predict_both(x)
        labels = labels.copy()
        labels[-1] = 1 - labels[-1]
        return labels, proba


def test_auto_compiles_a_pipeline_that_agrees(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    runtime, info = runtimes.select(pipe, describe(pipe), runtimes.Choice("auto"))
    assert runtime.name == "onnx"
    assert info.runtime == "onnx"
    assert info.probe == "256 rows from StandardScaler mean_/scale_"
    assert 0 < info.max_abs_diff < 1e-5
    served = ServedModel(runtime, describe(pipe), info)
    np.testing.assert_array_equal(served.predict(x)["predictions"], pipe.predict(x))


def test_tampered_graph_falls_back(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)

    def tampering(estimator: object, info: ModelInfo) -> Runtime:
        return Tampered(runtimes.skl2onnx_compiler(estimator, info))

    runtime, info = runtimes.select(pipe, describe(pipe), runtimes.Choice("auto"), tampering)
    assert runtime.name == "sklearn"
    assert "labels differ on 1 of 256 probe rows (first: row 255" in info.fallback_reason


def test_unconvertible_estimator_falls_back_with_reason(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = cancer
    kr = KernelRidge().fit(x[:50], y[:50])
    runtime, info = runtimes.select(kr, describe(kr), runtimes.Choice("auto"))
    assert runtime.name == "sklearn"
    assert info.fallback_reason.startswith("skl2onnx has no converter")
    assert "KernelRidge" in info.fallback_reason
    assert info.as_dict()["fallback_reason"] == info.fallback_reason


def test_sklearn_requested_never_compiles(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    lr = LogisticRegression(max_iter=5000).fit(x, y)

    def refuse(estimator: object, info: ModelInfo) -> Runtime:
        raise AssertionError("compiler must not run")

    runtime, info = runtimes.select(lr, describe(lr), runtimes.Choice("sklearn"), refuse)
    assert (runtime.name, info.as_dict()) == (
        "sklearn",
        {"runtime": "sklearn", "requested": "sklearn"},
    )
    with pytest.raises(ValueError, match=r"needs an \.onnx artifact"):
        runtimes.select(lr, describe(lr), runtimes.Choice("onnx"))


def test_probe_sources(cancer: tuple[np.ndarray, np.ndarray], tmp_path: object) -> None:
    x, y = cancer
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    probe = runtimes.probe_for(rf, describe(rf), runtimes.Choice("auto", probe_rows=10))
    assert probe.source == "tree split thresholds"
    assert probe.rows.shape == (10, 30)
    assert (probe.rows.max(axis=0) > 100).any()  # within the features' real ranges
    setattr(rf, equivalence.PROBE_ATTRIBUTE, x[:7])
    shipped = runtimes.probe_for(rf, describe(rf), runtimes.Choice("auto"))
    assert shipped.describe() == f"7 rows from the artifact ({equivalence.PROBE_ATTRIBUTE})"
    plain = LinearRegression().fit(x[:, :3], y)
    assert "standard normal" in equivalence.synthetic_rows(plain, 3, 4).source


def test_read_probe_file(tmp_path: pytest.TempPathFactory) -> None:
    npy = f"{tmp_path}/rows.npy"
    np.save(npy, np.ones((3, 2)))
    assert equivalence.read_probe_file(npy, 2).shape == (3, 2)
    csv = f"{tmp_path}/rows.csv"
    with open(csv, "w") as f:
        f.write("a,b\n1,2\n3,4\n")
    np.testing.assert_array_equal(equivalence.read_probe_file(csv, 2), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"expected \[n, 3\]"):
        equivalence.read_probe_file(csv, 3)


def test_judge() -> None:
    labels = np.array([0, 1])
    same = equivalence.judge(
        labels, labels, np.array([0.5]), np.array([0.5 + 1e-7]), atol=1e-5, rtol=0
    )
    assert same.reason == ""
    assert same.max_abs_diff == pytest.approx(1e-7)
    far = equivalence.judge(labels, labels, np.array([0.5]), np.array([0.6]), atol=1e-5, rtol=1e-4)
    assert far.reason.startswith("values differ beyond atol 1e-05 rtol 0.0001 on 1 of 1")
    flipped = equivalence.judge(labels, labels[::-1], np.zeros(0), np.zeros(0), atol=0, rtol=0)
    assert flipped.reason.startswith("labels differ on 2 of 2")
    shapes = equivalence.judge(labels, labels[:1], np.zeros(0), np.zeros(0), atol=0, rtol=0)
    assert shapes.reason.startswith("output shapes differ")


def test_regressor_converts_and_returns_flat_float64(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    reg = LinearRegression().fit(x, y.astype(float))
    runtime = OnnxRuntime(convert(reg, 30, is_classifier=False))
    out = runtime.predict(x[:5])
    assert out.dtype == np.float64
    assert out.shape == (5,)
    np.testing.assert_allclose(out, reg.predict(x[:5]), atol=1e-4)


def test_output_roles() -> None:
    roles = classify_outputs([("label", "tensor(int64)"), ("probabilities", "tensor(float)")])
    assert (roles.label, roles.proba, roles.value) == ("label", "probabilities", None)
    assert classify_outputs([("variable", "tensor(float)")]).value == "variable"
    with pytest.raises(ValueError, match="no usable output"):
        classify_outputs([("x", "tensor(bool)")])


def test_a_converter_error_dump_becomes_one_short_line(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = cancer
    lr = LogisticRegression(max_iter=5000).fit(x, y)

    def verbose(estimator: object, info: ModelInfo) -> Runtime:
        raise ConversionUnsupported("skl2onnx failed: " + "attribute dump\n" * 1000)

    _, info = runtimes.select(lr, describe(lr), runtimes.Choice("auto"), verbose)
    assert len(info.fallback_reason) == runtimes.MAX_REASON_CHARS
    assert "\n" not in info.fallback_reason
    assert info.fallback_reason.startswith("skl2onnx failed: attribute dump attribute dump")


def test_a_compiler_crash_still_serves_with_sklearn(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = cancer
    lr = LogisticRegression(max_iter=5000).fit(x, y)

    def crash(estimator: object, info: ModelInfo) -> Runtime:
        raise ImportError("No module named 'onnxruntime'")

    runtime, info = runtimes.select(lr, describe(lr), runtimes.Choice("auto"), crash)
    assert runtime.name == "sklearn"
    assert info.fallback_reason == "compiling failed: ImportError: No module named 'onnxruntime'"
