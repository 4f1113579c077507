"""``AIIncident``: the audit record of one incident (SPEC §2.3).

Created by the operator only (drills through the CLI); it has no owner
reference, so it outlives the AISystem it is about.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from airlock.api.common import Action, Audience, FailureMode, Model, ObjectMeta, Severity, Timestamp


class TriggerType(StrEnum):
    MONITOR = "monitor"
    MANUAL = "manual"
    DRILL = "drill"


class Trigger(Model):
    """What opened the incident."""

    type: TriggerType
    monitor: str | None = None
    value: float | None = None
    condition: str | None = Field(default=None, description="e.g. '> 0.5'.")
    query: str | None = None
    by: str | None = Field(default=None, description="Who triggered a manual or drill incident.")
    reason: str | None = None
    sample_time: Timestamp | None = Field(default=None, alias="sampleTime", description="Breach sample time.")


class HarmCategory(StrEnum):
    """EU AI Act Art. 3(49) serious-incident categories, set by a responder."""

    DEATH_OR_HEALTH = "a"
    CRITICAL_INFRASTRUCTURE = "b"
    FUNDAMENTAL_RIGHTS = "c"
    PROPERTY_OR_ENVIRONMENT = "d"


class AIIncidentSpec(Model):
    system: str = Field(min_length=1, description="The AISystem, in the same namespace.")
    failure_mode: FailureMode = Field(alias="failureMode")
    severity: Severity = Field(description="Current severity; raised, never silently lowered.")
    drill: bool = Field(default=False, description="A rehearsal: never touches workloads.")
    dry_run: bool = Field(default=False, alias="dryRun", description="Opened by a system in dryRun mode.")
    trigger: Trigger
    harm: list[HarmCategory] = Field(default_factory=list, description="Art. 3(49) categories, if any.")


class IncidentPhase(StrEnum):
    OPEN = "Open"
    CONTAINED = "Contained"
    RESOLVED = "Resolved"
    CLOSED = "Closed"


class StatusModel(Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TimelineEntry(StatusModel):
    at: Timestamp
    type: str = Field(description="e.g. Detected, Contained, Acknowledged, Released, SeverityRaised.")
    message: str
    by: str | None = None


class ActionRecord(StatusModel):
    action: Action
    at: Timestamp
    result: str = Field(description="applied, failed: <why>, restored.")


class ReportState(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    OVERDUE = "overdue"


class ReportingObligation(StatusModel):
    regime: str = Field(description="eu-ai-act-art73, gdpr-art33, …")
    deadline: Timestamp
    state: ReportState = ReportState.PENDING
    reference: str | None = Field(default=None, description="Submission reference once submitted.")


class NotificationState(StrEnum):
    DRAFTED = "drafted"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(StatusModel):
    audience: Audience
    state: NotificationState = NotificationState.DRAFTED
    attempts: int = 0
    channel: str | None = None
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey")
    next_attempt: Timestamp | None = Field(default=None, alias="nextAttempt")
    last_error: str | None = Field(default=None, alias="lastError")


class PostmortemState(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"


class Postmortem(StatusModel):
    state: PostmortemState = PostmortemState.PENDING
    ref: str | None = None


class AIIncidentStatus(StatusModel):
    phase: IncidentPhase | None = None
    detected_at: Timestamp | None = Field(default=None, alias="detectedAt")
    acknowledged_at: Timestamp | None = Field(default=None, alias="acknowledgedAt")
    contained_at: Timestamp | None = Field(default=None, alias="containedAt")
    resolved_at: Timestamp | None = Field(default=None, alias="resolvedAt")
    closed_at: Timestamp | None = Field(default=None, alias="closedAt")
    acknowledged_by: str | None = Field(default=None, alias="acknowledgedBy")
    time_to_contain_seconds: float | None = Field(default=None, alias="timeToContainSeconds")
    timeline: list[TimelineEntry] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    reporting: list[ReportingObligation] = Field(default_factory=list)
    notifications: list[Notification] = Field(default_factory=list)
    postmortem: Postmortem | None = None


class AIIncident(Model):
    """One incident of one AISystem."""

    api_version: Literal["airlock.dev/v1alpha1"] = Field(default="airlock.dev/v1alpha1", alias="apiVersion")
    kind: Literal["AIIncident"] = "AIIncident"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AIIncidentSpec
    status: AIIncidentStatus | None = None
