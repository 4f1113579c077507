"""``ContainmentPolicy``: a reusable classification matrix shared by many AISystems (SPEC §2.2).

A policy carries the same shapes as ``AISystem.spec`` minus what is specific to
one deployment (target, fallback, params).  Query variables such as
``{{ params.app }}`` are checked when a system merges the policy, because only
the system knows its params.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from airlock.api.common import Audience, Condition, Model, ObjectMeta, Severity
from airlock.api.matrix import (
    LIST_MAP_BY_NAME,
    LIST_MAP_BY_TYPE,
    MAX_MONITORS,
    MAX_RESPONDERS,
    Monitor,
    NoticeTemplate,
    Responder,
    SeverityPolicy,
    check_monitors,
    check_unique_names,
)
from airlock.api.notifications import Notifications


class ContainmentPolicySpec(Model):
    """A reusable matrix: monitors, severities, responders, notice templates."""

    description: str | None = Field(default=None, description="What kind of system this policy is for.")
    monitors: list[Monitor] = Field(
        default_factory=list,
        max_length=MAX_MONITORS,
        description="Signals; an AISystem's inline monitor of the same name replaces one of these.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    severities: dict[Severity, SeverityPolicy] = Field(
        default_factory=dict, max_length=len(Severity), description="Escalation paths by severity."
    )
    responders: list[Responder] = Field(
        default_factory=list,
        max_length=MAX_RESPONDERS,
        description="Who may act on the systems using this policy.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    templates: dict[Audience, NoticeTemplate] = Field(
        default_factory=dict, max_length=len(Audience), description="Notice template overrides by audience."
    )
    notifications: Notifications | None = Field(
        default=None, description="Delivery channels and the audiences sent automatically."
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": (
                "!has(self.monitors) || "
                "self.monitors.all(m, m.thresholds.all(t, has(self.severities) && t.severity in self.severities))"
            ),
            "message": "every threshold's severity must be defined in spec.severities",
            "fieldPath": ".monitors",
        },
    ]

    @model_validator(mode="after")
    def _cross_field(self) -> ContainmentPolicySpec:
        check_unique_names(self.monitors, self.responders)
        check_monitors(self.monitors, None, self.severities)
        return self


class ContainmentPolicyStatus(Model):
    """What the operator knows about the policy: whether it is usable, and by how many systems."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The .metadata.generation this status reflects."
    )
    systems: int | None = Field(default=None, ge=0, description="How many AISystems reference this policy.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready (metav1.Condition).", json_schema_extra=LIST_MAP_BY_TYPE
    )


class ContainmentPolicy(Model):
    """A cluster-scoped, reusable incident-response matrix."""

    api_version: Literal["airlock.dev/v1alpha1"] = Field(default="airlock.dev/v1alpha1", alias="apiVersion")
    kind: Literal["ContainmentPolicy"] = "ContainmentPolicy"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ContainmentPolicySpec
    status: ContainmentPolicyStatus | None = None
