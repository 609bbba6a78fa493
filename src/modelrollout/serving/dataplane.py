"""The protocol-independent core of the server: model spec resolution, admission, calls.

The gRPC and REST adapters translate their wire formats into these calls and
map ``ServingError`` subclasses to their status codes, each in one place. The
semantics follow TF Serving: a ModelSpec names the model (must match), and
optionally a version or a version label (never both).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from modelrollout.serving.errors import (
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServingError,
    Unavailable,
    servable_not_found,
)
from modelrollout.serving.metrics import Metrics
from modelrollout.serving.model import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    REGRESS_METHOD,
    ServedModel,
    Signature,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


class State(enum.Enum):
    """Lifecycle of the one model version, named as GetModelStatus reports it."""

    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass(frozen=True)
class ModelSpec:
    """TF Serving's ModelSpec, protocol-free."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatus' ``model_version_status``."""

    version: int
    state: State
    error_code: str
    error_message: str


class DataPlane:
    """Everything a request needs, whichever protocol carried it."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        labels: dict[str, int],
        metrics: Metrics,
        executor: Executor,
        max_concurrency: int,
        inline_rows: int,
    ) -> None:
        self.name = name
        self.version = version
        self.labels = dict(labels)
        self.metrics = metrics
        self.executor = executor
        self.max_concurrency = max_concurrency
        self.inline_rows = inline_rows
        self.state = State.LOADING
        self.failure = ""
        self.model: ServedModel | None = None

    # -- lifecycle -------------------------------------------------------------
    def set_model(self, model: ServedModel) -> None:
        """The model is loaded: start answering."""
        self.model = model
        self.state = State.AVAILABLE
        self.metrics.loaded = 1
        self.metrics.set_runtime(model.runtime_info)

    def set_failed(self, reason: str) -> None:
        self.state = State.END
        self.failure = reason

    def start_draining(self) -> None:
        """Stop admitting model requests; in-flight ones finish."""
        if self.state is State.AVAILABLE:
            self.state = State.UNLOADING

    @property
    def ready(self) -> bool:
        return self.state is State.AVAILABLE

    # -- admission -------------------------------------------------------------
    def admit(self) -> None:
        """Take one in-flight slot or refuse with RESOURCE_EXHAUSTED (never queue unboundedly)."""
        if self.metrics.in_flight >= self.max_concurrency:
            raise ResourceExhausted(
                f"Too many requests in flight for model {self.name}: "
                f"limit is {self.max_concurrency}; retry later"
            )
        self.metrics.in_flight += 1

    def release(self) -> None:
        self.metrics.in_flight -= 1

    # -- resolution ------------------------------------------------------------
    def resolve(self, spec: ModelSpec) -> ServedModel:
        """Find the servable a ModelSpec names, with TF Serving's errors."""
        if not spec.name:
            raise InvalidArgument("ModelSpec has no name specified.")
        if spec.version is not None and spec.label is not None:
            raise InvalidArgument(
                "ModelSpec has both 'version' and 'version_label' set; specify at most one"
            )
        version = spec.version
        if spec.label is not None:
            if spec.name != self.name or spec.label not in self.labels:
                raise InvalidArgument(f"Unrecognized servable version label: {spec.label}")
            version = self.labels[spec.label]
        if spec.name != self.name or (version is not None and version != self.version):
            raise servable_not_found(spec.name, version)
        if self.state is not State.AVAILABLE or self.model is None:
            raise Unavailable(self._unavailable_reason())
        return self.model

    def _unavailable_reason(self) -> str:
        if self.state is State.LOADING:
            return f"Model {self.name} version {self.version} is still loading"
        if self.state is State.UNLOADING:
            return f"Model {self.name} version {self.version} is shutting down"
        return f"Model {self.name} version {self.version} failed to load: {self.failure}"

    def signature(self, model: ServedModel, name: str, method: str) -> Signature:
        """Pick the signature a request names; '' means the method's natural one."""
        if name in ("", DEFAULT_SIGNATURE):
            if method == PREDICT_METHOD:
                return model.signatures[DEFAULT_SIGNATURE]
            for sig in model.signatures.values():
                if sig.method_name == method:
                    return sig
            return model.signatures[DEFAULT_SIGNATURE]
        if name not in model.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        sig = model.signatures[name]
        if sig.method_name != method:
            raise InvalidArgument(
                f"Expected {method.rsplit('/', 1)[-1]} signature method_name to be {method}. "
                f"Was: {sig.method_name}"
            )
        return sig

    # -- calls -----------------------------------------------------------------
    async def _run(self, rows: int, fn: Callable[[], T]) -> T:
        """Small batches inline on the loop (no thread hop); larger ones on a worker."""
        try:
            if rows <= self.inline_rows:
                return fn()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, fn)
        except ServingError:
            raise
        except (ValueError, TypeError) as err:
            raise InvalidArgument(str(err)) from err
        except Exception as err:
            log.exception("model %s version %d raised", self.name, self.version)
            raise Internal(f"{type(err).__name__}: {err}") from err

    async def predict(
        self, spec: ModelSpec, x: np.ndarray, wanted: frozenset[str] | None = None
    ) -> dict[str, Any]:
        model = self.resolve(spec)
        sig = self.signature(model, spec.signature_name, PREDICT_METHOD)
        if wanted is not None:
            unknown = sorted(wanted - set(sig.outputs))
            if unknown:
                raise InvalidArgument(
                    f"output tensor alias not found in signature: {unknown[0]}. Outputs "
                    f"expected to be in the set {{{','.join(sig.outputs)}}}."
                )
        outputs = await self._run(x.shape[0] if x.ndim else 0, lambda: model.predict(x, wanted))
        if "predictions" in outputs:
            self._record_predictions(model, outputs["predictions"])
        return outputs

    async def classify(
        self, spec: ModelSpec, x: np.ndarray
    ) -> tuple[tuple[str, ...], np.ndarray | None, np.ndarray]:
        model = self.resolve(spec)
        self.signature(model, spec.signature_name, CLASSIFY_METHOD)
        result = await self._run(x.shape[0] if x.ndim else 0, lambda: model.classify(x))
        self.metrics.record_labels(np.asarray(result[2]), model.info.classes)
        return result

    async def regress(self, spec: ModelSpec, x: np.ndarray) -> np.ndarray:
        model = self.resolve(spec)
        self.signature(model, spec.signature_name, REGRESS_METHOD)
        values = await self._run(x.shape[0] if x.ndim else 0, lambda: model.regress(x))
        self.metrics.record_values(values)
        return values

    def _record_predictions(self, model: ServedModel, predictions: Any) -> None:
        if model.info.kind == "classifier":
            self.metrics.record_labels(np.asarray(predictions), model.info.classes)
        else:
            self.metrics.record_values(np.asarray(predictions))

    def metadata(self, spec: ModelSpec) -> tuple[int, dict[str, Signature]]:
        """GetModelMetadata: the version and its signature defs."""
        model = self.resolve(spec)
        return self.version, model.signatures

    def runtime_metadata(self) -> dict[str, str]:
        """The ``runtime`` metadata entry: which runtime answers and why (after ``metadata``)."""
        return self.model.runtime_info.as_dict() if self.model is not None else {}

    def status(self, spec: ModelSpec) -> list[VersionStatus]:
        """GetModelStatus: answers in every state, so readiness can be read from it."""
        if not spec.name:
            raise InvalidArgument("ModelSpec has no name specified.")
        version = spec.version
        if spec.label is not None:
            if spec.version is not None:
                raise InvalidArgument(
                    "ModelSpec has both 'version' and 'version_label' set; specify at most one"
                )
            if spec.name != self.name or spec.label not in self.labels:
                raise InvalidArgument(f"Unrecognized servable version label: {spec.label}")
            version = self.labels[spec.label]
        if spec.name != self.name:
            raise NotFound(f"Could not find any versions of model {spec.name}")
        if version is not None and version != self.version:
            raise NotFound(f"Could not find version {version} of model {spec.name}")
        code, message = ("UNKNOWN", self.failure) if self.failure else ("OK", "")
        return [VersionStatus(self.version, self.state, code, message)]
