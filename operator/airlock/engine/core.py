"""The engine: one object that owns the systems, their incidents and every write airlock makes.

Kopf handlers call ``upsert_*``/``remove_*``/``poke`` on events; the scheduler
calls :meth:`Engine.reconcile` with fresh samples.  Each system is reconciled
under its own lock, so an annotation event and an evaluation never interleave
their writes.  Decisions come from ``airlock.domain.decisions.decide``; this
module only carries them out and reports honestly (status, conditions, Events,
incident timeline, metrics).
"""

from __future__ import annotations

import asyncio
import datetime
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from airlock.adapters import kube
from airlock.adapters import metrics as m
from airlock.adapters.prometheus import PrometheusProvider, ProviderError
from airlock.api import annotations as keys
from airlock.api import errors
from airlock.api.aisystem import (
    AISystemSpec,
    AISystemStatus,
    Containment,
    MonitorState,
    MonitorStatus,
    Phase,
    ReleaseApproval,
)
from airlock.api.common import Action, ControlRequest, FailureMode, RequestVerdict, Severity, Verb
from airlock.api.incident import AIIncident, IncidentPhase, Trigger, TriggerType
from airlock.api.matrix import Threshold
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain import authority, conditions, drills, evaluation, requests, transitions
from airlock.domain import containment as domain_containment
from airlock.domain import incidents as domain_incidents
from airlock.domain.decisions import Decision, OpenIncident, Situation, classify, decide, release_blockers
from airlock.domain.errors import SpecError
from airlock.domain.plan import Plan, ResolvedMonitor, build_plan
from airlock.engine import incidents, targets
from airlock.engine.state import SystemEntry

log = structlog.get_logger("airlock.engine")

Clock = Callable[[], datetime.datetime]

# How often one reconcile starts over after a 409 Conflict before waiting for the next cycle.
CONFLICT_ATTEMPTS = 3


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Settings:
    # Value-only status changes are written at most this often; state changes at once.
    status_refresh_seconds: float = 30.0
    # …and at most this many such writes per second over all systems: past 1,500 systems the
    # refresh period stretches (10,000 systems: every 200 s) rather than the API calls growing.
    status_refresh_writes_per_second: float = 50.0
    requested_by_groups_annotation: str = "airlock.dev/requested-by-groups"


def _validation_message(exc: ValidationError, prefix: str) -> tuple[str, str]:
    """The first error as (field, message), in the API server's notation (``spec.monitors[0].interval``)."""
    path, sep, message = errors.describe(exc)[0].partition(": ")
    if not sep:
        return prefix, path
    return (f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"), message


class Engine:
    def __init__(
        self,
        client: kube.KubeClient,
        *,
        clock: Clock = utcnow,
        settings: Settings | None = None,
        provider: PrometheusProvider | None = None,
        acting: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.clock = clock
        self.settings = settings or Settings()
        # Leader election: a standby keeps its caches warm but reconciles nothing (engine.leadership).
        self.acting: Callable[[], bool] = acting or (lambda: True)
        self.systems: dict[tuple[str, str], SystemEntry] = {}
        self.policies: dict[str, ContainmentPolicySpec | SpecError] = {}
        self.incidents: dict[tuple[str, str], AIIncident] = {}
        self.changed = asyncio.Event()  # wakes the scheduler when systems change
        # Targets the watch has shown marked airlock.dev/contained-by (a standby's too): what a new
        # leader checks for a containment its predecessor applied but could not record.
        self.marked_targets: set[tuple[str, str, str]] = set()
        # One lock per (namespace, system), outliving the system's entry: its incidents are written under it too.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock_for(self, namespace: str, system: str) -> asyncio.Lock:
        """The lock under which everything about this system and its incidents is written."""
        return self._locks.setdefault((namespace, system), asyncio.Lock())

    # ----------------------------------------------------------------- inputs

    async def upsert_policy(self, name: str, body: dict[str, Any]) -> None:
        try:
            self.policies[name] = ContainmentPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            field, message = _validation_message(exc, "spec")
            self.policies[name] = SpecError(f"ContainmentPolicy {name} {field}", message)
        await self._replan(
            e for e in self.systems.values() if e.spec and e.spec.policy_ref and e.spec.policy_ref.name == name
        )

    async def remove_policy(self, name: str) -> None:
        self.policies.pop(name, None)
        await self._replan(
            e for e in self.systems.values() if e.spec and e.spec.policy_ref and e.spec.policy_ref.name == name
        )

    async def _replan(self, entries: Iterable[SystemEntry]) -> None:
        for entry in list(entries):
            self._plan(entry)
            await self.reconcile(entry)
        self.changed.set()

    async def upsert_system(self, body: dict[str, Any]) -> SystemEntry:
        meta = body.get("metadata") or {}
        key = (meta["namespace"], meta["name"])
        entry = self.systems.get(key)
        if entry is None:
            entry = SystemEntry(namespace=key[0], name=key[1], body=body, lock=self.lock_for(*key))
            entry.refresh_phase = zlib.crc32(f"{key[0]}/{key[1]}".encode()) / 2**32
            stale = self._load_status(entry)
            self.systems[key] = entry
            if stale is not None and self.acting():
                await self.client.event(
                    entry.ref(),
                    "Warning",
                    "ReleaseIgnored",
                    f"airlock.dev/release={stale!r} was already set when the AISystem was created; "
                    "set a new value to release",
                )
        else:
            before = entry.body
            if body.get("status") is not None and body.get("status") == entry.written:
                # Our own write echoed back: keep one copy of it, not two (10,000 systems: 70 MB).
                body["status"] = entry.written
            entry.body = body
            if _same_intent(before, body):
                return entry  # our own status write echoed back by the watch: nothing to do
        self._plan(entry)
        self.changed.set()
        await self.reconcile(entry)
        return entry

    @staticmethod
    def _load_status(entry: SystemEntry) -> str | None:
        """Take the status from the object itself; returns a release annotation to ignore, if any."""
        body = entry.body
        try:
            entry.status = AISystemStatus.model_validate(body.get("status") or {})
        except ValidationError:
            entry.status = AISystemStatus()
        written = entry.status.dump()
        entry.written = body["status"] if written == body.get("status") else written  # one copy, as above
        entry.written_at = None
        stale: str | None = ((body.get("metadata") or {}).get("annotations") or {}).get(keys.RELEASE)
        if not body.get("status") and stale is not None:
            # A release annotation on an object airlock has never seen (a GitOps re-create
            # from a manifest that kept it) is not a request: acting on it could silently
            # re-enable a model that the re-created system is about to adopt as contained.
            entry.status.last_handled_release = stale
            return stale
        return None

    def resync(self) -> None:
        """Start a term as leader from the watched objects, as a restart would (no I/O, no await).

        A standby's cache holds every object as last watched but no status of its own
        making; a replica that led before may hold statuses it could not write.  Either
        way the objects' own status is the truth, every target the watch saw marked as
        contained is checked for adoption once more, and every monitor is due at once.
        """
        now = self.clock()
        for entry in self.systems.values():
            self._load_status(entry)
            # As written now: a change of state is written at once, values with their refresh
            # (not 10,000 status writes in the first cycle of a term).
            entry.written_at = now
            # The targets' watch ran all along: only a target it saw marked needs reading again
            # (not 10,000 GETs in the first cycle of a term).
            target = entry.spec.target if entry.spec is not None else None
            entry.adoption_checked = target is not None and (
                (entry.namespace, target.kind.value, target.name) not in self.marked_targets
            )
            entry.target_missing = None
            entry.due = dict.fromkeys(entry.due, now.timestamp())
        self.changed.set()

    def remove_system(self, namespace: str, name: str) -> None:
        # Deliberately no restore: deleting an AISystem never re-enables a contained
        # model.  The target keeps airlock.dev/contained-by and the saved state.
        self.systems.pop((namespace, name), None)
        self.changed.set()

    async def upsert_incident(self, body: dict[str, Any]) -> None:
        try:
            incident = AIIncident.model_validate(body)
        except ValidationError:
            return
        key = (incident.metadata.namespace or "", incident.metadata.name or "")
        previous = self.incidents.get(key)
        if previous is not None and _older(incident.metadata.resource_version, previous.metadata.resource_version):
            return  # a late watch event: the cache already holds what a write of ours returned
        self.incidents[key] = incident
        before = previous.metadata.annotations if previous else {}
        if before != incident.metadata.annotations:
            entry = self.systems.get((key[0], incident.spec.system))
            if entry is not None:
                await self.reconcile(entry)

    async def target_changed(self, namespace: str, kind: str, name: str) -> None:
        # Only targets marked airlock.dev/contained-by arrive here (the handlers' filter).
        self.marked_targets.add((namespace, kind, name))
        for entry in list(self.systems.values()):
            spec = entry.spec
            ours = entry.namespace == namespace and spec is not None and targets.concerns(spec, kind, name)
            if not ours:
                continue
            if entry.status.containment is not None and entry.status.containment.active:
                await self.reconcile(entry)
            elif entry.adoption_checked:
                # Marked contained but not recorded: a leader that died between the two writes
                # (its successor may see this only now), or a re-created object. Look once more.
                entry.adoption_checked = False
                await self.reconcile(entry)

    def _plan(self, entry: SystemEntry) -> None:
        entry.error = None
        entry.plan = None
        try:
            entry.spec = AISystemSpec.model_validate(entry.body.get("spec") or {})
        except ValidationError as exc:
            field, message = _validation_message(exc, "spec")
            entry.spec = None
            entry.error = SpecError(field, message)
            return
        policy: ContainmentPolicySpec | None = None
        if entry.spec.policy_ref is not None:
            found = self.policies.get(entry.spec.policy_ref.name)
            if isinstance(found, SpecError):
                entry.error = SpecError("spec.policyRef", f"policy is invalid: {found}")
                return
            policy = found
        try:
            entry.plan = build_plan(entry.namespace, entry.name, entry.spec, policy)
        except SpecError as exc:
            entry.error = exc
            return
        now = self.clock().timestamp()
        names = {r.name for r in entry.plan.monitors}
        entry.due = {n: entry.due.get(n, now) for n in names}

    # -------------------------------------------------------------- reconcile

    async def reconcile(self, entry: SystemEntry, samples: dict[str, evaluation.Sample] | None = None) -> None:
        if not self.acting():
            return  # a standby: the leader acts; this replica's caches stay warm for when it takes over
        quiet = self._quiet(entry, samples) if samples else None
        if quiet == "refresh":
            await self._refresh_values(entry)
        if quiet is not None:
            return
        async with entry.lock:
            if self.systems.get(entry.key) is not entry:
                return  # removed while waiting
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                try:
                    await self._reconcile(entry, samples or {})
                except kube.Conflict as exc:
                    # Someone wrote first: start over from a fresh read (observe, save, act) at once,
                    # rather than a monitor interval later.  Every step is idempotent.
                    if attempt < CONFLICT_ATTEMPTS:
                        log.info("reconcile.conflict", namespace=entry.namespace, name=entry.name, attempt=attempt)
                        continue
                    log.warning("reconcile.api_error", namespace=entry.namespace, name=entry.name, error=str(exc))
                except kube.ApiError as exc:
                    log.warning("reconcile.api_error", namespace=entry.namespace, name=entry.name, error=str(exc))
                return

    def _quiet(self, entry: SystemEntry, samples: dict[str, evaluation.Sample]) -> str | None:
        """Fold a cycle that changes nothing but values into memory: no decision, no API call.

        Only for a system with nothing open — no incident, no containment, no control
        annotation waiting, nothing found missing — whose monitors come out exactly as
        before but for their values (state, severity, ``for`` clocks, messages all equal).
        Then the decision and the conditions are the same as last time by construction.
        Returns None (take the full path), ``"skip"`` (nothing to send) or ``"refresh"``
        (this system's status refresh is due: send the monitors' values, nothing else).
        """
        status, plan = entry.status, entry.plan
        now = self.clock()
        if (
            plan is None
            or entry.lock.locked()
            or not entry.adoption_checked
            or entry.target_missing is not None
            or entry.quiet_basis != self._quiet_basis(entry)
            or status.phase is not Phase.HEALTHY
            or status.incident is not None
            or status.containment is not None
            or status.provider_error_since is not None
            or status.observed_generation != entry.generation
            or entry.written is None
            or len(status.monitors) != len(plan.monitors)
        ):
            return None
        monitors: list[MonitorStatus] = []
        for resolved, previous in zip(plan.monitors, status.monitors, strict=True):
            sample = samples.get(resolved.name)
            if previous.name != resolved.name:
                return None
            if sample is None:
                monitors.append(previous)
                continue
            state = evaluation.evaluate(resolved.monitor, sample, previous, now, resolved.query)
            if _essence(state) != _essence(previous):
                return None
            monitors.append(state)
        for state in monitors:
            m.EVALUATIONS.labels(state.state.value).inc()
        status.monitors = monitors
        return "refresh" if self._refresh_due(entry, now) else "skip"

    async def _refresh_values(self, entry: SystemEntry) -> None:
        """The status refresh of a quiet system: its monitors' latest values, one small patch."""
        async with entry.lock:
            if self.systems.get(entry.key) is not entry or entry.written is None:
                return
            monitors = [monitor.dump() for monitor in entry.status.monitors]
            before = entry.written, entry.written_at
            entry.written, entry.written_at = {**entry.written, "monitors": monitors}, self.clock()
            try:
                await self.client.patch(
                    kube.AISYSTEMS, entry.namespace, entry.name, {"status": {"monitors": monitors}}, sub="status"
                )
            except kube.ApiError as exc:
                entry.written, entry.written_at = before
                if not isinstance(exc, kube.NotFound):
                    log.warning("reconcile.api_error", namespace=entry.namespace, name=entry.name, error=str(exc))

    def _quiet_basis(self, entry: SystemEntry) -> tuple[Any, ...]:
        """What, besides the monitors, the last full reconcile's decision rested on."""
        annotations = entry.annotations
        return (entry.generation, entry.notices_error, entry.notices_reason, tuple(sorted(annotations.items())))

    def _refresh_due(self, entry: SystemEntry, now: datetime.datetime) -> bool:
        """Whether a value-only change is written now: once per refresh period, systems spread over it."""
        if entry.written_at is None:
            return True
        period = max(
            self.settings.status_refresh_seconds, len(self.systems) / self.settings.status_refresh_writes_per_second
        )
        offset = entry.refresh_phase * period
        return (now.timestamp() + offset) // period != (entry.written_at.timestamp() + offset) // period

    async def _reconcile(self, entry: SystemEntry, samples: dict[str, evaluation.Sample]) -> None:
        now = self.clock()
        status = entry.status.model_copy(deep=True)
        status.observed_generation = entry.generation
        if entry.plan is None:
            await self._invalid(entry, status, now)
            return
        plan = entry.plan
        spec = plan.spec

        # 1. Monitors: fold fresh samples in, keep the plan's order, drop removed monitors.
        previous = {s.name: s for s in status.monitors}
        monitors: list[MonitorStatus] = []
        for resolved in plan.monitors:
            sample = samples.get(resolved.name)
            if sample is not None:
                state = evaluation.evaluate(resolved.monitor, sample, previous.get(resolved.name), now, resolved.query)
                m.EVALUATIONS.labels(state.state.value).inc()
                monitors.append(state)
            elif resolved.name in previous:
                monitors.append(previous[resolved.name])
        status.monitors = monitors
        if samples:
            all_error = bool(monitors) and all(s.state is MonitorState.ERROR for s in monitors)
            status.provider_error_since = (status.provider_error_since or now) if all_error else None

        incident = self._open_incident(entry, status)
        if incident is None and status.incident and (entry.namespace, status.incident) not in self.incidents:
            # Just after a restart the incident's watch event may not have arrived yet.
            incident = await self._fetch_incident(entry, status.incident)
        if not entry.adoption_checked:
            incident = await self._adopt(entry, status, incident, now)
        if incident is not None:
            # Acknowledgements and approvals count whatever the metrics say now
            # (a healed but still contained system still has an incident to own).
            incident = await self._acknowledge(entry, incident, now)
            incident = await self._record_approval(entry, incident, now)
        if incident is not None and incident.spec.dry_run and not incident.spec.drill:
            incident = await self._end_dry_run(entry, status, incident, now)
        annotations = entry.annotations
        caller = self.caller(annotations)

        # 2. Manual shutdown: each value (and its removal) judged once, bound to who asked (SPEC §7).
        shutdown = requests.shutdown(
            annotations=annotations,
            held=status.containment,
            requests=status.requests,
            caller=caller,
            responders=plan.responders,
            now=now,
        )
        status.requests = list(shutdown.requests)
        manual = shutdown.manual
        judged = shutdown.judged
        if judged is not None and judged.verdict is RequestVerdict.REFUSED:
            what = None if judged.value is not None else "removing airlock.dev/shutdown ignored (it stays shut down)"
            await self._unauthorized(entry, incident, "shutdown", judged.value or "", judged.reason, now, what=what)
        requester = authority.Caller(shutdown.requester) if shutdown.requester else None

        # 3. Release request: handled once per distinct value.
        release = annotations.get(keys.RELEASE)
        if release is not None and release != status.last_handled_release:
            incident = await self._release(entry, status, incident, caller, release, manual, now)
            manual = manual and status.containment is not None
            status.last_handled_release = release

        # 3b. Drill request: rehearse the plan once per distinct value; never touches the workload.
        drill = annotations.get(keys.DRILL)
        if drill is not None and drill != status.last_handled_drill:
            binding = requests.judge(
                annotation=keys.DRILL,
                value=drill,
                caller=caller,
                verbs=[Verb.DRILL],
                responders=plan.responders,
                now=now,
            )
            status.requests = requests.add(status.requests, binding, annotations, [keys.DRILL])
            await self._drill(entry, binding, now)
            status.last_handled_drill = drill

        # 4. Manual shutdown lifted.
        containment = status.containment
        if containment is not None and containment.active and containment.manual and not manual:
            who = shutdown.lift.by if shutdown.lift is not None else None
            incident = await self._lift_manual(entry, status, incident, who, now)

        # 5. Decide.
        view = self._incident_view(incident)
        decision = decide(
            Situation(
                plan=plan,
                monitors=status.monitors,
                now=now,
                containment=status.containment,
                incident=view,
                provider_error_since=status.provider_error_since,
            )
        )
        desired = list(decision.contain)
        if manual:
            manual_actions = [Action.REROUTE] if spec.fallback else []
            desired += [a for a in [*manual_actions, Action.SCALE_TO_ZERO] if a not in desired]

        # 6. Incident: open one, or raise its severity.
        if decision.open_incident or manual:
            incident = await self._ensure_incident(
                entry, status, incident, decision, manual, requester if manual else caller, now, shutdown.value
            )

        # 7. Containment.
        if plan.dry_run:
            would = list(decision.would_contain)
            if would and would != status.would_contain:
                await self.client.event(
                    entry.ref(),
                    "Warning",
                    "WouldContain",
                    f"dryRun: enforce mode would apply {', '.join(a.value for a in would)} now: {decision.reason}",
                )
            status.would_contain = would or None
        elif desired or (status.containment is not None and status.containment.active):
            status.would_contain = None
            intent = transitions.Intent(
                system=entry.name,
                desired=tuple(desired),
                reason=decision.reason,
                severity=decision.containment_severity,
                failure_mode=decision.classification.failure_mode,
                monitors_contain=bool(decision.contain),
                manual=manual,
                manual_request=shutdown.value if manual else None,
                requester=shutdown.requester,
                fallback_selector=spec.fallback.selector if spec.fallback else None,
            )
            incident = await self._enforce(entry, status, incident, intent, now)
        else:
            status.would_contain = None
            entry.target_missing = None

        # 8. Phase, conditions, status.
        phase = decision.phase
        if manual and status.containment is not None and status.containment.active:
            phase = Phase.SHUT_DOWN
        elif (
            status.containment is not None
            and status.containment.active
            and phase
            not in (
                Phase.CONTAINED,
                Phase.SHUT_DOWN,
            )
        ):
            phase = Phase.SHUT_DOWN if Action.SCALE_TO_ZERO in status.containment.actions else Phase.CONTAINED
        elif phase in (Phase.CONTAINED, Phase.SHUT_DOWN) and not (
            status.containment is not None and status.containment.active and status.containment.actions
        ):
            # Decided, but nothing took effect (target missing, every action failed): never claim
            # a model is contained while it may still be serving.
            phase = Phase.DEGRADED
        status.phase = phase
        status.severity = decision.severity if decision.severity else None
        if manual:
            status.severity = Severity.SEV1
        status.incident = incident.metadata.name if incidents.is_open(incident) and incident else None
        self._conditions(entry, status, decision, now)
        await self._write_status(entry, status, now)
        entry.quiet_basis = self._quiet_basis(entry)

    # ------------------------------------------------------------ incidents

    def _open_incident(self, entry: SystemEntry, status: AISystemStatus) -> AIIncident | None:
        if not status.incident:
            return None
        incident = self.incidents.get((entry.namespace, status.incident))
        return incident if incidents.is_open(incident) else None

    async def _fetch_incident(self, entry: SystemEntry, name: str) -> AIIncident | None:
        body = await self.client.get_or_none(kube.AIINCIDENTS, entry.namespace, name)
        if body is None:
            return None
        incident = AIIncident.model_validate(body)
        self.incidents[(entry.namespace, name)] = incident
        return incident if incidents.is_open(incident) else None

    async def _adopt(
        self, entry: SystemEntry, status: AISystemStatus, incident: AIIncident | None, now: datetime.datetime
    ) -> AIIncident | None:
        """Once per loaded system: a containment the target records but the status does not is ours.

        The status is lost when the AISystem is re-created (GitOps) or a crash beat the
        status write.  Whether or not the breach is still on, the target stays contained
        until a responder releases it, and the release restores the target's saved state.
        """
        plan = entry.plan
        assert plan is not None
        if plan.dry_run or (status.containment is not None and status.containment.active):
            entry.adoption_checked = True
            return incident
        resource = kube.TARGETS[plan.spec.target.kind.value]
        target = await self.client.get_or_none(resource, entry.namespace, plan.spec.target.name)
        entry.adoption_checked = True
        annotations = ((target or {}).get("metadata") or {}).get("annotations") or {}
        saved = domain_containment.saved_from_annotations(annotations)
        if annotations.get(keys.CONTAINED_BY) != entry.name or not saved:
            return incident
        status.containment = Containment(
            active=True,
            actions=transitions.actions_from_saved(saved),
            since=now,
            by="airlock",
            reason=transitions.ADOPTED_REASON,
            saved=saved,
        )
        log.warning("containment.adopted", namespace=entry.namespace, name=entry.name, saved=saved)
        if incident is None:
            incident = await incidents.find_open(self.client, entry.namespace, entry.name)
            if incident is not None:
                self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
        return incident

    async def _end_dry_run(
        self, entry: SystemEntry, status: AISystemStatus, incident: AIIncident, now: datetime.datetime
    ) -> AIIncident | None:
        """Trying airlock is safe (SPEC §7): a dry run's incident never makes enforce mode act.

        It ends when its breach ends (nothing was contained, nothing to release), or when the
        system switches to enforce — from then on only what breaches after the switch acts,
        and it opens an incident of its own.
        """
        plan = entry.plan
        assert plan is not None
        if not plan.dry_run:
            why = "mode switched to enforce: the dry run's incident ends (nothing was contained); breaches from now on act"
        else:
            classification = classify(plan, status.monitors)
            if classification.severity is not None or not classification.monitoring_healthy:
                return incident
            why = "breach ended (dry run: nothing was contained, nothing to release)"
        await self._resolve(entry, incident, why, None, now)
        await self.client.event(entry.ref(), "Normal", "DryRunIncidentResolved", f"{incident.metadata.name}: {why}")
        return None

    def _incident_view(self, incident: AIIncident | None) -> OpenIncident | None:
        if incident is None or incident.status is None or not incidents.is_open(incident):
            return None
        ack = incident.status.acknowledged_at is not None
        # Only the record counts (written when the approval was judged, bound to who set it).
        approved = any(e.type == "Approved" for e in incident.status.timeline)
        since = next(
            (e.at for e in reversed(incident.status.timeline) if e.type in ("Detected", "SeverityRaised")),
            incident.status.detected_at,
        )
        return OpenIncident(
            name=incident.metadata.name or "",
            severity=incident.spec.severity,
            detected_at=incident.status.detected_at or self.clock(),
            acknowledged=ack,
            approved=approved,
            severity_since=since,
        )

    async def _ensure_incident(
        self,
        entry: SystemEntry,
        status: AISystemStatus,
        incident: AIIncident | None,
        decision: Decision,
        manual: bool,
        caller: authority.Caller | None,
        now: datetime.datetime,
        shutdown_reason: str | None = None,
    ) -> AIIncident | None:
        plan = entry.plan
        assert plan is not None
        severity = Severity.SEV1 if manual else decision.incident_severity
        if severity is None:
            return incident
        if incident is None:
            incident = await incidents.find_open(self.client, entry.namespace, entry.name)
        if incident is None:
            incident = await self._create_incident(entry, decision, manual, caller, severity, now, shutdown_reason)
        else:
            incident = await self._acknowledge(entry, incident, now)
            incident = await self._record_approval(entry, incident, now)
            if severity.worse_than(incident.spec.severity):
                old = incident.spec.severity
                incident = await incidents.patch_spec(self.client, incident, {"severity": severity.value})
                why = f"escalated: {decision.reason}" if decision.escalated_from else decision.reason
                incidents.note(incident, now, "SeverityRaised", f"{old.value} → {severity.value}: {why}")
                incident = await incidents.write_status(self.client, incident)
                await self.client.event(
                    entry.ref(),
                    "Warning",
                    "SeverityRaised",
                    f"{incident.metadata.name}: {old.value} → {severity.value}",
                )
        self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
        return incident

    async def _create_incident(
        self,
        entry: SystemEntry,
        decision: Decision,
        manual: bool,
        caller: authority.Caller | None,
        severity: Severity,
        now: datetime.datetime,
        shutdown_reason: str | None = None,
    ) -> AIIncident:
        plan = entry.plan
        assert plan is not None
        trigger_status = decision.classification.trigger
        if manual:
            reason = shutdown_reason or "manual shutdown"
            trigger = Trigger(type=TriggerType.MANUAL, by=caller.username if caller else None, reason=reason)
            failure_mode = decision.classification.failure_mode or FailureMode.SUDDEN
            detected = now
        else:
            failure_mode = decision.classification.failure_mode or FailureMode.SUDDEN
            detected = now
            if trigger_status is not None:
                threshold = next(
                    (
                        t
                        for r in plan.monitors
                        if r.name == trigger_status.name
                        for t in r.monitor.thresholds
                        if t.severity == trigger_status.severity
                    ),
                    None,
                )
                held = next((p.since for p in trigger_status.pending if p.severity == trigger_status.severity), None)
                detected = held or trigger_status.sample_time or now
                resolved = next((r for r in plan.monitors if r.name == trigger_status.name), None)
                if threshold is not None and resolved is not None:
                    visible = await self._breach_visible(resolved, threshold, detected)
                    detected = min(detected, visible) if visible else detected
                trigger = Trigger(
                    type=TriggerType.MONITOR,
                    monitor=trigger_status.name,
                    value=trigger_status.value,
                    condition=threshold.condition() if threshold else None,
                    query=trigger_status.query,
                    sample_time=detected,
                )
            else:
                trigger = Trigger(type=TriggerType.MONITOR, reason=decision.reason)
        body = domain_incidents.open_incident(
            system=entry.name,
            namespace=entry.namespace,
            severity=severity,
            failure_mode=failure_mode,
            trigger=trigger,
            detected=detected,
            now=now,
            dry_run=plan.dry_run,
        )
        incident = await incidents.create(self.client, body)
        m.INCIDENTS.labels(severity.value, failure_mode.value, "false").inc()
        log.info(
            "incident.opened",
            namespace=entry.namespace,
            name=entry.name,
            incident=incident.metadata.name,
            severity=severity.value,
        )
        await self.client.event(
            entry.ref(),
            "Warning",
            "IncidentOpened",
            f"{incident.metadata.name}: {severity.value} {failure_mode.value} — {decision.reason if not manual else trigger.reason}",
        )
        return incident

    async def _breach_visible(
        self, resolved: ResolvedMonitor, threshold: Threshold, noticed: datetime.datetime
    ) -> datetime.datetime | None:
        """When the breach first became visible in Prometheus (one small range query per incident)."""
        if self.provider is None or resolved.baseline_query is not None:
            return None
        window = resolved.monitor.interval.seconds + 2.0
        start = noticed - datetime.timedelta(seconds=window)
        try:
            series = await self.provider.range(resolved.query, start, noticed, step=1.0)
        except ProviderError:
            return None
        if resolved.match is not None:
            series = [s for s in series if all(s.labels.get(k) == v for k, v in resolved.match.items())]
        if len(series) != 1:
            return None
        return evaluation.breach_start(threshold, series[0].points)

    async def _incident_request(
        self, entry: SystemEntry, incident: AIIncident, annotation: str, verb: Verb, now: datetime.datetime
    ) -> ControlRequest | None:
        """The standing judgement of an incident's control annotation, judged now if new (SPEC §7).

        A refusal is reported once, when judged; the judgement is kept in the incident's status
        (written by the caller, or by the refusal's report).
        """
        value = incident.metadata.annotations.get(annotation)
        if value is None or incident.status is None:
            return None
        plan = entry.plan
        assert plan is not None
        binding, new = requests.bound(
            incident.status.requests,
            annotation=annotation,
            value=value,
            caller=self.caller(incident.metadata.annotations),
            verbs=[verb],
            responders=plan.responders,
            now=now,
        )
        if new:
            incident.status.requests = requests.add(
                incident.status.requests, binding, incident.metadata.annotations, keys.INCIDENT_CONTROL
            )
            if binding.verdict is RequestVerdict.REFUSED:
                await self._unauthorized(entry, incident, verb.value, value, binding.reason, now)
        return binding

    async def _acknowledge(self, entry: SystemEntry, incident: AIIncident, now: datetime.datetime) -> AIIncident:
        if incident.status is None or incident.status.acknowledged_at is not None:
            return incident
        binding = await self._incident_request(entry, incident, keys.ACKNOWLEDGE, Verb.ACKNOWLEDGE, now)
        if binding is None or binding.verdict is not RequestVerdict.ACCEPTED:
            return self.incidents.get((entry.namespace, incident.metadata.name or ""), incident)
        incident.status.acknowledged_at = now
        incident.status.acknowledged_by = binding.by
        incidents.note(incident, now, "Acknowledged", "incident acknowledged", binding.by)
        return await self._write_incident(entry, incident)

    async def _record_approval(self, entry: SystemEntry, incident: AIIncident, now: datetime.datetime) -> AIIncident:
        """Put an escalation's approval on the record once: who approved it (timeline, Event).

        The decision reads the record (``_incident_view``), never the annotation: an approval
        counts only as judged when it was set, whoever annotates the incident later.
        """
        if incident.status is None or any(e.type == "Approved" for e in incident.status.timeline):
            return incident
        binding = await self._incident_request(entry, incident, keys.APPROVE, Verb.APPROVE, now)
        if binding is None or binding.verdict is not RequestVerdict.ACCEPTED:
            return self.incidents.get((entry.namespace, incident.metadata.name or ""), incident)
        who = binding.by
        incidents.note(incident, now, "Approved", f"containment approved: {binding.value}", who)
        await self.client.event(entry.ref(), "Normal", "Approved", f"{incident.metadata.name}: approved by {who}")
        return await self._write_incident(entry, incident)

    async def _drill(self, entry: SystemEntry, request: ControlRequest, now: datetime.datetime) -> None:
        """Open a drill incident with what the plan would do, who is paged and the gaps found.

        Reads the target and the fallback Service (to find gaps) and writes only the
        incident and Events: a drill never touches the workload.
        """
        plan = entry.plan
        assert plan is not None
        value = request.value or ""
        if request.verdict is not RequestVerdict.ACCEPTED:
            await self._unauthorized(entry, None, "drill", value, request.reason, now)
            return
        try:
            scenario = drills.parse_value(value)
        except ValueError as exc:
            await self.client.event(entry.ref(), "Warning", "DrillInvalid", f"airlock.dev/drill={value!r}: {exc}")
            return
        environment = await targets.environment(self.client, entry.namespace, plan.spec)
        rehearsal = drills.rehearse(plan, scenario, environment)
        who = request.by
        body = domain_incidents.open_incident(
            system=entry.name,
            namespace=entry.namespace,
            severity=rehearsal.severity,
            failure_mode=rehearsal.failure_mode,
            trigger=Trigger(type=TriggerType.DRILL, by=who, reason=value),
            detected=now,
            now=now,
            dry_run=plan.dry_run,
            drill=True,
        )
        assert body.status is not None
        body.status.drill = rehearsal.record()
        incidents.note(body, now, "DrillDecision", f"would: {rehearsal.decision} (not applied: drill)")
        if rehearsal.paged:
            incidents.note(body, now, "Paged", "to acknowledge: " + "; ".join(rehearsal.paged))
        for gap in rehearsal.gaps:
            incidents.note(body, now, "DrillGap", gap)
        incident = await incidents.create(self.client, body)
        self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
        m.INCIDENTS.labels(rehearsal.severity.value, rehearsal.failure_mode.value, "true").inc()
        gaps = f"; {len(rehearsal.gaps)} gap(s): " + "; ".join(rehearsal.gaps) if rehearsal.gaps else "; no gaps found"
        await self.client.event(
            entry.ref(),
            "Normal",
            "DrillStarted",
            f"{incident.metadata.name} ({scenario.value}, by {who}): {rehearsal.decision}{gaps}",
        )
        log.info("drill.started", namespace=entry.namespace, name=entry.name, incident=incident.metadata.name)

    # ------------------------------------------------------------ containment

    async def _enforce(
        self,
        entry: SystemEntry,
        status: AISystemStatus,
        incident: AIIncident | None,
        intent: transitions.Intent,
        now: datetime.datetime,
    ) -> AIIncident | None:
        """Carry out one containment step (``airlock.domain.transitions`` decides; this writes and reports)."""
        plan = entry.plan
        assert plan is not None
        spec = plan.spec
        try:
            observed = await targets.observe(self.client, entry.namespace, entry.name, spec)
        except targets.TargetMissing as exc:
            if entry.target_missing != str(exc):
                await self.client.event(entry.ref(), "Warning", "TargetMissing", f"{exc}; containment will be retried")
            entry.target_missing = str(exc)
            return incident
        entry.target_missing = None
        step = transitions.plan_step(intent, status.containment, observed, targets.marker(observed), now)
        target = f"{spec.target.kind.value} {spec.target.name}"
        if step.idle:
            status.containment = transitions.idle(intent, step)
            if (
                step.active
                and incident is not None
                and incident.status is not None
                and incident.status.contained_at is None
            ):
                records, message = transitions.found_applied(step, target, now)
                incident.status.contained_at = now
                incident.status.phase = IncidentPhase.CONTAINED
                incident.status.actions.extend(records)
                incidents.note(incident, now, "Contained", message)
                incident = await self._write_incident(entry, incident)
            return incident
        outcome = await targets.contain(
            self.client, entry.namespace, entry.name, spec, step.writes, observed, step.saved
        )
        accepted = self.clock()
        settled = transitions.settle(
            intent, step, applied=outcome.applied, failed=outcome.failed, accepted=accepted, target=target
        )
        status.containment = settled.containment
        for reason, message in settled.events:
            await self.client.event(entry.ref(), "Warning", reason, message)
        if step.undone:
            log.warning(
                "containment.reverted",
                namespace=entry.namespace,
                name=entry.name,
                actions=[a.value for a in step.undone],
            )
        if settled.newly:
            m.CONTAINMENTS.labels(
                settled.containment.severity.value if settled.containment.severity else "",
                intent.failure_mode.value if intent.failure_mode else "",
                "manual" if intent.manual else "monitor",
            ).inc()
            m.CONTAINMENTS_ACTIVE.labels(entry.namespace, entry.name).set(1)
            log.warning(
                "containment.applied",
                namespace=entry.namespace,
                name=entry.name,
                incident=incident.metadata.name if incident else None,
                actions=[a.value for a in settled.applied_now],
            )
        if incident is not None and incident.status is not None and (settled.records or settled.applied_now):
            incident.status.actions.extend(settled.records)
            if settled.note is not None:
                incidents.note(incident, accepted, settled.note[0], settled.note[1], settled.by)
            if settled.applied_now and incident.status.contained_at is None:
                incident.status.contained_at = accepted
                incident.status.phase = IncidentPhase.CONTAINED
                detected = incident.spec.trigger.sample_time or incident.status.detected_at or accepted
                ttc = domain_incidents.time_to_contain(detected, accepted)
                incident.status.time_to_contain_seconds = ttc
                m.TIME_TO_CONTAIN.observe(ttc)
            incident = await self._write_incident(entry, incident)
        return incident

    async def _write_incident(self, entry: SystemEntry, incident: AIIncident) -> AIIncident:
        incident = await incidents.write_status(self.client, incident)
        self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
        return incident

    async def _release(
        self,
        entry: SystemEntry,
        status: AISystemStatus,
        incident: AIIncident | None,
        caller: authority.Caller | None,
        value: str,
        manual: bool,
        now: datetime.datetime,
    ) -> AIIncident | None:
        plan = entry.plan
        assert plan is not None
        binding = requests.judge(
            annotation=keys.RELEASE,
            value=value,
            caller=caller,
            verbs=[Verb.RELEASE],
            responders=plan.responders,
            now=now,
        )
        status.requests = requests.add(status.requests, binding, entry.annotations, [keys.RELEASE])
        if binding.verdict is not RequestVerdict.ACCEPTED:
            await self._unauthorized(entry, incident, "release", value, binding.reason, now)
            m.RELEASES.labels("unauthorized").inc()
            return incident
        containment = status.containment
        who = binding.by
        if manual and keys.SHUTDOWN in entry.annotations:
            await self._refuse_release(
                entry,
                incident,
                "the system is held by airlock.dev/shutdown; remove that annotation to lift it",
                who,
                now,
            )
            return incident
        if manual:
            # The annotation is gone but its removal was refused: a responder who may release lifts the hold.
            return await self._lift_manual(entry, status, incident, who, now)
        blockers = release_blockers(plan, status.monitors)
        if blockers:
            detail = ", ".join(
                f"{b.name} ({b.severity.value if b.severity else ''}, value {b.value})" for b in blockers
            )
            await self._refuse_release(
                entry, incident, f"monitor still breaching at a containing level: {detail}", who, now
            )
            return incident
        if containment is not None and containment.active:
            required = self._release_approvals_required(plan, containment)
            if who is not None and all(a.by != who for a in containment.release_approvals):
                containment.release_approvals.append(ReleaseApproval(by=who, at=now, value=value))
            have = len(containment.release_approvals)
            if have < required:
                names = ", ".join(a.by for a in containment.release_approvals)
                why = f"{have} of {required} release approvals ({names}); another responder must also release"
                m.RELEASES.labels("awaiting-approval").inc()
                await self.client.event(entry.ref(), "Normal", "ReleaseApprovalRecorded", why)
                if incident is not None and incident.status is not None:
                    incidents.note(incident, now, "ReleaseApproved", why, who)
                    incident = await incidents.write_status(self.client, incident)
                    self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
                return incident
            outcome = await targets.restore(
                self.client, entry.namespace, entry.name, plan.spec, containment.saved or {}
            )
            if outcome.failed:
                message = "; ".join(f"{a.value}: {why}" for a, why in outcome.failed.items())
                await self._refuse_release(
                    entry, incident, f"restore incomplete, will not mark released: {message}", who, now
                )
                return incident
            status.containment = None
            m.CONTAINMENTS_ACTIVE.labels(entry.namespace, entry.name).set(0)
            await self.client.event(
                entry.ref(), "Normal", "Released", f"released by {who}: saved state restored ({value})"
            )
            log.info("containment.released", namespace=entry.namespace, name=entry.name, by=who)
        m.RELEASES.labels("released").inc()
        if incident is not None:
            incident = await self._resolve(entry, incident, f"released by {who}", who, now)
        return None

    @staticmethod
    def _release_approvals_required(plan: Plan, containment: Containment) -> int:
        """The two-person rule: the strictest releaseApprovals among the severities that contained."""
        severities = [containment.severity] if containment.severity else []
        counts = [p.release_approvals for s in severities if (p := plan.severity_policy(s)) is not None]
        return max(counts, default=1)

    async def _refuse_release(
        self, entry: SystemEntry, incident: AIIncident | None, why: str, who: str | None, now: datetime.datetime
    ) -> None:
        m.RELEASES.labels("refused").inc()
        await self.client.event(entry.ref(), "Warning", "ReleaseRefused", why)
        entry.status.conditions = conditions.set_condition(
            entry.status.conditions, "ReleaseRefused", True, "ReleaseRefused", why, entry.generation, now
        )
        log.warning("containment.release_refused", namespace=entry.namespace, name=entry.name, reason=why, by=who)
        if incident is not None and incident.status is not None:
            incidents.note(incident, now, "ReleaseRefused", why, who)
            updated = await incidents.write_status(self.client, incident)
            self.incidents[(entry.namespace, updated.metadata.name or "")] = updated

    async def _lift_manual(
        self,
        entry: SystemEntry,
        status: AISystemStatus,
        incident: AIIncident | None,
        who: str | None,
        now: datetime.datetime,
    ) -> AIIncident | None:
        plan = entry.plan
        assert plan is not None
        containment = status.containment
        assert containment is not None
        if release_blockers(plan, status.monitors):
            containment.manual = False  # automatic containment takes over
            return incident
        outcome = await targets.restore(self.client, entry.namespace, entry.name, plan.spec, containment.saved or {})
        if outcome.failed:
            return incident
        status.containment = None
        m.CONTAINMENTS_ACTIVE.labels(entry.namespace, entry.name).set(0)
        await self.client.event(
            entry.ref(), "Normal", "ShutdownLifted", f"manual shutdown lifted by {who}: saved state restored"
        )
        if incident is not None:
            await self._resolve(entry, incident, f"manual shutdown lifted by {who}", who, now)
        return None

    async def _resolve(
        self, entry: SystemEntry, incident: AIIncident, why: str, who: str | None, now: datetime.datetime
    ) -> AIIncident:
        if incident.status is None:
            return incident
        incident.status.phase = IncidentPhase.RESOLVED
        incident.status.resolved_at = now
        incidents.note(incident, now, "Resolved", why, who)
        incident = await incidents.write_status(self.client, incident)
        self.incidents[(entry.namespace, incident.metadata.name or "")] = incident
        return incident

    async def _unauthorized(
        self,
        entry: SystemEntry,
        incident: AIIncident | None,
        verb: str,
        value: str,
        why: str,
        now: datetime.datetime,
        *,
        what: str | None = None,
    ) -> None:
        # Called once per refused value: when it is judged (status.requests), or handled (release, drill).
        message = f"{what or f'airlock.dev/{verb} ignored'}: {why}"
        await self.client.event(entry.ref(), "Warning", "UnauthorizedRequest", message)
        log.warning("authority.denied", namespace=entry.namespace, name=entry.name, verb=verb, reason=why)
        if incident is not None and incident.status is not None:
            incidents.note(incident, now, "UnauthorizedRequest", message)
            updated = await incidents.write_status(self.client, incident)
            self.incidents[(entry.namespace, updated.metadata.name or "")] = updated

    # ---------------------------------------------------------------- status

    def caller(self, annotations: dict[str, str]) -> authority.Caller | None:
        username = annotations.get(keys.REQUESTED_BY)
        if not username:
            return None
        groups = annotations.get(self.settings.requested_by_groups_annotation, "")
        return authority.Caller(username=username, groups=tuple(g for g in groups.split(",") if g))

    def _conditions(
        self, entry: SystemEntry, status: AISystemStatus, decision: Decision, now: datetime.datetime
    ) -> None:
        gen = entry.generation
        conds = [c for c in status.conditions if c.type != "ReleaseRefused"]
        refused = next((c for c in entry.status.conditions if c.type == "ReleaseRefused"), None)
        if refused is not None and status.containment is not None and status.containment.active:
            conds.append(refused)
        classification = decision.classification
        if classification.monitoring_healthy:
            conds = conditions.set_condition(
                conds,
                conditions.MONITORING_HEALTHY,
                True,
                "AllMonitorsEvaluated",
                "every monitor returned data",
                gen,
                now,
            )
        else:
            reason = "ProviderError" if classification.provider_error else "MonitoringGap"
            conds = conditions.set_condition(
                conds,
                conditions.MONITORING_HEALTHY,
                False,
                reason,
                "no usable data from: " + ", ".join(classification.unhealthy),
                gen,
                now,
            )
        containment = status.containment
        if containment is not None and containment.active and containment.actions:  # not if every action failed
            conds = conditions.set_condition(
                conds,
                conditions.CONTAINED,
                True,
                "ManualShutdown" if containment.manual else "PolicyContainment",
                containment.reason or "",
                gen,
                now,
            )
        else:
            conds = conditions.set_condition(
                conds, conditions.CONTAINED, False, "NotContained", "the target runs as deployed", gen, now
            )
        conds = conditions.set_condition(conds, conditions.STALLED, False, "Reconciled", "spec is valid", gen, now)
        if entry.notices_error:
            conds = conditions.set_condition(
                conds, conditions.NOTICES_READY, False, entry.notices_reason, entry.notices_error, gen, now
            )
        else:
            conds = conditions.set_condition(
                conds, conditions.NOTICES_READY, True, "TemplatesValid", "every notice template renders", gen, now
            )
        if entry.target_missing:
            conds = conditions.set_condition(
                conds, conditions.READY, False, "TargetMissing", entry.target_missing, gen, now
            )
        elif containment is not None and containment.failed:
            conds = conditions.set_condition(
                conds, conditions.READY, False, "ActionFailed", "; ".join(containment.failed), gen, now
            )
        else:
            conds = conditions.set_condition(
                conds,
                conditions.READY,
                True,
                "Reconciled",
                f"phase {status.phase.value if status.phase else ''}: {decision.reason}",
                gen,
                now,
            )
        status.conditions = conds

    async def _invalid(self, entry: SystemEntry, status: AISystemStatus, now: datetime.datetime) -> None:
        error = entry.error or SpecError("spec", "invalid")
        status.phase = Phase.INVALID
        gen = entry.generation
        status.conditions = conditions.set_condition(
            status.conditions, conditions.STALLED, True, "InvalidSpec", str(error), gen, now
        )
        status.conditions = conditions.set_condition(
            status.conditions, conditions.READY, False, "InvalidSpec", str(error), gen, now
        )
        if entry.status.phase is not Phase.INVALID or (entry.written or {}).get("observedGeneration") != gen:
            await self.client.event(entry.ref(), "Warning", "InvalidSpec", str(error))
            log.warning(
                "system.invalid", namespace=entry.namespace, name=entry.name, field=error.field, error=error.message
            )
        await self._write_status(entry, status, now, force=True)

    async def _write_status(
        self, entry: SystemEntry, status: AISystemStatus, now: datetime.datetime, force: bool = False
    ) -> None:
        body = status.dump()
        entry.status = status
        if body == entry.written:
            return
        if (
            not force
            and entry.written is not None
            and _significant(entry.written) == _significant(body)
            and not self._refresh_due(entry, now)
        ):
            return
        # A full replacement of our own fields: merge-patch `null` clears what is gone.
        patch: dict[str, Any] = {k: None for k in (entry.written or {}) if k not in body}
        patch.update(body)
        # Recorded before the answer: the watch may echo the write back first (see upsert_system).
        before = entry.written, entry.written_at
        entry.written, entry.written_at = body, now
        try:
            await self.client.patch(kube.AISYSTEMS, entry.namespace, entry.name, {"status": patch}, sub="status")
        except kube.NotFound:
            entry.written, entry.written_at = before
        except BaseException:
            entry.written, entry.written_at = before
            raise


def _older(candidate: str | None, current: str | None) -> bool:
    """Whether ``candidate`` is an older resourceVersion than ``current`` (both numeric, as etcd's are)."""
    if candidate is None or current is None or not candidate.isdigit() or not current.isdigit():
        return False
    return int(candidate) < int(current)


def _same_intent(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether two versions of an AISystem ask for the same thing (spec, generation, annotations)."""
    b, a = before.get("metadata") or {}, after.get("metadata") or {}
    return (
        b.get("generation") == a.get("generation")
        and b.get("annotations") == a.get("annotations")
        and before.get("spec") == after.get("spec")
    )


_VOLATILE = ("value", "current", "baseline", "lastEvaluated", "sampleTime")


def _essence(monitor: MonitorStatus) -> tuple[Any, ...]:
    """A monitor's status without what changes on every evaluation (as ``_significant`` for dumps)."""
    return (
        monitor.name,
        monitor.state,
        monitor.failure_mode,
        monitor.severity,
        monitor.since,
        monitor.pending,
        monitor.query,
        monitor.message,
    )


def _significant(status: dict[str, Any]) -> dict[str, Any]:
    """The status without the fields that change on every evaluation."""
    result = dict(status)
    result["monitors"] = [{k: v for k, v in mon.items() if k not in _VOLATILE} for mon in status.get("monitors", [])]
    return result
