"""The classification matrix in action: from monitor states to what the operator must do.

Pure: given the plan, the monitors' states, what is already contained and the
open incident, :func:`decide` returns a :class:`Decision` with its reason.
The engine carries it out; the backtest replays it over history.  One
function, so "what would it have done" and "what it did" cannot disagree.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from airlock.api.aisystem import Containment, MonitorState, MonitorStatus, Phase, ProviderErrorPolicy
from airlock.api.common import Action, FailureMode, Response, Severity
from airlock.api.matrix import NoDataPolicy, SeverityPolicy
from airlock.domain.plan import Plan


@dataclass(frozen=True)
class OpenIncident:
    """What the decision needs to know about the system's open incident."""

    name: str
    severity: Severity
    detected_at: datetime.datetime
    acknowledged: bool = False
    approved: bool = False
    severity_since: datetime.datetime | None = None


@dataclass(frozen=True)
class Situation:
    plan: Plan
    monitors: list[MonitorStatus]
    now: datetime.datetime
    containment: Containment | None = None
    incident: OpenIncident | None = None
    provider_error_since: datetime.datetime | None = None


@dataclass(frozen=True)
class Classification:
    """The worst monitor and the severity it raises."""

    severity: Severity | None
    trigger: MonitorStatus | None
    failure_mode: FailureMode | None
    monitoring_healthy: bool
    unhealthy: list[str] = field(default_factory=list)
    provider_error: bool = False


def classify(plan: Plan, monitors: list[MonitorStatus]) -> Classification:
    """Highest severity across monitors; a tie goes to the first monitor (spec order)."""
    trigger: MonitorStatus | None = None
    for status in monitors:
        breached = status.state is MonitorState.BREACHED and status.severity is not None
        if breached and (
            trigger is None or (status.severity is not None and status.severity.worse_than(trigger.severity))
        ):
            trigger = status
    no_data_ok = {r.name for r in plan.monitors if r.monitor.no_data is NoDataPolicy.OK}
    unhealthy = [
        s.name
        for s in monitors
        if s.state is MonitorState.ERROR or (s.state is MonitorState.NO_DATA and s.name not in no_data_ok)
    ]
    errors = [s for s in monitors if s.state is MonitorState.ERROR]
    return Classification(
        severity=trigger.severity if trigger else None,
        trigger=trigger,
        failure_mode=trigger.failure_mode if trigger else None,
        monitoring_healthy=not unhealthy,
        unhealthy=unhealthy,
        provider_error=bool(monitors) and len(errors) == len(monitors),
    )


@dataclass(frozen=True)
class Decision:
    """What must be true after this reconcile, and why."""

    classification: Classification
    severity: Severity | None
    response: Response | None
    phase: Phase
    reason: str
    open_incident: bool = False
    incident_severity: Severity | None = None
    escalated_from: Severity | None = None
    contain: tuple[Action, ...] = ()
    containment_severity: Severity | None = None
    fail_closed: bool = False
    would_contain: tuple[Action, ...] = ()

    @property
    def acts(self) -> bool:
        return bool(self.contain)


def _worst(a: Severity | None, b: Severity | None) -> Severity | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.worse_than(b) else b


def decide(situation: Situation) -> Decision:
    plan = situation.plan
    classification = classify(plan, situation.monitors)
    incident = situation.incident
    severity = _worst(classification.severity, incident.severity if incident else None)
    escalated_from: Severity | None = None

    # escalate: nobody acknowledged within ackWithin → the next-higher severity.
    # A severity's clock starts when the incident reached it: a breach worse than
    # the incident has not been paged yet, and each higher level gets its own
    # ackWithin (starting when the level below expired), never the first one's.
    if incident is not None and not incident.acknowledged and severity == incident.severity:
        started = incident.severity_since or incident.detected_at
        while severity is not None:
            policy = plan.severity_policy(severity)
            if policy is None or policy.response is not Response.ESCALATE or policy.ack_within is None:
                break
            deadline = started + datetime.timedelta(seconds=policy.ack_within.seconds)
            if situation.now < deadline:
                break
            higher = severity.next_higher()
            if higher is None or plan.severity_policy(higher) is None:
                break
            escalated_from = escalated_from or severity
            severity = higher
            started = deadline

    reason = _reason(classification, severity, escalated_from)
    policy = plan.severity_policy(severity) if severity else None
    response = policy.response if policy else None
    contain: tuple[Action, ...] = ()
    fail_closed = False
    if policy is not None and _acts_now(policy, incident):
        contain = tuple(policy.actions)
    elif _fail_closed_due(situation, classification):
        fallback = _fail_closed_policy(plan)
        if fallback is not None:
            severity, policy = fallback
            response = policy.response
            contain = tuple(policy.actions)
            fail_closed = True
            reason = f"Prometheus unreachable for more than {plan.spec.fail_closed_after}: failing closed"

    open_incident = response in (Response.INVESTIGATE, Response.ESCALATE, Response.CONTAIN, Response.SHUTDOWN)
    would_contain: tuple[Action, ...] = ()
    if plan.dry_run:
        would_contain, contain = contain, ()

    already = situation.containment is not None and situation.containment.active
    phase = _phase(situation, classification, severity, response, contain, would_contain, already)
    return Decision(
        classification=classification,
        severity=severity,
        response=response,
        phase=phase,
        reason=reason,
        open_incident=open_incident,
        incident_severity=severity if open_incident else None,
        escalated_from=escalated_from,
        contain=contain,
        containment_severity=severity if contain else None,
        fail_closed=fail_closed,
        would_contain=would_contain,
    )


def _acts_now(policy: SeverityPolicy, incident: OpenIncident | None) -> bool:
    if not policy.actions:
        return False
    if policy.contains():
        return True  # the policy itself is the pre-authorization
    return policy.response is Response.ESCALATE and incident is not None and incident.approved


def _fail_closed_due(situation: Situation, classification: Classification) -> bool:
    plan = situation.plan
    if plan.spec.on_provider_error is not ProviderErrorPolicy.CONTAIN or not classification.provider_error:
        return False
    since = situation.provider_error_since
    return since is not None and (situation.now - since).total_seconds() >= plan.spec.fail_closed_after.seconds


def _fail_closed_policy(plan: Plan) -> tuple[Severity, SeverityPolicy] | None:
    """The mildest severity that still contains: failing closed should not be harsher than needed."""
    containing = plan.containing_severities()
    if not containing:
        return None
    severity = containing[-1]
    return severity, plan.severities[severity]


def _reason(classification: Classification, severity: Severity | None, escalated_from: Severity | None) -> str:
    trigger = classification.trigger
    if escalated_from is not None and severity is not None:
        return f"{escalated_from.value} not acknowledged in time: escalated to {severity.value}"
    if trigger is None:
        if not classification.monitoring_healthy:
            return "monitoring gap: " + ", ".join(classification.unhealthy)
        return "all monitors ok"
    value = f"{trigger.value:g}" if trigger.value is not None else "no data"
    return f"monitor {trigger.name} breached {trigger.severity.value if trigger.severity else ''} ({value})"


def _phase(
    situation: Situation,
    classification: Classification,
    severity: Severity | None,
    response: Response | None,
    contain: tuple[Action, ...],
    would_contain: tuple[Action, ...],
    already: bool,
) -> Phase:
    containment = situation.containment
    if already or contain:
        manual = containment is not None and containment.manual
        # Scaled to zero is shut down whether it is being applied now or was applied before.
        shut = (
            manual
            or response is Response.SHUTDOWN
            or Action.SCALE_TO_ZERO in contain
            or (containment is not None and Action.SCALE_TO_ZERO in containment.actions)
        )
        return Phase.SHUT_DOWN if shut else Phase.CONTAINED
    if severity is not None or would_contain:
        return Phase.DEGRADED
    if not classification.monitoring_healthy:
        return Phase.UNKNOWN
    return Phase.HEALTHY


def release_blockers(plan: Plan, monitors: list[MonitorStatus]) -> list[MonitorStatus]:
    """Monitors that still breach at a containing level: a release must be refused while any exist."""
    blockers = []
    for status in monitors:
        if status.state is not MonitorState.BREACHED or status.severity is None:
            continue
        policy = plan.severity_policy(status.severity)
        if policy is not None and policy.contains():
            blockers.append(status)
    return blockers
