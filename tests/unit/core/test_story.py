"""The state machine driven through whole stories in a pure simulated world, plus properties.

The world applies each decision's actions the way Kubernetes would (servers become
ready one tick later, Jobs finish one tick later with a scripted accuracy), so the
stories check what the operator does end to end without any I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelrollout.core import decisions as d
from modelrollout.core import spec as s
from modelrollout.core.spec import IN_FLIGHT, REJECTED, Phase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = s.ModelSpec(
    name="iris",
    namespace="ns",
    uid="m",
    replicas=2,
    evaluation={
        "dataset": {"uri": "sklearn://iris"},
        "gates": {"metrics": [{"metric": "accuracy", "min": 0.8, "maxRegression": 0.0}]},
    },
    keep_previous_seconds=20,
)


@dataclass
class Child:
    server: d.ServerState = field(default_factory=d.ServerState)
    job: d.JobState = field(default_factory=d.JobState)


@dataclass
class World:
    accuracy: dict[int, float]
    now: datetime = T0
    stable: int | None = None
    promoted_at: datetime | None = None
    status: dict[int, dict[str, Any]] = field(default_factory=dict)
    children: dict[int, Child] = field(default_factory=dict)
    annotations: dict[int, dict[str, str]] = field(default_factory=dict)

    def add(self, n: int) -> None:
        self.status[n] = {}
        self.children[n] = Child()

    def observe(self, n: int) -> d.Observed:
        siblings = tuple(
            d.Sibling(
                f"iris-v{m}",
                m,
                st_.get("phase", ""),
                revivable=st_.get("phase") == "Superseded" and not st_.get("promotedAt"),
            )
            for m, st_ in self.status.items()
        )
        art = s.Artifact(uri=f"file:///m/{n}.skops", sha256="b" * 64)
        spec = s.VersionSpec(f"iris-v{n}", "ns", f"u{n}", "iris", n, art)
        model = d.ModelState(MODEL, self.stable, self.promoted_at)
        child = self.children[n]
        return d.Observed(
            spec,
            self.now,
            self.status[n],
            self.annotations.get(n, {}),
            model,
            siblings,
            child.server,
            child.job,
        )

    def step(self, n: int) -> d.Decision:
        decision = d.decide(self.observe(n))
        for action in decision.actions:
            self.apply(n, action, decision.phase)
        new = {**self.status[n], **decision.status}
        if new.get("phase") != decision.phase.value:
            new["phaseSince"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        new.update(phase=decision.phase.value, reason=decision.reason, message=decision.message)
        self.status[n] = {k: v for k, v in new.items() if v is not None}
        return decision

    def apply(self, n: int, action: d.Action, phase: Phase) -> None:
        child = self.children[n]
        if action == d.Action.ENSURE_SERVER:
            want = MODEL.replicas if phase in (Phase.PROMOTING, Phase.STABLE) else 1
            child.server = d.ServerState(True, want, child.server.ready_replicas)
        elif action == d.Action.SCALE_SERVER_DOWN:
            child.server = d.ServerState(True, 0, 0)
        elif action == d.Action.DELETE_SERVER:
            child.server = d.ServerState()
        elif action == d.Action.ENSURE_JOB and not child.job.exists:
            child.job = d.JobState(exists=True)
        elif action == d.Action.DELETE_JOB:
            child.job = d.JobState()
        elif action == d.Action.SWITCH_STABLE:
            self.stable, self.promoted_at = n, self.now

    def tick(self) -> None:
        """Kubernetes catches up: pods become ready, Jobs complete."""
        self.now += timedelta(seconds=5)
        base = self.stable
        for n, child in self.children.items():
            server = child.server
            child.server = replace(server, ready_replicas=server.replicas)
            if child.job.exists and not (child.job.succeeded or child.job.failed):
                baseline = None if base is None else {"accuracy": self.accuracy[base]}
                msg = {
                    "form": "compact",
                    "rows": 45,
                    "candidate": {"accuracy": self.accuracy[n]},
                    "baseline": baseline,
                }
                child.job = d.JobState(True, True, False, json.dumps(msg))

    def run(self, ticks: int = 40) -> None:
        for _ in range(ticks):
            for n in sorted(self.status):
                self.step(n)
            self.tick()

    def phase(self, n: int) -> str:
        return str(self.status[n].get("phase"))


def test_v1_stable_better_v2_promoted_worse_v3_rejected() -> None:
    world = World(accuracy={1: 0.90, 2: 0.96, 3: 0.85})
    world.add(1)
    world.run()
    assert (world.phase(1), world.stable) == ("Stable", 1)
    world.add(2)
    world.run()
    assert (world.phase(1), world.phase(2), world.stable) == ("Superseded", "Stable", 2)
    assert world.children[1].server.replicas == 0
    assert world.status[2]["evaluation"]["metrics"]["accuracy"]["baseline"] == 0.90
    world.add(3)
    world.run()
    assert (world.phase(3), world.stable) == ("EvaluationFailed", 2)
    assert not world.children[3].server.exists
    assert world.children[2].server.ready_replicas == MODEL.replicas


def test_version_arriving_mid_flight_supersedes_and_wins() -> None:
    world = World(accuracy={1: 0.9, 2: 0.95, 3: 0.97})
    world.add(1)
    world.run()
    world.add(2)
    world.step(2)  # v2 deploying
    world.add(3)
    world.run()
    assert (world.phase(2), world.phase(3), world.stable) == ("Superseded", "Stable", 3)
    assert world.status[2]["supersededBy"] == 3


def test_deciding_twice_on_the_same_world_is_idempotent() -> None:
    """A restarted operator that sees the same state repeats the same (idempotent) decision."""
    world = World(accuracy={1: 0.9})
    world.add(1)
    for _ in range(6):
        first = d.decide(world.observe(1))
        assert d.decide(world.observe(1)) == first
        world.step(1)
        world.tick()


PHASES = st.sampled_from([*list(Phase), None])
SERVERS = st.builds(
    d.ServerState,
    exists=st.booleans(),
    replicas=st.integers(0, 3),
    ready_replicas=st.integers(0, 3),
    failure=st.sampled_from([None, "crash"]),
)
JOBS = st.builds(
    d.JobState,
    exists=st.booleans(),
    succeeded=st.booleans(),
    failed=st.booleans(),
    message=st.sampled_from([None, "x", '{"form": "compact", "rows": 3, "candidate": {}}']),
)
ANNOTATIONS = st.dictionaries(
    st.sampled_from(
        [s.ANNOTATION_ABORT, s.ANNOTATION_RETRY, s.ANNOTATION_PROMOTE, s.ANNOTATION_PAUSED]
    ),
    st.sampled_from(["", "true", "1", "2"]),
)


@settings(max_examples=500, deadline=None)
@given(
    case=st.fixed_dictionaries(
        {
            "phase": PHASES,
            "server": SERVERS,
            "job": JOBS,
            "annotations": ANNOTATIONS,
            "stable": st.sampled_from([None, 1, 2, 3]),
            "sibling": st.tuples(st.integers(1, 4), PHASES),
        }
    )
)
def test_safety_properties(case: dict[str, Any]) -> None:
    phase, server, job = case["phase"], case["server"], case["job"]
    sib_version, sib_phase = case["sibling"]
    status = {"phase": phase.value} if phase else {}
    art = s.Artifact(uri="file:///m.skops", sha256="c" * 64)
    obs = d.Observed(
        version=s.VersionSpec("iris-v2", "ns", "u", "iris", 2, art),
        now=T0,
        status=status,
        annotations=case["annotations"],
        model=d.ModelState(MODEL, case["stable"], T0),
        siblings=(d.Sibling("other", sib_version, sib_phase.value if sib_phase else ""),),
        server=server,
        job=job,
    )
    out = d.decide(obs)
    # Traffic only ever switches to a version whose every replica is ready.
    if d.Action.SWITCH_STABLE in out.actions:
        assert server.exists
        assert server.ready_replicas >= min(server.replicas, MODEL.replicas)
        assert out.phase == Phase.STABLE
    # A rejected version never starts a server or an evaluation.
    if out.phase in REJECTED:
        assert d.Action.ENSURE_SERVER not in out.actions
        assert d.Action.ENSURE_JOB not in out.actions
    # A new evaluation only starts against a ready candidate.
    if d.Action.ENSURE_JOB in out.actions:
        assert out.phase == Phase.EVALUATING
        assert server.ready_replicas >= 1 or job.exists
    # A phase change is always recorded as an Event; a paused version does not move.
    if out.phase != obs.phase or not phase:
        assert out.event is not None
    if out.paused:
        assert out.phase == obs.phase
        assert out.phase in IN_FLIGHT
        assert out.actions == ()
    assert d.decide(obs) == out


@settings(max_examples=60, deadline=None)
@example(accuracies=[0.7, 0.7, 0.7], arrivals=[3, 0, 0, 0])
@given(
    accuracies=st.lists(st.sampled_from([0.7, 0.85, 0.9, 0.95]), min_size=1, max_size=4),
    arrivals=st.lists(st.integers(0, 12), min_size=4, max_size=4),
)
def test_random_arrivals_keep_serving_invariants(
    accuracies: list[float], arrivals: list[int]
) -> None:
    """Whatever arrives when: traffic only ever points at a ready Stable version, at most one
    version is in flight at the end of each pass, and rejected versions leave no server."""
    world = World(accuracy={n + 1: acc for n, acc in enumerate(accuracies)})
    for tick in range(60):
        for n in range(1, len(accuracies) + 1):
            if arrivals[n - 1] == tick:
                world.add(n)
        for n in sorted(world.status):
            world.step(n)
        if world.stable is not None:
            assert world.phase(world.stable) == "Stable"
            assert world.children[world.stable].server.replicas == MODEL.replicas
        moving = [n for n in world.status if Phase(world.phase(n)) in IN_FLIGHT]
        assert len(moving) <= 1 or all(Phase(world.phase(n)) == Phase.DEPLOYING for n in moving)
        world.tick()
    for n in world.status:
        if world.phase(n) in {p.value for p in REJECTED}:
            assert not world.children[n].server.exists
    passing = [n for n, acc in world.accuracy.items() if acc >= 0.8]
    if passing:
        assert world.stable is not None
