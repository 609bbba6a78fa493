"""Canary e2e helpers: a v2 that rejects inputs v1 accepts, a bounded load generator through
the stable Service, and a scrape of one version's pods."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import Kubectl
from tests.e2e.rollout_world import Artifact

from modelrollout.core import analysis
from modelrollout.traffic import Call, Traffic, cycle, last_answer_after


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


SLOW_TRAINING_ROWS = 40_000
"""Training rows of the slow v2. A brute-force neighbour search scans all of them on every
call, in scikit-learn and in the ONNX graph the server compiles it into alike: ~45 ms per
one-row call compiled (v1: ~0.02 ms), a 1.6 MB artifact (docs/notes/canary-e2e.md). A tree
ensemble is no good here: compiled, 1000 trees answer in 0.02 ms."""


def train_slow_artifact(directory: Path) -> Artifact:
    """A genuinely better iris classifier (~0.96 vs v1's ~0.82 on the hold-out) that is slow
    by nature: 15 nearest neighbours by brute force over ``SLOW_TRAINING_ROWS`` rows (the
    training rows, each repeated with 0.05 cm of measurement noise)."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    noise = np.random.default_rng(0)
    picked = noise.choice(train, SLOW_TRAINING_ROWS)
    rows = x[picked] + noise.normal(0.0, 0.05, (SLOW_TRAINING_ROWS, x.shape[1]))
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=15, algorithm="brute"))
    model.fit(rows, y[picked])
    path = directory / "iris-neighbours.skops"
    sio.dump(model, path)
    return Artifact(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.9, 3.1, 5.4, 2.1], [5.7, 2.8, 4.1, 1.3]]
GLITCH = [5.0, 3.4, 1.5, -0.1]
"""A row with a glitched (negative) petal width: v1 answers it, the log model cannot."""
TELLTALE = [6.7, 3.1, 4.7, 1.5]
"""A hold-out versicolor that v1 (C=0.05) calls class 2 and the slow neighbours class 1: its
answer names the version that gave it."""
SHIFTED = [[8.9, 2.0, 4.0, 1.9], [9.3, 2.7, 2.8, 2.0], [9.9, 5.0, 3.8, 0.8], [8.9, 4.5, 1.9, 3.0]]
"""Flowers with sepals longer than any iris row (max 7.9 cm): the evaluation set has none.
v1 (C=0.05) extrapolates them to class 2, the sharper v2 (C=10) to class 1."""


def load(host: str, glitch_every: int = 0, rows: list[list[float]] | None = None) -> Traffic:
    """Predict calls through the stable Service (``modelrollout.traffic``, as the demo sends):
    ``rows`` (default ``ROWS``) in turn, every ``glitch_every``-th call ``GLITCH`` (tag "odd")."""
    pick = cycle(rows or ROWS, GLITCH, glitch_every)
    return Traffic(host, "iris", pick, pause=0.03).start()


def shifted_load(host: str, share: float = 0.5) -> Traffic:
    """Rows drawn at random (seeded: the round-robin proxy must not sort rows by pod), that
    share of them from ``SHIFTED`` (tag "shifted")."""
    draw = random.Random(0)

    def pick(_: int) -> tuple[list[float], str]:
        shifted = draw.random() < share
        return list(draw.choice(SHIFTED if shifted else ROWS)), "shifted" if shifted else ""

    return Traffic(host, "iris", pick, pause=0.03).start()


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


def rollback_timing(
    report: dict[str, Any], telling: list[Call], by_canary: list[Call]
) -> dict[str, Any]:
    """When traffic was 100 % stable after the end of the interval that failed the canary:
    between the last of the ``telling`` calls (those whose answer names the version) that the
    canary answered (``by_canary``) and the next one, which the stable version answered.
    Seconds relative to the interval end; docs/notes/canary-*.md report them."""
    last = last_answer_after(report["intervalEnd"], by_canary)
    assert last is not None
    later = [c for c in telling if c.at > max(c.at for c in by_canary)]
    assert later, "no call after the canary's last answer"
    return {
        "metric": report["metric"],
        "value": report["value"],
        "threshold": report["threshold"],
        "stable": report.get("stable"),
        "failingIntervalEnd": report["intervalEnd"],
        "rollbackDecidedAt": report["at"],
        "lastCanaryAnswerAfterIntervalEndSeconds": round(last, 2),
        "nextStableAnswerAfterIntervalEndSeconds": round(
            last_answer_after(report["intervalEnd"], later[:1]) or 0.0, 2
        ),
    }


class SwitchableLoad:
    """The shared load generator through the stable Service: normal rows until ``glitch`` is
    set, then every 5th call a glitched row (tag "odd") that v1 answers and v2 refuses."""

    def __init__(self, host: str) -> None:
        self.glitch = threading.Event()
        self.traffic = Traffic(host, "iris", self.pick, pause=0.03).start()

    def pick(self, i: int) -> tuple[list[float], str]:
        return cycle(ROWS, GLITCH, 5 if self.glitch.is_set() else 0)(i)
