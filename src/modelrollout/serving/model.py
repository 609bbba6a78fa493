"""The served model: what it is (signatures, classes) and how it computes, protocol-free.

A ``Runtime`` computes outputs from a 2-D feature array: ``SklearnRuntime``
calls the estimator, ``compiled.OnnxRuntime`` runs an ONNX graph. ``ServedModel``
reports which one answers (and why, ``RuntimeInfo``) in metadata and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelrollout.serving.errors import InvalidArgument, Unimplemented

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
"""Name of the single input tensor of ``serving_default`` (and the tf.Example feature)."""

# Estimators whose predict() is, by construction, classes_[argmax(predict_proba)],
# so one predict_proba call answers both outputs (halving the per-request cost).
_LABELS_FROM_PROBA = frozenset(
    {
        "LogisticRegression",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
    }
)


class Runtime(Protocol):
    """Computes a model's outputs from a 2-D float array."""

    name: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...

    def predict_both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities, computed once where the runtime can."""
        ...


class SklearnRuntime:
    """Calls the scikit-learn estimator itself."""

    name = "sklearn"

    def __init__(self, estimator: Any) -> None:
        self._predict = estimator.predict
        self._proba = getattr(estimator, "predict_proba", None)
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        classes = getattr(estimator, "classes_", None)
        self._classes = np.asarray(classes) if classes is not None else None
        self._labels_from_proba = type(final).__name__ in _LABELS_FROM_PROBA

    def predict_both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self.predict_proba(x)
        if self._labels_from_proba and self._classes is not None:
            return self._classes[np.argmax(proba, axis=1)], proba
        return self.predict(x), proba

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        assert self._proba is not None
        return np.asarray(self._proba(x), dtype=np.float64)


@dataclass(frozen=True)
class RuntimeInfo:
    """Which runtime answers and why: shown in metadata, metrics and the log."""

    runtime: str
    """``sklearn`` or ``onnx``: what computes the predictions."""
    requested: str = "sklearn"
    """``--runtime`` as given: ``sklearn``, ``onnx`` or ``auto``."""
    fallback_reason: str = ""
    """Why ``auto`` serves with scikit-learn (empty when it did not fall back)."""
    probe: str = ""
    """The equivalence probe set (source and row count), when one was run."""
    max_abs_diff: float = float("nan")
    """Largest probability/value difference found on the probe set."""

    def as_dict(self) -> dict[str, str]:
        """String map for metadata (TF Serving clients ignore unknown metadata keys)."""
        out = {"runtime": self.runtime, "requested": self.requested}
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        if self.probe:
            out["probe"] = self.probe
            out["max_abs_diff"] = repr(self.max_abs_diff)
        return out


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: TF dtype name and shape (-1 = any)."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """A TF Serving SignatureDef, described without protobuf."""

    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class ModelInfo:
    """What the estimator is, read once at load time."""

    kind: str
    """``classifier`` or ``regressor``."""
    n_features: int
    """Expected feature count, -1 when the estimator does not say."""
    feature_names: tuple[str, ...] | None
    classes: np.ndarray | None
    has_proba: bool
    labels_from_proba: bool
    estimator_type: str


def label_dtype(classes: np.ndarray | None) -> str:
    """TF dtype name of predicted labels: int64 / string / double / bool."""
    if classes is None:
        return "DT_DOUBLE"
    kind = classes.dtype.kind
    if kind in "iu":
        return "DT_INT64"
    if kind == "b":
        return "DT_BOOL"
    if kind == "f":
        return "DT_DOUBLE"
    return "DT_STRING"


def describe(estimator: Any) -> ModelInfo:
    """Introspect an estimator (or pipeline) once; refuse what cannot be served."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(estimator, "predict"):
        raise TypeError(f"{type(estimator).__name__} has no predict(): not a servable model")
    classes = getattr(estimator, "classes_", None)
    is_classifier = classes is not None
    names = getattr(estimator, "feature_names_in_", None)
    return ModelInfo(
        kind="classifier" if is_classifier else "regressor",
        n_features=int(getattr(estimator, "n_features_in_", -1)),
        feature_names=tuple(str(n) for n in names) if names is not None else None,
        classes=np.asarray(classes) if is_classifier else None,
        has_proba=is_classifier and hasattr(estimator, "predict_proba"),
        labels_from_proba=type(final).__name__ in _LABELS_FROM_PROBA,
        estimator_type=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
    )


def signatures(info: ModelInfo) -> dict[str, Signature]:
    """The model's signatures, following TF Serving's predict/classify/regress conventions."""
    inputs = {INPUT_NAME: TensorSpec("DT_DOUBLE", (-1, info.n_features))}
    outputs = {"predictions": TensorSpec(label_dtype(info.classes), (-1,))}
    if info.has_proba and info.classes is not None:
        outputs["probabilities"] = TensorSpec("DT_DOUBLE", (-1, len(info.classes)))
    result = {DEFAULT_SIGNATURE: Signature(PREDICT_METHOD, inputs, outputs)}
    examples = {INPUT_NAME: TensorSpec("DT_STRING", (-1,))}
    if info.kind == "classifier":
        k = len(info.classes) if info.classes is not None else 1
        result["classification"] = Signature(
            CLASSIFY_METHOD,
            examples,
            {
                "classes": TensorSpec("DT_STRING", (-1, k)),
                "scores": TensorSpec("DT_FLOAT", (-1, k)),
            },
        )
    else:
        result["regression"] = Signature(
            REGRESS_METHOD, examples, {"outputs": TensorSpec("DT_FLOAT", (-1,))}
        )
    return result


class ServedModel:
    """One loaded model version: validates inputs and computes each API's outputs."""

    def __init__(
        self, runtime: Runtime, info: ModelInfo, runtime_info: RuntimeInfo | None = None
    ) -> None:
        self.runtime = runtime
        self.info = info
        self.runtime_info = runtime_info or RuntimeInfo(runtime.name, runtime.name)
        self.signatures = signatures(info)
        self.class_labels: tuple[str, ...] = (
            tuple(str(c) for c in info.classes) if info.classes is not None else ()
        )

    def check_rows(self, x: np.ndarray) -> np.ndarray:
        """Refuse a batch whose shape does not fit, naming expected and received."""
        if x.ndim != 2:
            raise InvalidArgument(
                f"input '{INPUT_NAME}' must have shape [batch, {self.info.n_features}], "
                f"received shape {list(x.shape)}"
            )
        if self.info.n_features >= 0 and x.shape[1] != self.info.n_features:
            raise InvalidArgument(
                f"input '{INPUT_NAME}' expects {self.info.n_features} features per row, "
                f"received {x.shape[1]}"
            )
        if x.shape[0] == 0:
            raise InvalidArgument(f"input '{INPUT_NAME}' has no rows")
        return x

    def predict(self, x: np.ndarray, wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """``serving_default``: labels/values, plus probabilities when the model has them."""
        self.check_rows(x)
        want_proba = self.info.has_proba and (wanted is None or "probabilities" in wanted)
        outputs: dict[str, Any] = {}
        if want_proba and (wanted is None or "predictions" in wanted):
            outputs["predictions"], outputs["probabilities"] = self.runtime.predict_both(x)
        elif want_proba:
            outputs["probabilities"] = self.runtime.predict_proba(x)
        if "predictions" not in outputs and (wanted is None or "predictions" in wanted):
            outputs["predictions"] = self.runtime.predict(x)
        order = ("predictions", "probabilities")
        return {k: outputs[k] for k in order if k in outputs and (wanted is None or k in wanted)}

    def classify(self, x: np.ndarray) -> tuple[tuple[str, ...], np.ndarray | None, np.ndarray]:
        """Classify: every class with its probability, or the predicted label alone.

        Returns (class labels, scores [n, k] or None, predicted label per row).
        """
        if self.info.kind != "classifier" or self.info.classes is None:
            raise Unimplemented(
                f"Classify is not available: the model is a regressor "
                f"({self.info.estimator_type}); use Regress or Predict"
            )
        self.check_rows(x)
        if self.info.has_proba:
            labels, proba = self.runtime.predict_both(x)
            return self.class_labels, proba, labels
        return self.class_labels, None, self.runtime.predict(x)

    def regress(self, x: np.ndarray) -> np.ndarray:
        """Regress: one value per row."""
        if self.info.kind != "regressor":
            raise Unimplemented(
                f"Regress is not available: the model is a classifier "
                f"({self.info.estimator_type}); use Classify or Predict"
            )
        self.check_rows(x)
        return np.asarray(self.runtime.predict(x), dtype=np.float64).reshape(-1)

    def examples_to_rows(self, examples: list[dict[str, list[float]]]) -> np.ndarray:
        """tf.Example-like feature dicts → rows.

        Accepted: one feature ``inputs`` holding all values of a row, or (when the
        model was fitted on named columns) one single-value feature per column.
        """
        if not examples:
            raise InvalidArgument("Invalid argument: Input is empty.")
        names = self.info.feature_names
        rows: list[list[float]] = []
        for i, features in enumerate(examples):
            if INPUT_NAME in features:
                rows.append(list(features[INPUT_NAME]))
            elif names is not None:
                missing = [n for n in names if n not in features]
                if missing:
                    raise InvalidArgument(f"example {i} lacks feature(s) {missing}")
                rows.append([_single(features[n], n, i) for n in names])
            else:
                raise InvalidArgument(
                    f"example {i} has features {sorted(features)}; expected a float list "
                    f"named '{INPUT_NAME}' with {self.info.n_features} values"
                )
        try:
            return np.asarray(rows, dtype=np.float64)
        except ValueError as err:
            raise InvalidArgument(f"examples have different feature counts: {err}") from err


def _single(values: list[float], name: str, index: int) -> float:
    if len(values) != 1:
        raise InvalidArgument(
            f"example {index} feature '{name}' must hold 1 value, received {len(values)}"
        )
    return float(values[0])
