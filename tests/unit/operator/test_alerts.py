"""Alert delivery: retried with back-off against a real local HTTP receiver, deduplicated,
and never blocking the caller (a full queue drops and counts)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from modelrollout.core.alerts import Format, Notification, Retry, Transition, Webhook
from modelrollout.operator.alerts import Alerter, AlertSender, AlertSettings
from tests.webhooks import Receiver

AT = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)
FAILED = Transition(
    namespace="ml",
    model="iris",
    name="iris-v3",
    uid="u-3",
    version=3,
    attempt=1,
    previous_phase="Evaluating",
    phase="EvaluationFailed",
    reason="GatesFailed",
    message="accuracy fell by 0.1556",
    at=AT,
    status={
        "evaluation": {"passed": False, "rows": 45, "metrics": {}, "gates": []},
        "headline": "accuracy=0.8222 (-0.1556)",
    },
    stable_version=2,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(fail=2).start()
    yield rec
    rec.stop()


def wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def note(url: str, key: str = "k") -> Notification:
    return Notification("ops", url, b"{}", (key,))


def test_a_receiver_that_fails_twice_gets_the_alert_once_with_the_numbers(
    receiver: Receiver,
) -> None:
    counts: list[str] = []
    sleeps: list[float] = []
    settings = AlertSettings(workers=1, retry=Retry(attempts=5, base_seconds=0.01))
    sender = AlertSender(settings, counts.append, sleep=sleeps.append, jitter=lambda: 1.0)
    sender.start()
    alerter = Alerter(sender.submit)
    hooks = [
        Webhook("ops", receiver.url + "/ops"),
        Webhook("chat", receiver.url + "/chat", Format.SLACK),
    ]
    try:
        assert len(alerter.notify(FAILED, hooks)) == 2
        assert alerter.notify(FAILED, hooks) == []  # the same transition decided again
        wait(lambda: counts.count("sent") == 2)
    finally:
        sender.stop()
    assert receiver.failed() == 2
    accepted = receiver.accepted()
    assert len(accepted) == 2
    (generic,) = [b for b in accepted if "event" in b]
    assert generic["event"] == "EvaluationFailed"
    assert generic["evaluation"]["headline"] == "accuracy=0.8222 (-0.1556)"
    (slack,) = [b for b in accepted if "blocks" in b]
    assert "accuracy=0.8222 (-0.1556) on 45 rows" in slack["text"]
    assert sleeps == pytest.approx([0.01, 0.02])  # back-off after each failure
    assert counts == ["sent", "sent"]


def test_retries_are_bounded_and_the_failure_is_counted() -> None:
    posts: list[float] = []
    sleeps: list[float] = []
    counts: list[str] = []

    def refuse(_note: Notification, timeout: float) -> None:
        posts.append(timeout)
        raise ConnectionRefusedError("nobody listens")

    retry = Retry(attempts=4, base_seconds=0.5, max_seconds=30)
    sender = AlertSender(
        AlertSettings(retry=retry, timeout_seconds=2.0),
        counts.append,
        post=refuse,
        sleep=sleeps.append,
        jitter=lambda: 0.5,
    )
    assert sender.deliver(note("http://127.0.0.1:9/")) is False
    assert posts == [2.0] * 4
    assert sleeps == pytest.approx([0.375, 0.75, 1.5])  # no wait after the last attempt
    assert counts == ["failed"]


def test_a_stuck_receiver_never_blocks_submit_and_overflow_is_dropped() -> None:
    slow = Receiver(hold=True).start()
    counts: list[str] = []
    settings = AlertSettings(queue_size=2, workers=1, timeout_seconds=5.0)
    sender = AlertSender(settings, counts.append).start()
    try:
        # The receiver answers nothing yet: every submit returns all the same.
        accepted = [sender.submit(note(slow.url + "/hook", str(i))) for i in range(6)]
        assert slow.posts == []  # (recorded once answered)
        # One in the worker's hands at most, two queued: the rest dropped without waiting.
        assert accepted.count(False) >= 3
        assert counts.count("dropped") == accepted.count(False)
        slow.release.set()
        wait(lambda: counts.count("sent") == accepted.count(True))
    finally:
        sender.stop(timeout=10)
        slow.stop()


def test_an_unreachable_receiver_is_retried_in_the_background() -> None:
    counts: list[str] = []
    sleeps: list[float] = []
    settings = AlertSettings(retry=Retry(attempts=3, base_seconds=0.01), timeout_seconds=0.5)
    sender = AlertSender(settings, counts.append, sleep=sleeps.append).start()
    try:
        # Port 9 (discard) on loopback: nothing listens, the connection is refused.
        assert sender.submit(note("http://127.0.0.1:9/hook")) is True
        wait(lambda: counts == ["failed"])
    finally:
        sender.stop()
    assert len(sleeps) == 2


def test_dedup_memory_is_bounded() -> None:
    submitted: list[Notification] = []
    alerter = Alerter(lambda n: submitted.append(n) is None, remembered=2)
    hook = [Webhook("ops", "http://127.0.0.1:9/")]
    for attempt in (1, 2, 3):
        alerter.notify(_attempt(attempt), hook)
    alerter.notify(_attempt(1), hook)  # forgotten (oldest of three): sent again
    alerter.notify(_attempt(3), hook)  # remembered: not sent again
    assert [n.key[1] for n in submitted] == [1, 2, 3, 1]


def _attempt(n: int) -> Transition:
    return Transition(**{**FAILED.__dict__, "attempt": n})
