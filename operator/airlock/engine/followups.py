"""After the first minute: an incident's notices, reporting clocks, post-mortem and drill acknowledgement.

Containment is :mod:`airlock.engine.core`'s job and never waits for anything
here: this loop runs beside the scheduler, once a second, and looks only at
incidents that changed or have something due.  Per incident it

- applies a responder's ``airlock.dev/harm`` (Art. 3(49) categories, widespread)
  and ``airlock.dev/report-submitted`` (authority-checked, verb ``report``);
- keeps ``status.reporting`` (the regulatory clocks of
  :mod:`airlock.domain.deadlines`), posts one Warning Event per clock at 50 %,
  90 % and when overdue, sets the ``ReportingOnTrack`` condition and the
  ``airlock_report_deadline_seconds`` metric;
- renders the notice drafts into an immutable ConfigMap named by its content
  (``<incident>-notices-<hash>``, owned by the incident; ``status.drafts.notices``
  names the current one, :mod:`airlock.domain.drafts`) and keeps the outbox in
  ``status.notifications``: one entry per
  (channel, audience, event) with a state, attempts, next retry and an
  idempotency key;
- delivers due outbox entries — ``sending`` is written *before* the attempt,
  so a crash between the attempt and its result resends with the same
  idempotency key (at-least-once, deduplicated by the receiver; never lost);
- drafts the post-mortem (ConfigMap ``<incident>-postmortem-<hash>``) once the
  incident is resolved and closes it on ``airlock.dev/postmortem`` (refused
  while the draft's questions are unanswered), or at once when its severity
  does not require one;
- for drills, records the acknowledgement and time to acknowledge, and ends
  the drill;
- refuses, on the AISystem, a channel whose Secret the operator may not read
  (:mod:`airlock.domain.secrets`): RBAC grants it only the names listed.

ConfigMaps are only ever created (never patched or deleted) and Secrets only
read by name: the operator's RBAC has no more than that.

Every write happens under the same per-system lock as the engine's reconcile,
from a fresh read, and refreshes the engine's incident cache, so the two never
overwrite each other's changes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from airlock.adapters import delivery, kube
from airlock.adapters import metrics as m
from airlock.adapters.prometheus import ProviderError
from airlock.api import annotations as keys
from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Audience, RequestVerdict, Severity, Verb
from airlock.api.incident import (
    AIIncident,
    Drafts,
    HarmCategory,
    IncidentPhase,
    Notification,
    NotificationState,
    Postmortem,
    PostmortemState,
    ReportingObligation,
    ReportState,
)
from airlock.api.notifications import Channel, ChannelType
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain import conditions, deadlines, drafts, notices, postmortem, requests, secrets
from airlock.domain import incidents as domain_incidents
from airlock.domain.plan import Plan
from airlock.engine import incidents

if TYPE_CHECKING:  # core imports this module
    from airlock.engine.core import Engine

log = structlog.get_logger("airlock.followups")

Sender = Callable[[Channel, Mapping[str, str], delivery.Message], Awaitable[str]]

REPORTING_ON_TRACK = "ReportingOnTrack"
NOTICES_DELIVERED = "NoticesDelivered"
OPENED = "opened"
ACKNOWLEDGED = "acknowledged"
CONTAINED = "contained"
RESOLVED = "resolved"
# Events whose notice goes to internal channels only (regulators and users get the opening notice).
INTERNAL_ONLY = (ACKNOWLEDGED, CONTAINED, RESOLVED)
EVENT_TEXT = {
    OPENED: "opened",
    ACKNOWLEDGED: "acknowledged",
    CONTAINED: "contained",
    RESOLVED: "resolved",
}
POSTMORTEM_KEY = postmortem.CONFIG_MAP_KEY
DRAFT_REFS = ("draft", "configmap")
# airlock.dev/postmortem=configmap/<name>: the completed post-mortem in a ConfigMap of the responders' own.
CONFIG_MAP_REF = "configmap/"
# Values that say "no post-mortem": enough to close where none is required, refused where one is.
NO_POSTMORTEM = ("", "none", "n/a", "na", "skip", "-", "no")


@dataclass(frozen=True)
class Limits:
    tick: float = 1.0
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    max_attempts: int = 12
    send_timeout: float = 10.0
    template_check_seconds: float = 30.0
    evidence_window: float = 900.0  # seconds of monitor history before the breach in the post-mortem
    drill_timeout: float = 3600.0  # a drill nobody acknowledges ends after this, with that as a gap


def notices_configmap(incident: AIIncident) -> str:
    return drafts.current(incident, drafts.NOTICES)


def postmortem_configmap(incident: AIIncident) -> str:
    return drafts.current(incident, drafts.POSTMORTEM)


def idempotency_key(uid: str | None, name: str, channel: str | None, audience: Audience, event: str) -> str:
    """The same for every attempt of one notice; different for a re-created incident of the same name."""
    raw = f"{uid or name}/{channel or '-'}/{audience.value}/{event}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def backoff(attempts: int, limits: Limits) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 2, 4, 8, … capped."""
    return float(min(limits.backoff_max, limits.backoff_base * 2 ** max(0, attempts - 1)))


def parse_harm(value: str) -> tuple[list[HarmCategory], bool]:
    """``"b"``, ``"a,c"``, ``"c,widespread"``, ``"none"`` → (categories, widespread); ValueError otherwise."""
    harm: list[HarmCategory] = []
    widespread = False
    for part in (p.strip().lower() for p in value.replace(";", ",").split(",")):
        if not part or part == "none":
            continue
        if part == "widespread":
            widespread = True
            continue
        try:
            category = HarmCategory(part.removeprefix("art3-49-").removesuffix(")").removeprefix("("))
        except ValueError:
            raise ValueError(
                f"airlock.dev/harm: {part!r} is not an Art. 3(49) category (a, b, c, d) or 'widespread'"
            ) from None
        if category not in harm:
            harm.append(category)
    return sorted(harm), widespread


def parse_submissions(value: str) -> dict[str, str]:
    """``"gdpr-art33=DPA-1142; eu-ai-act-art73=EU-77"`` → {regime: reference}; ValueError otherwise."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        regime, sep, reference = part.partition("=")
        if not sep or not regime.strip() or not reference.strip():
            raise ValueError(f"airlock.dev/report-submitted: {part!r} is not 'regime=reference'")
        out[regime.strip()] = reference.strip()
    if not out:
        raise ValueError("airlock.dev/report-submitted: give 'regime=reference'")
    return out


def channels_of(plan: Plan | None) -> list[Channel]:
    return list(plan.channels) if plan is not None else []


def auto_send(plan: Plan | None) -> list[Audience]:
    if plan is None or plan.auto_send is None:
        return [Audience.INTERNAL]
    return list(plan.auto_send)


def wanted_events(incident: AIIncident, announced: Severity | None) -> list[str]:
    """The milestones an internal channel announces, in order."""
    status = incident.status
    assert status is not None
    events = [OPENED]
    if announced is not None and incident.spec.severity.worse_than(announced):
        events.append(f"severity-{incident.spec.severity.value}")
    if status.acknowledged_at is not None:
        events.append(ACKNOWLEDGED)
    if status.contained_at is not None:
        events.append(CONTAINED)
    if status.resolved_at is not None:
        events.append(RESOLVED)
    return events


def _severity_of(event: str) -> Severity | None:
    if event.startswith("severity-"):
        return Severity(event.removeprefix("severity-"))
    return None


def outbox(incident: AIIncident, plan: Plan | None) -> list[Notification]:
    """``status.notifications`` with every entry the incident now calls for appended (never removed).

    One entry per (channel, audience, event) that should be sent, and one ``drafted``
    entry without a channel per notified audience that is only drafted (regulator and
    users unless ``autoSend`` lists them; any audience no channel carries).  Drills
    send to internal channels only.
    """
    status = incident.status
    assert status is not None
    current = list(status.notifications)
    have = {(n.channel, n.audience, n.event) for n in current}
    policy = plan.severity_policy(incident.spec.severity) if plan is not None else None
    audiences = list(policy.notify) if policy is not None else []
    sendable = auto_send(plan)
    drill = incident.spec.drill
    name = incident.metadata.name or ""
    uid = incident.metadata.uid
    opened_at = status.detected_at
    for audience in audiences:
        # A channel carries the incident if its severities match now, or if it already announced
        # the incident (a page opened at SEV2 must also hear of the acknowledgement and the resolution).
        started = {(n.channel, n.audience) for n in current if n.channel is not None}
        carriers = [
            c
            for c in channels_of(plan)
            if audience in c.audiences
            and (not c.severities or incident.spec.severity in c.severities or (c.name, audience) in started)
            and audience in sendable
            and not (drill and audience is not Audience.INTERNAL)
        ]
        if not carriers:
            if (None, audience, OPENED) not in have:
                current.append(
                    Notification(
                        audience=audience,
                        event=OPENED,
                        state=NotificationState.DRAFTED,
                        idempotency_key=idempotency_key(uid, name, None, audience, OPENED),
                    )
                )
                have.add((None, audience, OPENED))
            continue
        for channel in carriers:
            mine = [n for n in current if n.channel == channel.name and n.audience is audience]
            announced_list = [n.severity for n in mine if n.severity is not None]
            announced = max(announced_list, key=lambda s: -s.rank) if announced_list else None
            events = wanted_events(incident, announced)
            if audience is not Audience.INTERNAL:
                events = [e for e in events if e not in INTERNAL_ONLY]
            if channel.type is ChannelType.PAGERDUTY:
                events = [e for e in events if delivery.pagerduty_action(e) is not None]
            for event in events:
                if (channel.name, audience, event) in have:
                    continue
                current.append(
                    Notification(
                        audience=audience,
                        event=event,
                        channel=channel.name,
                        severity=_severity_of(event) or incident.spec.severity,
                        state=NotificationState.DRAFTED,
                        idempotency_key=idempotency_key(uid, name, channel.name, audience, event),
                        next_attempt=opened_at,
                    )
                )
                have.add((channel.name, audience, event))
    return current


def due(notification: Notification, now: datetime.datetime) -> bool:
    if notification.channel is None:
        return False
    if notification.state in (NotificationState.DRAFTED, NotificationState.SENDING):
        return True  # sending: a previous process died mid-attempt; resend with the same key
    return (
        notification.state is NotificationState.FAILED
        and notification.next_attempt is not None
        and deadlines.utc(notification.next_attempt) <= deadlines.utc(now)
    )


def system_context(plan: Plan) -> AISystemSpec:
    """The spec as notices see it: the merged responders."""
    return plan.spec.model_copy(update={"responders": plan.responders})


@dataclass
class _Seen:
    resource_version: str | None = None
    checked_at: float = 0.0


@dataclass
class Followups:
    engine: Engine
    sender: Sender | None = None
    limits: Limits = field(default_factory=Limits)
    # The Secrets the operator may read (its RBAC's resourceNames): channels naming another are refused.
    notification_secrets: tuple[str, ...] = (secrets.DEFAULT_NOTIFICATION_SECRET,)

    def __post_init__(self) -> None:
        self.client: kube.KubeClient = self.engine.client
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._plans: dict[tuple[str, str], Plan] = {}
        self._reported: set[tuple[str, ...]] = set()
        self._templates_checked: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad object stop the loop
                log.exception("followups.sweep_failed")
            await asyncio.sleep(self.limits.tick)

    async def sweep(self) -> None:
        """One pass: every incident that changed or has something due, then template checks."""
        now = self.engine.clock()
        for key, cached in list(self.engine.incidents.items()):
            if self._needs_work(key, cached, now):
                try:
                    await self.process(*key)
                except kube.ApiError as exc:
                    log.warning("followups.api_error", namespace=key[0], incident=key[1], error=str(exc))
        for entry in list(self.engine.systems.values()):
            await self._check_templates(entry, now)

    def _needs_work(self, key: tuple[str, str], incident: AIIncident, now: datetime.datetime) -> bool:
        seen = self._seen.get(key)
        status = incident.status
        if status is None:
            return False
        if seen is None or seen.resource_version != incident.metadata.resource_version:
            return True
        if any(due(n, now) for n in status.notifications):
            return True
        start = status.detected_at
        for obligation in status.reporting:
            if obligation.state is ReportState.SUBMITTED or start is None:
                continue
            instants = deadlines.warning_instants(start, obligation.deadline)
            if any(i <= deadlines.utc(now) and w.value not in obligation.warned for w, i in instants.items()):
                return True
            m.REPORT_DEADLINE.labels(key[0], key[1], obligation.regime).set(
                (deadlines.utc(obligation.deadline) - deadlines.utc(now)).total_seconds()
            )
        # Open incidents are looked at again now and then (a policy may have changed).
        return status.phase is not IncidentPhase.CLOSED and now.timestamp() - seen.checked_at > 30.0

    def _plan(self, namespace: str, system: str) -> Plan | None:
        entry = self.engine.systems.get((namespace, system))
        if entry is not None and entry.plan is not None:
            self._plans[(namespace, system)] = entry.plan
            return entry.plan
        return self._plans.get((namespace, system))  # the system is gone: its last plan still routes notices

    async def process(self, namespace: str, name: str) -> None:
        cached = self.engine.incidents.get((namespace, name))
        if cached is None:
            return
        system = cached.spec.system
        plan = self._plan(namespace, system)
        now = self.engine.clock()
        async with self.engine.lock_for(namespace, system):
            body = await self.client.get_or_none(kube.AIINCIDENTS, namespace, name)
            if body is None:
                self.engine.incidents.pop((namespace, name), None)
                self._seen.pop((namespace, name), None)
                return
            try:
                incident = AIIncident.model_validate(body)
            except ValidationError:
                return
            if incident.status is None:
                return
            before = incident.status.dump()
            # What was read, not what our write returns: a change that lands between the two
            # (a responder's annotation) must be looked at on the next pass.
            processed = incident.metadata.resource_version
            incident = await self._classify(incident, plan, now)
            assert incident.status is not None
            self._reporting(incident, plan, now)
            await self._announce_reporting(incident, plan, now)
            # A closed incident's outbox and drafts are final: a channel added later is not told of it.
            closed_before = incident.status.phase is IncidentPhase.CLOSED
            if incident.spec.drill:
                await self._drill(incident, plan, now)
            else:
                await self._close(incident, plan, now)
            if not closed_before:
                incident.status.notifications = outbox(incident, plan)
                await self._drafts(incident, plan)
            self._delivery_condition(incident, now)
            if incident.status.dump() != before:
                incident = await self._write(incident)
            self._seen[(namespace, name)] = _Seen(processed, now.timestamp())
            assert incident.status is not None
            pending = [n.idempotency_key for n in incident.status.notifications if due(n, now)]
        for key in pending:
            if key is not None:
                await self._send(namespace, name, system, key)

    async def _write(self, incident: AIIncident) -> AIIncident:
        updated = await incidents.write_status(self.client, incident)
        self.engine.incidents[(updated.metadata.namespace or "", updated.metadata.name or "")] = updated
        return updated

    async def _event(self, incident: AIIncident, type_: str, reason: str, message: str, *, once: str = "") -> None:
        if once:
            mark = (incident.metadata.namespace or "", incident.metadata.name or "", reason, once)
            if mark in self._reported:
                return
            self._reported.add(mark)
        await self.client.event(_incident_ref(incident), type_, reason, message)
        entry = self.engine.systems.get((incident.metadata.namespace or "", incident.spec.system))
        if entry is not None and type_ == "Warning":
            await self.client.event(entry.ref(), type_, reason, f"{incident.metadata.name}: {message}")

    async def _permitted(
        self, incident: AIIncident, plan: Plan | None, verb: Verb, annotation: str, value: str
    ) -> tuple[bool, str | None]:
        """Whether whoever set ``annotation`` to ``value`` may ``verb`` (and who) — judged once per value.

        The judgement is bound to the identity in requested-by when the value is first seen and kept
        in the incident's status (SPEC §7): a refused value stays refused, whoever annotates later.
        """
        status = incident.status
        assert status is not None
        binding, new = requests.bound(
            status.requests,
            annotation=annotation,
            value=value,
            caller=self.engine.caller(incident.metadata.annotations),
            verbs=[verb],
            responders=plan.responders if plan is not None else [],
            now=self.engine.clock(),
        )
        if new:
            status.requests = requests.add(
                status.requests, binding, incident.metadata.annotations, keys.INCIDENT_CONTROL
            )
        if binding.verdict is not RequestVerdict.ACCEPTED:
            if new:
                await self._event(incident, "Warning", "UnauthorizedRequest", f"{annotation} ignored: {binding.reason}")
            return False, None
        return True, binding.by

    # -------------------------------------------------------- classification

    async def _classify(self, incident: AIIncident, plan: Plan | None, now: datetime.datetime) -> AIIncident:
        value = incident.metadata.annotations.get(keys.HARM)
        if value is None or incident.spec.drill:
            return incident
        try:
            harm, widespread = parse_harm(value)
        except ValueError as exc:
            await self._event(incident, "Warning", "HarmClassificationInvalid", str(exc), once=value)
            return incident
        if harm == sorted(incident.spec.harm) and widespread == incident.spec.widespread:
            return incident
        allowed, who = await self._permitted(incident, plan, Verb.REPORT, keys.HARM, value)
        if not allowed:
            return incident
        status = incident.status
        incident = await incidents.patch_spec(
            self.client, incident, {"harm": [h.value for h in harm], "widespread": widespread}
        )
        incident.status = status
        text = ", ".join(f"({h.value}) {notices.HARM_TEXT[h]}" for h in harm) or "not a serious incident"
        if widespread:
            text += "; widespread infringement"
        incidents.note(incident, now, "HarmClassified", f"Art. 3(49): {text}", who)
        await self._event(incident, "Normal", "HarmClassified", f"Art. 3(49): {text} (by {who})")
        return incident

    # -------------------------------------------------------------- reporting

    def _reporting(self, incident: AIIncident, plan: Plan | None, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        if plan is None or status.detected_at is None:
            return
        if status.phase is IncidentPhase.CLOSED and not status.reporting:
            return  # a regulatory profile added later does not start clocks for incidents already closed
        computed = deadlines.obligations(incident, plan.spec, widespread=incident.spec.widespread)
        old = {o.regime: o for o in status.reporting}
        merged = []
        for obligation in deadlines.merge(status.reporting, computed):
            previous = old.get(obligation.regime)
            if previous is not None and previous.deadline == obligation.deadline:
                obligation = obligation.model_copy(update={"warned": previous.warned})
            merged.append(obligation)
        status.reporting = merged

    async def _announce_reporting(self, incident: AIIncident, plan: Plan | None, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        namespace, name = incident.metadata.namespace or "", incident.metadata.name or ""
        value = incident.metadata.annotations.get(keys.REPORT_SUBMITTED)
        if value is not None and status.reporting:
            await self._submissions(incident, plan, value, now)
        if status.detected_at is None:
            return
        start = status.detected_at
        worst: tuple[int, str, str] | None = None
        rank = {deadlines.ClockWarning.HALF: 1, deadlines.ClockWarning.NINETY: 2, deadlines.ClockWarning.OVERDUE: 3}
        updated: list[ReportingObligation] = []
        for obligation in status.reporting:
            check = deadlines.check(obligation, start=start, now=now, previous=None)
            fresh = [w for w in check.crossed if w.value not in obligation.warned]
            obligation = check.obligation.model_copy(update={"warned": [*obligation.warned, *(w.value for w in fresh)]})
            for warning in fresh:
                await self._event(incident, "Warning", warning.value, check.message)
                log.warning("report.deadline", namespace=namespace, incident=name, warning=warning.value)
            if check.state is ReportState.SUBMITTED:
                with contextlib.suppress(KeyError):
                    m.REPORT_DEADLINE.remove(namespace, name, obligation.regime)
            else:
                m.REPORT_DEADLINE.labels(namespace, name, obligation.regime).set(check.seconds_left)
                reached = [w for w in check.crossed] + [
                    deadlines.ClockWarning(w)
                    for w in obligation.warned
                    if w in deadlines.ClockWarning._value2member_map_
                ]
                level = max((rank[w] for w in reached), default=0)
                if level and (worst is None or level > worst[0]):
                    worst = (level, _reason(level), check.message)
            updated.append(obligation)
        status.reporting = updated
        gen = incident.metadata.generation
        if not status.reporting:
            status.conditions = conditions.set_condition(
                status.conditions, REPORTING_ON_TRACK, True, "NoReportsDue", "no regulatory report is owed", gen, now
            )
        elif worst is not None:
            status.conditions = conditions.set_condition(
                status.conditions, REPORTING_ON_TRACK, False, worst[1], worst[2], gen, now
            )
        else:
            pending = [o for o in status.reporting if o.state is not ReportState.SUBMITTED]
            message = (
                "; ".join(
                    deadlines.check(o, start=start, now=now, previous=now).message
                    for o in sorted(pending, key=lambda o: o.deadline)
                )
                or "every report submitted"
            )
            status.conditions = conditions.set_condition(
                status.conditions, REPORTING_ON_TRACK, True, "OnTrack", message, gen, now
            )

    async def _submissions(self, incident: AIIncident, plan: Plan | None, value: str, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        try:
            submitted = parse_submissions(value)
        except ValueError as exc:
            await self._event(incident, "Warning", "ReportSubmissionInvalid", str(exc), once=value)
            return
        by_regime = {o.regime: o for o in status.reporting}
        todo = {
            regime: ref
            for regime, ref in submitted.items()
            if regime not in by_regime
            or by_regime[regime].state is not ReportState.SUBMITTED
            or by_regime[regime].reference != ref
        }
        if not todo:
            return
        unknown = [r for r in todo if r not in by_regime]
        if unknown:
            await self._event(
                incident,
                "Warning",
                "ReportSubmissionInvalid",
                f"airlock.dev/report-submitted: {', '.join(unknown)} is not owed by this incident "
                f"(owed: {', '.join(by_regime)})",
                once=value,
            )
        todo = {r: ref for r, ref in todo.items() if r in by_regime}
        if not todo:
            return
        allowed, who = await self._permitted(incident, plan, Verb.REPORT, keys.REPORT_SUBMITTED, value)
        if not allowed:
            return
        out = []
        for obligation in status.reporting:
            if obligation.regime in todo:
                obligation = deadlines.submit(obligation, todo[obligation.regime]).model_copy(
                    update={"submitted_at": now, "submitted_by": who}
                )
                title = deadlines.TITLES.get(obligation.regime, obligation.regime)
                incidents.note(incident, now, "ReportSubmitted", f"{title}: {obligation.reference}", who)
                await self._event(incident, "Normal", "ReportSubmitted", f"{title}: {obligation.reference} (by {who})")
            out.append(obligation)
        status.reporting = out

    # ---------------------------------------------------------------- notices

    async def _template_body(self, namespace: str, plan: Plan, audience: Audience) -> tuple[str | None, str | None]:
        """(ConfigMap body, error) of the audience's override, if it is a ConfigMap reference."""
        template = plan.templates.get(audience)
        if template is None or template.config_map_ref is None:
            return None, None
        ref = template.config_map_ref
        body = await self.client.get_or_none(kube.CONFIGMAPS, namespace, ref.name)
        data = (body or {}).get("data") or {}
        if ref.key not in data:
            where = f"templates.{audience.value}.configMapRef"
            what = "ConfigMap not found" if body is None else f"key {ref.key!r} not found"
            return None, f"{where}: {what} ({namespace}/{ref.name}); the shipped default is used"
        return str(data[ref.key]), None

    async def render(
        self, incident: AIIncident, plan: Plan, audience: Audience
    ) -> tuple[list[notices.Notice], str | None]:
        """The audience's notices for ``incident`` now; on a template error, the defaults and the error."""
        status = incident.status
        assert status is not None
        namespace = incident.metadata.namespace or ""
        stable = max([status.detected_at, *(e.at for e in status.timeline)], key=lambda t: deadlines.utc(t) if t else 0)
        context = notices.build_context(
            incident, incident.spec.system, system_context(plan), status.reporting, now=stable or self.engine.clock()
        )
        body, error = await self._template_body(namespace, plan, audience)
        try:
            return notices.render(audience, context, plan.templates.get(audience), config_map_body=body), error
        except notices.NoticeError as exc:
            return notices.render(audience, context, None), f"{exc}; the shipped default is used"

    async def _drafts(self, incident: AIIncident, plan: Plan | None) -> None:
        """Keep ``<incident>-notices`` (owned by the incident) equal to the current drafts."""
        status = incident.status
        assert status is not None
        if plan is None:
            return
        policy = plan.severity_policy(incident.spec.severity)
        audiences = sorted(set(policy.notify) if policy is not None else set())
        if not audiences:
            return
        data: dict[str, str] = {}
        errors: list[str] = []
        for audience in audiences:
            rendered, error = await self.render(incident, plan, audience)
            if error:
                errors.append(error)
            for notice in rendered:
                banner = "[DRILL] " if incident.spec.drill else ""
                data[f"{notice.kind.value}.md"] = f"Subject: {banner}{notice.subject}\n\n{notice.body}"
        for error in errors:
            await self._event(incident, "Warning", "TemplateInvalid", error, once=error)
        name = await self._draft(incident, drafts.NOTICES, data)
        status.drafts = (status.drafts or Drafts()).model_copy(update={"notices": name})

    async def _draft(self, incident: AIIncident, kind: str, data: dict[str, str]) -> str:
        """Store ``data`` as an immutable ConfigMap named by its content; its name.

        Create-only: the same content has the same name, so an existing one (409) is
        this very draft — written before a crash, or by an earlier pass.
        """
        namespace = incident.metadata.namespace or ""
        name = drafts.name(incident.metadata.name or "", kind, data)
        recorded = getattr(incident.status.drafts, kind, None) if incident.status and incident.status.drafts else None
        if recorded == name:
            return name
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    keys.SYSTEM_LABEL: incident.spec.system,
                    keys.INCIDENT_LABEL: incident.metadata.name or "",
                    keys.MANAGED_BY_LABEL: "airlock",
                },
                "ownerReferences": [
                    {
                        "apiVersion": incident.api_version,
                        "kind": "AIIncident",
                        "name": incident.metadata.name,
                        "uid": incident.metadata.uid,
                        "blockOwnerDeletion": False,
                        "controller": True,
                    }
                ],
            },
            "data": data,
            "immutable": True,
        }
        with contextlib.suppress(kube.Conflict):
            await self.client.create(kube.CONFIGMAPS, namespace, body)
        return name

    async def _check_templates(self, entry: Any, now: datetime.datetime) -> None:
        """Every ``template_check_seconds``: a broken override is reported on the AISystem (NoticesReady)."""
        plan: Plan | None = entry.plan
        key = entry.key
        if plan is None:
            return
        last = self._templates_checked.get(key, 0.0)
        if now.timestamp() - last < self.limits.template_check_seconds and last:
            return
        self._templates_checked[key] = now.timestamp()
        errors = notices.validate_templates(
            {a: t for a, t in plan.templates.items() if t.body is not None or t.subject}
        )
        for audience in plan.templates:
            body, error = await self._template_body(entry.namespace, plan, audience)
            if error:
                errors.append(error)
            elif body is not None:
                problem = notices.validate_template(body, audience, "configMapRef")
                if problem:
                    errors.append(problem)
        refused = [r.message(self.notification_secrets) for r in self._secret_refusals(plan)]
        error = "; ".join([*refused, *errors]) or None
        if error != entry.notices_error:
            entry.notices_error = error
            entry.notices_reason = "SecretNotAllowed" if refused else "TemplateInvalid"
            for message in refused:
                await self.client.event(entry.ref(), "Warning", "SecretNotAllowed", message)
                log.warning("channels.secret_not_allowed", namespace=entry.namespace, name=entry.name, error=message)
            if errors:
                await self.client.event(entry.ref(), "Warning", "TemplateInvalid", "; ".join(errors))
                log.warning("templates.invalid", namespace=entry.namespace, name=entry.name, error=errors)
            await self.engine.reconcile(entry)

    def _secret_refusals(self, plan: Plan) -> list[secrets.Refusal]:
        own = plan.spec.notifications.channels if plan.spec.notifications else []
        policy = self.engine.policies.get(plan.policy) if plan.policy else None
        inherited = []
        if isinstance(policy, ContainmentPolicySpec) and policy.notifications is not None:
            inherited = policy.notifications.channels
        return secrets.refusals(own, inherited, self.notification_secrets, policy=plan.policy)

    # --------------------------------------------------------------- delivery

    def _delivery_condition(self, incident: AIIncident, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        sent = [n for n in status.notifications if n.channel is not None]
        gave_up = [n for n in sent if n.state is NotificationState.FAILED and n.next_attempt is None]
        retrying = [n for n in sent if n.state is NotificationState.FAILED and n.next_attempt is not None]
        gen = incident.metadata.generation
        if gave_up:
            value, reason = False, "DeliveryFailed"
            message = "; ".join(f"{n.channel}/{n.audience.value}/{n.event}: {n.last_error}" for n in gave_up)
        elif retrying:
            value, reason = False, "Retrying"
            message = "; ".join(f"{n.channel}/{n.audience.value}/{n.event}: {n.last_error}" for n in retrying)
        elif any(n.state is not NotificationState.SENT for n in sent):
            value, reason, message = True, "Sending", "notices are being delivered"
        else:
            value, reason = True, "Delivered"
            message = f"{len(sent)} notice(s) delivered" if sent else "no channel delivers this incident's notices"
        status.conditions = conditions.set_condition(
            status.conditions, NOTICES_DELIVERED, value, reason, message, gen, now
        )

    async def _secret(self, namespace: str, channel: Channel) -> dict[str, str]:
        if channel.secret_ref is None:
            return {}
        if channel.secret_ref.name not in self.notification_secrets:
            # Never asked: RBAC would answer 403. The AISystem already says why (SecretNotAllowed).
            allowed = ", ".join(self.notification_secrets) or "none"
            raise delivery.DeliveryError(
                f"channel {channel.name}: Secret {channel.secret_ref.name!r} is not one airlock may read "
                f"(allowed: {allowed})",
                retryable=False,
            )
        body = await self.client.get_or_none(kube.SECRETS, namespace, channel.secret_ref.name)
        if body is None:
            raise delivery.DeliveryError(f"Secret {namespace}/{channel.secret_ref.name} not found", retryable=True)
        out = {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
        out.update(body.get("stringData") or {})
        return out

    async def _send(self, namespace: str, name: str, system: str, key: str) -> None:
        plan = self._plan(namespace, system)
        lock = self.engine.lock_for(namespace, system)
        async with lock:
            incident = await self._fresh(namespace, name)
            if incident is None or incident.status is None:
                return
            now = self.engine.clock()
            entry = next((n for n in incident.status.notifications if n.idempotency_key == key), None)
            if entry is None or not due(entry, now):
                return
            entry.state = NotificationState.SENDING
            entry.attempts += 1
            entry.next_attempt = None
            incident = await self._write(incident)  # persisted before the attempt: a crash resends, never loses
            channel = next((c for c in channels_of(plan) if c.name == entry.channel), None)
            message: delivery.Message | None = None
            problem: delivery.DeliveryError | None = None
            if channel is None or plan is None:
                problem = delivery.DeliveryError(
                    f"channel {entry.channel!r} is no longer declared by AISystem {system}", retryable=True
                )
            else:
                rendered, _ = await self.render(incident, plan, entry.audience)
                message = self._message(incident, entry, rendered)
        secret: dict[str, str] = {}
        receipt = ""
        if problem is None and channel is not None and message is not None:
            try:
                secret = await self._secret(namespace, channel)
                sender = self.sender or _default_sender(self.limits.send_timeout, self.client.fence)
                receipt = await sender(channel, secret, message)
            except delivery.DeliveryError as exc:
                problem = exc
            except Exception as exc:  # a transport bug must not lose the notice
                problem = delivery.DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
        kind = channel.type.value if channel is not None else "unknown"
        async with lock:
            incident = await self._fresh(namespace, name)
            if incident is None or incident.status is None:
                return
            now = self.engine.clock()
            entry = next((n for n in incident.status.notifications if n.idempotency_key == key), None)
            if entry is None:
                return
            if problem is None:
                entry.state = NotificationState.SENT
                entry.sent_at = now
                entry.last_error = None
                m.NOTIFICATIONS.labels(kind, entry.audience.value, "sent").inc()
                log.info(
                    "notice.sent",
                    namespace=namespace,
                    incident=name,
                    channel=entry.channel,
                    milestone=entry.event,
                    receipt=receipt,
                )
            else:
                entry.state = NotificationState.FAILED
                entry.last_error = str(problem)[:512]
                give_up = not problem.retryable or entry.attempts >= self.limits.max_attempts
                wait = backoff(entry.attempts, self.limits)
                entry.next_attempt = None if give_up else now + datetime.timedelta(seconds=wait)
                m.NOTIFICATIONS.labels(kind, entry.audience.value, "gave-up" if give_up else "failed").inc()
                log.warning(
                    "notice.failed",
                    namespace=namespace,
                    incident=name,
                    channel=entry.channel,
                    milestone=entry.event,
                    attempts=entry.attempts,
                    error=entry.last_error,
                    retry_in=None if give_up else wait,
                )
                if give_up:
                    await self._event(
                        incident,
                        "Warning",
                        "NotificationFailed",
                        f"{entry.channel}/{entry.audience.value}/{entry.event}: gave up after {entry.attempts} "
                        f"attempt(s): {entry.last_error}",
                    )
            self._delivery_condition(incident, now)
            incident = await self._write(incident)

    def _message(self, incident: AIIncident, entry: Notification, rendered: list[notices.Notice]) -> delivery.Message:
        event = entry.event or OPENED
        severity = _severity_of(event)
        what = f"severity raised to {severity.value}" if severity else EVENT_TEXT.get(event, event)
        subject = rendered[0].subject if rendered else incident.metadata.name or ""
        body = "\n\n---\n\n".join(n.body for n in rendered)
        return delivery.Message(
            key=entry.idempotency_key or "",
            namespace=incident.metadata.namespace or "",
            incident=incident.metadata.name or "",
            system=incident.spec.system,
            audience=entry.audience.value,
            event=event,
            severity=(entry.severity or incident.spec.severity).value,
            subject=f"{'[DRILL] ' if incident.spec.drill else ''}[{what}] {subject}",
            body=body,
            drill=incident.spec.drill,
        )

    async def _fresh(self, namespace: str, name: str) -> AIIncident | None:
        body = await self.client.get_or_none(kube.AIINCIDENTS, namespace, name)
        if body is None:
            return None
        try:
            return AIIncident.model_validate(body)
        except ValidationError:
            return None

    # ------------------------------------------------------------ post-mortem

    async def _close(self, incident: AIIncident, plan: Plan | None, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        ref = incident.metadata.annotations.get(keys.POSTMORTEM)
        if status.phase is not IncidentPhase.RESOLVED:
            if ref is not None and status.phase is not IncidentPhase.CLOSED:
                await self._event(
                    incident,
                    "Warning",
                    "PostmortemTooEarly",
                    f"airlock.dev/postmortem={ref!r} noted: the incident is {(status.phase or IncidentPhase.OPEN).value}; "
                    "it closes once resolved",
                    once=ref,
                )
            return
        name = incident.metadata.name or ""
        status.postmortem = status.postmortem or Postmortem()
        if not any(e.type == "PostmortemDrafted" for e in status.timeline):
            text = postmortem.draft(incident, plan.spec if plan else None, await self._evidence(incident, plan))
            draft = await self._draft(incident, drafts.POSTMORTEM, {POSTMORTEM_KEY: text})
            status.drafts = (status.drafts or Drafts()).model_copy(update={"postmortem": draft})
            incidents.note(incident, now, "PostmortemDrafted", f"draft in ConfigMap {draft}")
        if ref is None:
            return
        policy = plan.severity_policy(incident.spec.severity) if plan is not None else None
        required = policy.postmortem_required if policy is not None else True
        allowed, who = await self._permitted(incident, plan, Verb.ACKNOWLEDGE, keys.POSTMORTEM, ref)
        if not allowed:
            return
        if required and ref.strip().lower() in NO_POSTMORTEM:
            await self._event(
                incident,
                "Warning",
                "PostmortemRequired",
                f"airlock.dev/postmortem={ref!r} refused: a post-mortem is required at {incident.spec.severity.value}; "
                f"answer the draft (airlock postmortem {name}) and hand it in as configmap/<name>, or give the "
                "document's reference",
                once=ref,
            )
            return
        in_cluster = self._in_cluster_postmortem(incident, ref)
        if required and in_cluster is not None:
            # Read now: the text the responders completed (their own ConfigMap), or the draft itself.
            found = await self.client.get_or_none(kube.CONFIGMAPS, incident.metadata.namespace, in_cluster)
            completed = ((found or {}).get("data") or {}).get(POSTMORTEM_KEY)
            if found is None or not isinstance(completed, str):
                await self._event(
                    incident,
                    "Warning",
                    "PostmortemIncomplete",
                    f"airlock.dev/postmortem={ref!r} refused: ConfigMap {in_cluster} "
                    f"{'not found' if found is None else f'has no key {POSTMORTEM_KEY}'} "
                    f"in namespace {incident.metadata.namespace}",
                    once=ref,
                )
                return
            missing = postmortem.unanswered(completed)
            if missing:
                how = (
                    ""
                    if ref.strip().lower().startswith(CONFIG_MAP_REF)
                    else f" (the draft is read-only: airlock postmortem {name} -o pm.md, answer, "
                    f"kubectl create configmap {name}-pm --from-file={POSTMORTEM_KEY}=pm.md, "
                    f"then set airlock.dev/postmortem=configmap/{name}-pm)"
                )
                await self._event(
                    incident,
                    "Warning",
                    "PostmortemIncomplete",
                    f"airlock.dev/postmortem={ref!r} refused: unanswered in ConfigMap {in_cluster}: "
                    + "; ".join(missing)
                    + how,
                    once=f"{ref}/{len(missing)}",
                )
                return
        status.postmortem = Postmortem(state=PostmortemState.COMPLETE, ref=ref)
        incidents.note(incident, now, "PostmortemCompleted", f"post-mortem: {ref}", who)
        self._closed(incident, now, f"post-mortem complete ({ref})", who)
        await self._event(incident, "Normal", "IncidentClosed", f"post-mortem complete: {ref} (by {who})")

    @staticmethod
    def _in_cluster_postmortem(incident: AIIncident, ref: str) -> str | None:
        """The ConfigMap ``ref`` points at (``configmap/<name>``, or ``draft``: the operator's draft), if any."""
        value = ref.strip()
        if value.lower().startswith(CONFIG_MAP_REF):
            return value[len(CONFIG_MAP_REF) :].strip() or None
        if value.lower() in (*DRAFT_REFS, postmortem_configmap(incident)):
            return postmortem_configmap(incident)
        return None

    def _closed(self, incident: AIIncident, now: datetime.datetime, why: str, who: str | None = "airlock") -> None:
        status = incident.status
        assert status is not None
        status.phase = IncidentPhase.CLOSED
        status.closed_at = now
        incidents.note(incident, now, "Closed", why, who)

    async def _evidence(self, incident: AIIncident, plan: Plan | None) -> list[postmortem.Evidence]:
        """Monitor values around the breach: one small range query per monitor of the incident's failure mode."""
        provider = self.engine.provider
        status = incident.status
        if provider is None or plan is None or status is None or status.detected_at is None:
            return []
        start = deadlines.utc(status.detected_at) - datetime.timedelta(seconds=self.limits.evidence_window)
        end = deadlines.utc(status.resolved_at or self.engine.clock())
        step = max(1.0, (end - start).total_seconds() / 120)
        out = []
        trigger = incident.spec.trigger
        for resolved in plan.monitors:
            relevant = resolved.name == trigger.monitor or resolved.monitor.failure_mode is incident.spec.failure_mode
            if not relevant or resolved.baseline_query is not None:
                continue
            try:
                series = await provider.range(resolved.query, start, end, step=step)
            except ProviderError as exc:
                log.warning("postmortem.evidence_unavailable", incident=incident.metadata.name, error=str(exc))
                continue
            if resolved.match is not None:
                series = [s for s in series if all(s.labels.get(k) == v for k, v in resolved.match.items())]
            if len(series) != 1:
                continue
            worst = min(resolved.monitor.thresholds, key=lambda t: t.severity.rank)
            out.append(
                postmortem.Evidence(
                    monitor=resolved.name,
                    query=resolved.query,
                    condition=worst.condition(),
                    threshold=worst.value,
                    points=series[0].points,
                )
            )
        return out

    # ------------------------------------------------------------------ drills

    async def _drill(self, incident: AIIncident, plan: Plan | None, now: datetime.datetime) -> None:
        status = incident.status
        assert status is not None
        if status.phase in (IncidentPhase.RESOLVED, IncidentPhase.CLOSED) or status.acknowledged_at is not None:
            return
        value = incident.metadata.annotations.get(keys.ACKNOWLEDGE)
        if value is None:
            await self._drill_expiry(incident, now)
            return
        allowed, who = await self._permitted(incident, plan, Verb.ACKNOWLEDGE, keys.ACKNOWLEDGE, value)
        if not allowed:
            await self._drill_expiry(incident, now)
            return
        status.acknowledged_at = now
        status.acknowledged_by = who
        seconds = domain_incidents.time_to_contain(status.detected_at or now, now)
        if status.drill is not None:
            status.drill = status.drill.model_copy(update={"time_to_acknowledge_seconds": seconds})
        incidents.note(incident, now, "Acknowledged", f"drill acknowledged after {seconds:g} s", who)
        status.phase = IncidentPhase.RESOLVED
        status.resolved_at = now
        incidents.note(incident, now, "Resolved", "drill complete: the workload was never touched", who)
        self._closed(incident, now, "drill closed (drills need no post-mortem)", who)
        await self._event(incident, "Normal", "DrillAcknowledged", f"acknowledged by {who} after {seconds:g} s")

    async def _drill_expiry(self, incident: AIIncident, now: datetime.datetime) -> None:
        """A drill nobody acknowledged within ``drill_timeout`` ends, recording that as its finding."""
        status = incident.status
        assert status is not None
        started = status.detected_at
        if started is None or (deadlines.utc(now) - deadlines.utc(started)).total_seconds() < self.limits.drill_timeout:
            return
        gap = f"nobody acknowledged the drill within {_span(self.limits.drill_timeout)}"
        if status.drill is not None and gap not in status.drill.gaps:
            status.drill = status.drill.model_copy(update={"gaps": [*status.drill.gaps, gap]})
        incidents.note(incident, now, "DrillGap", gap)
        status.phase = IncidentPhase.RESOLVED
        status.resolved_at = now
        incidents.note(incident, now, "Resolved", "drill expired unacknowledged: the workload was never touched")
        self._closed(incident, now, "drill closed unacknowledged")
        await self._event(incident, "Warning", "DrillUnacknowledged", gap)


def _span(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def _reason(level: int) -> str:
    return {1: "HalfElapsed", 2: "NinetyPercentElapsed", 3: "Overdue"}[level]


def _incident_ref(incident: AIIncident) -> dict[str, Any]:
    return {
        "apiVersion": incident.api_version,
        "kind": "AIIncident",
        "metadata": {
            "name": incident.metadata.name,
            "namespace": incident.metadata.namespace,
            "uid": incident.metadata.uid,
        },
    }


def _default_sender(timeout: float, fence: kube.Fence | None) -> Sender:
    async def send(channel: Channel, secret: Mapping[str, str], message: delivery.Message) -> str:
        return await delivery.deliver(channel, secret, message, timeout=timeout, fence=fence)

    return send
