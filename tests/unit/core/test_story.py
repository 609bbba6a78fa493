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

from modelrollout.core import bake
from modelrollout.core import decisions as d
from modelrollout.core import spec as s
from modelrollout.core.analysis import Window
from modelrollout.core.spec import IN_FLIGHT, REJECTED, Phase
from modelrollout.core.state import CanaryWindow

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
    model: s.ModelSpec = MODEL
    errors: dict[int, int] = field(default_factory=dict)
    """Errors per 100 live requests of each version (what a bake's intervals measure)."""

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
                baking=st_.get("phase") == "Stable" and bake.in_progress(st_),
            )
            for m, st_ in self.status.items()
        )
        art = s.Artifact(uri=f"file:///m/{n}.skops", sha256="b" * 64)
        spec = s.VersionSpec(f"iris-v{n}", "ns", f"u{n}", "iris", n, art)
        model = d.ModelState(self.model, self.stable, self.promoted_at)
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
            self.window(n),
        )

    def window(self, n: int) -> CanaryWindow | None:
        """A baking stable version's last tick of live traffic (the analyst's interval)."""
        if n != self.stable or not (self.status[n].get("bake") or {}).get("startedAt"):
            return None
        live = Window(requests=100, errors=self.errors.get(n, 0))
        return CanaryWindow(0, self.now - timedelta(seconds=5), self.now, Window(), live)

    def step(self, n: int) -> d.Decision:
        decision = d.decide(self.observe(n))
        for action in decision.actions:
            self.apply(n, action, decision)
        new = {**self.status[n], **decision.status}
        if new.get("phase") != decision.phase.value:
            new["phaseSince"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        new.update(phase=decision.phase.value, reason=decision.reason, message=decision.message)
        self.status[n] = {k: v for k, v in new.items() if v is not None}
        return decision

    def apply(self, n: int, action: d.Action, decision: d.Decision) -> None:
        child = self.children[n]
        if action == d.Action.ENSURE_SERVER:
            full = decision.phase in (Phase.PROMOTING, Phase.STABLE)
            want = self.model.replicas if full else 1
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
        elif action == d.Action.RESTORE_PREVIOUS_STABLE and self.stable == n:
            self.stable = int(decision.status["bake"]["previousVersion"])
            self.promoted_at = self.now

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


BAKING = replace(
    MODEL,
    bake_seconds=30,
    keep_previous_seconds=10,
    canary={"analysis": {"intervalSeconds": 5, "thresholds": {"errorRate": {"max": 0.05}}}},
)


def test_regression_in_the_bake_serves_the_previous_version_again() -> None:
    world = World(accuracy={1: 0.9, 2: 0.95}, model=BAKING, errors={2: 20})
    world.add(1)
    world.run()
    world.add(2)
    world.run()
    assert (world.phase(1), world.phase(2), world.stable) == ("Stable", "RolledBack", 1)
    assert world.status[2]["reason"] == "BakeFailed"
    assert world.status[2]["bake"]["rollback"]["metric"] == "errorRate"
    assert world.children[1].server.replicas == BAKING.replicas
    assert not world.children[2].server.exists


def test_good_bake_passes_then_the_previous_version_goes_and_a_waiting_candidate_follows() -> None:
    world = World(accuracy={1: 0.9, 2: 0.95, 3: 0.97}, model=BAKING)
    world.add(1)
    world.run()
    world.add(2)
    for _ in range(8):  # v2 promoted and baking
        world.run(1)
        if world.status[2].get("reason") == "Baking":
            break
    assert world.phase(1) == "Stable"  # kept warm during the bake
    world.add(3)
    world.run(3)
    assert world.status[3]["reason"] == "WaitingForStable"
    world.run()
    assert world.status[2]["bake"]["result"] == "Passed"
    assert (world.phase(1), world.phase(2), world.phase(3), world.stable) == (
        "Superseded",
        "Superseded",
        "Stable",
        3,
    )


@settings(max_examples=40, deadline=None)
@given(
    errors=st.lists(st.sampled_from([0, 1, 20]), min_size=3, max_size=3),
    arrivals=st.lists(st.integers(0, 12), min_size=3, max_size=3),
)
def test_random_arrivals_with_a_bake_keep_serving_invariants(
    errors: list[int], arrivals: list[int]
) -> None:
    """With bakes and regressions: traffic always points at a warm Stable version, at most one
    version bakes, and a version rolled back by its bake handed traffic back to a lower one."""
    world = World(
        accuracy=dict.fromkeys(range(1, 4), 0.9),
        model=BAKING,
        errors={n + 1: e for n, e in enumerate(errors)},
    )
    for tick in range(80):
        for n in range(1, 4):
            if arrivals[n - 1] == tick:
                world.add(n)
        for n in sorted(world.status):
            before = world.status[n].get("phase")
            if world.step(n).reason == "BakeFailed" and before == "Stable":
                # The pass that failed the bake handed traffic back to the previous version.
                assert world.stable == world.status[n]["bake"]["previousVersion"]
                assert world.stable is not None
                assert world.stable < n
        if world.stable is not None:
            assert world.phase(world.stable) == "Stable"
            assert world.children[world.stable].server.replicas == BAKING.replicas
        baking = [n for n, st_ in world.status.items() if st_.get("reason") == "Baking"]
        assert len(baking) <= 1
        world.tick()
