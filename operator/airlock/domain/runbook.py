"""The runbook of one AISystem: its containment process, readable in thirty seconds.

"If this model started producing harmful output right now, what do I do?" is
answered from the live objects — the AISystem, its ContainmentPolicy and its
open AIIncident — never from a wiki page that drifted.  :func:`build` turns
them into a :class:`Runbook` (the merged plan, who may act, the exact
commands); :func:`render_text` prints it for a terminal (one screen, what to
do first, ASCII only so it survives any locale and pager) and
:func:`render_markdown` as a wiki page with tables.

Pure: no clock, no network.  The CLI fetches the objects; this module decides
what they mean for the person holding the pager.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from airlock.api.aisystem import AISystem, Mode, MonitorState, MonitorStatus, Phase, TargetKind
from airlock.api.common import Response, Severity, Verb
from airlock.api.incident import AIIncident
from airlock.api.matrix import Monitor, Responder, SeverityPolicy, SubjectKind, Threshold
from airlock.api.policy import ContainmentPolicy
from airlock.domain.errors import SpecError
from airlock.domain.plan import Plan, build_plan

WIDTH = 100
REASON = "<what you see>"
INCIDENT_PLACEHOLDER = "<incident>"
NBSP = "\u00a0"  # keeps "user alice@example.com" on one line when wrapping; never printed

# The verbs a responder may use from the runbook, with the CLI's word for each.
VERBS: tuple[tuple[Verb, str], ...] = (
    (Verb.SHUTDOWN, "shutdown"),
    (Verb.RELEASE, "release"),
    (Verb.ACKNOWLEDGE, "ack"),
    (Verb.APPROVE, "approve"),
    (Verb.REPORT, "report"),
    (Verb.CONFIGURE, "configure"),
)
# Besides the responders with `configure`, the admin groups (`airlock run --admin-group`) change the plan.
CONFIGURE_ADMINS = "the airlock admin groups"

# What each response means (SPEC §2.1), for the wiki page.
RESPONSE_MEANING = {
    Response.OBSERVE: "record only, no incident",
    Response.INVESTIGATE: "open an incident, notify",
    Response.ESCALATE: "incident and page; acts once a responder approves",
    Response.CONTAIN: "acts at once (the policy is the pre-authorization)",
    Response.SHUTDOWN: "acts at once (the policy is the pre-authorization)",
}

# Reporting clocks the responder must start; the plan says which apply to this system.
GDPR_ART33 = "GDPR Art. 33: personal-data breach -> supervisory authority within 72 h of becoming aware"
EU_AI_ACT_ART73 = (
    "EU AI Act Art. 73: serious incident -> market surveillance authority within 15 days "
    "(2 days if widespread or critical infrastructure, 10 days on a death)"
)


class Output(StrEnum):
    """The runbook's formats."""

    TEXT = "text"
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class Holders:
    """Who holds one verb, by kind of identity, in the order the plan lists them."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.users or self.service_accounts)

    def phrases(self) -> list[str]:
        """``["groups a, b", "user x", "serviceaccount ops/bot"]``."""
        out: list[str] = []
        for kind, names in (("group", self.groups), ("user", self.users), ("serviceaccount", self.service_accounts)):
            if names:
                out.append(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}")
        return out


def holders(responders: Sequence[Responder], verb: Verb) -> Holders:
    """Everyone the plan lets do ``verb`` (the same reading as :func:`airlock.domain.authority.authorize`)."""
    found: dict[SubjectKind, list[str]] = {kind: [] for kind in SubjectKind}
    for responder in responders:
        if verb not in responder.may:
            continue
        for subject in responder.subjects:
            name = (
                f"{subject.namespace}/{subject.name}" if subject.kind is SubjectKind.SERVICE_ACCOUNT else subject.name
            )
            if name not in found[subject.kind]:
                found[subject.kind].append(name)
    return Holders(
        tuple(found[SubjectKind.GROUP]), tuple(found[SubjectKind.USER]), tuple(found[SubjectKind.SERVICE_ACCOUNT])
    )


@dataclass(frozen=True)
class Note:
    """A paragraph under a step: an alternative, a check, a detail; ``wiki`` ones only on the wiki page."""

    text: str
    commands: tuple[str, ...] = ()
    wiki: bool = False


@dataclass(frozen=True)
class Step:
    """One numbered step of "if it misbehaves right now": a headline in the imperative and what to paste."""

    text: str
    terse: str  # the headline on the one-screen text runbook
    commands: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Runbook:
    """The objects, the merged plan (None if it cannot be built) and everything derived for both formats."""

    system: AISystem
    plan: Plan | None
    error: str | None
    incident: AIIncident | None

    # -- facts -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.system.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.system.metadata.namespace or "default"

    @property
    def target(self) -> str:
        target = self.system.spec.target
        return f"{target.kind.value} {target.name}"

    @property
    def dry_run(self) -> bool:
        return self.system.spec.mode is Mode.DRY_RUN

    @property
    def phase(self) -> Phase | None:
        status = self.system.status
        return status.phase if status else None

    @property
    def incident_name(self) -> str | None:
        if self.incident is not None:
            return self.incident.metadata.name
        status = self.system.status
        return status.incident if status else None

    def responders(self) -> list[Responder]:
        return self.plan.responders if self.plan is not None else list(self.system.spec.responders)

    def holders(self, verb: Verb) -> Holders:
        return holders(self.responders(), verb)

    def now(self) -> str:
        """The current state in one line."""
        status = self.system.status
        if status is None or status.phase is None:
            return "no status yet - is the airlock operator running? (kubectl get ais -A)"
        text = status.phase.value
        if status.severity is not None:
            text += f" {status.severity.value}"
        if status.phase is Phase.UNKNOWN:
            text += " - monitoring gap: airlock cannot tell whether it is healthy (see MONITORS)"
        containment = status.containment
        if containment is not None and containment.active:
            actions = ", ".join(a.value for a in containment.actions) or "nothing applied"
            text += f" - {actions} by {containment.by or 'airlock'}"
            if containment.reason:
                text += f": {containment.reason}"
            if containment.failed:
                text += f" (FAILED: {'; '.join(containment.failed)})"
            if containment.release_approvals:
                text += f"; release asked by {', '.join(a.by for a in containment.release_approvals)}"
        elif status.would_contain:
            text += f" - dryRun: enforce mode would apply {', '.join(a.value for a in status.would_contain)}"
        return text

    def contained_by(self) -> str:
        """``ShutDown by airlock`` / ``ShutDown by alice@example.com``."""
        status = self.system.status
        phase = status.phase.value if status and status.phase else "contained"
        by = status.containment.by if status and status.containment and status.containment.by else "airlock"
        return f"{phase} by {by}"

    def signals(self) -> str | None:
        """The monitors that are not ok right now, worst first, and how many are: ``None`` without status."""
        status = self.system.status
        if status is None or not status.monitors:
            return None
        rank = {MonitorState.BREACHED: 0, MonitorState.ERROR: 1, MonitorState.NO_DATA: 2}
        bad = sorted(
            (m for m in status.monitors if m.state is not MonitorState.OK),
            key=lambda m: (rank.get(m.state, 3), m.severity.rank if m.severity else 9),
        )
        parts = [_monitor_state(m) for m in bad]
        ok = len(status.monitors) - len(bad)
        if ok:
            parts.append(f"{ok} ok")
        return "; ".join(parts)

    def incident_summary(self) -> str | None:
        incident = self.incident
        if incident is None:
            return "not found" if self.incident_name else None
        parts = [f"{incident.spec.severity.value} {incident.spec.failure_mode.value}"]
        status = incident.status
        if status is not None and status.phase is not None:
            parts.append(status.phase.value)
        if incident.spec.drill:
            parts.append("DRILL")
        if status is not None and status.acknowledged_by:
            parts.append(f"acknowledged by {status.acknowledged_by}")
        else:
            policy = self.plan.severities.get(incident.spec.severity) if self.plan else None
            higher = incident.spec.severity.next_higher()
            if policy is not None and policy.ack_within is not None and higher is not None:
                parts.append(f"NOT acknowledged: becomes {higher.value} {policy.ack_within} after detection")
            else:
                parts.append("NOT acknowledged")
        return ", ".join(parts)

    def shutdown_effect(self) -> str:
        """What ``airlock shutdown`` does to this system (the engine: reroute if a fallback exists, then scale to 0)."""
        spec = self.system.spec
        steps = []
        if spec.fallback is not None and spec.fallback.selector is not None:
            steps.append(f"Service {spec.fallback.service} -> {_selector(spec.fallback.selector)}")
        elif spec.fallback is not None:
            steps.append(spec.fallback.describe())
        if spec.target.kind is TargetKind.INFERENCE_SERVICE:
            steps.append(f"{self.target} stopped")  # KServe's serving.kserve.io/stop
        else:
            steps.append(f"{self.target} -> 0 replicas")
        return ", then ".join(steps)

    def fallback(self) -> str | None:
        fallback = self.system.spec.fallback
        if fallback is not None and fallback.selector is not None:
            return f"Service {fallback.service} -> selector {_selector(fallback.selector)}"
        return f"{fallback.describe()} (all weight)" if fallback else None

    def containing(self) -> list[Severity]:
        return self.plan.containing_severities() if self.plan else []

    def release_approvals(self) -> int:
        if self.plan is None:
            return 1
        return max((self.plan.severities[s].release_approvals for s in self.containing()), default=1)

    def release_requires(self, approvals: bool = True) -> str:
        containing = self.containing()
        if containing:
            text = f"refused while any monitor still breaches at {'/'.join(s.value for s in containing)}"
        else:
            text = "no severity contains by itself"
        if approvals and self.release_approvals() > 1:
            text += f"; it takes {self.release_approvals()} different responders, each running release"
        return text

    def reporting(self) -> list[str]:
        regulatory = self.system.spec.regulatory
        out = []
        if regulatory is not None and regulatory.eu_ai_act is not None and regulatory.eu_ai_act.high_risk:
            out.append(EU_AI_ACT_ART73)
        if regulatory is not None and regulatory.gdpr is not None and regulatory.gdpr.personal_data:
            out.append(GDPR_ART33)
        return out

    # -- the steps -----------------------------------------------------------

    def steps(self) -> list[Step]:
        """What to do right now, in order, with the exact commands (both formats render these)."""
        out: list[Step] = []
        if self.error or self.dry_run:
            why = "airlock cannot" if self.error else "airlock will not, in dryRun"
            text = f"Contain it by hand ({why}): reroute to the fallback, or stop it"
            out.append(Step(text, text, (*self.reroute_by_hand(), self.scale_by_hand())))
        opened = None
        if not self.error:
            if self.dry_run:
                text = "Record it: opens a SEV1 incident, touches nothing"
            elif self.phase in (Phase.SHUT_DOWN, Phase.CONTAINED):
                text = f"Already {self.contained_by()}. To hold it shut down whatever the metrics say:"
            else:
                text = f"Shut it down: {self.shutdown_effect()}"
            notes = (
                # One screen: recording a dryRun incident without the plugin is on the wiki page only.
                Note("Without the plugin, the same request:", tuple(self.raw_shutdown_commands()), wiki=self.dry_run),
                Note(
                    "The command waits and prints the phase, the actions, the incident and the time taken "
                    f"(exit code 0 done, 1 refused, 3 timed out). Check any time: `{self.status_command()}`.",
                    wiki=True,
                ),
            )
            out.append(Step(text, text, (self.shutdown_command(),), notes))
            opened = len(out)

        clock = bool(self.plan and any(p.ack_within is not None for p in self.plan.severities.values()))
        what = "records you" + (", stops the escalation clock" if clock else "")
        if self.incident_name:
            text = terse = f"Acknowledge the incident ({what}):"
        else:
            which = f"the incident step {opened} opened" if opened else "the open incident"
            text = f"Acknowledge {which} ({what}; `{self.list_incidents_command()}` lists them):"
            terse = f"Acknowledge {which} ({self.list_incidents_command()} lists them):"
        waiting = [s for s, p in plan_severities(self.plan) if p.response is Response.ESCALATE and p.actions]
        if self.incident is not None:
            waiting = [s for s in waiting if s is self.incident.spec.severity]
        if self.dry_run or self.error:
            waiting = []  # an approval acts through airlock, which will not touch this workload
        approve = (
            (Note(f"To apply {'/'.join(s.value for s in waiting)}'s actions now:", (self.approve_command(),)),)
            if waiting
            else ()
        )
        out.append(Step(text, terse, (self.ack_command(),), approve))

        if not self.error:
            if self.dry_run:
                text = terse = f"Once the cause is fixed: undo step 1's changes, then close the record (step {opened}):"
            else:
                terse = f"Once the cause is fixed ({self.release_requires(approvals=False)}):"
                text = (
                    f"Once the cause is fixed, release ({self.release_requires()}). airlock restores exactly what "
                    "it changed; the same command lifts a manual shutdown."
                )
            out.append(Step(text, terse, (self.release_command(),)))
        return out

    # -- the exact commands --------------------------------------------------

    def shutdown_command(self) -> str:
        return f'kubectl airlock shutdown {self.name} -n {self.namespace} --reason "{REASON}"'

    def release_command(self) -> str:
        return f"kubectl airlock release {self.name} -n {self.namespace}"

    def ack_command(self) -> str:
        return f"kubectl airlock ack {self.incident_name or INCIDENT_PLACEHOLDER} -n {self.namespace}"

    def approve_command(self) -> str:
        return f"kubectl airlock approve {self.incident_name or INCIDENT_PLACEHOLDER} -n {self.namespace}"

    def status_command(self) -> str:
        return f"kubectl get ais {self.name} -n {self.namespace}"

    def list_incidents_command(self) -> str:
        return f"kubectl get aii -n {self.namespace}"

    def raw_shutdown_commands(self) -> list[str]:
        """The same request without the plugin: the annotation and who is asking (SPEC §3, §4)."""
        return [
            "me=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')",
            "g=$(kubectl auth whoami -o jsonpath='{range .status.userInfo.groups[*]}{@},{end}')",
            f'kubectl annotate ais {self.name} -n {self.namespace} airlock.dev/shutdown="{REASON}" \\',
            '  airlock.dev/requested-by="$me" airlock.dev/requested-by-groups="$g"',
        ]

    def reroute_by_hand(self) -> list[str]:
        fallback = self.system.spec.fallback
        if fallback is None:
            return []
        if fallback.selector is None:
            full = "1" if fallback.http_route is not None else "100"
            return [
                f"kubectl edit {fallback.kind.lower()} {fallback.object_name} -n {self.namespace}"
                f"  # weight {full} on the fallback, 0 on the others, in every rule naming it"
            ]
        selector = ",".join(f'"{key}":"{value}"' for key, value in fallback.selector.items())
        return [
            f"kubectl patch service {fallback.service} -n {self.namespace} \\",
            f'  -p \'{{"spec":{{"selector":{{{selector}}}}}}}\'',
        ]

    def scale_by_hand(self) -> str:
        target = self.system.spec.target
        if target.kind is TargetKind.INFERENCE_SERVICE:
            return (
                f"kubectl annotate inferenceservice/{target.name} -n {self.namespace} "
                "serving.kserve.io/stop=true --overwrite"
            )
        return f"kubectl scale {target.kind.value.lower()}/{target.name} -n {self.namespace} --replicas=0"


def plan_severities(plan: Plan | None) -> list[tuple[Severity, SeverityPolicy]]:
    """The plan's severities, worst first."""
    if plan is None:
        return []
    return sorted(plan.severities.items(), key=lambda item: item[0].rank)


def _selector(selector: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in selector.items())


def build(system: AISystem, policy: ContainmentPolicy | None, incident: AIIncident | None) -> Runbook:
    """Merge the plan (as the operator does) and keep what the runbook needs."""
    name = system.metadata.name or ""
    namespace = system.metadata.namespace or "default"
    try:
        plan: Plan | None = build_plan(namespace, name, system.spec, policy.spec if policy is not None else None)
        error = None
    except SpecError as exc:
        plan, error = None, str(exc)
    return Runbook(system=system, plan=plan, error=error, incident=incident)


# ---------------------------------------------------------------- the matrix


def threshold_value(threshold: Threshold, monitor: Monitor) -> str:
    """``> 0.5``, or ``< -15%`` for a baseline monitor (its value is a relative change)."""
    if monitor.baseline is not None:
        return f"{threshold.op.value} {threshold.value * 100:+.4g}%"
    return f"{threshold.op.value} {threshold.value:g}"


def threshold_text(threshold: Threshold, monitor: Monitor) -> str:
    text = threshold_value(threshold, monitor)
    if threshold.for_.seconds > 0:
        text += f" for {threshold.for_}"
    return text


def conditions_text(monitor: Monitor) -> str:
    """Every threshold of a monitor: ``SEV1 > 0.5; SEV3 > 0 for 2m``."""
    ordered = sorted(monitor.thresholds, key=lambda t: t.severity.rank)
    text = "; ".join(f"{t.severity.value} {threshold_text(t, monitor)}" for t in ordered)
    if monitor.baseline is not None:
        text += f" (change vs {monitor.baseline.offset} ago)"
    return text


def matrix_severities(plan: Plan) -> list[Severity]:
    """Severities some monitor can reach, worst first: the matrix's columns."""
    used = {t.severity for r in plan.monitors for t in r.monitor.thresholds}
    return sorted((s for s in used if s in plan.severities), key=lambda s: s.rank)


def response_cell(policy: SeverityPolicy) -> str:
    if policy.contains():
        return f"{policy.response.value}, at once"
    if policy.response is Response.ESCALATE:
        return "escalate, on approve" if policy.actions else "escalate (page)"
    return policy.response.value


def ack_cell(severity: Severity, policy: SeverityPolicy) -> str:
    if policy.ack_within is None:
        return "-"
    higher = severity.next_higher()
    return f"{policy.ack_within}, else {higher.value}" if higher else str(policy.ack_within)


def actions_cell(policy: SeverityPolicy) -> str:
    return ", ".join(a.value for a in policy.actions) or "-"


def notify_cell(policy: SeverityPolicy) -> str:
    return ", ".join(a.value for a in policy.notify) or "-"


def _monitor_state(monitor: MonitorStatus) -> str:
    """``pii-leak breached 0.8 SEV1``."""
    text = f"{monitor.name} {monitor.state.value}"
    if monitor.value is not None:
        text += f" {monitor.value:.4g}"
    if monitor.severity is not None:
        text += f" {monitor.severity.value}"
    return text


def _monitor_now(rb: Runbook, name: str) -> str:
    status = rb.system.status
    for monitor in status.monitors if status else []:
        if monitor.name == name:
            return _monitor_state(monitor)[len(name) + 1 :]
    return "-"


def _cadence(plan: Plan) -> str:
    """``checked every 15s (token-spend 1m); % = change vs 7d ago (token-spend: 1d ago)``.

    Each phrase is glued with non-breaking spaces so a wrapped line never splits one.
    """

    def glue(text: str) -> str:
        return text.replace(" ", NBSP)

    monitors = [r.monitor for r in plan.monitors]
    intervals = [str(m.interval) for m in monitors]
    usual = max(dict.fromkeys(intervals), key=intervals.count)
    text = glue(f"checked every {usual}")
    others = [glue(f"{m.name} {m.interval}") for m in monitors if str(m.interval) != usual]
    if others:
        text += f" ({', '.join(others)})"
    baselines = [m for m in monitors if m.baseline is not None]
    if baselines:
        offsets = [str(m.baseline.offset) for m in baselines if m.baseline is not None]
        usual_offset = max(dict.fromkeys(offsets), key=offsets.count)
        text += "; " + glue(f"% = change vs {usual_offset} ago")
        odd = [
            glue(f"{m.name}: {m.baseline.offset} ago")
            for m in baselines
            if m.baseline and m.baseline.offset != usual_offset
        ]
        if odd:
            text += f" ({', '.join(odd)})"
    return text


# ---------------------------------------------------------------- text


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))).rstrip() for row in rows]


def _wrap(text: str, indent: str = "", hang: str | None = None) -> list[str]:
    lines = textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return [line.replace(NBSP, " ") for line in lines]


def _text_matrix(plan: Plan) -> list[str]:
    columns = matrix_severities(plan)
    rows: list[list[str]] = [["MONITOR (FAILURE MODE)", *(s.value for s in columns)]]
    for resolved in plan.monitors:
        monitor = resolved.monitor
        by_severity = {t.severity: threshold_text(t, monitor) for t in monitor.thresholds}
        rows.append([f"{monitor.name} ({monitor.failure_mode.value})", *(by_severity.get(s, "-") for s in columns)])
    policies = [plan.severities[s] for s in columns]
    then: list[tuple[str, list[str]]] = [
        ("-> response", [response_cell(p) for p in policies]),
        ("   actions", [actions_cell(p) for p in policies]),
        ("   notify", [notify_cell(p) for p in policies]),
        ("   ack within", [ack_cell(s, p) for s, p in zip(columns, policies, strict=True)]),
    ]
    if any(p.release_approvals > 1 for p in policies):
        then.append(("   release by", [_responders(p.release_approvals) for p in policies]))
    rows += [[label, *cells] for label, cells in then]
    return _table(rows)


def _responders(count: int) -> str:
    return f"{count} responder{'s' if count > 1 else ''}"


def render_text(rb: Runbook) -> str:
    """One terminal screen: what to do now first, then who may, what airlock does alone, where it goes."""
    spec = rb.system.spec
    lines: list[str] = []
    lines += _wrap(f"RUNBOOK {rb.name} ({rb.namespace})" + (f": {spec.description}" if spec.description else ""))
    facts = [f"owner {spec.owner or '-'}", rb.target, f"mode {spec.mode.value}"]
    if spec.policy_ref is not None:
        facts.append(f"policy {spec.policy_ref.name}")
    lines.append(" | ".join(facts))
    lines += _wrap(f"NOW: {rb.now()}", hang="     ")
    signals = rb.signals()
    if signals:
        lines += _wrap(f"MONITORS: {signals}", hang="     ")
    if rb.incident_name:
        lines += _wrap(f"INCIDENT: {rb.incident_name} ({rb.incident_summary()})", hang="     ")
    if rb.error:
        lines += _wrap(f"PLAN INVALID: {rb.error}", hang="     ")
        lines.append("airlock can NOT contain this system, not even on request, until the plan is fixed.")
    if rb.dry_run:
        lines.append(f"DRY RUN: airlock decides, records and notifies but NEVER touches {rb.target}.")

    shutdown_holders = rb.holders(Verb.SHUTDOWN)
    lines.append("")
    if shutdown_holders:
        lines.append('IF IT MISBEHAVES RIGHT NOW - anyone listed under "shutdown" acts alone: no meeting, no approval')
    else:
        lines.append("IF IT MISBEHAVES RIGHT NOW - nobody may shut it down through airlock: page the owner")
    for number, step in enumerate(rb.steps(), start=1):
        lines += _wrap(f"{number}. {step.terse}", "  ", "     ")
        lines += [f"       {command}" for command in step.commands]
        for note in step.notes:
            if note.wiki:
                continue
            if len(note.commands) == 1 and len(note.text) + len(note.commands[0]) + 6 <= WIDTH:
                lines.append(f"     {note.text} {note.commands[0]}")
                continue
            lines += _wrap(note.text, "     ")
            lines += [f"       {command}" for command in note.commands]

    lines.append("")
    lines.append("WHO MAY")
    grouped: dict[Holders, list[str]] = {}
    for verb, word in VERBS:
        if verb is not Verb.CONFIGURE:
            grouped.setdefault(rb.holders(verb), []).append(word)
    rows = [(words, [p.replace(" ", NBSP) for p in who.phrases()] or ["nobody"]) for who, words in grouped.items()]
    # The plan (mode, monitors, thresholds, responders, ...) is never grouped with acting: admins change it too.
    configure = [p.replace(" ", NBSP) for p in rb.holders(Verb.CONFIGURE).phrases()]
    rows.append((["configure"], [*configure, CONFIGURE_ADMINS.replace(" ", NBSP)]))
    width = max(len(", ".join(words)) for words, _ in rows)
    for words, phrases in rows:
        label = f"  {', '.join(words).ljust(width)}  "
        lines += _wrap("; ".join(phrases), label, " " * len(label))
    if spec.owner:
        lines.append(f"  Not listed? Page the owner ({spec.owner}) or one of these groups.")

    plan = rb.plan
    if plan is not None:
        lines.append("")
        if plan.monitors:
            lines.append("WHAT AIRLOCK DOES BY ITSELF - the worst severity whose condition holds wins")
            lines += _text_matrix(plan)
            lines += _wrap(_cadence(plan), "  ")
        else:
            lines.append("WHAT AIRLOCK DOES BY ITSELF - nothing: no monitors, it contains only on request")

    lines.append("")
    lines.append(f"FALLBACK   {rb.fallback() or 'none: reroute unavailable, a shutdown only scales to 0'}")
    for text in rb.reporting():
        lines += _wrap(f"REPORTING  {text}", hang=" " * 11)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return [*out, ""]


def _code(text: str) -> str:
    return f"`{text}`"


def render_markdown(rb: Runbook) -> str:
    """A wiki page: the same process, with the details a reviewer wants."""
    spec = rb.system.spec
    lines: list[str] = [f"# Runbook: {rb.name} ({rb.namespace})", ""]
    if spec.description:
        lines += [f"> {spec.description}", ""]
    lines += _md_table(
        ["", ""],
        [
            ["**Owner**", spec.owner or "-"],
            ["**Target**", rb.target],
            ["**Mode**", spec.mode.value],
            ["**Policy**", f"ContainmentPolicy {_code(spec.policy_ref.name)}" if spec.policy_ref else "none"],
            ["**Now**", rb.now()],
            ["**Monitors now**", rb.signals() or "-"],
            [
                "**Open incident**",
                f"{_code(rb.incident_name)}: {rb.incident_summary()}" if rb.incident_name else "none",
            ],
        ],
    )
    if rb.error:
        lines += [f"> **Plan invalid**: {rb.error}. airlock can **not** contain this system until it is fixed.", ""]
    if rb.dry_run:
        lines += [f"> **Dry run**: airlock decides, records and notifies but **never** touches {rb.target}.", ""]

    lines += ["## If it misbehaves right now", ""]
    if rb.holders(Verb.SHUTDOWN):
        lines += ["Anyone listed under **shutdown** below acts alone: no meeting, no approval.", ""]
    else:
        lines += ["Nobody may shut this system down through airlock: page the owner.", ""]

    def block(commands: Sequence[str]) -> list[str]:
        return ["", "   ```sh", *(f"   {c}" for c in commands), "   ```", ""] if commands else [""]

    for number, step in enumerate(rb.steps(), start=1):
        lines.append(f"{number}. {step.text}")
        lines += block(step.commands)
        for note in step.notes:
            lines.append(f"   {note.text}")
            lines += block(note.commands)

    lines += ["## Who may act", ""]
    rows = []
    for verb, word in VERBS:
        who = rb.holders(verb)
        groups = [*who.groups, CONFIGURE_ADMINS] if verb is Verb.CONFIGURE else list(who.groups)
        rows.append(
            [
                f"**{word}**",
                ", ".join(groups) or "-",
                ", ".join(who.users) or "-",
                ", ".join(who.service_accounts) or "-",
            ]
        )
    lines += _md_table(["Verb", "Groups", "Users", "Service accounts"], rows)
    if spec.owner:
        lines += [f"Not listed? Page the owner (**{spec.owner}**) or one of these groups.", ""]

    plan = rb.plan
    if plan is not None:
        lines += ["## What airlock does by itself", ""]
        lines += ["The worst severity whose condition holds (for its `for`) wins.", ""]
        rows = []
        for severity in sorted(plan.severities, key=lambda s: s.rank):
            policy = plan.severities[severity]
            triggering = [r.monitor for r in plan.monitors if severity in r.monitor.severities()]
            rows.append(
                [
                    f"**{severity.value}**",
                    ", ".join(dict.fromkeys(m.failure_mode.value for m in triggering)) or "-",
                    ", ".join(_code(m.name) for m in triggering) or "-",
                    f"**{policy.response.value}**: {RESPONSE_MEANING[policy.response]}",
                    actions_cell(policy),
                    notify_cell(policy),
                    ack_cell(severity, policy),
                    str(policy.release_approvals) if policy.actions else "-",
                ]
            )
        header = ["Severity", "Failure modes", "Monitors", "Response", "Actions", "Notify", "Ack within"]
        lines += _md_table([*header, "Release approvals"], rows)

        if plan.monitors:
            lines += ["### Monitors", ""]
            show_now = bool(rb.system.status and rb.system.status.monitors)
            rows = []
            for resolved in plan.monitors:
                monitor = resolved.monitor
                row = [
                    _code(monitor.name),
                    monitor.failure_mode.value,
                    conditions_text(monitor),
                    str(monitor.interval),
                    monitor.no_data.value,
                    monitor.description or "",
                ]
                rows.append([*row, _monitor_now(rb, monitor.name)] if show_now else row)
            header = ["Monitor", "Failure mode", "Severity when", "Every", "No data", "What it measures"]
            lines += _md_table([*header, "Now"] if show_now else header, rows)

    lines += ["## Fallback", ""]
    lines += [rb.fallback() or "None: `reroute` is unavailable; a shutdown only scales to zero.", ""]
    lines += ["## After containment", ""]
    lines += [
        f"Release with {_code(rb.release_command())}: {rb.release_requires()}. A refused release leaves the "
        "system contained and says why (a `ReleaseRefused` Event, and the command exits 1).",
        "",
    ]
    if plan is not None:
        notices = [
            f"**{s.value}**: {notify_cell(plan.severities[s])}"
            for s in sorted(plan.severities, key=lambda s: s.rank)
            if plan.severities[s].notify
        ]
        if notices or rb.reporting():
            lines += ["## Notices and reporting", ""]
            lines += [f"- Notify {text}" for text in notices]
            lines += [f"- {text}" for text in rb.reporting()]
            lines.append("")
    lines += [
        "---",
        "",
        f"*Generated from the live objects by {_code(f'kubectl airlock runbook {rb.name} -n {rb.namespace} -o markdown')}: "
        "regenerate it rather than editing it.*",
    ]
    return "\n".join(lines) + "\n"


def render_runbook(
    system: AISystem,
    policy: ContainmentPolicy | None,
    incident: AIIncident | None,
    output: Output | str = Output.TEXT,
) -> str:
    """The runbook of ``system`` as text (one terminal screen) or markdown (a wiki page)."""
    runbook = build(system, policy, incident)
    if Output(output) is Output.MARKDOWN:
        return render_markdown(runbook)
    return render_text(runbook)
