"""spec.alerts on the real API server: defaults applied, bad URLs and names refused, and
exactly what ``core.alerts.webhooks_from_spec`` reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelrollout.core.alerts import Format, webhooks_from_spec
from tests.cluster.rollout import iris_model, try_apply
from tests.conftest import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]


def test_webhooks_are_stored_with_defaults(kubectl: Kubectl, namespace: str) -> None:
    hooks = [
        {"name": "ops", "url": "https://hooks.example.com/T0/B0"},
        {
            "name": "chat",
            "url": "http://127.0.0.1:9000/x",
            "format": "slack",
            "events": ["BakeFailed"],
        },
    ]
    assert try_apply(kubectl, namespace, iris_model(alerts={"webhooks": hooks})).returncode == 0
    out = kubectl("get", "model", "iris", "-n", namespace, "-o", "json").stdout
    ops, chat = webhooks_from_spec(json.loads(out)["spec"])
    assert (ops.format, ops.events) == (Format.JSON, {"EvaluationFailed", "Promoted", "RolledBack"})
    assert (chat.format, chat.events, chat.url) == (
        Format.SLACK,
        {"BakeFailed"},
        "http://127.0.0.1:9000/x",
    )


@pytest.mark.parametrize(
    ("hook", "words"),
    [
        ({"name": "a", "url": "ftp://example.com/x"}, "http:// or https://"),
        ({"name": "a", "url": "not a url at all"}, "http:// or https://"),
        ({"name": "a", "url": "http://example.com/", "format": "xml"}, "Unsupported value"),
        ({"name": "a", "url": "http://example.com/", "events": ["promoted"]}, "should match"),
        ({"name": "A_B", "url": "http://example.com/"}, "should match"),
    ],
)
def test_bad_webhooks_are_refused(
    kubectl: Kubectl, namespace: str, hook: dict[str, Any], words: str
) -> None:
    result = try_apply(kubectl, namespace, iris_model(alerts={"webhooks": [hook]}))
    assert result.returncode != 0
    assert words in result.stderr


def test_webhook_names_are_unique(kubectl: Kubectl, namespace: str) -> None:
    hooks = [{"name": "a", "url": "http://example.com/1"}, {"name": "a", "url": "http://x.io/"}]
    result = try_apply(kubectl, namespace, iris_model(alerts={"webhooks": hooks}))
    assert result.returncode != 0
    assert "Duplicate value" in result.stderr
