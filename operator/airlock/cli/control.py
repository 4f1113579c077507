"""``airlock shutdown | release | ack | approve``: the control annotations, set by a named person.

Each verb asks the API server who the caller is (SelfSubjectReview), sets the
control annotation together with ``airlock.dev/requested-by`` and
``airlock.dev/requested-by-groups`` in ONE merge patch (the admission webhook,
when installed, overwrites those two with the server's truth and refuses
anyone the responders do not list), then waits for what airlock did and says
it: the phase, the actions, the incident, the time taken — or the refusal, in
airlock's words.  Exit codes: 0 done, 1 refused or failed, 2 usage,
3 no outcome within ``--timeout``.

Refusals are read from the objects' status (``status.requests``: every control
value as airlock judged it, bound to who set it), so a responder needs no more
than get and patch on the AISystem and AIIncident; Events add detail when the
caller may list them.  A refused request is withdrawn (the annotation removed
again if it is still the caller's); when that fails the CLI says exactly what is
left and how to remove it — airlock never acts on a refused value, whoever
annotates later (SPEC §7).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from airlock.adapters import kube
from airlock.api import annotations as keys
from airlock.api.aisystem import AISystem, Mode, Phase, TargetKind
from airlock.api.common import Action, ControlRequest, RequestVerdict, Verb
from airlock.api.incident import AIIncident, IncidentPhase
from airlock.api.policy import ContainmentPolicy
from airlock.cli import connection
from airlock.cli.connection import DONE, REFUSED, TIMED_OUT, CliError
from airlock.domain import authority
from airlock.domain import containment as domain_containment
from airlock.domain.errors import SpecError
from airlock.domain.plan import build_plan

POLL_SECONDS = 0.2
CONTAINED = (Phase.CONTAINED, Phase.SHUT_DOWN)
CLOSED = (IncidentPhase.RESOLVED, IncidentPhase.CLOSED)


# ---------------------------------------------------------------- plumbing


def _say(text: str = "") -> None:
    print(text, flush=True)


def _complain(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    code: int
    lines: list[str] = field(default_factory=list)


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rv(obj: dict[str, Any]) -> tuple[str, int]:
    meta = obj.get("metadata") or {}
    when = obj.get("lastTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp") or ""
    version = str(meta.get("resourceVersion") or "")
    return str(when), int(version) if version.isdigit() else 0


def _event_key(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


@dataclass
class Session:
    """One verb's conversation with the cluster: who is asking, where, and what was there before."""

    api: kube.KubeClient
    namespace: str
    caller: authority.Caller
    timeout: float
    seen_events: set[str] = field(default_factory=set)
    started: float = 0.0
    events_readable: bool = True  # False once listing Events was forbidden: status alone then

    def identity(self) -> dict[str, str | None]:
        return {keys.REQUESTED_BY: self.caller.username, keys.REQUESTED_BY_GROUPS: ",".join(self.caller.groups)}

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.1f}s"

    async def get(self, resource: kube.Resource, name: str) -> dict[str, Any]:
        try:
            return await self.api.get(resource, self.namespace, name)
        except kube.NotFound:
            raise CliError(f"{resource.kind} {name} not found in namespace {self.namespace}") from None

    async def events(self, involved: str) -> list[dict[str, Any]]:
        """Events about the object ``involved`` (an AISystem: airlock posts refusals there), oldest first."""
        params = {"fieldSelector": f"involvedObject.name={involved}"}
        result = await self.api.request("GET", kube.EVENTS.path(self.namespace), params=params)
        items: list[dict[str, Any]] = [
            e for e in result.get("items") or [] if (e.get("involvedObject") or {}).get("kind") == "AISystem"
        ]
        return sorted(items, key=_rv)

    async def remember_events(self, involved: str) -> None:
        try:
            self.seen_events = {_event_key(e) for e in await self.events(involved)}
        except kube.ApiError as exc:
            if exc.status != 403:
                raise
            self.events_readable = False  # the status says enough; Events only add detail

    async def new_event(self, involved: str, reasons: tuple[str, ...], prefix: str | None = None) -> str | None:
        """The message of the newest Event since :meth:`remember_events` with one of ``reasons``."""
        if not self.events_readable:
            return None
        found = None
        for event in await self.events(involved):
            if _event_key(event) in self.seen_events:
                continue
            message = str(event.get("message") or "")
            if event.get("reason") in reasons and (prefix is None or message.startswith(prefix)):
                found = message
        return found

    async def annotate(self, resource: kube.Resource, name: str, annotations: dict[str, str | None]) -> None:
        """One merge patch; a 403 (the admission webhook or policy said no) is a refusal, in the server's words."""
        try:
            await self.api.patch(resource, self.namespace, name, {"metadata": {"annotations": annotations}})
        except kube.NotFound:
            raise CliError(f"{resource.kind} {name} not found in namespace {self.namespace}") from None
        except kube.ApiError as exc:
            if exc.status in (403, 422):
                raise CliError(f"REFUSED by the API server: {exc.message}") from None
            raise
        self.started = time.monotonic()

    async def withdraw(self, resource: kube.Resource, name: str, key: str, value: str) -> list[str]:
        """Remove a refused request if it is still the caller's; say exactly what happened.

        requested-by keeps naming the caller: the withdrawal is the caller's own write (an
        admission policy requires exactly that), and airlock judged the value already.
        """

        def path(annotation: str) -> str:
            return "/metadata/annotations/" + annotation.replace("~", "~0").replace("/", "~1")

        ops: list[dict[str, Any]] = [
            {"op": "test", "path": path(key), "value": value},
            {"op": "test", "path": path(keys.REQUESTED_BY), "value": self.caller.username},
            {"op": "remove", "path": path(key)},
        ]
        kind = "ais" if resource is kube.AISYSTEMS else "aii"
        try:
            await self.api.patch(resource, self.namespace, name, ops, content_type=kube.JSON_PATCH)
        except kube.ApiError as exc:
            if exc.status == 422:  # a test failed: somebody changed it since; it is not ours to remove
                return [f"Not withdrawn: {key} on {resource.kind} {name} was changed by someone else since."]
            return [
                f"NOT WITHDRAWN: {key}={value!r} is still on {resource.kind} {name} ({exc.message}).",
                "airlock keeps it refused: it will never take effect, whoever annotates later.",
                f"To remove it (a responder with the verb may): kubectl annotate {kind} {name} -n {self.namespace} "
                f"{key}- {keys.REQUESTED_BY}=<your username>",
            ]
        return [f"Your request was withdrawn ({key} removed); nothing changed."]

    async def wait(self, what: str, check: Callable[[], Awaitable[Outcome | None]]) -> Outcome:
        deadline = time.monotonic() + self.timeout
        while True:
            outcome = await check()
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                return Outcome(TIMED_OUT, [f"TIMED OUT after {self.timeout:g}s waiting for {what}."])
            await asyncio.sleep(POLL_SECONDS)


def _system(body: dict[str, Any]) -> AISystem:
    try:
        return AISystem.model_validate(body)
    except ValidationError as exc:
        raise CliError(
            f"AISystem {body.get('metadata', {}).get('name')} is malformed: {exc.errors()[0]['msg']}"
        ) from None


def _incident(body: dict[str, Any]) -> AIIncident:
    try:
        return AIIncident.model_validate(body)
    except ValidationError as exc:
        raise CliError(
            f"AIIncident {body.get('metadata', {}).get('name')} is malformed: {exc.errors()[0]['msg']}"
        ) from None


async def plan_verdict(session: Session, system: AISystem, verbs: tuple[Verb, ...]) -> authority.Verdict | None:
    """What the plan in force says about the caller and ``verbs``; None if it cannot be read here.

    Advice only: the API server (webhook) and the operator decide.  The CLI uses
    it not to do on the caller's behalf what they may not (lift a shutdown).
    """
    policy = None
    if system.spec.policy_ref is not None:
        try:
            body = await session.api.get(kube.POLICIES, None, system.spec.policy_ref.name)
            policy = ContainmentPolicy.model_validate(body).spec
        except (kube.ApiError, ValidationError):
            return None
    try:
        plan = build_plan(session.namespace, system.metadata.name or "", system.spec, policy)
    except SpecError:
        return None
    for verb in verbs:
        verdict = authority.authorize(session.caller, verb, plan.responders)
        if not verdict.allowed:
            return verdict
    return authority.Verdict(True, "allowed")


def _by_hand(system: AISystem) -> str:
    target = system.spec.target
    if target.kind is TargetKind.INFERENCE_SERVICE:
        return (
            f"kubectl annotate inferenceservice/{target.name} -n {system.metadata.namespace} "
            "serving.kserve.io/stop=true --overwrite"
        )
    return f"kubectl scale {target.kind.value.lower()}/{target.name} -n {system.metadata.namespace} --replicas=0"


def _describe_actions(system: AISystem) -> list[str]:
    status = system.status
    containment = status.containment if status else None
    if containment is None:
        return []
    spec = system.spec
    target = f"{spec.target.kind.value} {spec.target.name}"
    saved = containment.saved or {}
    out = []
    for action in containment.actions:
        if action is Action.REROUTE and spec.fallback is not None:
            out.append(f"reroute       {spec.fallback.describe()}")
        elif action is Action.SCALE_TO_ZERO and spec.target.kind is TargetKind.INFERENCE_SERVICE:
            was = " (it already was)" if (saved.get("stop") or {}).get("annotation") == "true" else ""
            out.append(f"scaleToZero   {target} stopped (serving.kserve.io/stop){was}")
        elif action is Action.SCALE_TO_ZERO:
            was = f" (was {saved['replicas']})" if saved.get("replicas") is not None else ""
            out.append(f"scaleToZero   {target} -> 0 replicas{was}")
        elif action is Action.PAUSE_ROLLOUT:
            out.append(f"pauseRollout  {target} rollout paused")
        elif action is Action.ISOLATE:
            out.append(f"isolate       NetworkPolicy cuts {target} off (pods kept for forensics)")
        else:
            out.append(action.value)
    out += [f"FAILED        {why}" for why in containment.failed]
    return out


async def _stop_annotation(session: Session, system: AISystem) -> str | None:
    """An InferenceService target's serving.kserve.io/stop annotation (None: absent, or not one)."""
    if system.spec.target.kind is not TargetKind.INFERENCE_SERVICE:
        return None
    target = await session.api.get_or_none(kube.INFERENCESERVICES, session.namespace, system.spec.target.name)
    return (((target or {}).get("metadata") or {}).get("annotations") or {}).get(domain_containment.KSERVE_STOP)


async def _stopped(session: Session, system: AISystem) -> bool:
    """Whether the target serves nothing: 0 replicas, or an InferenceService stopped by KServe's annotation."""
    if system.spec.target.kind is TargetKind.INFERENCE_SERVICE:
        return domain_containment.stopped(await _stop_annotation(session, system))
    return await _replicas(session, system) == 0


async def _replicas(session: Session, system: AISystem) -> int | None:
    resource = kube.TARGETS[system.spec.target.kind.value]
    target = await session.api.get_or_none(resource, session.namespace, system.spec.target.name)
    value = ((target or {}).get("spec") or {}).get("replicas")
    return int(value) if isinstance(value, int) else None


def _incident_line(incident: AIIncident | None, name: str | None) -> str | None:
    if incident is None:
        return f"incident   {name}" if name else None
    status = incident.status
    phase = status.phase.value if status and status.phase else "Open"
    return f"incident   {incident.metadata.name} ({incident.spec.severity.value} {incident.spec.failure_mode.value}, {phase})"


async def _fetch_incident(session: Session, name: str | None) -> AIIncident | None:
    if not name:
        return None
    body = await session.api.get_or_none(kube.AIINCIDENTS, session.namespace, name)
    try:
        return AIIncident.model_validate(body) if body else None
    except ValidationError:
        return None


# ---------------------------------------------------------------- shutdown


async def shutdown(session: Session, args: argparse.Namespace) -> Outcome:
    name, reason = args.system, args.reason
    system = _system(await session.get(kube.AISYSTEMS, name))
    phase = system.status.phase if system.status else None
    annotations = system.metadata.annotations
    if phase is Phase.INVALID:
        return Outcome(
            REFUSED,
            [
                f"REFUSED: airlock cannot act on {name}: its plan is Invalid (kubectl describe ais {name} -n {session.namespace}).",
                f"Stop it by hand: {_by_hand(system)}",
            ],
        )
    if keys.SHUTDOWN in annotations and phase is Phase.SHUT_DOWN:
        who = annotations.get(keys.REQUESTED_BY, "unknown")
        return Outcome(
            DONE, [f'{name} is already held shut down by {who}: "{annotations[keys.SHUTDOWN]}" (phase ShutDown).']
        )
    dry_run = system.spec.mode is Mode.DRY_RUN
    if dry_run:
        _complain(f"WARNING: {name} is in dryRun mode: airlock records the shutdown but will NOT touch its workload.")
    await session.remember_events(name)
    await session.annotate(kube.AISYSTEMS, name, {keys.SHUTDOWN: reason, **session.identity()})
    _say(f'shutdown {name} (namespace {session.namespace}) requested by {session.caller.username}: "{reason}"')
    if args.no_wait:
        return Outcome(DONE, [f"not waiting; follow with: kubectl get ais {name} -n {session.namespace} -w"])
    _say(f"waiting up to {args.timeout:g}s for airlock ...")

    async def check() -> Outcome | None:
        current = _system(await session.get(kube.AISYSTEMS, name))
        status = current.status
        if status is None:
            return None
        judged = judged_request(status.requests, keys.SHUTDOWN, reason, session.caller.username)
        if judged is not None and judged.verdict is RequestVerdict.REFUSED:
            lines = [f"REFUSED by airlock: {keys.SHUTDOWN} ignored: {judged.reason}"]
            return Outcome(REFUSED, lines + await session.withdraw(kube.AISYSTEMS, name, keys.SHUTDOWN, reason))
        if dry_run:
            if status.incident and status.severity is not None:
                return Outcome(
                    REFUSED,
                    [
                        f"RECORDED, NOT SHUT DOWN: {name} is in dryRun mode (after {session.elapsed()}).",
                        f"incident   {status.incident}",
                        f"Stop it by hand: {_by_hand(current)}",
                    ],
                )
            return None
        if status.phase is not Phase.SHUT_DOWN or not await _stopped(session, current):
            return None
        incident = await _fetch_incident(session, status.incident)
        lines = [f"ShutDown in {session.elapsed()}: {name} is held shut down until released."]
        lines += [f"action     {text}" for text in _describe_actions(current)]
        line = _incident_line(incident, status.incident)
        if line:
            lines.append(line)
        lines.append(f"undo       kubectl airlock release {name} -n {session.namespace}  (once the cause is fixed)")
        return Outcome(DONE, lines)

    outcome = await session.wait(f"{name} to reach phase ShutDown with 0 replicas", check)
    if outcome.code == TIMED_OUT:
        current = _system(await session.get(kube.AISYSTEMS, name))
        refused = await _refused_here(session, current, Verb.SHUTDOWN, kube.AISYSTEMS, name, keys.SHUTDOWN, reason)
        if refused is not None:
            return refused
        status = current.status
        if status is None or status.phase is None:
            outcome.lines.append("airlock never wrote this system's status: is the operator running?")
        else:
            outcome.lines.append(
                f"phase {status.phase.value}; actions: {', '.join(_describe_actions(current)) or 'none'}"
            )
        outcome.lines.append(f"The request stays in place. To stop it by hand now: {_by_hand(current)}")
    return outcome


# ---------------------------------------------------------------- release


async def release(session: Session, args: argparse.Namespace) -> Outcome:
    name = args.system
    system = _system(await session.get(kube.AISYSTEMS, name))
    status = system.status
    held = keys.SHUTDOWN in system.metadata.annotations
    contained = bool(status and ((status.containment and status.containment.active) or status.phase in CONTAINED))
    if not held and not contained:
        phase = status.phase.value if status and status.phase else "unknown"
        return Outcome(DONE, [f"{name} is not contained (phase {phase}): nothing to release."])
    value = f"{_stamp()} {session.caller.username}"
    changes: dict[str, str | None] = {keys.RELEASE: value, **session.identity()}
    if held:
        # Removing airlock.dev/shutdown lifts a manual shutdown: shutdown authority as well as release.
        verdict = await plan_verdict(session, system, (Verb.RELEASE, Verb.SHUTDOWN))
        if verdict is not None and verdict.allowed:
            changes[keys.SHUTDOWN] = None
        else:
            _complain(f"note: {name} is held by airlock.dev/shutdown, which this release does not remove for you.")
    await session.remember_events(name)
    await session.annotate(kube.AISYSTEMS, name, changes)
    lifted = " (and lifting the manual shutdown)" if keys.SHUTDOWN in changes else ""
    _say(f"release {name} (namespace {session.namespace}) requested by {session.caller.username}{lifted}")
    if args.no_wait:
        return Outcome(DONE, [f"not waiting; follow with: kubectl get ais {name} -n {session.namespace} -w"])
    _say(f"waiting up to {args.timeout:g}s for airlock ...")

    async def check() -> Outcome | None:
        current = _system(await session.get(kube.AISYSTEMS, name))
        now = current.status
        if now is None or now.last_handled_release != value:
            return None
        judged = judged_request(now.requests, keys.RELEASE, value, session.caller.username)
        if judged is not None and judged.verdict is RequestVerdict.REFUSED:
            return Outcome(
                REFUSED,
                [
                    f"REFUSED by airlock after {session.elapsed()}: {keys.RELEASE} ignored: {judged.reason}",
                    f"{name} stays {now.phase.value if now.phase else 'contained'}; nothing was restored.",
                ],
            )
        if now.phase not in CONTAINED and not (now.containment and now.containment.active):
            lines = [f"Released in {session.elapsed()}: phase {now.phase.value if now.phase else 'unknown'}."]
            replicas = await _replicas(session, current)
            spec = current.spec
            if spec.mode is Mode.DRY_RUN:
                lines.append("dryRun: airlock had touched nothing; undo by hand whatever you changed by hand.")
            elif spec.target.kind is TargetKind.INFERENCE_SERVICE:
                stop = await _stop_annotation(session, current)
                shown = "removed" if stop is None else f'"{stop}" (as it was)'
                lines.append(f"restored   {spec.target.kind.value} {spec.target.name}: serving.kserve.io/stop {shown}")
            elif replicas is not None:
                lines.append(f"restored   {spec.target.kind.value} {spec.target.name}: {replicas} replicas")
            if spec.fallback is not None and spec.fallback.service is not None and spec.mode is not Mode.DRY_RUN:
                service = await session.api.get_or_none(kube.SERVICES, session.namespace, spec.fallback.service)
                selector = ((service or {}).get("spec") or {}).get("selector") or {}
                shown = ",".join(f"{k}={v}" for k, v in selector.items())
                lines.append(f"restored   Service {spec.fallback.service}: selector {shown}")
            elif spec.fallback is not None and spec.mode is not Mode.DRY_RUN:
                lines.append(f"restored   {spec.fallback.kind} {spec.fallback.object_name}: weights as before")
            line = _incident_line(await _fetch_incident(session, (status.incident if status else None)), None)
            if line:
                lines.append(line)
            return Outcome(DONE, lines)
        approvals = now.containment.release_approvals if now.containment else []
        if any(a.value == value for a in approvals):
            pending = await session.new_event(name, ("ReleaseApprovalRecorded",)) or (
                f"{len(approvals)} release approval(s) so far ({', '.join(a.by for a in approvals)}); "
                "another responder must also release"
            )
            # The two-person rule (releaseApprovals): this release counts, another responder's is still needed.
            return Outcome(
                DONE,
                [
                    f"Release approval recorded in {session.elapsed()}: {pending}.",
                    f"{name} stays {now.phase.value if now.phase else 'contained'} until then: "
                    f"kubectl airlock release {name} -n {session.namespace}",
                ],
            )
        message = await session.new_event(name, ("ReleaseRefused", "UnauthorizedRequest"))
        if message is None:
            refused = next((c for c in now.conditions if c.type == "ReleaseRefused"), None)
            message = refused.message if refused is not None else f"still {now.phase.value if now.phase else ''}"
        lines = [f"REFUSED by airlock after {session.elapsed()}: {message}"]
        lines.append(f"{name} stays {now.phase.value if now.phase else 'contained'}; nothing was restored.")
        if keys.SHUTDOWN in changes:
            lines.append("The manual shutdown was lifted; airlock's own containment holds until the monitors recover.")
        return Outcome(REFUSED, lines)

    return await session.wait(f"airlock to handle release {value!r}", check)


# ---------------------------------------------------------------- ack / approve


async def _incident_verb(
    session: Session,
    args: argparse.Namespace,
    verb: Verb,
    key: str,
    done: Callable[[AIIncident, AISystem | None], str | None],
) -> Outcome:
    name = args.incident
    incident = _incident(await session.get(kube.AIINCIDENTS, name))
    system_name = incident.spec.system
    already = done(incident, None)
    if already is not None:
        return Outcome(DONE, [already])
    if incident.status is not None and incident.status.phase in CLOSED:
        return Outcome(DONE, [f"{name} is {incident.status.phase.value}: nothing to {verb.value}."])
    value = f"{_stamp()} {session.caller.username}"
    await session.remember_events(system_name)
    await session.annotate(kube.AIINCIDENTS, name, {key: value, **session.identity()})
    _say(f"{verb.value} {name} (namespace {session.namespace}) requested by {session.caller.username}")
    if args.no_wait:
        return Outcome(DONE, [f"not waiting; follow with: kubectl get aii {name} -n {session.namespace} -o yaml"])
    _say(f"waiting up to {args.timeout:g}s for airlock ...")

    async def check() -> Outcome | None:
        current = _incident(await session.get(kube.AIINCIDENTS, name))
        judged = judged_request(current.status.requests if current.status else [], key, value, session.caller.username)
        if judged is not None and judged.verdict is RequestVerdict.REFUSED:
            lines = [f"REFUSED by airlock: {key} ignored: {judged.reason}"]
            return Outcome(REFUSED, lines + await session.withdraw(kube.AIINCIDENTS, name, key, value))
        body = await session.api.get_or_none(kube.AISYSTEMS, session.namespace, system_name)
        system = _system(body) if body else None
        result = done(current, system)
        return Outcome(DONE, [result]) if result is not None else None

    outcome = await session.wait(f"airlock to record the {verb.value}", check)
    if outcome.code == TIMED_OUT:
        body = await session.api.get_or_none(kube.AISYSTEMS, session.namespace, system_name)
        if body is not None:
            refused = await _refused_here(session, _system(body), verb, kube.AIINCIDENTS, name, key, value)
            if refused is not None:
                return refused
    return outcome


async def _refused_here(
    session: Session,
    system: AISystem,
    verb: Verb,
    resource: kube.Resource,
    name: str,
    key: str,
    value: str,
) -> Outcome | None:
    """After a timeout (is the operator running?): the plan in force says the caller may not."""
    verdict = await plan_verdict(session, system, (verb,))
    if verdict is None or verdict.allowed:
        return None
    lines = [f"REFUSED: {verdict.reason} (the responders in force; airlock has not answered yet)"]
    return Outcome(REFUSED, lines + await session.withdraw(resource, name, key, value))


def judged_request(requests: list[ControlRequest], key: str, value: str, caller: str) -> ControlRequest | None:
    """airlock's judgement of the caller's own request (status.requests), once it has made one."""
    found = next((r for r in requests if r.annotation == key and r.value == value), None)
    return found if found is not None and found.by == caller else None


def _acknowledged(incident: AIIncident, _: AISystem | None) -> str | None:
    status = incident.status
    if status is None or not status.acknowledged_by:
        return None
    at = f" at {_when(status.acknowledged_at)}" if status.acknowledged_at else ""
    return (
        f"{incident.metadata.name} ({incident.spec.severity.value} {incident.spec.failure_mode.value}) "
        f"is acknowledged by {status.acknowledged_by}{at}: its escalation clock is stopped."
    )


def _approved(incident: AIIncident, system: AISystem | None) -> str | None:
    status = incident.status
    entry = next((e for e in status.timeline if e.type == "Approved"), None) if status else None
    phase = system.status.phase if system is not None and system.status else None
    if entry is None and phase not in CONTAINED:
        return None
    who = f" by {entry.by}" if entry is not None and entry.by else ""
    line = f"{incident.metadata.name} is approved{who}"
    if system is not None and phase is not None:
        actions = system.status.containment.actions if system.status and system.status.containment else []
        line += f"; {incident.spec.system} is {phase.value}"
        if actions:
            line += f" ({', '.join(a.value for a in actions)})"
    return line + "."


async def ack(session: Session, args: argparse.Namespace) -> Outcome:
    return await _incident_verb(session, args, Verb.ACKNOWLEDGE, keys.ACKNOWLEDGE, _acknowledged)


async def approve(session: Session, args: argparse.Namespace) -> Outcome:
    return await _incident_verb(session, args, Verb.APPROVE, keys.APPROVE, _approved)


# ---------------------------------------------------------------- wiring

Handler = Callable[[Session, argparse.Namespace], Awaitable[Outcome]]


async def _main(handler: Handler, args: argparse.Namespace) -> Outcome:
    config, namespace = connection.load(args)
    async with connection.client(config) as api:
        caller = await connection.whoami(api)
        session = Session(api=api, namespace=namespace, caller=caller, timeout=args.timeout)
        return await handler(session, args)


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            outcome = asyncio.run(_main(handler, args))
        except CliError as exc:
            _complain(f"airlock {args.command}: {exc}")
            return exc.code
        except kube.ApiError as exc:
            _complain(f"airlock {args.command}: the API server said {exc}")
            return REFUSED
        except KeyboardInterrupt:
            _complain(f"airlock {args.command}: interrupted; the request (if sent) stays in place")
            return 130
        show = _say if outcome.code == DONE else _complain
        for line in outcome.lines:
            show(line)
        return outcome.code

    return run


def _common(parser: argparse.ArgumentParser) -> None:
    connection.add_cluster_arguments(parser)
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for airlock's answer (default 30; exit 3 after)"
    )
    parser.add_argument("--no-wait", action="store_true", help="set the annotation and return at once")


EPILOG = "exit codes: 0 done, 1 refused or failed, 2 usage, 3 timed out"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shutdown",
        help="shut an AISystem down now (reroute, scale to zero) and hold it",
        description="Set airlock.dev/shutdown on an AISystem as you, wait until it is ShutDown, and say what was done.",
        epilog=EPILOG,
    )
    parser.add_argument("system", metavar="SYSTEM", help="AISystem name")
    parser.add_argument("--reason", required=True, help="what you see: recorded on the incident and in Events")
    _common(parser)
    parser.set_defaults(func=_run(shutdown))

    parser = subparsers.add_parser(
        "release",
        help="lift containment and restore exactly (refused while a containing-level monitor breaches)",
        description=(
            "Request a release of an AISystem as you (a fresh airlock.dev/release value; a manual shutdown is "
            "lifted too if you may), wait for airlock, and say whether it restored or refused, and why."
        ),
        epilog=EPILOG,
    )
    parser.add_argument("system", metavar="SYSTEM", help="AISystem name")
    _common(parser)
    parser.set_defaults(func=_run(release))

    parser = subparsers.add_parser(
        "ack",
        help="acknowledge an AIIncident (stops its escalation clock)",
        description="Set airlock.dev/acknowledge on an AIIncident as you and wait until airlock records it.",
        epilog=EPILOG,
    )
    parser.add_argument("incident", metavar="INCIDENT", help="AIIncident name")
    _common(parser)
    parser.set_defaults(func=_run(ack))

    parser = subparsers.add_parser(
        "approve",
        help="approve an escalated AIIncident's containment",
        description="Set airlock.dev/approve on an AIIncident as you and wait until airlock records or acts on it.",
        epilog=EPILOG,
    )
    parser.add_argument("incident", metavar="INCIDENT", help="AIIncident name")
    _common(parser)
    parser.set_defaults(func=_run(approve))
