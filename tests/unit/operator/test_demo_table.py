"""The demo's live table, its story and its canary report (pure parts, no cluster)."""

from __future__ import annotations

import pytest

from modelrollout import demo
from modelrollout.traffic import Call


def test_rows_are_ordered_by_version_and_show_phase_and_metric() -> None:
    versions = [
        {
            "metadata": {"name": "iris-v10"},
            "spec": {"version": 10},
            "status": {"phase": "EvaluationFailed", "headline": "accuracy=0.8 (-0.1)"},
        },
        {"metadata": {"name": "iris-v2"}, "spec": {"version": 2}},
    ]
    rows = demo.rows(versions)
    assert [r[0] for r in rows] == ["iris-v2", "iris-v10"]
    assert rows[0][2] == "Pending"
    assert rows[1][2:4] == ("EvaluationFailed", "accuracy=0.8 (-0.1)")


def test_story_promotes_through_a_canary_then_rolls_back_then_rejects() -> None:
    assert [c.expected for c in demo.STORY] == [
        "Stable",
        "Stable",
        "RolledBack",
        "EvaluationFailed",
    ]
    assert [c.canary for c in demo.STORY] == [False, True, True, False]
    manifest = demo.version_manifest(3, "file:///m.skops", "0" * 64, demo.CANARY)
    assert manifest["spec"]["canary"]["steps"] == [{"weight": 50, "durationSeconds": 10}]
    assert "canary" not in demo.version_manifest(4, "file:///m.skops", "0" * 64)["spec"]


ROLLED_BACK = {
    "phase": "RolledBack",
    "reason": "CanaryFailed",
    "canary": {
        "history": [
            {
                "step": 0,
                "start": "2026-11-28T01:12:32+00:00",
                "end": "2026-11-28T01:12:37+00:00",
                "verdict": "Failed",
                "values": {
                    "requests": 52.0,
                    "stable.requests": 50.0,
                    "errorRate": 0.1923,
                    "stable.errorRate": 0.0,
                },
            }
        ],
        "rollback": {
            "metric": "errorRate",
            "value": 0.1923,
            "threshold": 0.02,
            "kind": "max",
            "stable": 0.0,
            "intervalStart": "2026-11-28T01:12:32+00:00",
            "intervalEnd": "2026-11-28T01:12:37+00:00",
        },
    },
}


def test_canary_report_names_interval_metric_value_threshold_and_time_to_stable() -> None:
    end = 1795828357.0  # 2026-11-28T01:12:37Z
    failed = [
        Call(end - 3, [5.0, 3.4, 1.5, -0.1], "odd", False, "400 ..."),
        Call(end + 0.25, [5.0, 3.4, 1.5, -0.1], "odd", False, "400 ..."),
    ]
    lines = demo.canary_lines("iris-v3", ROLLED_BACK, failed)
    assert lines[0] == "iris-v3: RolledBack (CanaryFailed)"
    assert "step 1 interval 01:12:32-01:12:37: Failed" in lines[1]
    assert "requests canary 52 / stable 50, errorRate 0.1923 (stable 0)" in lines[1]
    assert lines[2] == (
        "  rolled back on errorRate = 0.1923 > max threshold 0.02 (stable 0), "
        "interval 01:12:32-01:12:37"
    )
    assert "sent 0.25 s after the end of that interval" in lines[3]


def test_canary_report_of_a_promoted_version_has_no_rollback() -> None:
    status = {**ROLLED_BACK, "phase": "Stable", "reason": "Promoted"}
    status["canary"] = {"history": [{**ROLLED_BACK["canary"]["history"][0], "verdict": "Passed"}]}
    lines = demo.canary_lines("iris-v2", status, [])
    assert len(lines) == 2
    assert "Passed" in lines[1]
    assert not any("rolled back" in line for line in lines)


@pytest.mark.parametrize("value", [None, 0.0])
def test_numbers_print_a_dash_when_missing(value: float | None) -> None:
    assert demo._num(value) == ("-" if value is None else "0")
