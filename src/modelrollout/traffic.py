"""A small, bounded load generator for a model's Service: what ``modelrollout demo`` sends
while a canary runs, so its analysis has real requests to judge.

One REST predict call per new connection (a Service proxy balances per connection), one
row each, at most ``limit`` calls; every call is recorded with what it sent and what came
back, so a caller can tell which calls failed and when.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Row = list[float]
Picker = Callable[[int], tuple[Row, str]]
"""Call number → (row to send, a tag the caller chooses, e.g. "glitched")."""


@dataclass(frozen=True)
class Call:
    """One predict call through the Service."""

    at: float
    """time.time() when it was sent."""
    row: Row
    tag: str
    ok: bool
    detail: str = ""
    """The HTTP code and the start of the error body, or the connection error."""
    label: Any = None
    """The predicted class (``predictions`` of the first answer), when answered."""
    seconds: float = 0.0


def cycle(rows: Sequence[Row], odd: Row | None = None, every: int = 0) -> Picker:
    """Rows in turn, and ``odd`` (tagged "odd") as every ``every``-th call when given."""

    def pick(i: int) -> tuple[Row, str]:
        if odd is not None and every and i % every == 0:
            return list(odd), "odd"
        return list(rows[i % len(rows)]), ""

    return pick


@dataclass
class Traffic:
    """Predict calls to ``http://host:port/v1/models/<model>:predict`` on a thread."""

    host: str
    model: str
    pick: Picker
    port: int = 8501
    pause: float = 0.03
    """Seconds between two calls."""
    limit: int = 20_000
    """Calls at most (the thread ends by itself)."""
    timeout: float = 5.0
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True, name="traffic")
        self._thread.start()
        return self

    def stop(self) -> list[Call]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * 2)
        return list(self.calls)

    def _run(self) -> None:
        for i in range(self.limit):
            if self._stop.is_set():
                return
            row, tag = self.pick(i)
            self.calls.append(self.call(row, tag))
            time.sleep(self.pause)

    def call(self, row: Row, tag: str = "") -> Call:
        at = time.time()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}/v1/models/{self.model}:predict",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return Call(at, row, tag, False, f"{err.code} {err.read()[:80]!r}")
        except (OSError, ValueError) as err:
            return Call(at, row, tag, False, f"connection: {err}")
        predictions = body.get("predictions") if isinstance(body, dict) else None
        label = _label(predictions)
        return Call(at, row, tag, predictions is not None, "", label, time.time() - at)


def _label(predictions: Any) -> Any:
    """The class of the first answer: a bare value, or ``{"predictions": class, ...}``."""
    if not predictions:
        return None
    first = predictions[0]
    return first.get("predictions") if isinstance(first, dict) else first


def last_answer_after(interval_end: str, calls: Sequence[Call]) -> float | None:
    """Seconds from an interval's end (ISO 8601) to the send time of the last of ``calls``
    (those a canary answered): how long traffic still reached it after that interval.
    None without calls."""
    if not calls:
        return None
    end = datetime.fromisoformat(interval_end.replace("Z", "+00:00")).timestamp()
    return max(c.at for c in calls) - end
