"""The effective plan of one AISystem: its spec merged with its ContainmentPolicy.

``policyRef`` brings in a reusable matrix; the AISystem's inline monitors,
severities and responders extend it and win by name/key.  Some mistakes can
only be seen after the merge (a threshold naming a severity that neither
defines, ``reroute`` without a fallback, ``pauseRollout`` of a policy applied to an
InferenceService, ``{{ params.x }}`` the system does not define): they are reported here, naming the field, and the system goes
``Invalid`` without anything being touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from airlock.api import query_template
from airlock.api.aisystem import PAUSE_ROLLOUT_KINDS, PAUSE_ROLLOUT_NOT_APPLICABLE, AISystemSpec, Mode
from airlock.api.common import Action, Audience, Severity
from airlock.api.matrix import Monitor, NoticeTemplate, Responder, SeverityPolicy
from airlock.api.notifications import Channel
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain.errors import SpecError
from airlock.domain.templates import TemplateContext, baseline_query, render, render_match

_Named = TypeVar("_Named", Monitor, Responder)


@dataclass(frozen=True)
class ResolvedMonitor:
    """A monitor with its query resolved for one system.

    For a shared monitor (``match``), ``query`` is the vector query shared by
    every system using it and ``match`` selects this system's series.
    """

    monitor: Monitor
    query: str
    match: dict[str, str] | None
    baseline_query: str | None

    @property
    def name(self) -> str:
        return self.monitor.name


@dataclass(frozen=True)
class Plan:
    """Everything the operator needs to evaluate and act for one system."""

    spec: AISystemSpec
    monitors: list[ResolvedMonitor]
    severities: dict[Severity, SeverityPolicy]
    responders: list[Responder]
    templates: dict[Audience, NoticeTemplate] = field(default_factory=dict)
    policy: str | None = None
    channels: list[Channel] = field(default_factory=list)
    auto_send: list[Audience] | None = None

    @property
    def dry_run(self) -> bool:
        return self.spec.mode is Mode.DRY_RUN

    def severity_policy(self, severity: Severity) -> SeverityPolicy | None:
        return self.severities.get(severity)

    def containing_severities(self) -> list[Severity]:
        """Severities whose response acts at once, worst first."""
        return sorted((s for s, p in self.severities.items() if p.contains()), key=lambda s: s.rank)


def _merge_named(base: list[_Named], overrides: list[_Named]) -> list[_Named]:
    merged = {item.name: item for item in base}
    for item in overrides:
        merged[item.name] = item
    return list(merged.values())


def _merge_named_channels(base: list[Channel], overrides: list[Channel]) -> list[Channel]:
    merged = {c.name: c for c in base}
    for channel in overrides:
        merged[channel.name] = channel
    return list(merged.values())


def merge_responders(policy: list[Responder], inline: list[Responder]) -> list[Responder]:
    """The responders in force: the system's inline ones replace the policy's of the same name."""
    return _merge_named(policy, inline)


def build_plan(
    namespace: str,
    name: str,
    spec: AISystemSpec,
    policy: ContainmentPolicySpec | None,
) -> Plan:
    """Merge ``spec`` over ``policy`` and resolve every query; raise :class:`SpecError`."""
    if spec.policy_ref is not None and policy is None:
        raise SpecError("spec.policyRef.name", f"ContainmentPolicy {spec.policy_ref.name!r} not found")
    base_monitors = policy.monitors if policy else []
    monitors = _merge_named(base_monitors, spec.monitors)
    severities = dict(policy.severities) if policy else {}
    severities.update(spec.severities)
    responders = merge_responders(policy.responders if policy else [], spec.responders)
    templates = dict(policy.templates) if policy else {}
    templates.update(spec.templates)
    base = policy.notifications if policy else None
    channels = _merge_named_channels(
        base.channels if base else [], spec.notifications.channels if spec.notifications else []
    )
    auto_send = (
        spec.notifications.auto_send
        if spec.notifications and spec.notifications.auto_send is not None
        else (base.auto_send if base else None)
    )

    inline = {m.name for m in spec.monitors}
    # Where each merged monitor is written, so an error points at the line to fix.
    locations: list[str] = []
    for index, monitor in enumerate(monitors):
        where = (
            f"spec.monitors[{spec.monitors.index(monitor)}]"
            if monitor.name in inline
            else f"ContainmentPolicy {spec.policy_ref.name if spec.policy_ref else ''} monitors[{index}]"
        )
        locations.append(where)
        for t_index, threshold in enumerate(monitor.thresholds):
            if threshold.severity not in severities:
                raise SpecError(
                    f"{where}.thresholds[{t_index}].severity",
                    f"{threshold.severity.value} is not defined in severities (monitor {monitor.name!r})",
                )
    for severity, severity_policy in severities.items():
        if Action.REROUTE in severity_policy.actions and spec.fallback is None:
            raise SpecError("spec.fallback", f"severity {severity.value} uses reroute, which needs spec.fallback")
        if Action.PAUSE_ROLLOUT in severity_policy.actions and spec.target.kind in PAUSE_ROLLOUT_KINDS:
            # Inline severities are refused at apply time (CEL); one merged in from the policy only here.
            where = (
                "spec.severities"
                if severity in spec.severities
                else f"ContainmentPolicy {spec.policy_ref.name if spec.policy_ref else ''} severities"
            )
            why = PAUSE_ROLLOUT_NOT_APPLICABLE.format(kind=f"an {spec.target.kind.value} target")
            raise SpecError(f"{where}.{severity.value}.actions", f"{why}; override {severity.value} in spec.severities")

    context = TemplateContext(namespace=namespace, name=name, target=spec.target.name, params=spec.params)
    resolved: list[ResolvedMonitor] = []
    for where, monitor in zip(locations, monitors, strict=True):
        try:
            query = render(monitor.query, context)
        except query_template.TemplateError as exc:
            raise SpecError(f"{where}.query", f"{exc} (monitor {monitor.name!r}; see spec.params)") from None
        match: dict[str, str] | None = None
        if monitor.match is not None:
            match = {}
            for label, template in monitor.match.items():
                try:
                    match.update(render_match({label: template}, context))
                except query_template.TemplateError as exc:
                    raise SpecError(
                        f"{where}.match[{label}]", f"{exc} (monitor {monitor.name!r}; see spec.params)"
                    ) from None
        base_q = (
            baseline_query(query, monitor.baseline.offset, monitor.baseline.window)
            if monitor.baseline is not None
            else None
        )
        resolved.append(ResolvedMonitor(monitor=monitor, query=query, match=match, baseline_query=base_q))

    return Plan(
        spec=spec,
        monitors=resolved,
        severities=severities,
        responders=responders,
        templates=templates,
        policy=spec.policy_ref.name if spec.policy_ref else None,
        channels=channels,
        auto_send=auto_send,
    )
