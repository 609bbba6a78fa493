"""The CRDs are structural and self-documenting, so `kubectl explain` teaches them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[3] / "crds"
OURS = ("model.yaml", "modelversion.yaml")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((CRD_DIR / name).read_text())
    assert isinstance(doc, dict)
    return doc


def schema_of(name: str) -> dict[str, Any]:
    schema = load(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every schema node below `node` with its dotted path (metadata excluded)."""
    yield path, node
    for key, child in node.get("properties", {}).items():
        if path == "" and key == "metadata":
            continue
        yield from walk(child, f"{path}.{key}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from walk(extra, f"{path}{{}}")


@pytest.mark.parametrize("name", OURS)
def test_every_field_has_type_and_description(name: str) -> None:
    missing = [
        path
        for path, node in walk(schema_of(name), "")
        if not node.get("description")
        or not (node.get("type") or node.get("x-kubernetes-int-or-string"))
    ]
    assert missing == []


@pytest.mark.parametrize("name", OURS)
def test_status_subresource_names_and_category(name: str) -> None:
    crd = load(name)
    version = crd["spec"]["versions"][0]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["spec"]["group"] == "modelrollout.io"
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert "modelrollout" in crd["spec"]["names"]["categories"]
    assert crd["spec"]["names"]["shortNames"]


def test_printer_columns() -> None:
    def names(file: str) -> list[str]:
        cols = load(file)["spec"]["versions"][0]["additionalPrinterColumns"]
        return [c["name"] for c in cols]

    assert names("model.yaml") == ["Stable", "Canary", "Weight", "Phase", "Age"]
    assert names("modelversion.yaml") == ["Model", "Version", "Phase", "Metric", "Age"]


def test_modelversion_spec_is_immutable_and_version_at_least_one() -> None:
    spec = schema_of("modelversion.yaml")["properties"]["spec"]
    rules = [v["rule"] for v in spec["x-kubernetes-validations"]]
    assert "self == oldSelf" in rules
    assert spec["properties"]["version"]["minimum"] == 1
    assert spec["properties"]["artifact"]["properties"]["sha256"]["pattern"] == "^[0-9a-f]{64}$"


def test_model_and_override_share_the_evaluation_and_canary_schema() -> None:
    model = schema_of("model.yaml")["properties"]["spec"]["properties"]
    override = schema_of("modelversion.yaml")["properties"]["spec"]["properties"]
    # Fields merged one by one have no defaults in the override: an API-server default there
    # would replace the Model's value even when the user set nothing.
    assert _without_defaults(model["evaluation"]) == {
        **_without_defaults(override["evaluation"]),
        "required": ["dataset"],
    }
    merged_one_by_one = override["evaluation"]["properties"]
    assert "default" not in merged_one_by_one["timeoutSeconds"]
    assert '"default":' not in json.dumps(merged_one_by_one["dataset"])
    # The canary override has no defaults (they would mask the Model's values in the merge).
    assert _without_defaults(model["canary"]) == _without_defaults(override["canary"])
    assert '"default":' not in json.dumps(override["canary"]["properties"]["analysis"])
    assert model["evaluation"]["required"] == ["dataset"]
    assert "required" not in override["evaluation"]


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        skip = {"default", "description"}
        return {k: _without_defaults(v) for k, v in node.items() if k not in skip}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def test_gate_metric_enum_matches_core_metric_table() -> None:
    from modelrollout.core import gates

    gate = schema_of("model.yaml")["properties"]["spec"]["properties"]["evaluation"]
    metric = gate["properties"]["gates"]["properties"]["metrics"]["items"]["properties"]["metric"]
    assert set(metric["enum"]) == set(gates.KNOWN_METRICS)
