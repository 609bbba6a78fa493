"""The Model's summary of its versions."""

from __future__ import annotations

from modelrollout.core.conditions import summarize
from modelrollout.core.state import Sibling


def test_a_baking_stable_version_keeps_the_model_progressing() -> None:
    baking = summarize(
        2, [Sibling("iris-v1", 1, "Stable"), Sibling("iris-v2", 2, "Stable", baking=True)]
    )
    assert (baking.phase, baking.progressing, baking.canary_version) == ("Progressing", True, None)
    assert baking.message == "version 2 serves; its bake window is running"
    baked = summarize(2, [Sibling("iris-v1", 1, "Stable"), Sibling("iris-v2", 2, "Stable")])
    assert (baked.phase, baked.progressing) == ("Ready", False)


def test_a_rejected_newer_version_shows_even_during_a_bake() -> None:
    out = summarize(
        2, [Sibling("iris-v2", 2, "Stable", baking=True), Sibling("iris-v3", 3, "EvaluationFailed")]
    )
    assert (out.phase, out.degraded) == ("Degraded", True)
    assert out.message == "version 3 is EvaluationFailed; version 2 still serves"
