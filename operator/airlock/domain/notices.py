"""Incident notices: the pre-drafted texts for regulators, users and internal stakeholders.

Defaults ship as Jinja2 files next to this module (``notice_templates/``); an
AISystem or ContainmentPolicy may override any audience's subject and body
(``spec.templates``).  Overrides are user input executed by the operator, so
every template renders in a ``SandboxedEnvironment`` (no attribute starting
with ``_``, no unsafe calls, bounded ``range`` and repetition) with
``StrictUndefined`` (a misspelt variable is an error, never an empty string)
and no autoescape (the output is plain text / markdown, not HTML).

The context is plain dicts, lists and strings built here, never model objects,
and always has the same keys (absent values are ``None``), so
:func:`validate_template` can test-render an override against sample contexts
and reject a broken one when the spec is applied — not when the incident
happens at 3 a.m.

Nothing here sends anything: delivery, the outbox and the choice of which
audiences to notify belong to the engine and adapters.
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.runtime
import jinja2.sandbox

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Action, Audience, FailureMode
from airlock.api.incident import (
    ActionRecord,
    AIIncident,
    AIIncidentStatus,
    HarmCategory,
    IncidentPhase,
    PostmortemState,
    ReportingObligation,
    TimelineEntry,
    Trigger,
    TriggerType,
)
from airlock.api.matrix import NoticeTemplate
from airlock.domain import deadlines
from airlock.domain.errors import SpecError

# A template may not build a string, list or integer larger than this with * or **.
MAX_REPEAT = 100_000
MAX_POWER_BITS = 4096


class NoticeKind(StrEnum):
    """A default template: one per audience, two for the regulator."""

    REGULATOR_EU_AI_ACT = "regulator-eu-ai-act-art73"
    REGULATOR_GDPR = "regulator-gdpr-art33"
    USERS = "users"
    INTERNAL = "internal"


# Which regime a regulator draft is for (the ``regime`` context variable).
KIND_REGIME = {
    NoticeKind.REGULATOR_EU_AI_ACT: deadlines.EU_AI_ACT_ART73,
    NoticeKind.REGULATOR_GDPR: deadlines.GDPR_ART33,
}

DEFAULT_SUBJECTS = {
    NoticeKind.REGULATOR_EU_AI_ACT: (
        "{% if incident.drill %}[DRILL] {% endif %}DRAFT EU AI Act Art. 73 {{ incident.reportType }} report: "
        "{{ system.name }} ({{ incident.name }})"
    ),
    NoticeKind.REGULATOR_GDPR: (
        "{% if incident.drill %}[DRILL] {% endif %}DRAFT GDPR Art. 33 breach notification: "
        "{{ system.name }} ({{ incident.name }})"
    ),
    NoticeKind.USERS: "{% if incident.drill %}[PRACTICE] {% endif %}A problem with our service on {{ incident.detectedDay }}",
    NoticeKind.INTERNAL: (
        "{% if incident.drill %}[DRILL] {% endif %}[{{ incident.severity }}] {{ incident.failureMode }} on "
        "{{ system.name }}: {{ incident.phase }}"
    ),
}

FAILURE_MODE_TEXT = {
    FailureMode.SUDDEN: "sudden failure: errors, crashes or nonsense output",
    FailureMode.DRIFT: "drift: output quality degraded against its baseline",
    FailureMode.ADVERSARIAL: "adversarial use: inputs manipulated to force harmful output",
    FailureMode.PRIVACY: "privacy: personal data exposed in outputs",
    FailureMode.FAIRNESS: "fairness: outcomes skewed against a group of people",
    FailureMode.SAFETY: "safety: harmful content produced",
    FailureMode.COST: "cost: runaway resource or token spend",
}

# For the users' notice: what happened, in words anyone can read.
FAILURE_MODE_PLAIN = {
    FailureMode.SUDDEN: "the service was not working properly and some answers may have been wrong or missing",
    FailureMode.DRIFT: "the quality of the service's answers had slowly become worse",
    FailureMode.ADVERSARIAL: "someone was trying to trick the service into doing something harmful",
    FailureMode.PRIVACY: "the service may have shown personal information to people who should not have seen it",
    FailureMode.FAIRNESS: "the service may have treated some people unfairly",
    FailureMode.SAFETY: "the service may have given harmful or inappropriate answers",
    FailureMode.COST: "the service was using far more computing resources than it should",
}

USER_ADVICE = {
    FailureMode.SUDDEN: "If an answer you got from the service looked wrong, please do not rely on it and ask again.",
    FailureMode.DRIFT: (
        "If an answer you got from the service recently looked wrong or unhelpful, please do not rely on it "
        "and ask again."
    ),
    FailureMode.ADVERSARIAL: (
        "If the service asked you for passwords, payment details or other personal information, or told you "
        "to do something unusual, do not act on it. We will never ask for your password."
    ),
    FailureMode.PRIVACY: (
        "You do not need to do anything right now. If your personal information was affected, we will "
        "contact you directly and tell you what it means for you. Be careful with messages that claim to "
        "come from us and ask for personal details."
    ),
    FailureMode.FAIRNESS: (
        "If you think a decision or answer from the service treated you unfairly, contact us and we will "
        "have a person review it."
    ),
    FailureMode.SAFETY: (
        "If you saw an answer that was harmful or upsetting, do not act on it. You can report it to us, and "
        "if you need support, contact us."
    ),
    FailureMode.COST: "You do not need to do anything.",
}

ACTION_TEXT = {
    Action.REROUTE: "traffic switched to the fallback model",
    Action.PAUSE_ROLLOUT: "rollout of new versions paused",
    Action.SCALE_TO_ZERO: "the model's workload scaled to zero",
    Action.ISOLATE: "the model's pods cut off from the network, kept for forensics",
}

ACTION_PLAIN = {
    Action.REROUTE: "We switched the service to a backup version that is not affected.",
    Action.PAUSE_ROLLOUT: "We stopped all updates to the service while we investigate.",
    Action.SCALE_TO_ZERO: "We switched off the affected part of the service.",
    Action.ISOLATE: "We cut the affected part of the service off so it can no longer send or receive anything.",
}

HARM_TEXT = {
    HarmCategory.DEATH_OR_HEALTH: "death of a person, or serious harm to a person's health",
    HarmCategory.CRITICAL_INFRASTRUCTURE: "serious and irreversible disruption of the management or operation of critical infrastructure",
    HarmCategory.FUNDAMENTAL_RIGHTS: "infringement of obligations under Union law intended to protect fundamental rights",
    HarmCategory.PROPERTY_OR_ENVIRONMENT: "serious harm to property or the environment",
}


class NoticeError(SpecError):
    """A notice template cannot be compiled or rendered; names the audience, the field and the line."""


@dataclass(frozen=True)
class Notice:
    """One rendered notice, ready to be drafted and (for ``internal``) delivered."""

    audience: Audience
    kind: NoticeKind
    subject: str
    body: str


class _Environment(jinja2.sandbox.SandboxedEnvironment):
    """The sandbox, with repetition bounded: ``'x' * 10**9`` must not exhaust the operator's memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and abs(left).bit_length() * right > MAX_POWER_BITS
        ):
            raise jinja2.exceptions.SecurityError("power too large in a notice template")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                    raise jinja2.exceptions.SecurityError("repetition too large in a notice template")
        return super().call_binop(context, operator, left, right)


@functools.cache
def environment() -> jinja2.sandbox.SandboxedEnvironment:
    return _Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.cache
def default_body(kind: NoticeKind) -> str:
    """The shipped template text for ``kind`` (package data)."""
    resource = importlib.resources.files("airlock.domain").joinpath("notice_templates", f"{kind.value}.j2")
    return resource.read_text(encoding="utf-8")


def _time(value: datetime.datetime | None) -> str | None:
    return deadlines.format_instant(value) if value is not None else None


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _evidence(trigger: Trigger) -> str:
    if trigger.type is TriggerType.MONITOR and trigger.monitor:
        value = f" (value {trigger.value:g})" if trigger.value is not None else ""
        return f"monitor {trigger.monitor} {trigger.condition or 'breached'}{value}"
    who = f" by {trigger.by}" if trigger.by else ""
    why = f": {trigger.reason}" if trigger.reason else ""
    return f"{trigger.type.value} trigger{who}{why}"


def build_context(
    incident: AIIncident,
    system_name: str,
    system: AISystemSpec,
    reporting: Sequence[ReportingObligation],
    *,
    now: datetime.datetime,
    awareness_at: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Everything a notice template may use; the same keys whatever is known so far.

    ``system`` should be the spec merged with its policy (responders included);
    ``reporting`` is ``status.reporting`` (or :func:`deadlines.obligations`).
    """
    spec = incident.spec
    status = incident.status or AIIncidentStatus()
    trigger = spec.trigger
    regulatory = system.regulatory
    eu = regulatory.eu_ai_act if regulatory else None
    gdpr = regulatory.gdpr if regulatory else None
    detected = status.detected_at
    aware = awareness_at or detected
    occurred = trigger.sample_time or detected
    complete = status.postmortem is not None and status.postmortem.state is PostmortemState.COMPLETE
    applied = [record for record in status.actions if record.result == "applied"]
    user_actions = list(dict.fromkeys(ACTION_PLAIN[record.action] for record in applied))
    if status.phase in (IncidentPhase.RESOLVED, IncidentPhase.CLOSED):
        user_actions.append("The problem has been fixed and the service is working normally again.")
    return {
        "now": _time(now),
        "regime": None,
        "incident": {
            "name": incident.metadata.name,
            "namespace": incident.metadata.namespace,
            "failureMode": spec.failure_mode.value,
            "failureModeText": FAILURE_MODE_TEXT[spec.failure_mode],
            "failureModePlain": FAILURE_MODE_PLAIN[spec.failure_mode],
            "severity": spec.severity.value,
            "drill": spec.drill,
            "dryRun": spec.dry_run,
            "phase": (status.phase or IncidentPhase.OPEN).value,
            "reportType": "complete" if complete else "initial",
            "evidence": _evidence(trigger),
            "trigger": {
                "type": trigger.type.value,
                "monitor": trigger.monitor,
                "value": trigger.value,
                "condition": trigger.condition,
                "query": trigger.query,
                "by": trigger.by,
                "reason": trigger.reason,
            },
            "occurredAt": _time(occurred),
            "detectedAt": _time(detected),
            "detectedDay": deadlines.utc(detected).strftime("%d %B %Y") if detected else "a recent day",
            "awarenessAt": _time(aware),
            "acknowledgedAt": _time(status.acknowledged_at),
            "acknowledgedBy": status.acknowledged_by,
            "containedAt": _time(status.contained_at),
            "resolvedAt": _time(status.resolved_at),
            "closedAt": _time(status.closed_at),
            "timeToContain": _duration(status.time_to_contain_seconds),
            "harm": [{"code": h.value, "text": HARM_TEXT[h]} for h in spec.harm],
            "timeline": [
                {"at": _time(e.at), "type": e.type, "message": e.message, "by": e.by} for e in status.timeline
            ],
            "actions": [
                {"action": a.action.value, "text": ACTION_TEXT[a.action], "at": _time(a.at), "result": a.result}
                for a in status.actions
            ],
            "userActions": user_actions,
            "userAdvice": USER_ADVICE[spec.failure_mode],
            "postmortem": (
                f"complete ({status.postmortem.ref})"
                if complete and status.postmortem is not None
                else "pending - due before the incident can be closed"
            ),
        },
        "system": {
            "name": system_name,
            "namespace": incident.metadata.namespace,
            "description": system.description,
            "owner": system.owner,
            "target": f"{system.target.kind.value}/{system.target.name}",
            "mode": system.mode.value,
            "responders": [r.name for r in system.responders],
            "highRisk": bool(eu and eu.high_risk),
            "provider": eu.provider if eu else None,
            "systemId": eu.system_id if eu else None,
            "memberStates": list(eu.member_states) if eu else [],
            "personalData": bool(gdpr and gdpr.personal_data),
            "controller": gdpr.controller if gdpr else None,
        },
        "reporting": [
            {
                "regime": r.regime,
                "title": deadlines.TITLES.get(r.regime, r.regime),
                "deadline": _time(r.deadline),
                "state": r.state.value,
                "reference": r.reference,
            }
            for r in reporting
        ],
    }


def kinds(audience: Audience, context: Mapping[str, Any]) -> list[NoticeKind]:
    """The drafts an audience gets: the regulator one per running regime (Art. 73 when none runs)."""
    if audience is Audience.USERS:
        return [NoticeKind.USERS]
    if audience is Audience.INTERNAL:
        return [NoticeKind.INTERNAL]
    regimes = {r["regime"] for r in context["reporting"]}
    out = []
    if (
        regimes & {deadlines.EU_AI_ACT_ART73, deadlines.EU_AI_ACT_ART73_CLASSIFICATION}
        or deadlines.GDPR_ART33 not in regimes
    ):
        out.append(NoticeKind.REGULATOR_EU_AI_ACT)
    if deadlines.GDPR_ART33 in regimes:
        out.append(NoticeKind.REGULATOR_GDPR)
    return out


def _line(exc: BaseException) -> int | None:
    # Jinja rewrites tracebacks so template frames carry the template's line numbers.
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    for frame, frame_lineno in reversed(list(traceback.walk_tb(exc.__traceback__))):
        if frame.f_code.co_filename == "<template>":
            return frame_lineno
    return None


def _render(text: str, context: Mapping[str, Any], field: str) -> str:
    try:
        template = environment().from_string(text)
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise NoticeError(field, f"line {exc.lineno}: syntax error: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        where = _line(exc)
        raise NoticeError(field, f"{f'line {where}: ' if where else ''}refused by the sandbox: {exc}") from None
    except Exception as exc:  # a user template may raise anything; it must never crash the operator
        where = _line(exc)
        message = str(exc) or type(exc).__name__
        raise NoticeError(field, f"{f'line {where}: ' if where else ''}{message}") from None


def render(
    audience: Audience,
    context: Mapping[str, Any],
    template: NoticeTemplate | None = None,
    *,
    config_map_body: str | None = None,
) -> list[Notice]:
    """The notices for ``audience``: the override's subject/body where given, the defaults otherwise.

    The inline ``body`` wins; a ``configMapRef`` override's text is read by the caller and
    passed as ``config_map_body``.  Raises :class:`NoticeError` naming
    ``templates.<audience>.<field>`` and the line.
    """
    prefix = f"templates.{audience.value}"
    body_override: tuple[str, str] | None = None
    if template is not None and template.body is not None:
        body_override = (template.body, f"{prefix}.body")
    elif template is not None and template.config_map_ref is not None and config_map_body is not None:
        body_override = (config_map_body, f"{prefix}.configMapRef")
    notices = []
    for kind in kinds(audience, context):
        values = {**context, "regime": KIND_REGIME.get(kind)}
        if template is not None and template.subject is not None:
            subject = _render(template.subject, values, f"{prefix}.subject")
        else:
            subject = _render(DEFAULT_SUBJECTS[kind], values, f"defaults.{kind.value}.subject")
        if body_override is not None:
            body = _render(body_override[0], values, body_override[1])
        else:
            body = _render(default_body(kind), values, f"defaults.{kind.value}")
        notices.append(Notice(audience=audience, kind=kind, subject=" ".join(subject.split()), body=body))
    return notices


def sample_contexts() -> list[dict[str, Any]]:
    """Contexts an override is test-rendered against: a fresh incident and a fully worked one."""
    t0 = datetime.datetime(2026, 11, 26, 13, 30, 12, tzinfo=datetime.UTC)
    system = AISystemSpec.model_validate(
        {
            "description": "Tier-one support chatbot",
            "owner": "support-ml",
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "responders": [
                {"name": "ml-oncall", "subjects": [{"kind": "Group", "name": "oncall-ml"}], "may": ["acknowledge"]}
            ],
            "regulatory": {
                "euAiAct": {"highRisk": True, "memberStates": ["DE"], "provider": "Example AG", "systemId": "EU-1"},
                "gdpr": {"personalData": True, "controller": "Example AG"},
            },
        }
    )
    bare = AISystemSpec.model_validate(
        {"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"}}
    )
    fresh = AIIncident.model_validate(
        {
            "metadata": {"name": "support-chatbot-20261126-133012", "namespace": "ml-prod"},
            "spec": {
                "system": "support-chatbot",
                "failureMode": "drift",
                "severity": "SEV3",
                "trigger": {"type": "monitor", "monitor": "drift", "value": -0.2, "condition": "< -0.15"},
            },
            "status": {"phase": "Open", "detectedAt": t0.isoformat()},
        }
    )
    later = t0 + datetime.timedelta(minutes=5)
    worked = AIIncident(
        metadata=fresh.metadata,
        spec=fresh.spec.model_copy(
            update={"failure_mode": FailureMode.PRIVACY, "harm": [HarmCategory.FUNDAMENTAL_RIGHTS], "drill": True}
        ),
        status=AIIncidentStatus(
            phase=IncidentPhase.CONTAINED,
            detected_at=t0,
            acknowledged_at=later,
            acknowledged_by="alice@example.com",
            contained_at=t0,
            time_to_contain_seconds=2.1,
            timeline=[TimelineEntry(at=t0, type="Detected", message="SEV1 privacy", by="airlock")],
            actions=[ActionRecord(action=Action.REROUTE, at=t0, result="applied")],
        ),
    )
    real = worked.model_copy(update={"spec": worked.spec.model_copy(update={"drill": False})})
    full = deadlines.obligations(real, system)
    return [
        build_context(fresh, "support-chatbot", bare, [], now=later),
        build_context(worked, "support-chatbot", system, full, now=later),
    ]


def validate_template(text: str, audience: Audience, field: str = "body") -> str | None:
    """An error message naming the audience, field and line if ``text`` cannot render, else None.

    Compiles ``text`` and renders it against :func:`sample_contexts` (for the regulator,
    once per regime), so an unknown variable, a sandbox escape or a runtime error is a
    spec error when the override is applied, not a crash when an incident happens.
    """
    name = f"templates.{audience.value}.{field}"
    try:
        for context in sample_contexts():
            for kind in kinds(audience, context) + (
                [NoticeKind.REGULATOR_GDPR] if audience is Audience.REGULATOR else []
            ):
                _render(text, {**context, "regime": KIND_REGIME.get(kind)}, name)
    except NoticeError as exc:
        return str(exc)
    return None


def validate_templates(templates: Mapping[Audience, NoticeTemplate]) -> list[str]:
    """Every inline override's error (ConfigMap bodies are validated by the caller once read)."""
    errors = []
    for audience, template in sorted(templates.items()):
        for field, text in (("subject", template.subject), ("body", template.body)):
            if text is not None:
                error = validate_template(text, audience, field)
                if error:
                    errors.append(error)
    return errors
