"""Canary e2e helpers: a v2 that rejects inputs v1 accepts, a bounded load generator through
the stable Service, and a scrape of one version's pods."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import Kubectl
from tests.e2e.rollout_world import Artifact

from modelrollout.core import analysis


def train_log_artifact(directory: Path) -> Artifact:
    """An iris model with a log transform in front: better than v1 on the (positive) iris
    rows, but a negative feature becomes NaN and the server answers INVALID_ARGUMENT, where
    v1 (scaling only) answers. A real kind of regression a canary exists to catch."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    x, y = load_iris(return_X_y=True)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    model = make_pipeline(
        FunctionTransformer(np.log), StandardScaler(), LogisticRegression(C=10.0, max_iter=1000)
    )
    model.fit(x[train], y[train])
    path = directory / "iris-log.skops"
    sio.dump(model, path)
    return Artifact(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.9, 3.1, 5.4, 2.1], [5.7, 2.8, 4.1, 1.3]]
GLITCH = [5.0, 3.4, 1.5, -0.1]
"""A row with a glitched (negative) petal width: v1 answers it, the log model cannot."""


@dataclass
class Sent:
    at: float
    """time.time() when the request was sent."""
    glitched: bool
    ok: bool
    detail: str = ""


@dataclass
class Load:
    """Predict calls through the stable Service, one new connection each (the node's proxy
    balances per connection), at most ``limit`` of them, every ``glitch_every``-th glitched."""

    host: str
    glitch_every: int = 0
    pause: float = 0.03
    limit: int = 20_000
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sent]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return list(self.sent)

    def _run(self) -> None:
        for i in range(self.limit):
            if self._stop.is_set():
                return
            glitched = bool(self.glitch_every) and i % self.glitch_every == 0
            self.sent.append(self.call(GLITCH if glitched else ROWS[i % len(ROWS)], glitched))
            time.sleep(self.pause)

    def call(self, row: list[float], glitched: bool) -> Sent:
        at = time.time()
        request = urllib.request.Request(
            f"http://{self.host}:8501/v1/models/iris:predict",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                ok = answer.status == 200 and "predictions" in json.loads(answer.read())
                return Sent(at, glitched, ok)
        except urllib.error.HTTPError as err:
            return Sent(at, glitched, False, f"{err.code} {err.read()[:80]!r}")
        except OSError as err:
            return Sent(at, glitched, False, f"connection: {err}")


def version_errors(kubectl: Kubectl, ns: str, version: int) -> tuple[int, int]:
    """(model calls, of which errors) answered by one version's pods since they started."""
    pods = json.loads(
        kubectl(
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            f"modelrollout.io/model=iris,modelrollout.io/role=server,modelrollout.io/version={version}",
            "-o",
            "json",
        ).stdout
    )["items"]
    pairs = []
    for pod in pods:
        url = f"http://{pod['status']['podIP']}:8501/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            pairs.append((None, analysis.parse(answer.read().decode())))
    win = analysis.version_window(pairs)
    return win.requests, win.errors
