"""Canary e2e helpers: a v2 that rejects inputs v1 accepts, a bounded load generator through
the stable Service, and a scrape of one version's pods."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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


SLOW_TREES = 400
"""Trees of the slow v2: ~60-80 ms per single-row call on the shared 2-core machine against
~0.2 ms for v1's logistic regression, an 8 MB artifact (docs/notes/canary-e2e.md)."""
TREE_TYPES = ["sklearn.tree._tree.Tree"]
"""The one type a tree ensemble needs trusted beyond skops' defaults."""


def train_slow_artifact(directory: Path) -> Artifact:
    """A genuinely better iris classifier (~0.98 vs v1's ~0.82 on the hold-out) that is slow
    by nature: every call walks ``SLOW_TREES`` extremely randomised trees."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    model = ExtraTreesClassifier(n_estimators=SLOW_TREES, random_state=0)
    model.fit(x[train], y[train])
    path = directory / "iris-trees.skops"
    sio.dump(model, path)
    return Artifact(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.9, 3.1, 5.4, 2.1], [5.7, 2.8, 4.1, 1.3]]
GLITCH = [5.0, 3.4, 1.5, -0.1]
"""A row with a glitched (negative) petal width: v1 answers it, the log model cannot."""
TELLTALE = [6.7, 3.1, 4.7, 1.5]
"""A hold-out versicolor that v1 (C=0.05) calls class 2 and the slow trees class 1: its answer
names the version that gave it."""
SHIFTED = [[8.9, 2.0, 4.0, 1.9], [9.3, 2.7, 2.8, 2.0], [9.9, 5.0, 3.8, 0.8], [8.9, 4.5, 1.9, 3.0]]
"""Flowers with sepals longer than any iris row (max 7.9 cm): the evaluation set has none.
v1 (C=0.05) extrapolates them to class 2, the sharper v2 (C=10) to class 1."""


@dataclass
class Sent:
    at: float
    """time.time() when the request was sent."""
    glitched: bool
    ok: bool
    detail: str = ""
    seconds: float = 0.0
    """Until the answer was read."""
    predictions: Any = None
    shifted: bool = False
    row: list[float] = field(default_factory=list)

    @property
    def label(self) -> Any:
        """The predicted class of the one row sent (the server's ``predictions`` key)."""
        return self.predictions[0]["predictions"] if self.predictions else None


@dataclass
class Load:
    """Predict calls through the stable Service, one new connection each (the node's proxy
    balances per connection), at most ``limit`` of them, every ``glitch_every``-th glitched.
    With ``shifted_share`` rows are drawn at random (seeded: round-robin must not sort rows by
    pod), that share of them from ``SHIFTED``."""

    host: str
    glitch_every: int = 0
    shifted_share: float = 0.0
    rows: list[list[float]] = field(default_factory=lambda: list(ROWS))
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
        pick = random.Random(0)
        for i in range(self.limit):
            if self._stop.is_set():
                return
            glitched = bool(self.glitch_every) and i % self.glitch_every == 0
            if self.shifted_share:
                shifted = pick.random() < self.shifted_share
                row = pick.choice(SHIFTED if shifted else ROWS)
                self.sent.append(self.call(row, False, shifted))
            else:
                row = GLITCH if glitched else self.rows[i % len(self.rows)]
                self.sent.append(self.call(row, glitched))
            time.sleep(self.pause)

    def call(self, row: list[float], glitched: bool, shifted: bool = False) -> Sent:
        at = time.time()
        request = urllib.request.Request(
            f"http://{self.host}:8501/v1/models/iris:predict",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                body = json.loads(answer.read())
                ok = answer.status == 200 and "predictions" in body
                seconds = time.time() - at
                predictions = body.get("predictions")
                return Sent(at, glitched, ok, "", seconds, predictions, shifted, row)
        except urllib.error.HTTPError as err:
            return Sent(at, glitched, False, f"{err.code} {err.read()[:80]!r}", row=row)
        except OSError as err:
            return Sent(at, glitched, False, f"connection: {err}", row=row)


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


def rollback_timing(report: dict[str, Any], by_canary: list[Sent]) -> dict[str, Any]:
    """How long the canary still answered after the end of the interval that failed it: the
    bound on the time to 100 % stable that docs/notes/canary-*.md report."""
    end = datetime.fromisoformat(report["intervalEnd"]).timestamp()
    last = max(s.at for s in by_canary)
    return {
        "metric": report["metric"],
        "value": report["value"],
        "threshold": report["threshold"],
        "failingIntervalEnd": report["intervalEnd"],
        "rollbackDecidedAt": report["at"],
        "lastCanaryAnswerAfterIntervalEndSeconds": round(last - end, 2),
    }
