"""The compiled runtime: ONNX Runtime sessions, and skl2onnx conversion of estimators.

A one-row ``predict`` of a small scikit-learn pipeline spends ~190 µs in input
validation and dispatch for ~2 µs of arithmetic; the same graph run by ONNX
Runtime with one thread answers in ~5 µs. Sessions use one intra-op and one
inter-op thread with sequential execution: a server process is one core's
worth of work (``--workers`` adds processes, not threads).

Conventions for an ``.onnx`` artifact (not converted here):
- one input, a float or double tensor ``[batch, n_features]``;
- a classifier has an integer or string label output and (optionally) a float
  probability output ``[batch, n_classes]``; a regressor has one float output;
- the classes come from the model's ``metadata_props`` entry
  ``modelrollout.classes`` (a JSON list) or, failing that, are ``0..n_classes-1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrollout.serving.model import ModelInfo

CLASSES_PROP = "modelrollout.classes"
"""ONNX ``metadata_props`` key holding the class labels as a JSON list."""

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class ConversionUnsupported(Exception):
    """skl2onnx cannot convert this estimator; the message says why."""


def session(model_bytes: bytes) -> Any:
    """An ONNX Runtime session on one thread (one core per server process)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class OnnxOutputs:
    """Which session outputs hold labels, probabilities or values."""

    label: str | None
    proba: str | None
    value: str | None


def classify_outputs(outputs: list[tuple[str, str]]) -> OnnxOutputs:
    """Map (name, type) of session outputs to their roles (pure)."""
    label = next((n for n, t in outputs if t in ("tensor(int64)", "tensor(string)")), None)
    floats = [n for n, t in outputs if t in _FLOAT_TYPES]
    if label is not None:
        return OnnxOutputs(label=label, proba=floats[0] if floats else None, value=None)
    if not floats:
        raise ValueError(f"no usable output among {outputs}: expected labels or float values")
    return OnnxOutputs(label=None, proba=None, value=floats[0])


class OnnxRuntime:
    """Runs an ONNX graph; outputs as scikit-learn would shape them (float64 probabilities)."""

    name = "onnx"

    def __init__(self, model_bytes: bytes, classes: np.ndarray | None = None) -> None:
        self.session = session(model_bytes)
        inp = self.session.get_inputs()[0]
        if inp.type not in _FLOAT_TYPES:
            raise ValueError(f"ONNX input {inp.name!r} has type {inp.type}; expected float/double")
        self.input_name = inp.name
        self.input_dtype = _FLOAT_TYPES[inp.type]
        self.input_shape = list(inp.shape)
        self.roles = classify_outputs([(o.name, o.type) for o in self.session.get_outputs()])
        self.classes = classes
        self._run = self.session.run

    def _feed(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {self.input_name: np.ascontiguousarray(x, dtype=self.input_dtype)}

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.roles.label is None:
            (values,) = self._run([self.roles.value], self._feed(x))
            return np.asarray(values, dtype=np.float64).reshape(x.shape[0], -1).reshape(-1)
        (labels,) = self._run([self.roles.label], self._feed(x))
        return self._labels(labels)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        assert self.roles.proba is not None
        (proba,) = self._run([self.roles.proba], self._feed(x))
        return np.asarray(proba, dtype=np.float64)

    def predict_both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one session run."""
        assert self.roles.label is not None
        assert self.roles.proba is not None
        labels, proba = self._run([self.roles.label, self.roles.proba], self._feed(x))
        return self._labels(labels), np.asarray(proba, dtype=np.float64)

    def _labels(self, labels: Any) -> np.ndarray:
        out = np.asarray(labels).reshape(-1)
        if self.classes is not None and self.classes.dtype.kind not in "OUS":
            return out.astype(self.classes.dtype, copy=False)
        return out


def describe_onnx(model_bytes: bytes, runtime: OnnxRuntime) -> ModelInfo:
    """ModelInfo of an ``.onnx`` artifact, from its graph and metadata (see module doc)."""
    import onnx

    proto = onnx.load_model_from_string(model_bytes)
    props = {p.key: p.value for p in proto.metadata_props}
    roles = runtime.roles
    n_features = runtime.input_shape[1] if len(runtime.input_shape) == 2 else -1
    n_features = n_features if isinstance(n_features, int) else -1
    classes: np.ndarray | None = None
    if roles.label is not None:
        if CLASSES_PROP in props:
            classes = np.asarray(json.loads(props[CLASSES_PROP]))
        else:
            width = _proba_width(runtime)
            if width is None:
                raise ValueError(
                    f"classifier without a probability output needs its classes in "
                    f"metadata_props[{CLASSES_PROP!r}]"
                )
            classes = np.arange(width, dtype=np.int64)
    runtime.classes = classes
    return ModelInfo(
        kind="classifier" if classes is not None else "regressor",
        n_features=n_features,
        feature_names=None,
        classes=classes,
        has_proba=roles.proba is not None,
        labels_from_proba=False,
        estimator_type=f"onnx:{proto.producer_name or 'unknown'}",
    )


def _proba_width(runtime: OnnxRuntime) -> int | None:
    if runtime.roles.proba is None:
        return None
    out = next(o for o in runtime.session.get_outputs() if o.name == runtime.roles.proba)
    width = out.shape[-1] if out.shape else None
    return width if isinstance(width, int) else None


def convert(estimator: Any, n_features: int, is_classifier: bool) -> bytes:
    """skl2onnx conversion (float32 input, probabilities as a plain tensor, no ZipMap)."""
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator
    except ImportError as err:  # pragma: no cover - the serving extra installs it
        raise ConversionUnsupported(f"skl2onnx is not installed: {err}") from err
    if n_features <= 0:
        raise ConversionUnsupported("the estimator does not record n_features_in_")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if is_classifier else None
    sample = np.zeros((1, n_features), dtype=np.float32)
    try:
        return bytes(to_onnx(estimator, sample, options=options).SerializeToString())
    except (MissingConverter, MissingShapeCalculator) as err:
        first = str(err).strip().splitlines()[0]
        raise ConversionUnsupported(f"skl2onnx has no converter: {first}") from err
    except Exception as err:
        raise ConversionUnsupported(f"skl2onnx failed: {type(err).__name__}: {err}") from err
