"""Typed, validated views of Model and ModelVersion objects (pure: dicts in, dataclasses out).

The API server already enforces the CRD schema; these views exist so the
decision code works on named fields with defaults applied, and so a version's
overrides merge with its Model's policy in exactly one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modelrollout.core.canary import CanarySpec, CanarySpecError, canary_from_dict
from modelrollout.core.gates import GateSpecError, gate_spec_from_dict

GROUP = "modelrollout.io"
API_VERSION = "v1alpha1"
MODELS = "models"
VERSIONS = "modelversions"

LABEL_MODEL = f"{GROUP}/model"
LABEL_VERSION = f"{GROUP}/version"
LABEL_ROLE = f"{GROUP}/role"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "modelrollout"

ANNOTATION_RETRY = f"{GROUP}/retry"
ANNOTATION_ABORT = f"{GROUP}/abort"
ANNOTATION_PROMOTE = f"{GROUP}/promote"
ANNOTATION_PAUSED = f"{GROUP}/paused"


class Phase(StrEnum):
    """Lifecycle of a ModelVersion (docs/resources.md draws the graph)."""

    PENDING = "Pending"
    DEPLOYING = "Deploying"
    EVALUATING = "Evaluating"
    EVALUATION_FAILED = "EvaluationFailed"
    CANARY = "Canary"
    """Reserved for the canary stage (traffic steps between evaluation and promotion)."""
    PROMOTING = "Promoting"
    STABLE = "Stable"
    SUPERSEDED = "Superseded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


IN_FLIGHT = frozenset(
    {Phase.PENDING, Phase.DEPLOYING, Phase.EVALUATING, Phase.CANARY, Phase.PROMOTING}
)
"""Phases of a version on its way to production."""
REJECTED = frozenset({Phase.EVALUATION_FAILED, Phase.ROLLED_BACK, Phase.FAILED})
"""Phases of a version that failed: never a candidate until retried."""


@dataclass(frozen=True)
class Dataset:
    """Labelled rows for the evaluation (see the CRD for each field's meaning)."""

    uri: str
    format: str = "auto"
    label_column: str | None = None
    max_rows: int | None = None
    holdout_fraction: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    """The evaluation policy after a version's overrides are merged into its Model's."""

    dataset: Dataset | None
    gates: Mapping[str, Any] = field(default_factory=dict)
    """The gates as written in the resource (parsed by ``core.gates``, the one implementation)."""
    timeout_seconds: int = 600


@dataclass(frozen=True)
class Artifact:
    """The serialized model a version serves."""

    uri: str
    sha256: str
    format: str = "skops"
    trusted_types: tuple[str, ...] = ()
    allow_unsafe_formats: bool = False


class Router(StrEnum):
    """Who splits user traffic between the stable version and a canary."""

    REPLICAS = "replicas"
    """The Model's Service selects both versions' pods: the weight is a share of pods."""
    GATEWAY_API = "gateway-api"
    """Exact weights in a Gateway API HTTPRoute or GRPCRoute."""
    ISTIO = "istio"
    """Exact weights in an Istio VirtualService."""


@dataclass(frozen=True)
class GatewayAPISpec:
    """``spec.traffic.gatewayAPI``: which route the gateway-api router writes."""

    kind: str = "HTTPRoute"
    """HTTPRoute (REST port) or GRPCRoute (gRPC port)."""
    route_name: str | None = None
    """An existing route to patch (only our two backends' weights); None: an owned route."""
    parent_refs: tuple[Mapping[str, Any], ...] = ()
    """parentRefs of the owned route."""


@dataclass(frozen=True)
class IstioSpec:
    """``spec.traffic.istio``: which VirtualService the istio router writes."""

    virtual_service_name: str | None = None
    """An existing VirtualService to patch; None: an owned one named after the Model."""
    hosts: tuple[str, ...] = ()
    """Hosts of the owned VirtualService (empty: the Model's Service name)."""
    gateways: tuple[str, ...] = ()
    """Gateways of the owned VirtualService (empty: the mesh only)."""


@dataclass(frozen=True)
class TrafficSpec:
    """``spec.traffic``: the router and the canary's pod budget."""

    router: Router = Router.REPLICAS
    max_canary_replicas: int | None = None
    """Cap of the canary's pods (None: the stable version's replica count)."""
    gateway_api: GatewayAPISpec = GatewayAPISpec()
    istio: IstioSpec = IstioSpec()


def traffic_from_dict(raw: Mapping[str, Any]) -> TrafficSpec:
    """Read ``spec.traffic`` (the CRD schema has validated it)."""
    gw, istio = raw.get("gatewayAPI") or {}, raw.get("istio") or {}
    cap = raw.get("maxCanaryReplicas")
    return TrafficSpec(
        router=Router(raw.get("router", Router.REPLICAS)),
        max_canary_replicas=int(cap) if cap is not None else None,
        gateway_api=GatewayAPISpec(
            kind=str(gw.get("kind", "HTTPRoute")),
            route_name=gw.get("routeName"),
            parent_refs=tuple(dict(p) for p in gw.get("parentRefs") or ()),
        ),
        istio=IstioSpec(
            virtual_service_name=istio.get("virtualServiceName"),
            hosts=tuple(istio.get("hosts") or ()),
            gateways=tuple(istio.get("gateways") or ()),
        ),
    )


@dataclass(frozen=True)
class ModelSpec:
    """A Model's serving and rollout policy."""

    name: str
    namespace: str
    uid: str
    runtime: str = "sklearn"
    replicas: int = 1
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    keep_previous_seconds: int = 30
    canary: Mapping[str, Any] = field(default_factory=dict)
    """``spec.canary`` as written (merged with a version's override by ``merged_canary``)."""
    traffic: TrafficSpec = TrafficSpec()


@dataclass(frozen=True)
class VersionSpec:
    """A ModelVersion's identity, artifact and raw overrides."""

    name: str
    namespace: str
    uid: str
    model: str
    version: int
    artifact: Artifact
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    canary: Mapping[str, Any] = field(default_factory=dict)
    """The version's ``spec.canary`` override as written."""


def model_from_body(body: Mapping[str, Any]) -> ModelSpec:
    """Read a Model object (as the API server returns it) into a ModelSpec."""
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    resources = {
        kind: {str(k): str(v) for k, v in (spec.get("resources") or {}).get(kind, {}).items()}
        for kind in ("requests", "limits")
        if (spec.get("resources") or {}).get(kind)
    }
    return ModelSpec(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
        runtime=spec.get("runtime", "sklearn"),
        replicas=int(spec.get("replicas", 1)),
        resources=resources,
        evaluation=spec.get("evaluation") or {},
        keep_previous_seconds=int((spec.get("promotion") or {}).get("keepPreviousSeconds", 30)),
        canary=spec.get("canary") or {},
        traffic=traffic_from_dict(spec.get("traffic") or {}),
    )


def version_from_body(body: Mapping[str, Any]) -> VersionSpec:
    """Read a ModelVersion object into a VersionSpec."""
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    art = spec.get("artifact") or {}
    return VersionSpec(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
        model=spec["model"],
        version=int(spec["version"]),
        artifact=Artifact(
            uri=art["uri"],
            sha256=art["sha256"],
            format=art.get("format", "skops"),
            trusted_types=tuple(art.get("trustedTypes") or ()),
            allow_unsafe_formats=bool(art.get("allowUnsafeFormats", False)),
        ),
        evaluation=spec.get("evaluation") or {},
        canary=spec.get("canary") or {},
    )


def merged_canary_raw(model: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a version's canary override into its Model's: ``steps`` and ``thresholds``
    replace as a whole (a partial list would be meaningless), other analysis fields one by one."""
    analysis = {**(model.get("analysis") or {}), **(override.get("analysis") or {})}
    merged = {**model, **override}
    if analysis:
        merged["analysis"] = analysis
    return merged


def merged_canary(model: Mapping[str, Any], override: Mapping[str, Any]) -> CanarySpec:
    """The canary policy in force for a version (raises ``CanarySpecError`` when unusable)."""
    return canary_from_dict(merged_canary_raw(model, override))


def merged_evaluation(model: Mapping[str, Any], override: Mapping[str, Any]) -> Evaluation:
    """Merge a version's evaluation override into its Model's, field by field."""
    dataset_raw = {**(model.get("dataset") or {}), **(override.get("dataset") or {})}
    gates = override.get("gates", model.get("gates") or {})
    dataset = None
    if dataset_raw.get("uri"):
        dataset = Dataset(
            uri=dataset_raw["uri"],
            format=dataset_raw.get("format", "auto"),
            label_column=dataset_raw.get("labelColumn"),
            max_rows=dataset_raw.get("maxRows"),
            holdout_fraction=dataset_raw.get("holdoutFraction"),
            seed=int(dataset_raw.get("seed", 0)),
        )
    timeout = override.get("timeoutSeconds", model.get("timeoutSeconds", 600))
    return Evaluation(dataset=dataset, gates=gates, timeout_seconds=int(timeout))


def semantic_errors(
    version: VersionSpec, evaluation: Evaluation, model_canary: Mapping[str, Any] | None = None
) -> list[str]:
    """What the schema cannot check: problems a person must fix in the resources."""
    errors = []
    try:
        merged_canary(model_canary or {}, version.canary)
    except CanarySpecError as err:
        errors.append(f"canary: {err}")
    if evaluation.dataset is None:
        errors.append(
            "no evaluation dataset: set spec.evaluation.dataset.uri on the Model or the version"
        )
    try:
        gate_spec_from_dict(evaluation.gates)
    except GateSpecError as err:
        errors.append(f"evaluation gates: {err}")
    if version.artifact.format != "skops" and not version.artifact.allow_unsafe_formats:
        errors.append(f"artifact format {version.artifact.format} needs allowUnsafeFormats: true")
    return errors
