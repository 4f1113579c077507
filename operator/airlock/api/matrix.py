"""The shapes an AISystem and a ContainmentPolicy share: monitors, severities, responders, templates.

Together they are the classification matrix (failure mode × magnitude →
severity → response) and the authority protocol of SPEC §1.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

import jinja2
from pydantic import Field, ValidationInfo, field_validator, model_validator

from airlock.api import query_template
from airlock.api.common import Action, Audience, FailureMode, Model, Response, Severity, Verb
from airlock.api.durations import Duration

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

# Bounds keep the CEL cost estimate of the API server finite and stop a typo
# from turning into ten thousand monitors.
MAX_MONITORS = 64
MAX_THRESHOLDS = 8
MAX_RESPONDERS = 32
MAX_SUBJECTS = 64

# Parses notice templates for syntax only; it never renders anything.
_JINJA_SYNTAX = jinja2.Environment(autoescape=False)

# Lists whose items are keyed by a field: the API server enforces unique keys
# (and server-side apply merges by key) — SPEC: monitor and responder names are unique.
LIST_MAP_BY_NAME: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
LIST_MAP_BY_TYPE: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class Op(StrEnum):
    """Comparison between a monitor's value and a threshold."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


class NoDataPolicy(StrEnum):
    """What an empty query result means (SPEC §2.1)."""

    OK = "ok"
    BREACH = "breach"
    GAP = "gap"


class Threshold(Model):
    """One row of the matrix: when the monitor's value satisfies ``op value`` for ``for``, the severity holds."""

    severity: Severity = Field(description="Severity raised while the condition holds.")
    op: Op = Field(description="Comparison: >, >=, <, <=, ==, !=.")
    value: float = Field(allow_inf_nan=False, description="The pre-agreed line.")
    for_: Duration = Field(
        default=Duration("0s"),
        alias="for",
        description="How long the condition must hold continuously before the severity applies (0s: at once).",
    )

    def condition(self) -> str:
        """Human form, e.g. ``> 0.5``."""
        return f"{self.op.value} {self.value:g}"


class Baseline(Model):
    """Compare the current value with the same query over an earlier window (drift)."""

    offset: Duration = Field(description="How far back the baseline window ends, e.g. 7d.")
    window: Duration = Field(description="Length of the baseline window, e.g. 1d.")

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!self.offset.matches('^(0+(ms|s|m|h|d|w))+$')",
            "message": "offset must be greater than zero (a zero offset compares the value with itself)",
            "fieldPath": ".offset",
        },
        {
            "rule": "!self.window.matches('^(0+(ms|s|m|h|d|w))+$')",
            "message": "window must be greater than zero",
            "fieldPath": ".window",
        },
    ]

    @field_validator("offset", "window")
    @classmethod
    def _positive(cls, value: Duration, info: ValidationInfo) -> Duration:
        if value.seconds <= 0:
            raise ValueError(f"{info.field_name} must be greater than zero")
        return value


class Monitor(Model):
    """A Prometheus signal that reveals a failure mode, and its thresholds."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Unique name within the system.")
    failure_mode: FailureMode = Field(alias="failureMode", description="The failure mode this monitor reveals.")
    description: str | None = Field(default=None, description="What this signal means, for the runbook.")
    query: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "PromQL. May use {{ namespace }}, {{ name }}, {{ target }} and {{ params.KEY }}; substituted values "
            "are escaped for PromQL string literals. With `match`, a vector query shared by many systems."
        ),
    )
    match: dict[str, str] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Shared (batched) monitor: label values (templates allowed) that pick this system's series out of "
            "the vector `query`, which is evaluated once per interval for all systems using it."
        ),
    )
    interval: Duration = Field(default=Duration("15s"), description="How often the query is evaluated.")
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.GAP,
        alias="noData",
        description="Empty result: ok, breach, or gap (MonitoringHealthy=False, never contains by itself).",
    )
    baseline: Baseline | None = Field(
        default=None, description="If set, the value is the relative change against this baseline window."
    )
    thresholds: list[Threshold] = Field(
        min_length=1,
        max_length=MAX_THRESHOLDS,
        description="The highest severity whose condition holds for its `for` wins.",
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!self.interval.matches('^(0+(ms|s|m|h|d|w))+$')",
            "message": "interval must be greater than zero",
            "fieldPath": ".interval",
        },
    ]

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: Duration) -> Duration:
        if value.seconds <= 0:
            raise ValueError("interval must be greater than zero")
        return value

    @field_validator("query")
    @classmethod
    def _query_braces(cls, value: str) -> str:
        try:
            query_template.parse(value)
        except query_template.TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("match")
    @classmethod
    def _match_braces(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for label, template in (value or {}).items():
            try:
                query_template.parse(template)
            except query_template.TemplateError as exc:
                raise ValueError(f"[{label}]: {exc}") from None
        return value

    def check_variables(self, params: dict[str, str] | None) -> None:
        """Raise :class:`query_template.TemplateError` if a placeholder names an unknown variable.

        The message starts with the field (``query: …`` or ``match[app]: …``) relative to the monitor.
        """
        try:
            query_template.check_variables(self.query, params)
        except query_template.TemplateError as exc:
            raise query_template.TemplateError(f"query: {exc}") from None
        for label, template in (self.match or {}).items():
            try:
                query_template.check_variables(template, params)
            except query_template.TemplateError as exc:
                raise query_template.TemplateError(f"match[{label}]: {exc}") from None

    def severities(self) -> set[Severity]:
        return {t.severity for t in self.thresholds}


class SeverityPolicy(Model):
    """The escalation path at one severity."""

    response: Response = Field(description="observe, investigate, escalate, contain or shutdown.")
    actions: list[Action] = Field(
        default_factory=list,
        max_length=4,
        description="Containment actions (escalate: once approved or escalated; contain/shutdown: at once).",
    )
    notify: list[Audience] = Field(default_factory=list, max_length=3, description="Audiences to notify.")
    ack_within: Duration | None = Field(
        default=None,
        alias="ackWithin",
        description="Escalate to the next-higher severity if nobody acknowledges within this time.",
    )
    release_approvals: int = Field(
        default=1,
        ge=1,
        le=5,
        alias="releaseApprovals",
        description="Distinct responders who must release (2: the two-person rule).",
    )
    postmortem_required: bool = Field(
        default=False,
        alias="postmortemRequired",
        description=(
            "A resolved incident of this severity stays Resolved until airlock.dev/postmortem records a "
            "completed post-mortem; otherwise it closes when resolved."
        ),
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!(self.response in ['observe', 'investigate']) || !has(self.actions) || size(self.actions) == 0",
            "message": "observe and investigate never touch the workload: remove actions or use escalate/contain",
            "fieldPath": ".actions",
        },
        {
            "rule": "!(self.response in ['contain', 'shutdown']) || (has(self.actions) && size(self.actions) > 0)",
            "message": "contain and shutdown act on the workload at once: list at least one action",
            "fieldPath": ".actions",
            "reason": "FieldValueRequired",
        },
        {
            "rule": "self.response != 'observe' || !has(self.ackWithin)",
            "message": "ackWithin needs an incident: not allowed with response observe",
            "fieldPath": ".ackWithin",
        },
        {
            "rule": "!has(self.actions) || self.actions.all(a, self.actions.exists_one(b, b == a))",
            "message": "actions must not repeat",
            "fieldPath": ".actions",
            "reason": "FieldValueDuplicate",
        },
    ]

    @model_validator(mode="after")
    def _coherent(self) -> SeverityPolicy:
        if self.response in (Response.OBSERVE, Response.INVESTIGATE) and self.actions:
            raise ValueError(
                f"actions: response {self.response.value} never touches the workload; "
                "remove actions or use escalate/contain"
            )
        if self.response in (Response.CONTAIN, Response.SHUTDOWN) and not self.actions:
            raise ValueError(
                f"actions: response {self.response.value} acts on the workload at once; list at least one action "
                "(or use investigate/escalate)"
            )
        if self.response is Response.OBSERVE and self.ack_within is not None:
            raise ValueError("ackWithin: not allowed with response observe (there is no incident to acknowledge)")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("actions: must not repeat")
        return self

    def contains(self) -> bool:
        """Whether this severity acts on the workload without waiting for anyone."""
        return self.response in (Response.CONTAIN, Response.SHUTDOWN)


class SubjectKind(StrEnum):
    """The kinds of identity an RBAC subject can be."""

    USER = "User"
    GROUP = "Group"
    SERVICE_ACCOUNT = "ServiceAccount"


class Subject(Model):
    """A Kubernetes identity, as in an RBAC binding."""

    kind: SubjectKind = Field(description="User, Group or ServiceAccount.")
    name: str = Field(min_length=1, description="User name, group name or ServiceAccount name.")
    namespace: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=63,
        description="ServiceAccount namespace (required for that kind, not allowed for the others).",
    )

    # `namespace` is a CEL reserved word: Kubernetes exposes the property as `__namespace__`.
    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "self.kind != 'ServiceAccount' || has(self.__namespace__)",
            "message": "a ServiceAccount subject needs a namespace",
            "fieldPath": ".namespace",
        },
        {
            "rule": "self.kind == 'ServiceAccount' || !has(self.__namespace__)",
            "message": "namespace is only for ServiceAccount subjects",
            "fieldPath": ".namespace",
        },
    ]

    @model_validator(mode="after")
    def _namespace(self) -> Subject:
        if self.kind is SubjectKind.SERVICE_ACCOUNT and not self.namespace:
            raise ValueError("namespace: a ServiceAccount subject needs a namespace")
        if self.kind is not SubjectKind.SERVICE_ACCOUNT and self.namespace is not None:
            raise ValueError("namespace: only ServiceAccount subjects have a namespace")
        return self

    def username(self) -> str | None:
        """The username the API server reports for this subject (None for a group)."""
        if self.kind is SubjectKind.USER:
            return self.name
        if self.kind is SubjectKind.SERVICE_ACCOUNT:
            return f"system:serviceaccount:{self.namespace}:{self.name}"
        return None


class Responder(Model):
    """A named role in the authority protocol: who, and what they may do."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Role name, e.g. ml-oncall.")
    subjects: list[Subject] = Field(min_length=1, max_length=MAX_SUBJECTS, description="Who holds the role.")
    may: list[Verb] = Field(
        min_length=1,
        max_length=7,
        description="Verbs: acknowledge, approve, shutdown, release, drill, report, configure.",
    )


class ConfigMapKeyRef(Model):
    """A key of a ConfigMap in the system's namespace."""

    name: str = Field(pattern=NAME_PATTERN, description="ConfigMap in the system's namespace.")
    key: str = Field(min_length=1, description="Key holding the template.")


class NoticeTemplate(Model):
    """An override of a default notice: inline Jinja2 text or a ConfigMap reference."""

    subject: str | None = Field(default=None, description="Subject line (Jinja2).")
    body: str | None = Field(default=None, description="Body (Jinja2, sandboxed).")
    config_map_ref: ConfigMapKeyRef | None = Field(
        default=None, alias="configMapRef", description="Take the body from a ConfigMap instead."
    )

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.body) != has(self.configMapRef)",
            "message": "give exactly one of body or configMapRef",
        }
    ]

    @field_validator("subject", "body")
    @classmethod
    def _jinja_syntax(cls, text: str | None) -> str | None:
        # Syntax only: the api layer cannot render (that needs the domain's sandbox and
        # context); airlock.domain.notices.validate_template does the full check.
        if text is not None:
            try:
                _JINJA_SYNTAX.parse(text)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"line {exc.lineno}: Jinja2 syntax error: {exc.message}") from None
        return text

    @model_validator(mode="after")
    def _one_source(self) -> NoticeTemplate:
        if (self.body is None) == (self.config_map_ref is None):
            raise ValueError("give exactly one of body or configMapRef")
        return self


def check_unique_names(monitors: list[Monitor], responders: list[Responder]) -> None:
    """Monitor and responder names are keys: raise ValueError naming the duplicate."""
    named: list[tuple[str, list[str]]] = [
        ("monitors", [m.name for m in monitors]),
        ("responders", [r.name for r in responders]),
    ]
    for field, names in named:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                raise ValueError(f"{field}[{index}].name: duplicate name {name!r}")
            seen.add(name)


def check_monitors(
    monitors: list[Monitor],
    params: dict[str, str] | None,
    severities: dict[Severity, SeverityPolicy] | None,
) -> None:
    """Template variables known (``params`` None: not known yet) and, unless ``severities`` is None
    (a policy supplies them), every threshold's severity defined; raise ValueError naming the field."""
    for index, monitor in enumerate(monitors):
        try:
            monitor.check_variables(params)
        except query_template.TemplateError as exc:
            raise ValueError(f"monitors[{index}].{exc}") from None
        if severities is None:
            continue
        for t_index, threshold in enumerate(monitor.thresholds):
            if threshold.severity not in severities:
                raise ValueError(
                    f"monitors[{index}].thresholds[{t_index}].severity: {threshold.severity.value} "
                    "is not defined in spec.severities"
                )
