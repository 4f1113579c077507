"""``AISystem``: one AI deployment, its incident-response plan, and what airlock observed.

SPEC §2.1.  The spec is the plan (monitors, matrix, responders); the status is
what the operator saw and did, written honestly: an evaluation error is
``error``, never ``ok``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

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
from airlock.api.durations import Duration
from airlock.api.guard import GuardSpec
from airlock.api.matrix import (
    LIST_MAP_BY_NAME,
    LIST_MAP_BY_TYPE,
    MAX_MONITORS,
    MAX_RESPONDERS,
    NAME_PATTERN,
    Monitor,
    NoticeTemplate,
    Responder,
    SeverityPolicy,
    check_monitors,
    check_unique_names,
)
from airlock.api.notifications import Notifications


class Mode(StrEnum):
    """enforce: act on workloads; dryRun: decide, record and notify, never touch workloads."""

    ENFORCE = "enforce"
    DRY_RUN = "dryRun"


class ProviderErrorPolicy(StrEnum):
    """What a Prometheus outage does once it has lasted ``failClosedAfter``."""

    HOLD = "hold"
    CONTAIN = "contain"


class TargetKind(StrEnum):
    """Workload kinds airlock can contain."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    ROLLOUT = "Rollout"
    INFERENCE_SERVICE = "InferenceService"  # KServe (SPEC §8)


TARGET_API_VERSIONS = {
    TargetKind.DEPLOYMENT: "apps/v1",
    TargetKind.STATEFUL_SET: "apps/v1",
    TargetKind.ROLLOUT: "argoproj.io/v1alpha1",
    TargetKind.INFERENCE_SERVICE: "serving.kserve.io/v1beta1",
}


# Why pauseRollout is refused for a kind (CEL at apply time; the plan merge for policy severities).
PAUSE_ROLLOUT_NOT_APPLICABLE = (
    "pauseRollout does not apply to {kind} (KServe has no paused rollout): "
    "use scaleToZero (serving.kserve.io/stop) or reroute"
)
PAUSE_ROLLOUT_KINDS = frozenset({TargetKind.INFERENCE_SERVICE})


class TargetRef(Model):
    """The workload serving the model, in the AISystem's namespace."""

    api_version: Literal["apps/v1", "argoproj.io/v1alpha1", "serving.kserve.io/v1beta1"] = Field(
        alias="apiVersion",
        description=(
            "apps/v1 (Deployment, StatefulSet), argoproj.io/v1alpha1 (Rollout) "
            "or serving.kserve.io/v1beta1 (InferenceService)."
        ),
    )
    kind: TargetKind = Field(description="Deployment, StatefulSet, Rollout or InferenceService.")
    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="Name of the workload.")

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": (
                "(self.kind == 'Rollout') == (self.apiVersion == 'argoproj.io/v1alpha1') && "
                "(self.kind == 'InferenceService') == (self.apiVersion == 'serving.kserve.io/v1beta1')"
            ),
            "message": (
                "Deployment and StatefulSet are apps/v1; Rollout is argoproj.io/v1alpha1; "
                "InferenceService is serving.kserve.io/v1beta1"
            ),
            "fieldPath": ".apiVersion",
        }
    ]

    @model_validator(mode="after")
    def _api_version(self) -> TargetRef:
        expected = TARGET_API_VERSIONS[self.kind]
        if self.api_version != expected:
            raise ValueError(f"apiVersion: a {self.kind.value} target is {expected}, not {self.api_version}")
        return self


class PolicyRef(Model):
    """A reference to a cluster-scoped ContainmentPolicy."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="Name of a ContainmentPolicy.")


class BackendRef(Model):
    """A backendRef of an HTTPRoute, named the way the route names it (Gateway API defaults apply)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="Name of the Service or InferencePool.")
    group: str = Field(
        default="",
        max_length=253,
        pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description='API group: "" (core, a Service) or inference.networking.k8s.io (an InferencePool).',
    )
    kind: str = Field(
        default="Service",
        max_length=63,
        pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
        description="Service (default) or InferencePool.",
    )
    namespace: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=63,
        description="Namespace of the backend; default the route's (another one needs a ReferenceGrant there).",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Only needed when the route names the same backend on two ports."
    )


class HTTPRouteFallback(Model):
    """Reroute through a Gateway API HTTPRoute: all weight to one of its backendRefs (SPEC §8)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="HTTPRoute in the system's namespace.")
    backend: BackendRef = Field(description="The fallback backendRef of that route (Service or InferencePool).")


class VirtualServiceDestination(Model):
    """A destination of an Istio VirtualService route, as the VirtualService names it."""

    host: str = Field(min_length=1, max_length=253, description="destination.host, exactly as written in the route.")
    subset: str | None = Field(default=None, max_length=253, description="destination.subset, if the route uses one.")
    port: int | None = Field(default=None, ge=1, le=65535, description="destination.port.number, if the route sets it.")


class VirtualServiceFallback(Model):
    """Reroute through an Istio VirtualService: weight 100 to one destination of its HTTP routes."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="VirtualService in the system's namespace.")
    destination: VirtualServiceDestination = Field(description="The fallback destination of that VirtualService.")


class Fallback(Model):
    """Where traffic goes on reroute: exactly one of a Service selector switch, an HTTPRoute or a VirtualService."""

    service: str | None = Field(
        default=None, pattern=NAME_PATTERN, max_length=63, description="Service in the system's namespace."
    )
    selector: dict[str, str] | None = Field(
        default=None, min_length=1, description="Selector of the fallback model's pods (with service)."
    )
    http_route: HTTPRouteFallback | None = Field(
        default=None, alias="httpRoute", description="Gateway API HTTPRoute whose weights move to a fallback backend."
    )
    virtual_service: VirtualServiceFallback | None = Field(
        default=None, alias="virtualService", description="Istio VirtualService whose weights move to a fallback."
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.service) == has(self.selector)",
            "message": "service and selector go together: the Service whose selector is switched, and to what",
            "fieldPath": ".selector",
            "reason": "FieldValueRequired",
        },
        {
            "rule": "(has(self.service) ? 1 : 0) + (has(self.httpRoute) ? 1 : 0) + (has(self.virtualService) ? 1 : 0) == 1",
            "message": "exactly one of service (with selector), httpRoute or virtualService",
        },
    ]

    @model_validator(mode="after")
    def _one_way(self) -> Fallback:
        if (self.service is None) != (self.selector is None):
            raise ValueError("selector: service and selector go together")
        ways = [w for w in (self.service, self.http_route, self.virtual_service) if w is not None]
        if len(ways) != 1:
            raise ValueError("exactly one of service (with selector), httpRoute or virtualService")
        return self

    def describe(self) -> str:
        """What reroute does, for humans: ``Service chatbot -> app=x`` or ``HTTPRoute chatbot -> Service y``."""
        if self.http_route is not None:
            backend = self.http_route.backend
            where = f" in {backend.namespace}" if backend.namespace else ""
            return f"HTTPRoute {self.http_route.name} -> {backend.kind} {backend.name}{where}"
        if self.virtual_service is not None:
            dest = self.virtual_service.destination
            subset = f" subset {dest.subset}" if dest.subset else ""
            return f"VirtualService {self.virtual_service.name} -> {dest.host}{subset}"
        selector = ",".join(f"{k}={v}" for k, v in (self.selector or {}).items())
        return f"Service {self.service} -> {selector}"

    @property
    def kind(self) -> str:
        """Service, HTTPRoute or VirtualService: the object reroute changes."""
        if self.http_route is not None:
            return "HTTPRoute"
        if self.virtual_service is not None:
            return "VirtualService"
        return "Service"

    @property
    def object_name(self) -> str:
        """The name of the object reroute changes."""
        if self.http_route is not None:
            return self.http_route.name
        if self.virtual_service is not None:
            return self.virtual_service.name
        return self.service or ""


class EuAiAct(Model):
    """EU AI Act profile (Art. 73 serious-incident reporting)."""

    high_risk: bool = Field(default=False, alias="highRisk", description="High-risk system under Annex III.")
    member_states: list[str] = Field(
        default_factory=list,
        alias="memberStates",
        description="ISO 3166 codes of the Member States where the system is used.",
    )
    provider: str | None = Field(default=None, description="Provider's name, for the report.")
    system_id: str | None = Field(default=None, alias="systemId", description="EU database registration id.")


class Gdpr(Model):
    """GDPR profile (Art. 33 breach notification within 72 h)."""

    personal_data: bool = Field(
        default=False, alias="personalData", description="The system processes personal data (GDPR Art. 33)."
    )
    controller: str | None = Field(default=None, description="Data controller, for the notice.")


class Regulatory(Model):
    """Which reporting clocks an incident of this system starts."""

    eu_ai_act: EuAiAct | None = Field(default=None, alias="euAiAct")
    gdpr: Gdpr | None = None


class AISystemSpec(Model):
    """The incident-response plan of one AI deployment."""

    description: str | None = Field(default=None, description="What the system does, for the runbook.")
    owner: str | None = Field(default=None, description="Owning team.")
    mode: Mode = Field(default=Mode.ENFORCE, description="enforce, or dryRun (never touches workloads).")
    policy_ref: PolicyRef | None = Field(
        default=None,
        alias="policyRef",
        description="A ContainmentPolicy; inline monitors, severities and responders extend/override it by name.",
    )
    target: TargetRef = Field(description="The workload serving the model.")
    fallback: Fallback | None = Field(default=None, description="Used by the reroute action.")
    params: dict[str, str] = Field(default_factory=dict, description="Values for {{ params.KEY }} in queries.")
    monitors: list[Monitor] = Field(
        default_factory=list,
        max_length=MAX_MONITORS,
        description="Signals (merged over the policy's by name: an inline monitor replaces the policy's).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    severities: dict[Severity, SeverityPolicy] = Field(
        default_factory=dict,
        max_length=len(Severity),
        description="Escalation paths by severity (merged over the policy's).",
    )
    responders: list[Responder] = Field(
        default_factory=list,
        max_length=MAX_RESPONDERS,
        description="Who may act (merged over the policy's by name).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    templates: dict[Audience, NoticeTemplate] = Field(
        default_factory=dict, max_length=len(Audience), description="Notice template overrides by audience."
    )
    regulatory: Regulatory | None = Field(default=None, description="Reporting obligations.")
    notifications: Notifications | None = Field(
        default=None, description="Delivery channels (merged over the policy's by name) and auto-sent audiences."
    )
    on_provider_error: ProviderErrorPolicy = Field(
        default=ProviderErrorPolicy.HOLD,
        alias="onProviderError",
        description="hold (default) or contain, once Prometheus has failed for failClosedAfter.",
    )
    fail_closed_after: Duration = Field(
        default=Duration("5m"),
        alias="failClosedAfter",
        description="How long a provider outage lasts before onProviderError=contain acts.",
    )
    guard: GuardSpec | None = Field(
        default=None,
        description="Modes of the airlock guard in front of this system (read by `airlock guard --system`).",
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": (
                "has(self.fallback) || !has(self.severities) || "
                "self.severities.all(k, !has(self.severities[k].actions) || !('reroute' in self.severities[k].actions))"
            ),
            "message": "the reroute action needs spec.fallback",
            "fieldPath": ".fallback",
            "reason": "FieldValueRequired",
        },
        {
            "rule": (
                "has(self.policyRef) || !has(self.monitors) || "
                "self.monitors.all(m, m.thresholds.all(t, has(self.severities) && t.severity in self.severities))"
            ),
            "message": "every threshold's severity must be defined in spec.severities",
            "fieldPath": ".monitors",
        },
        {
            "rule": (
                "self.target.kind != 'InferenceService' || !has(self.severities) || "
                "self.severities.all(k, !has(self.severities[k].actions) || "
                "!('pauseRollout' in self.severities[k].actions))"
            ),
            "message": (
                "pauseRollout does not apply to an InferenceService (KServe has no paused rollout): "
                "use scaleToZero (serving.kserve.io/stop) or reroute"
            ),
            "fieldPath": ".severities",
        },
    ]

    @model_validator(mode="after")
    def _cross_field(self) -> AISystemSpec:
        check_unique_names(self.monitors, self.responders)
        check_monitors(self.monitors, self.params, None if self.policy_ref else self.severities)
        if self.fallback is None:
            for severity, policy in self.severities.items():
                if Action.REROUTE in policy.actions:
                    raise ValueError(f"severities.{severity.value}.actions: reroute needs spec.fallback")
        if self.target.kind in PAUSE_ROLLOUT_KINDS:
            for severity, policy in self.severities.items():
                if Action.PAUSE_ROLLOUT in policy.actions:
                    why = PAUSE_ROLLOUT_NOT_APPLICABLE.format(kind=f"an {self.target.kind.value}")
                    raise ValueError(f"severities.{severity.value}.actions: {why}")
        return self


class StatusModel(Model):
    """Status is written by the operator: tolerate fields a newer operator version added."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MonitorState(StrEnum):
    """Evaluation state of one monitor (SPEC §2.1, binding)."""

    OK = "ok"
    BREACHED = "breached"
    NO_DATA = "noData"
    ERROR = "error"


class Phase(StrEnum):
    """The one-word state of an AISystem (SPEC §2.1, binding)."""

    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    CONTAINED = "Contained"
    SHUT_DOWN = "ShutDown"
    UNKNOWN = "Unknown"
    INVALID = "Invalid"


class PendingThreshold(StatusModel):
    """A threshold whose condition holds, and since when: the persisted ``for`` clock."""

    severity: Severity = Field(description="The severity the threshold raises once its `for` has elapsed.")
    since: Timestamp = Field(description="When the condition started to hold (survives operator restarts).")


class MonitorStatus(StatusModel):
    """What the last evaluation of one monitor found."""

    name: str = Field(description="The monitor's name, as in spec.monitors (or the policy's).")
    state: MonitorState = Field(description="ok, breached, noData or error.")
    failure_mode: FailureMode | None = Field(
        default=None, alias="failureMode", description="The failure mode the monitor reveals."
    )
    value: float | None = Field(default=None, description="Current value (relative change if baseline).")
    current: float | None = Field(default=None, description="Raw current value when a baseline is used.")
    baseline: float | None = Field(default=None, description="Baseline value when a baseline is used.")
    severity: Severity | None = Field(default=None, description="Severity in force from this monitor.")
    since: Timestamp | None = Field(default=None, description="When the current state began.")
    pending: list[PendingThreshold] = Field(
        default_factory=list, description="Thresholds whose condition holds, with the start of their `for` clock."
    )
    last_evaluated: Timestamp | None = Field(
        default=None, alias="lastEvaluated", description="When the monitor was last evaluated."
    )
    sample_time: Timestamp | None = Field(default=None, alias="sampleTime", description="Timestamp of the sample.")
    query: str | None = Field(default=None, description="The resolved PromQL.")
    message: str | None = Field(default=None, description="Why the state is error or noData.")


class ReleaseApproval(StatusModel):
    """One responder's release request, counted towards ``releaseApprovals``."""

    by: str = Field(description="The responder's username.")
    at: Timestamp = Field(description="When the release was asked.")
    value: str = Field(description="The airlock.dev/release value.")


class Containment(StatusModel):
    """What airlock did to the workload and what it must restore."""

    active: bool = Field(default=False, description="The workload is held contained right now.")
    actions: list[Action] = Field(default_factory=list, description="The actions applied, in order.")
    since: Timestamp | None = Field(default=None, description="When containment began.")
    by: str | None = Field(default=None, description="airlock, or the responder for manual actions.")
    reason: str | None = Field(default=None, description="Why, e.g. monitor pii-leak > 0.5 (0.8).")
    severity: Severity | None = Field(default=None, description="The severity that triggered containment.")
    manual: bool = Field(default=False, description="Held by the airlock.dev/shutdown annotation.")
    manual_request: str | None = Field(
        default=None,
        alias="manualRequest",
        description="The airlock.dev/shutdown value that was authorized (authority is checked once, when asked).",
    )
    saved: dict[str, Any] | None = Field(
        default=None,
        description="The state the actions changed (replicas, selector, paused, ...), restored exactly on release.",
    )
    failed: list[str] = Field(default_factory=list, description="Actions that could not be applied, with why.")
    release_approvals: list[ReleaseApproval] = Field(
        default_factory=list,
        alias="releaseApprovals",
        description="Responders who asked to release so far, when the severity needs more than one (two-person rule).",
    )


class AISystemStatus(StatusModel):
    """What airlock observed and did: written by the operator, never by hand."""

    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The .metadata.generation this status reflects."
    )
    phase: Phase | None = Field(default=None, description="Healthy, Degraded, Contained, ShutDown, Unknown or Invalid.")
    severity: Severity | None = Field(default=None, description="Highest active severity.")
    incident: str | None = Field(default=None, description="The open AIIncident.")
    monitors: list[MonitorStatus] = Field(
        default_factory=list, description="The last evaluation of every monitor.", json_schema_extra=LIST_MAP_BY_NAME
    )
    containment: Containment | None = Field(default=None, description="What airlock did to the workload.")
    would_contain: list[Action] | None = Field(
        default=None,
        alias="wouldContain",
        description="dryRun only: the actions enforce mode would have applied now (severity and reason: see severity and the Ready condition).",
    )
    last_handled_release: str | None = Field(
        default=None,
        alias="lastHandledRelease",
        description="The airlock.dev/release annotation value last handled (each value is handled once).",
    )
    last_handled_drill: str | None = Field(
        default=None,
        alias="lastHandledDrill",
        description="The airlock.dev/drill annotation value last handled (each value runs once).",
    )
    provider_error_since: Timestamp | None = Field(
        default=None, alias="providerErrorSince", description="Start of the current Prometheus outage."
    )
    requests: list[ControlRequest] = Field(
        default_factory=list,
        max_length=16,
        description="airlock.dev/shutdown requests on the object (set, changed or removed) as judged, each bound to who made it.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Contained, MonitoringHealthy and Stalled (metav1.Condition).",
        json_schema_extra=LIST_MAP_BY_TYPE,
    )


class AISystem(Model):
    """An AI deployment under airlock's containment."""

    api_version: Literal["airlock.dev/v1alpha1"] = Field(default="airlock.dev/v1alpha1", alias="apiVersion")
    kind: Literal["AISystem"] = "AISystem"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AISystemSpec
    status: AISystemStatus | None = None
