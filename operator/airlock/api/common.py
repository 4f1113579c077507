"""Vocabulary shared by the three kinds: enums, object metadata, conditions, timestamps.

Every enum here is closed on purpose: an unknown value is a spec error at
``kubectl apply`` time (the CRD carries the same ``enum``), never a silent
fallback.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.config import JsonDict

GROUP = "airlock.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "airlock"


def _attach_cel_rules(schema: JsonDict, cls: type[Any]) -> None:
    # Every model's JSON schema carries its own CEL rules, so the CRD generator
    # finds them wherever the model is used (no class-by-title lookup).
    rules: list[dict[str, str]] = getattr(cls, "cel_rules", [])
    if rules:
        schema["x-kubernetes-validations"] = [dict(rule) for rule in rules]


class Model(BaseModel):
    """Base for every API shape: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, use_enum_values=False, json_schema_extra=_attach_cel_rules
    )

    # CEL rules attached to this object in the generated CRD (x-kubernetes-validations).
    cel_rules: ClassVar[list[dict[str, str]]] = []

    def dump(self) -> dict[str, Any]:
        """The manifest form: aliases, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _rfc3339(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    value = value.astimezone(datetime.UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


# Kubernetes writes times as RFC 3339 with a `Z`; pydantic would write +00:00.
Timestamp = Annotated[
    datetime.datetime,
    PlainSerializer(_rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class FailureMode(StrEnum):
    """How an AI system fails (SPEC §1): three classes and four common sub-classes."""

    SUDDEN = "sudden"
    DRIFT = "drift"
    ADVERSARIAL = "adversarial"
    PRIVACY = "privacy"
    FAIRNESS = "fairness"
    SAFETY = "safety"
    COST = "cost"


class Severity(StrEnum):
    """Incident severity; SEV1 is the worst."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        """1 for SEV1 … 4 for SEV4: lower is worse."""
        return int(self.value[3:])

    def worse_than(self, other: Severity | None) -> bool:
        return other is None or self.rank < other.rank

    def next_higher(self) -> Severity | None:
        """The next worse severity (SEV3 → SEV2), or None at SEV1."""
        return None if self.rank == 1 else Severity(f"SEV{self.rank - 1}")


class Response(StrEnum):
    """What the matrix does at a severity (SPEC §2.1, binding)."""

    OBSERVE = "observe"
    INVESTIGATE = "investigate"
    ESCALATE = "escalate"
    CONTAIN = "contain"
    SHUTDOWN = "shutdown"


class Action(StrEnum):
    """What containment does to the workload (SPEC §2.1, binding)."""

    REROUTE = "reroute"
    PAUSE_ROLLOUT = "pauseRollout"
    SCALE_TO_ZERO = "scaleToZero"
    ISOLATE = "isolate"


class Audience(StrEnum):
    """Who a notice is for."""

    INTERNAL = "internal"
    REGULATOR = "regulator"
    USERS = "users"


class Verb(StrEnum):
    """What a responder may do (SPEC §4)."""

    ACKNOWLEDGE = "acknowledge"
    APPROVE = "approve"
    SHUTDOWN = "shutdown"
    RELEASE = "release"
    DRILL = "drill"
    REPORT = "report"  # classify harm, record regulatory submissions
    CONFIGURE = "configure"  # change the plan itself: mode, monitors, severities, target, responders, ... (SPEC §7)


class RequestVerdict(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"


class ControlRequest(Model):
    """A control annotation's value as airlock judged it, bound to whoever set it (SPEC §7).

    The verdict stands for as long as the value stays on the object: a refused value
    is never acted on later, whoever writes ``airlock.dev/requested-by`` afterwards.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    annotation: str = Field(max_length=253, description="The control annotation, e.g. airlock.dev/shutdown.")
    value: str | None = Field(
        default=None, max_length=4096, description="The value judged; absent: the request removed the annotation."
    )
    by: str | None = Field(default=None, max_length=253, description="Who set it (airlock.dev/requested-by then).")
    groups: list[str] = Field(
        default_factory=list, max_length=64, description="Their groups (airlock.dev/requested-by-groups then)."
    )
    verdict: RequestVerdict = Field(description="accepted or refused.")
    reason: str = Field(default="", max_length=4096, description="Why: the responder that allows it, or who may.")
    at: Timestamp = Field(description="When airlock judged it.")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """The standard ``metav1.Condition`` shape."""

    type: str = Field(description="Condition type: Ready, Contained, MonitoringHealthy or Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="One CamelCase word a program can switch on.",
    )
    message: str = Field(default="", description="A sentence for humans.")
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The .metadata.generation this reflects."
    )
    last_transition_time: Timestamp | None = Field(
        default=None, alias="lastTransitionTime", description="When the status last changed."
    )


class ObjectMeta(Model):
    """The part of ``metadata`` the models read; everything else is kept as-is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str | None = None
    namespace: str | None = None
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
