"""The drift test's own checks catch what they are meant to catch (no cluster needed)."""

from __future__ import annotations

from typing import Any

from tests.gitops.gitops_world import copied_metadata, merge_patch, spec_writers, tracked


def parent() -> dict[str, Any]:
    return tracked({"kind": "ModelVersion", "metadata": {"name": "iris-v1"}}, "ns")


def test_a_child_with_the_tracking_annotation_or_a_parent_label_is_reported() -> None:
    child = {
        "metadata": {
            "name": "iris-v1",
            "labels": {"modelrollout.io/model": "iris", "team": "ml-platform"},
            "annotations": {"argocd.argoproj.io/tracking-id": "x"},
        }
    }
    assert copied_metadata(child, [parent()]) == [
        "iris-v1: labels team",
        "iris-v1: annotations argocd.argoproj.io/tracking-id",
    ]
    own = {"metadata": {"name": "iris-v1", "labels": {"modelrollout.io/model": "iris"}}}
    assert copied_metadata(own, [parent()]) == []


def test_merge_patch_sets_changes_and_nulls_removals() -> None:
    before = {"metadata": {"annotations": {"a": "1", "b": "2"}, "name": "x"}}
    after = {"metadata": {"annotations": {"a": "1", "c": "3"}, "name": "x"}}
    assert merge_patch(before, after) == {"metadata": {"annotations": {"b": None, "c": "3"}}}
    assert merge_patch(before, before) == {}


def test_spec_writers_names_every_manager_of_a_spec_field() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {"manager": "argocd-controller", "fieldsV1": {"f:spec": {}}},
                {"manager": "operator", "fieldsV1": {"f:status": {}}},
                {"manager": "intruder", "fieldsV1": {"f:spec": {"f:version": {}}}},
            ]
        }
    }
    assert spec_writers(obj) == {"argocd-controller", "intruder"}
