"""Drills: rehearse an AISystem's incident plan without touching its workload.

A drill answers "if this failure happened now, what would the plan do, who
would be paged, and what would go wrong?" before it happens for real.  The
operator handles ``airlock.dev/drill: "<scenario>[/<anything unique>]"`` by
looking up a few facts (:class:`Environment`), calling :func:`rehearse` and
opening a drill AIIncident whose ``status.drill`` is :meth:`Rehearsal.record`;
the responders then acknowledge it like a real one, and :func:`report` turns
those incidents into a practice record per system (how often, how fast).

Pure: no clock, no network.  The scenario is read as the worst case of its
failure mode: the worst severity any of the plan's monitors for that mode can
raise (a ``manual`` drill rehearses ``airlock.dev/shutdown``: SEV1, reroute if
there is a fallback, then scale to zero, as the engine does).

Gaps are holes the drill finds in the plan, each one a short actionable
sentence.  The rules, in the order they are reported:

- no monitor watches the scenario's failure mode (not for ``manual``): the
  drill then assumes the worst severity the plan defines;
- the severity has no entry in ``severities`` (nothing would happen);
- the worst severity only observes: a real failure would open no incident;
- nobody may acknowledge, shut down or release (release worded more sharply
  when the response contains at once, and ``releaseApprovals`` asking for
  more distinct people than the responders name, when no group is among them);
- an escalating severity without ``ackWithin`` (it never escalates by
  itself), or whose actions wait for an approval nobody may give;
- ``reroute`` among the actions without ``spec.fallback``, or with a fallback
  Service that does not exist (``Environment``); a target that does not exist;
- notices (the plan's merged channels and ``autoSend``, which defaults to internal):
  internal notices that are only drafted, because ``autoSend`` leaves
  internal out or because no channel carries internal at that severity;
  regulator or users notices in ``autoSend`` that no channel carries.
  Regulator and users notices *not* in ``autoSend`` are drafted by design
  and are no gap;
- the regulator is notified, the plan overrides no regulator template and
  the system declares no ``regulatory`` profile (neither ``euAiAct`` nor
  ``gdpr``): the default report would then lack the provider, the member
  states and the regime, so someone would write it from scratch at 3 a.m.
  With a profile, the default report is complete enough to be no gap.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Action, Audience, FailureMode, Response, Severity, Verb
from airlock.api.incident import AIIncident, DrillRecord
from airlock.api.matrix import Responder, SeverityPolicy, SubjectKind
from airlock.api.notifications import Channel
from airlock.domain import authority
from airlock.domain.plan import Plan


class Scenario(StrEnum):
    """What a drill rehearses: a failure mode's worst case, or a manual shutdown."""

    SUDDEN = "sudden"
    DRIFT = "drift"
    ADVERSARIAL = "adversarial"
    PRIVACY = "privacy"
    MANUAL = "manual"


# A manual shutdown is not a monitor's failure mode; its incident is recorded as sudden (as the engine does).
FAILURE_MODES = {
    Scenario.SUDDEN: FailureMode.SUDDEN,
    Scenario.DRIFT: FailureMode.DRIFT,
    Scenario.ADVERSARIAL: FailureMode.ADVERSARIAL,
    Scenario.PRIVACY: FailureMode.PRIVACY,
    Scenario.MANUAL: FailureMode.SUDDEN,
}

DEFAULT_AUTO_SEND = (Audience.INTERNAL,)
_SCENARIOS = ", ".join(s.value for s in Scenario)


def parse_value(value: str) -> Scenario:
    """The scenario of an ``airlock.dev/drill`` value: ``<scenario>`` or ``<scenario>/<anything unique>``."""
    text = value.strip()
    scenario, slash, suffix = text.partition("/")
    if slash and not suffix.strip():
        raise ValueError(
            f"drill value {value!r} ends with '/': give something unique after it "
            f"(e.g. {scenario or 'privacy'}/2026-11-26T13:30:12Z) or nothing"
        )
    try:
        return Scenario(scenario)
    except ValueError:
        raise ValueError(
            f"drill value {value!r} names no scenario: use one of {_SCENARIOS}, "
            'optionally followed by "/<anything unique>" (e.g. privacy/2026-11-26T13:30:12Z)'
        ) from None


@dataclass(frozen=True)
class Environment:
    """Facts about the cluster the operator looked up for the drill."""

    target_exists: bool
    fallback_service_exists: bool | None  # None: no fallback declared (or not looked up)
    # For a route fallback (HTTPRoute, VirtualService): why reroute could not use it, when it could not.
    fallback_problem: str | None = None


@dataclass(frozen=True)
class Rehearsal:
    """What the plan would do in the scenario, who would be paged, and the holes found."""

    scenario: Scenario
    failure_mode: FailureMode
    severity: Severity
    response: Response | None
    actions: list[Action]
    audiences: list[Audience]
    paged: list[str]
    gaps: list[str]
    decision: str

    def record(self) -> DrillRecord:
        """The incident's ``status.drill``."""
        return DrillRecord(
            scenario=self.scenario.value,
            decision=self.decision,
            actions=list(self.actions),
            audiences=list(self.audiences),
            paged=list(self.paged),
            gaps=list(self.gaps),
        )


def responder_line(responder: Responder) -> str:
    """``ml-oncall (Group oncall-ml, User alice@example.com, ServiceAccount ops/pager-bot)``."""
    subjects = []
    for subject in responder.subjects:
        name = f"{subject.namespace}/{subject.name}" if subject.kind is SubjectKind.SERVICE_ACCOUNT else subject.name
        subjects.append(f"{subject.kind.value} {name}")
    return f"{responder.name} ({', '.join(subjects)})"


def _worst_defined(plan: Plan) -> Severity | None:
    return min(plan.severities, key=lambda s: s.rank, default=None)


def _severity(plan: Plan, scenario: Scenario, failure_mode: FailureMode) -> tuple[Severity, list[str]]:
    if scenario is Scenario.MANUAL:
        return Severity.SEV1, []
    reachable = [
        threshold.severity
        for resolved in plan.monitors
        if resolved.monitor.failure_mode is failure_mode
        for threshold in resolved.monitor.thresholds
    ]
    if reachable:
        return min(reachable, key=lambda s: s.rank), []
    worst = _worst_defined(plan) or Severity.SEV1
    return worst, [
        f"no monitor watches for {failure_mode.value} failures: add one with failureMode: {failure_mode.value}, "
        f"or such a failure is found only when someone notices (the drill assumed {worst.value})"
    ]


def _actions(plan: Plan, scenario: Scenario, policy: SeverityPolicy | None) -> tuple[Response | None, list[Action]]:
    if scenario is Scenario.MANUAL:
        # What airlock.dev/shutdown does, whatever the matrix says (engine: manual shutdown).
        rerouted = [Action.REROUTE] if plan.spec.fallback is not None else []
        return Response.SHUTDOWN, [*rerouted, Action.SCALE_TO_ZERO]
    if policy is None:
        return None, []
    return policy.response, list(policy.actions)


def _decision(
    plan: Plan,
    scenario: Scenario,
    severity: Severity,
    failure_mode: FailureMode,
    response: Response | None,
    policy: SeverityPolicy | None,
    actions: Sequence[Action],
    audiences: Sequence[Audience],
) -> str:
    head = f"{severity.value} {failure_mode.value}"
    what = ", ".join(a.value for a in actions)
    notify = f"notify {', '.join(a.value for a in audiences)}" if audiences else "notify nobody"
    if scenario is Scenario.MANUAL:
        text = f"{head}: manual shutdown at once — {what}; {notify}"
    elif response is None:
        return f"{head}: nothing — {severity.value} has no entry in severities"
    elif response in (Response.SHUTDOWN, Response.CONTAIN):
        text = f"{head}: {response.value} at once — {what}; {notify}"
    elif response is Response.ESCALATE:
        ack = f"ack within {policy.ack_within}" if policy is not None and policy.ack_within else "no ackWithin"
        acts = f"{what} once approved" if actions else "no actions"
        text = f"{head}: escalate and page ({ack}) — {acts}; {notify}"
    elif response is Response.INVESTIGATE:
        text = f"{head}: investigate — open an incident, touch nothing; {notify}"
    else:
        return f"{head}: observe — record only, no incident"
    if plan.dry_run and actions:
        text += " (dryRun: the workload would not be touched)"
    return text


def _authority_gaps(
    plan: Plan, scenario: Scenario, severity: Severity, response: Response | None, policy: SeverityPolicy | None
) -> list[str]:
    responders = plan.responders
    gaps: list[str] = []
    if not authority.holders(responders, Verb.ACKNOWLEDGE):
        gaps.append("nobody may acknowledge: add acknowledge to a responder, or every incident goes unacknowledged")
    if not authority.holders(responders, Verb.SHUTDOWN):
        gaps.append("nobody may shut the system down by hand: add shutdown to a responder (airlock.dev/shutdown)")
    releasers = authority.holders(responders, Verb.RELEASE)
    contains = scenario is Scenario.MANUAL or response in (Response.CONTAIN, Response.SHUTDOWN)
    if not releasers:
        if contains:
            gaps.append(
                f"{severity.value} contains at once but nobody may release: add release to a responder, "
                "or the system stays contained until someone edits the plan"
            )
        else:
            gaps.append("nobody may release: add release to a responder, or a containment is never lifted")
    elif policy is not None and contains and policy.release_approvals > 1:
        # A group may hold any number of people; only named subjects can be counted.
        subjects = [s for r in responders if Verb.RELEASE in r.may for s in r.subjects]
        named = {(s.kind, s.namespace, s.name) for s in subjects}
        if all(s.kind is not SubjectKind.GROUP for s in subjects) and len(named) < policy.release_approvals:
            gaps.append(
                f"{severity.value} needs {policy.release_approvals} release approvals but only {len(named)} "
                "subject(s) may release: name more responders with release, or lower releaseApprovals"
            )
    if policy is not None and scenario is not Scenario.MANUAL and response is Response.ESCALATE:
        if policy.ack_within is None:
            gaps.append(
                f"{severity.value} escalates without ackWithin: if nobody acknowledges, it never escalates; "
                f"set severities.{severity.value}.ackWithin"
            )
        if policy.actions and not authority.holders(responders, Verb.APPROVE):
            gaps.append(
                f"{severity.value} waits for an approval to act but nobody may approve: add approve to a responder"
            )
    return gaps


def _workload_gaps(plan: Plan, actions: Sequence[Action], env: Environment) -> list[str]:
    spec = plan.spec
    gaps: list[str] = []
    if not env.target_exists:
        target = f"{spec.target.kind.value} {spec.target.name}"
        gaps.append(f"the target {target} does not exist: containment would have nothing to act on; fix spec.target")
    if Action.REROUTE in actions:
        if spec.fallback is None:
            gaps.append("reroute needs a fallback but spec.fallback is not declared: declare one or drop reroute")
        elif env.fallback_service_exists is False and spec.fallback.service is not None:
            gaps.append(
                f"the fallback Service {spec.fallback.service} does not exist: reroute would fail; "
                "create it or fix spec.fallback.service"
            )
        elif env.fallback_service_exists is False:
            why = f": {env.fallback_problem}" if env.fallback_problem else ""
            gaps.append(f"reroute through {spec.fallback.describe()} would fail{why}; fix the route or spec.fallback")
    return gaps


def _carries(channel: Channel, audience: Audience, severity: Severity) -> bool:
    return audience in channel.audiences and (not channel.severities or severity in channel.severities)


def _has_profile(spec: AISystemSpec) -> bool:
    regulatory = spec.regulatory
    return regulatory is not None and (regulatory.eu_ai_act is not None or regulatory.gdpr is not None)


def _notice_gaps(plan: Plan, severity: Severity, audiences: Sequence[Audience]) -> list[str]:
    auto_send = plan.auto_send if plan.auto_send is not None else list(DEFAULT_AUTO_SEND)
    gaps: list[str] = []
    for audience in audiences:
        carried = any(_carries(c, audience, severity) for c in plan.channels)
        if audience is Audience.INTERNAL:
            if audience not in auto_send:
                gaps.append(
                    "internal notices are only drafted: notifications.autoSend leaves internal out, "
                    "so nobody is told without a human; add internal to autoSend"
                )
            elif not carried:
                gaps.append(
                    f"internal notices at {severity.value} are only drafted: no channel carries the internal "
                    "audience at that severity; add one under notifications.channels"
                )
        elif audience in auto_send and not carried:
            gaps.append(
                f"{audience.value} notices are auto-sent (notifications.autoSend) but no channel carries "
                f"{audience.value} at {severity.value}: add a channel for that audience"
            )
    if Audience.REGULATOR in audiences and Audience.REGULATOR not in plan.templates and not _has_profile(plan.spec):
        gaps.append(
            "the regulator is notified but there is neither a regulator template nor spec.regulatory: "
            "the default report would lack the provider and the reporting regime; declare spec.regulatory "
            "(euAiAct/gdpr) or a templates.regulator override"
        )
    return gaps


def rehearse(plan: Plan, scenario: Scenario, env: Environment) -> Rehearsal:
    """What ``plan`` would do in ``scenario``, and the holes it has (see the module docstring)."""
    failure_mode = FAILURE_MODES[scenario]
    severity, gaps = _severity(plan, scenario, failure_mode)
    policy = plan.severity_policy(severity)
    if policy is None:
        gaps.append(
            f"{severity.value} has no entry in severities: a {severity.value} incident would get no response "
            f"and notify nobody; define severities.{severity.value}"
        )
    elif scenario is not Scenario.MANUAL and policy.response is Response.OBSERVE:
        gaps.append(
            f"the worst {failure_mode.value} severity ({severity.value}) only observes: a real {failure_mode.value} "
            "failure opens no incident and pages nobody; add a threshold with a worse severity"
        )
    response, actions = _actions(plan, scenario, policy)
    audiences = list(policy.notify) if policy is not None else []
    paged = [responder_line(r) for r in plan.responders if Verb.ACKNOWLEDGE in r.may]
    gaps += _authority_gaps(plan, scenario, severity, response, policy)
    gaps += _workload_gaps(plan, actions, env)
    gaps += _notice_gaps(plan, severity, audiences)
    return Rehearsal(
        scenario=scenario,
        failure_mode=failure_mode,
        severity=severity,
        response=response,
        actions=actions,
        audiences=audiences,
        paged=paged,
        gaps=list(dict.fromkeys(gaps)),
        decision=_decision(plan, scenario, severity, failure_mode, response, policy, actions, audiences),
    )


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class DrillSummary:
    """The practice record of one system: how many drills, the last one, how fast they were acknowledged."""

    namespace: str
    system: str
    drills: int
    last_at: datetime.datetime | None
    last_scenario: str | None
    last_incident: str
    last_time_to_acknowledge_seconds: float | None
    acknowledged: bool  # the last drill was acknowledged
    median_time_to_acknowledge_seconds: float | None  # over the acknowledged drills
    gaps: list[str] = field(default_factory=list)  # found by the last drill

    def dump(self) -> dict[str, Any]:
        """camelCase, as ``-o json`` prints it."""
        return {
            "namespace": self.namespace,
            "system": self.system,
            "drills": self.drills,
            "lastAt": _rfc3339(self.last_at) if self.last_at is not None else None,
            "lastScenario": self.last_scenario,
            "lastIncident": self.last_incident,
            "lastTimeToAcknowledgeSeconds": self.last_time_to_acknowledge_seconds,
            "acknowledged": self.acknowledged,
            "medianTimeToAcknowledgeSeconds": self.median_time_to_acknowledge_seconds,
            "gaps": list(self.gaps),
        }


def _rfc3339(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _started(incident: AIIncident) -> datetime.datetime | None:
    status = incident.status
    if status is not None and status.detected_at is not None:
        return status.detected_at
    created = getattr(incident.metadata, "creationTimestamp", None)
    if isinstance(created, str):
        try:
            return datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _aware(value: datetime.datetime | None) -> datetime.datetime:
    if value is None:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def time_to_acknowledge(incident: AIIncident) -> float | None:
    """Seconds from the drill's start to its acknowledgement (None: not acknowledged)."""
    status = incident.status
    if status is None:
        return None
    if status.drill is not None and status.drill.time_to_acknowledge_seconds is not None:
        return status.drill.time_to_acknowledge_seconds
    started = _started(incident)
    if status.acknowledged_at is None or started is None:
        return None
    return round(max(0.0, (_aware(status.acknowledged_at) - _aware(started)).total_seconds()), 3)


def scenario_of(incident: AIIncident) -> str | None:
    """The scenario rehearsed: from the drill record, else from the trigger's reason (the annotation value)."""
    status = incident.status
    if status is not None and status.drill is not None:
        return status.drill.scenario
    for word in (incident.spec.trigger.reason or "").split():
        try:
            return parse_value(word).value
        except ValueError:
            continue
    return None


def report(incidents: Iterable[AIIncident]) -> list[DrillSummary]:
    """One summary per (namespace, system) over the drill incidents among ``incidents``, sorted."""
    groups: dict[tuple[str, str], list[AIIncident]] = {}
    for incident in incidents:
        if not incident.spec.drill:
            continue
        key = (incident.metadata.namespace or "", incident.spec.system)
        groups.setdefault(key, []).append(incident)
    summaries = []
    for (namespace, system), drills in sorted(groups.items()):
        drills.sort(key=lambda i: (_aware(_started(i)), i.metadata.name or ""))
        last = drills[-1]
        times = [t for t in (time_to_acknowledge(i) for i in drills) if t is not None]
        last_time = time_to_acknowledge(last)
        acknowledged = last_time is not None or bool(last.status and last.status.acknowledged_by)
        summaries.append(
            DrillSummary(
                namespace=namespace,
                system=system,
                drills=len(drills),
                last_at=_started(last),
                last_scenario=scenario_of(last),
                last_incident=last.metadata.name or "",
                last_time_to_acknowledge_seconds=last_time,
                acknowledged=acknowledged,
                median_time_to_acknowledge_seconds=float(statistics.median(times)) if times else None,
                gaps=list(last.status.drill.gaps) if last.status and last.status.drill else [],
            )
        )
    return summaries
