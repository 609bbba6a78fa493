"""Deliver alert webhooks without ever holding up a rollout.

``Alerter.notify`` only enqueues (bounded; a full queue drops and counts); worker threads
POST with a timeout and retry with jittered exponential back-off. A transition is sent once
per webhook: the keys of recent notifications are remembered, so a pass that decides the same
transition again (its status write was lost) does not alert twice.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelrollout.core.alerts import (
    Notification,
    Retry,
    Transition,
    Webhook,
    backoff,
    notifications,
)

log = logging.getLogger(__name__)

Post = Callable[[Notification, float], None]
"""POST one notification with a timeout in seconds; raises ``OSError`` when not delivered."""
Count = Callable[[str], None]
"""Told every outcome: ``sent``, ``failed`` (retries exhausted), ``dropped`` (queue full)."""


@dataclass(frozen=True)
class AlertSettings:
    """How the operator delivers alert webhooks."""

    queue_size: int = 256
    """Notifications waiting at most; more are dropped (and counted) rather than blocking."""
    workers: int = 2
    """Threads posting in parallel, so one slow receiver does not hold up the others' alerts."""
    timeout_seconds: float = 5.0
    """Deadline of one POST."""
    retry: Retry = field(default_factory=Retry)
    """Attempts and back-off of one notification."""
    remembered: int = 4096
    """Notification keys kept for deduplication (oldest forgotten first)."""


def http_post(note: Notification, timeout: float) -> None:
    """POST the body; any answer other than 2xx is a failure (``urllib.error.HTTPError``)."""
    request = urllib.request.Request(
        note.url,
        data=note.body,
        method="POST",
        headers={"Content-Type": note.content_type, "User-Agent": "modelrollout-operator"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read()


class AlertSender:
    """A bounded queue drained by daemon threads; ``submit`` never waits."""

    def __init__(
        self,
        settings: AlertSettings,
        count: Count,
        post: Post = http_post,
        sleep: Callable[[float], Any] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._count = count
        self._post = post
        self._sleep = sleep
        self._jitter = jitter
        self._queue: queue.Queue[Notification | None] = queue.Queue(settings.queue_size)
        self._threads: list[threading.Thread] = []

    def start(self) -> AlertSender:
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._drain, name=f"alerts-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Let the workers finish what they hold, then end them (pending ones are lost)."""
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout)

    def submit(self, note: Notification) -> bool:
        """Queue one notification; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            log.warning("alert queue full: dropped %s for webhook %s", note.key, note.webhook)
            self._count("dropped")
            return False
        return True

    def _drain(self) -> None:
        while (note := self._queue.get()) is not None:
            self.deliver(note)

    def deliver(self, note: Notification) -> bool:
        """POST until it is accepted or the attempts are used up; True when delivered."""
        retry = self.settings.retry
        for attempt in range(1, retry.attempts + 1):
            try:
                self._post(note, self.settings.timeout_seconds)
            except (OSError, ValueError) as err:  # URLError/HTTPError/timeouts are OSErrors
                log.info(
                    "alert %s to %s: attempt %d failed: %s", note.key, note.webhook, attempt, err
                )
                if attempt < retry.attempts:
                    self._sleep(backoff(retry, attempt, self._jitter()))
                continue
            self._count("sent")
            return True
        log.warning(
            "alert %s to webhook %s not delivered after %d attempts",
            note.key,
            note.webhook,
            retry.attempts,
        )
        self._count("failed")
        return False


class Alerter:
    """Turns transitions into notifications, once each, and hands them to the sender."""

    def __init__(self, submit: Callable[[Notification], bool], remembered: int = 4096) -> None:
        self._submit = submit
        self._remembered = remembered
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()

    def notify(self, transition: Transition, webhooks: Sequence[Webhook]) -> list[Notification]:
        """Queue the notifications of this transition not queued before; returns them."""
        fresh = []
        for note in notifications(transition, webhooks):
            if note.key in self._seen:
                continue
            self._seen[note.key] = None
            if len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
            self._submit(note)
            fresh.append(note)
        return fresh
