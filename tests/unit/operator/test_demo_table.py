"""The demo's live table: one row per version, in version order, with the headline metric."""

from __future__ import annotations

from modelrollout import demo


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


def test_story_expects_a_rejection_last() -> None:
    assert [step[2] for step in demo.STORY] == ["Stable", "Stable", "EvaluationFailed"]
