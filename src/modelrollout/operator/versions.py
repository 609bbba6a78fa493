"""ModelVersion handling: observe, let the pure core decide, execute, report.

Everything a decision needs is read from the API server on every pass (the
version's status, its Model, its children), so a restarted operator continues
where the killed one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from modelrollout.core import builders, decisions, routes, spec
from modelrollout.core.canary import CanarySpecError
from modelrollout.core.conditions import Stamp, version_conditions
from modelrollout.core.spec import Phase
from modelrollout.core.state import Action, CanaryWindow, Decision, Observed, Sibling
from modelrollout.operator import observe, routers
from modelrollout.operator.analysis import CanaryAnalyst, Target
from modelrollout.operator.kube import Kube, Obj
from modelrollout.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """One pass over one ModelVersion: the API, the settings and what was read."""

    kube: Kube
    settings: OperatorSettings
    body: Mapping[str, Any]
    version: spec.VersionSpec
    model_body: Obj | None
    model: spec.ModelSpec | None

    @property
    def ns(self) -> str:
        return self.version.namespace

    @property
    def attempt(self) -> int:
        return int((self.body.get("status") or {}).get("attempt") or 1)


def load(kube: Kube, settings: OperatorSettings, body: Mapping[str, Any]) -> Context:
    """Read the version's Model (fresh, not cached: promotion depends on it)."""
    version = spec.version_from_body(body)
    model_body = kube.get_custom(version.namespace, spec.MODELS, version.model)
    model = spec.model_from_body(model_body) if model_body else None
    return Context(kube, settings, body, version, model_body, model)


def _window(ctx: Context, analyst: CanaryAnalyst | None, now: datetime) -> CanaryWindow | None:
    """In the Canary phase: the analysis interval that just ended (scraped here), if any."""
    status = ctx.body.get("status") or {}
    if analyst is None:
        return None
    if status.get("phase") != Phase.CANARY or ctx.model is None or ctx.model_body is None:
        analyst.forget(ctx.version.uid)
        return None
    stable = (ctx.model_body.get("status") or {}).get("stableVersion")
    step = (status.get("canary") or {}).get("step")
    if stable is None or step is None:
        return None
    try:
        policy = spec.merged_canary(ctx.model.canary, ctx.version.canary)
    except CanarySpecError:
        return None
    target = Target(
        ctx.ns,
        ctx.version.model,
        int(stable),
        ctx.version.version,
        int(step),
        policy.interval_seconds,
        policy.prometheus,
    )
    return analyst.observe(ctx.kube, ctx.version.uid, target, now)


def observed(
    ctx: Context,
    siblings: Iterable[Sibling],
    now: datetime,
    analyst: CanaryAnalyst | None = None,
) -> Observed:
    """The world as the state machine sees it."""
    status = ctx.body.get("status") or {}
    name = builders.server_name(ctx.version.model, ctx.version.version)
    deployment = ctx.kube.get_deployment(ctx.ns, name)
    pods: list[Obj] = []
    if deployment is not None:
        want = int((deployment.get("spec") or {}).get("replicas") or 0)
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        if ready < want:
            pods = ctx.kube.pods(
                ctx.ns, builders.labels(ctx.version.model, "server", ctx.version.version)
            )
    job = None
    job_pods: list[Obj] = []
    if status.get("phase") == Phase.EVALUATING:
        job_name = builders.job_name(ctx.version.name, ctx.attempt)
        job = ctx.kube.get_job(ctx.ns, job_name)
        if job is not None:
            job_pods = ctx.kube.pods(ctx.ns, {"job-name": job_name})
    return Observed(
        version=ctx.version,
        now=now,
        status=status,
        annotations=(ctx.body.get("metadata") or {}).get("annotations") or {},
        model=observe.model_state(ctx.model_body, ctx.model),
        siblings=tuple(s for s in siblings if s.name != ctx.version.name),
        server=observe.server_state(deployment, pods, ctx.settings.restart_limit),
        job=observe.job_state(job, job_pods),
        window=_window(ctx, analyst, now),
    )


def execute(ctx: Context, decision: Decision) -> Decision:
    """Carry out the decision's actions, in order; each is idempotent. Returns the decision
    with what a route router read back folded into its status and message."""
    done = decision
    for action in decision.actions:
        log.debug("%s/%s: %s", ctx.ns, ctx.version.name, action.value)
        report = ACTIONS[action](ctx, decision)
        if report is not None:
            done = _with_route(ctx, done, report)
    return done


def _with_route(ctx: Context, decision: Decision, report: routers.Report) -> Decision:
    """The whole ``status.canary`` (not a fragment), so an unchanged route patches nothing."""
    current = (ctx.body.get("status") or {}).get("canary") or {}
    canary = {**(decision.status.get("canary") or current), "route": report.route}
    if report.canary_percent is not None:
        canary["achievedWeight"] = report.canary_percent
    message = f"{decision.message}; route: {report.problem}" if report.problem else decision.message
    return replace(decision, status={**decision.status, "canary": canary}, message=message)


def _server_params(ctx: Context, decision: Decision) -> builders.ServerParams:
    phase = decision.phase
    full = phase in (Phase.PROMOTING, Phase.STABLE) and ctx.model is not None
    replicas = ctx.model.replicas if full and ctx.model else 1
    if phase == Phase.CANARY:
        canary = decision.status.get("canary") or (ctx.body.get("status") or {}).get("canary")
        replicas = int((canary or {}).get("canaryReplicas") or 1)
    return builders.ServerParams(
        namespace=ctx.ns,
        model=ctx.version.model,
        version=ctx.version.version,
        artifact=ctx.version.artifact,
        owner=builders.Owner("ModelVersion", ctx.version.name, ctx.version.uid),
        replicas=replicas,
        resources=ctx.model.resources if ctx.model else {},
        images=ctx.settings.images,
    )


def _ensure_server(ctx: Context, decision: Decision) -> None:
    params = _server_params(ctx, decision)
    existing = ctx.kube.ensure(builders.server_deployment(params))
    if int((existing.get("spec") or {}).get("replicas") or 0) != params.replicas:
        ctx.kube.scale_deployment(ctx.ns, existing["metadata"]["name"], params.replicas)
    ctx.kube.ensure(builders.server_service(params))


def _scale_down(ctx: Context, _decision: Decision) -> None:
    name = builders.server_name(ctx.version.model, ctx.version.version)
    if ctx.kube.get_deployment(ctx.ns, name) is not None:
        ctx.kube.scale_deployment(ctx.ns, name, 0)


def _delete_server(ctx: Context, _decision: Decision) -> None:
    name = builders.server_name(ctx.version.model, ctx.version.version)
    ctx.kube.delete("Deployment", ctx.ns, name)
    ctx.kube.delete("Service", ctx.ns, name)


def _ensure_job(ctx: Context, decision: Decision) -> None:
    assert ctx.model is not None
    status = ctx.body.get("status") or {}
    evaluation = spec.merged_evaluation(ctx.model.evaluation, ctx.version.evaluation)
    assert evaluation.dataset is not None  # the Pending step failed the version otherwise
    port = ctx.settings.images.grpc_port
    baseline = decision.status.get("baselineVersion", status.get("baselineVersion"))
    params = builders.JobParams(
        namespace=ctx.ns,
        name=builders.job_name(ctx.version.name, ctx.attempt),
        model=ctx.version.model,
        version=ctx.version.version,
        dataset=evaluation.dataset,
        gates=evaluation.gates,
        candidate=builders.address(
            builders.server_name(ctx.version.model, ctx.version.version), ctx.ns, port
        ),
        baseline=builders.address(builders.server_name(ctx.version.model, baseline), ctx.ns, port)
        if baseline
        else None,
        baseline_version=baseline,
        owner=builders.Owner("ModelVersion", ctx.version.name, ctx.version.uid),
        timeout_seconds=evaluation.timeout_seconds,
        images=ctx.settings.images,
    )
    ctx.kube.ensure(builders.evaluation_job(params))


def _delete_job(ctx: Context, _decision: Decision) -> None:
    ctx.kube.delete("Job", ctx.ns, builders.job_name(ctx.version.name, ctx.attempt))


def _switch_stable(ctx: Context, decision: Decision) -> routers.Report | None:
    """Point the Model's Service at this version, then record it in the Model's status."""
    assert ctx.model is not None
    assert ctx.model_body is not None
    model, version = ctx.version.model, ctx.version.version
    owner = builders.Owner("Model", model, ctx.model.uid)
    wanted = builders.stable_service(ctx.ns, model, version, owner, ctx.settings.images)
    existing = ctx.kube.ensure(wanted)
    if (existing.get("spec") or {}).get("selector") != wanted["spec"]["selector"]:
        ctx.kube.set_service_selector(ctx.ns, model, wanted["spec"]["selector"])
    old = (ctx.model_body.get("status") or {}).get("stableVersion")
    report = _switch_route(ctx, old)
    patch: dict[str, Any] = {
        "stableVersion": version,
        "stableName": ctx.version.name,
        "serviceName": model,
    }
    if old != version:
        patch["previousVersion"] = old
        patch["promotedAt"] = decision.status.get("promotedAt")
    ctx.kube.patch_status(ctx.ns, spec.MODELS, model, patch)
    return report


def _set_stable_selector(ctx: Context, selector: Mapping[str, str]) -> None:
    """Exactly ``selector``: a merge patch keeps keys it does not name, so extra ones are nulled."""
    service = ctx.kube.get_service(ctx.ns, ctx.version.model)
    current = ((service or {}).get("spec") or {}).get("selector") or {}
    if service is not None and current != dict(selector):
        patch: dict[str, str | None] = {k: None for k in current if k not in selector}
        patch.update(selector)
        ctx.kube.set_service_selector(ctx.ns, ctx.version.model, patch)


def _set_weight(ctx: Context, decision: Decision) -> routers.Report | None:
    """Canary pods at the step's count, then the traffic: ``replicas`` router, one Service
    over both versions; a route router, the weight the ready canary pods can carry."""
    _ensure_server(ctx, decision)
    router, stable = _router(ctx), _stable_version(ctx)
    if router is None:
        _set_stable_selector(ctx, builders.labels(ctx.version.model, builders.ROLE_SERVER))
        return None
    if stable is None:
        return None
    _pin_stable_selector(ctx, stable)
    canary = decision.status.get("canary") or (ctx.body.get("status") or {}).get("canary") or {}
    name = builders.server_name(ctx.version.model, ctx.version.version)
    deployment = ctx.kube.get_deployment(ctx.ns, name) or {}
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    wanted = int(canary.get("canaryReplicas") or 1)
    weight = routes.ready_weight(int(canary.get("weight") or 0), ready, wanted)
    return router.set_weight(routes.Split(_service(ctx, stable), name, weight))


def _restore_stable_route(ctx: Context, _decision: Decision) -> routers.Report | None:
    """Traffic leaves the canary: the stable Service selects the stable version's pods only
    and a route router's route drops the canary's backend (an error stops the pass here,
    before the canary is scaled away)."""
    stable = _stable_version(ctx)
    if stable is None:
        return None
    _pin_stable_selector(ctx, stable)
    router = _router(ctx)
    if router is None:
        return None
    canary = builders.server_name(ctx.version.model, ctx.version.version)
    try:
        return router.restore(routes.Split(_service(ctx, stable), canary))
    except routers.RouteError as err:
        _blocked(ctx, f"cannot take traffic off the canary, retrying: {err}")
        raise


def _switch_route(ctx: Context, old: int | None) -> routers.Report | None:
    """Promotion: a route router's route sends the stable share to this version only."""
    router = _router(ctx)
    if router is None:
        return None
    mine = _service(ctx, ctx.version.version)
    ours = [mine] if old is None else [_service(ctx, int(old)), mine]
    try:
        return router.switch(ours, mine)
    except routers.RouteError as err:
        _blocked(ctx, f"cannot point the route at this version, retrying: {err}")
        raise


def _blocked(ctx: Context, message: str) -> None:
    """The pass stops at a route write (it is retried): say why in the version's status."""
    patch = {"reason": "RouteBlocked", "message": message}
    ctx.kube.patch_status(ctx.ns, spec.VERSIONS, ctx.version.name, patch)


def _router(ctx: Context) -> routers.RouteRouter | None:
    """The Model's route router (None: the ``replicas`` router)."""
    if ctx.model is None:
        return None
    model = ctx.model
    target = routes.route_target(model.name, model.traffic)
    if target is None:
        return None
    owner = builders.Owner("Model", model.name, model.uid)
    images = ctx.settings.images
    ports = routes.Ports(grpc=images.grpc_port, rest=images.rest_port)
    params = routes.RouteParams(ctx.ns, model.name, owner, model.traffic, ports)
    return routers.RouteRouter(
        ctx.kube, ctx.ns, target, lambda stable: routes.owned_route(params, stable)
    )


def _stable_version(ctx: Context) -> int | None:
    stable = ((ctx.model_body or {}).get("status") or {}).get("stableVersion")
    return None if stable is None else int(stable)


def _service(ctx: Context, version: int) -> str:
    return builders.server_name(ctx.version.model, version)


def _pin_stable_selector(ctx: Context, stable: int) -> None:
    _set_stable_selector(ctx, builders.labels(ctx.version.model, builders.ROLE_SERVER, stable))


ACTIONS: dict[Action, Callable[[Context, Decision], routers.Report | None]] = {
    Action.ENSURE_SERVER: _ensure_server,
    Action.SCALE_SERVER_DOWN: _scale_down,
    Action.DELETE_SERVER: _delete_server,
    Action.ENSURE_JOB: _ensure_job,
    Action.DELETE_JOB: _delete_job,
    Action.SWITCH_STABLE: _switch_stable,
    Action.SET_WEIGHT: _set_weight,
    Action.RESTORE_STABLE_ROUTE: _restore_stable_route,
}


def status_patch(body: Mapping[str, Any], decision: Decision, now: str) -> dict[str, Any]:
    """The fields of status that change: phase, reason, message, conditions, decision fields."""
    current = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    stamp = Stamp(generation=generation, now=now, previous=current.get("conditions") or ())
    wanted: dict[str, Any] = {
        "phase": decision.phase.value,
        "reason": decision.reason,
        "message": decision.message,
        "observedGeneration": generation,
        "conditions": version_conditions(
            stamp, decision.phase, decision.reason, decision.message, decision.paused
        ),
        "serviceName": builders.server_name(body["spec"]["model"], int(body["spec"]["version"])),
        **decision.status,
    }
    if current.get("phase") != decision.phase.value:
        wanted["phaseSince"] = now
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def reconcile(
    kube: Kube,
    settings: OperatorSettings,
    body: Mapping[str, Any],
    siblings: Iterable[Sibling],
    now: datetime,
    *,
    analyst: CanaryAnalyst | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """One pass: returns the decision (for its Event) and the status patch to apply.

    The version is read fresh: the watch may not have delivered our last status write
    yet, and deciding on an older status would repeat a step (and its Event).
    """
    meta = body.get("metadata") or {}
    fresh = kube.get_custom(str(meta.get("namespace")), spec.VERSIONS, str(meta.get("name")))
    if fresh is None:  # deleted meanwhile
        fresh = dict(body)
    ctx = load(kube, settings, fresh)
    decision = decisions.decide(observed(ctx, siblings, now, analyst), settings.timing)
    decision = execute(ctx, decision)
    return decision, status_patch(fresh, decision, _iso(now))


def deletion_hold(
    kube: Kube, settings: OperatorSettings, body: Mapping[str, Any], now: datetime
) -> str | None:
    """Why this version must not go yet (it serves alone), or None to let it go."""
    ctx = load(kube, settings, body)
    obs = Observed(
        version=ctx.version,
        now=now,
        status=body.get("status") or {},
        model=observe.model_state(ctx.model_body, ctx.model),
    )
    return decisions.deletion_hold(obs)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
