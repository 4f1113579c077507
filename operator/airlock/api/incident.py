"""``AIIncident``: the audit record of one incident (SPEC §2.3).

Created by the operator only (drills through the CLI); it has no owner
reference, so it outlives the AISystem it is about.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from airlock.api.common import (
    Action,
    Audience,
    Condition,
    ControlRequest,
    FailureMode,
    Model,
    ObjectMeta,
    Severity,
    Timestamp,
)


class TriggerType(StrEnum):
    """What kind of event opened an incident."""

    MONITOR = "monitor"
    MANUAL = "manual"
    DRILL = "drill"


class Trigger(Model):
    """What opened the incident."""

    type: TriggerType = Field(description="monitor, manual or drill.")
    monitor: str | None = Field(default=None, description="The breached monitor (type monitor).")
    value: float | None = Field(default=None, description="The monitor's value at the breach.")
    condition: str | None = Field(default=None, description="The threshold condition that held, e.g. '> 0.5'.")
    query: str | None = Field(default=None, description="The resolved PromQL that breached.")
    by: str | None = Field(default=None, description="Who triggered a manual or drill incident.")
    reason: str | None = Field(default=None, description="Why, in words (manual shutdown reason, drill scenario).")
    sample_time: Timestamp | None = Field(default=None, alias="sampleTime", description="Breach sample time.")


class HarmCategory(StrEnum):
    """EU AI Act Art. 3(49) serious-incident categories, set by a responder."""

    DEATH_OR_HEALTH = "a"
    CRITICAL_INFRASTRUCTURE = "b"
    FUNDAMENTAL_RIGHTS = "c"
    PROPERTY_OR_ENVIRONMENT = "d"


class AIIncidentSpec(Model):
    """What happened, to which system, how badly: set by the operator (or the CLI for drills)."""

    system: str = Field(min_length=1, description="The AISystem, in the same namespace.")
    failure_mode: FailureMode = Field(alias="failureMode", description="How the system failed.")
    severity: Severity = Field(description="Current severity; raised, never silently lowered.")
    drill: bool = Field(default=False, description="A rehearsal: never touches workloads.")
    dry_run: bool = Field(default=False, alias="dryRun", description="Opened by a system in dryRun mode.")
    trigger: Trigger = Field(description="What opened the incident.")
    harm: list[HarmCategory] = Field(
        default_factory=list, description="Art. 3(49) categories found by a responder (airlock.dev/harm)."
    )
    widespread: bool = Field(
        default=False, description="A widespread infringement (Art. 3(61)) found by a responder (airlock.dev/harm)."
    )


class IncidentPhase(StrEnum):
    """Where an incident is in its life (SPEC §2.3, binding)."""

    OPEN = "Open"
    CONTAINED = "Contained"
    RESOLVED = "Resolved"
    CLOSED = "Closed"


class StatusModel(Model):
    """Status is written by the operator: tolerate fields a newer operator version added."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TimelineEntry(StatusModel):
    """One event in the incident's history."""

    at: Timestamp = Field(description="When it happened.")
    type: str = Field(description="e.g. Detected, Contained, Acknowledged, Released, SeverityRaised.")
    message: str = Field(description="What happened, for humans.")
    by: str | None = Field(default=None, description="airlock, or the responder who acted.")


class ActionRecord(StatusModel):
    """A containment action taken (or undone) during the incident."""

    action: Action = Field(description="reroute, pauseRollout, scaleToZero or isolate.")
    at: Timestamp = Field(description="When it was applied or restored.")
    result: str = Field(description="applied, failed: <why>, restored.")


class ReportState(StrEnum):
    """Where a regulatory report stands against its deadline."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    OVERDUE = "overdue"


class ReportingObligation(StatusModel):
    """A regulatory reporting clock the incident started."""

    regime: str = Field(description="eu-ai-act-art73, gdpr-art33, …")
    deadline: Timestamp = Field(description="When the report is due.")
    state: ReportState = Field(default=ReportState.PENDING, description="pending, submitted or overdue.")
    reference: str | None = Field(default=None, description="Submission reference once submitted.")
    submitted_at: Timestamp | None = Field(default=None, alias="submittedAt", description="When it was recorded.")
    submitted_by: str | None = Field(default=None, alias="submittedBy", description="Who recorded the submission.")
    warned: list[str] = Field(
        default_factory=list, description="Warnings already raised (HalfElapsed, NinetyPercentElapsed, Overdue)."
    )


class NotificationState(StrEnum):
    """Delivery state of a notice."""

    DRAFTED = "drafted"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(StatusModel):
    """A notice to one audience, drafted from its template and tracked until delivered (the outbox)."""

    audience: Audience = Field(description="internal, regulator or users.")
    event: str | None = Field(
        default=None, description="What it announces: opened, severity-SEVn, acknowledged, contained, resolved."
    )
    state: NotificationState = Field(default=NotificationState.DRAFTED, description="drafted, sending, sent or failed.")
    attempts: int = Field(default=0, ge=0, description="Delivery attempts so far.")
    channel: str | None = Field(default=None, description="The delivery channel's name (none: drafted only).")
    severity: Severity | None = Field(default=None, description="The severity it announces.")
    idempotency_key: str | None = Field(
        default=None, alias="idempotencyKey", description="Sent with every attempt so a retry never duplicates."
    )
    next_attempt: Timestamp | None = Field(default=None, alias="nextAttempt", description="When to retry.")
    last_error: str | None = Field(default=None, alias="lastError", description="Why the last attempt failed.")
    sent_at: Timestamp | None = Field(default=None, alias="sentAt", description="When the endpoint accepted it.")


class PostmortemState(StrEnum):
    """Whether the AI-specific post-mortem is done."""

    PENDING = "pending"
    COMPLETE = "complete"


class Postmortem(StatusModel):
    """The AI-specific post-mortem: what data caused it, what monitoring gap, what incentive."""

    state: PostmortemState = Field(default=PostmortemState.PENDING, description="pending or complete.")
    ref: str | None = Field(default=None, description="Where the completed post-mortem lives (airlock.dev/postmortem).")


class Drafts(StatusModel):
    """The ConfigMaps holding the current drafts: immutable, named by their content, owned by the incident."""

    notices: str | None = Field(
        default=None, description="ConfigMap with the current notice drafts (<incident>-notices-<hash>)."
    )
    postmortem: str | None = Field(
        default=None, description="ConfigMap with the post-mortem draft (<incident>-postmortem-<hash>)."
    )


class DrillRecord(StatusModel):
    """What a drill rehearsed: the plan's decision, who was paged and the gaps it found."""

    scenario: str = Field(description="sudden, drift, adversarial, privacy or manual.")
    decision: str = Field(description="What the matrix would have done, in words.")
    actions: list[Action] = Field(default_factory=list, description="Actions enforce mode would have applied.")
    audiences: list[Audience] = Field(default_factory=list, description="Audiences that would be notified.")
    paged: list[str] = Field(default_factory=list, description="Responders (and their subjects) paged to acknowledge.")
    gaps: list[str] = Field(default_factory=list, description="Holes in the plan found by the drill.")
    time_to_acknowledge_seconds: float | None = Field(
        default=None, alias="timeToAcknowledgeSeconds", description="From the drill's start to the acknowledgement."
    )


class AIIncidentStatus(StatusModel):
    """The incident's life: written by the operator, never by hand."""

    phase: IncidentPhase | None = Field(default=None, description="Open, Contained, Resolved or Closed.")
    detected_at: Timestamp | None = Field(default=None, alias="detectedAt", description="When the breach was seen.")
    acknowledged_at: Timestamp | None = Field(
        default=None, alias="acknowledgedAt", description="When a responder acknowledged."
    )
    contained_at: Timestamp | None = Field(default=None, alias="containedAt", description="When containment applied.")
    resolved_at: Timestamp | None = Field(
        default=None, alias="resolvedAt", description="When the system was released and healthy again."
    )
    closed_at: Timestamp | None = Field(
        default=None, alias="closedAt", description="When the post-mortem closed the incident."
    )
    acknowledged_by: str | None = Field(default=None, alias="acknowledgedBy", description="Who acknowledged.")
    time_to_contain_seconds: float | None = Field(
        default=None, alias="timeToContainSeconds", description="Seconds from detection to containment."
    )
    timeline: list[TimelineEntry] = Field(default_factory=list, description="Everything that happened, in order.")
    actions: list[ActionRecord] = Field(default_factory=list, description="Containment actions taken and undone.")
    reporting: list[ReportingObligation] = Field(default_factory=list, description="Regulatory reporting clocks.")
    notifications: list[Notification] = Field(default_factory=list, description="Notices and their delivery.")
    postmortem: Postmortem | None = Field(default=None, description="The AI-specific post-mortem.")
    drafts: Drafts | None = Field(default=None, description="Where the current notice and post-mortem drafts are.")
    drill: DrillRecord | None = Field(default=None, description="Drills only: what was rehearsed and found.")
    requests: list[ControlRequest] = Field(
        default_factory=list,
        max_length=16,
        description="Control annotations on the incident as judged, each bound to who set it.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="ReportingOnTrack and NoticesDelivered (metav1.Condition).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class AIIncident(Model):
    """One incident of one AISystem."""

    api_version: Literal["airlock.dev/v1alpha1"] = Field(default="airlock.dev/v1alpha1", alias="apiVersion")
    kind: Literal["AIIncident"] = "AIIncident"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AIIncidentSpec
    status: AIIncidentStatus | None = None
