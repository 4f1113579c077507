"""``ContainmentPolicy``: a reusable classification matrix shared by many AISystems (SPEC §2.2).

A policy carries the same shapes as ``AISystem.spec`` minus what is specific to
one deployment (target, fallback, params).  Query variables such as
``{{ params.app }}`` are checked when a system merges the policy, because only
the system knows its params.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from airlock.api import query_template
from airlock.api.common import Audience, Model, ObjectMeta, Severity
from airlock.api.matrix import (
    MAX_MONITORS,
    MAX_RESPONDERS,
    Monitor,
    NoticeTemplate,
    Responder,
    SeverityPolicy,
    check_unique_names,
    severities_rules,
)


class ContainmentPolicySpec(Model):
    """A reusable matrix: monitors, severities, responders, notice templates."""

    description: str | None = Field(default=None, description="What kind of system this policy is for.")
    monitors: list[Monitor] = Field(default_factory=list, max_length=MAX_MONITORS, description="Signals.")
    severities: dict[Severity, SeverityPolicy] = Field(
        default_factory=dict, description="Escalation paths by severity."
    )
    responders: list[Responder] = Field(default_factory=list, max_length=MAX_RESPONDERS, description="Who may act.")
    templates: dict[Audience, NoticeTemplate] = Field(
        default_factory=dict, description="Notice template overrides by audience."
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        *severities_rules("severities"),
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
        for index, monitor in enumerate(self.monitors):
            try:
                monitor.check_variables(None)
            except query_template.TemplateError as exc:
                raise ValueError(f"monitors[{index}].query: {exc}") from None
            for t_index, threshold in enumerate(monitor.thresholds):
                if threshold.severity not in self.severities:
                    raise ValueError(
                        f"monitors[{index}].thresholds[{t_index}].severity: {threshold.severity.value} "
                        "is not defined in spec.severities"
                    )
        return self


class ContainmentPolicy(Model):
    """A cluster-scoped, reusable incident-response matrix."""

    api_version: Literal["airlock.dev/v1alpha1"] = Field(default="airlock.dev/v1alpha1", alias="apiVersion")
    kind: Literal["ContainmentPolicy"] = "ContainmentPolicy"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ContainmentPolicySpec
