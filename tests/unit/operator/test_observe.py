"""Reading children into observed state: readiness, fast failure on bad artifacts, Job results."""

from __future__ import annotations

from typing import Any

from modelrollout.operator import observe


def pod(**container: Any) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": "server", **container}]}}


DEPLOYMENT = {"spec": {"replicas": 2}, "status": {"readyReplicas": 1}}


def test_missing_deployment_is_an_absent_server() -> None:
    state = observe.server_state(None, [], 2)
    assert not state.exists


def test_ready_counts_come_from_the_deployment() -> None:
    state = observe.server_state(DEPLOYMENT, [pod(restartCount=0, state={"running": {}})], 2)
    assert (state.exists, state.replicas, state.ready_replicas, state.failure) == (
        True,
        2,
        1,
        None,
    )


def test_bad_input_exit_fails_at_once_with_the_termination_message() -> None:
    crashed = pod(
        restartCount=0,
        state={"terminated": {"exitCode": 4, "message": "sha256 mismatch for file:///m.skops"}},
    )
    state = observe.server_state(DEPLOYMENT, [crashed], 2)
    assert state.failure == "exit code 4: sha256 mismatch for file:///m.skops"


def test_other_crashes_fail_after_the_restart_limit() -> None:
    def crashing(restarts: int) -> dict[str, Any]:
        return pod(
            restartCount=restarts,
            state={"waiting": {"reason": "CrashLoopBackOff"}},
            lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
        )

    assert observe.server_state(DEPLOYMENT, [crashing(1)], 2).failure is None
    assert observe.server_state(DEPLOYMENT, [crashing(2)], 2).failure == "exit code 1: Error"


def test_image_that_can_never_run_fails_at_once() -> None:
    stuck = pod(state={"waiting": {"reason": "InvalidImageName", "message": "bad:ref:x"}})
    assert observe.server_state(DEPLOYMENT, [stuck], 2).failure == "InvalidImageName: bad:ref:x"
    pulling = pod(state={"waiting": {"reason": "ImagePullBackOff", "message": "retrying"}})
    assert observe.server_state(DEPLOYMENT, [pulling], 2).failure is None


def test_progress_deadline_is_a_failure() -> None:
    dep = {
        "spec": {"replicas": 1},
        "status": {
            "conditions": [
                {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "slow"}
            ]
        },
    }
    assert observe.server_state(dep, [], 2).failure == "slow"


def test_job_result_is_read_from_the_termination_message() -> None:
    job = {"status": {"succeeded": 1}}
    done = pod(state={"terminated": {"exitCode": 0, "message": '{"form": "compact"}\n'}})
    state = observe.job_state(job, [done])
    assert (state.succeeded, state.failed, state.message) == (True, False, '{"form": "compact"}')


def test_failed_job_without_pods_reports_its_condition() -> None:
    job = {
        "status": {
            "failed": 1,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "late",
                }
            ],
        }
    }
    state = observe.job_state(job, [])
    assert (state.failed, state.message) == (True, "DeadlineExceeded: late")
    assert not observe.job_state(None, []).exists


def test_model_state_parses_promotion_time() -> None:
    from modelrollout.core import spec

    body = {
        "metadata": {"name": "iris"},
        "status": {"stableVersion": 3, "promotedAt": "2026-01-01T00:00:10Z"},
    }
    state = observe.model_state(body, spec.model_from_body(body))
    assert state is not None
    assert state.stable_version == 3
    assert state.promoted_at is not None
    assert state.promoted_at.second == 10


def test_sibling_is_baking_only_while_its_stable_bake_has_no_result() -> None:
    def sib(status: dict[str, Any]) -> bool:
        body = {"metadata": {"name": "iris-v2"}, "spec": {"version": 2}, "status": status}
        return observe.sibling(body).baking

    running = {"startedAt": "2026-01-01T00:00:00Z", "result": None}
    assert sib({"phase": "Stable", "bake": running})
    assert not sib({"phase": "Stable", "bake": {**running, "result": "Passed"}})
    assert not sib({"phase": "RolledBack", "bake": running})
    assert not sib({"phase": "Stable"})
