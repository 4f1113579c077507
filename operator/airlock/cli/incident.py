"""``airlock incident show INCIDENT`` and ``airlock incident list``: an incident as the on-call engineer reads it.

``kubectl get aii -o yaml`` holds everything, but nobody finds the next report
deadline in it at 3 a.m.  ``show`` reads one AIIncident and prints what
happened, what airlock did, which regulatory clocks run and how long is left
(:func:`airlock.domain.deadlines.check` at the time of asking, so a clock that
ran out since the operator last looked already reads OVERDUE), where each
notice stands in the outbox, and the commands for what is left to do.
``show --notice AUDIENCE`` prints the drafts the operator keeps in the
ConfigMap the incident's ``status.drafts.notices`` names (immutable,
``<incident>-notices-<hash>``) — the text to send a regulator, ready to paste.  ``list`` is ``kubectl get aii`` with the columns that matter during an
incident: time to contain, the next report deadline and undelivered notices.

This module only fetches; every line is decided by the pure ``render_*``
functions below from the objects and an explicit ``now``.  Exit codes as the
other verbs: 0 done, 1 not found or nothing to show (with the reason), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from enum import StrEnum
from typing import Any

import yaml
from pydantic import ValidationError

from airlock.adapters import kube
from airlock.api import annotations as keys
from airlock.api.common import Audience
from airlock.api.incident import (
    AIIncident,
    AIIncidentStatus,
    IncidentPhase,
    Notification,
    NotificationState,
    PostmortemState,
    ReportingObligation,
    ReportState,
    Trigger,
    TriggerType,
)
from airlock.cli import connection
from airlock.cli.connection import DONE, REFUSED, USAGE, CliError
from airlock.domain import deadlines, drafts, notices

RULE = "=" * 72
AUDIENCE_ORDER = (Audience.INTERNAL, Audience.REGULATOR, Audience.USERS)
SEPARATOR = "   "
MAX_ERROR = 80


class Output(StrEnum):
    """How ``show`` and ``list`` print."""

    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


def notices_config_map(incident: AIIncident) -> str:
    """The ConfigMap holding the incident's current notice drafts."""
    return drafts.current(incident, drafts.NOTICES)


# ---------------------------------------------------------------- formatting


def _when(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "-"
    return deadlines.utc(moment).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(seconds: float) -> str:
    """``2d 21h``, ``3h 5m``, ``12m``, ``40s``: the two largest units."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def _duration(seconds: float | None) -> str:
    """A time to contain: ``2.1s`` under a minute, else as :func:`_span`."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    return _span(seconds)


def _ago(moment: datetime.datetime, now: datetime.datetime) -> str:
    delta = (deadlines.utc(now) - deadlines.utc(moment)).total_seconds()
    return f"in {_span(-delta)}" if delta < 0 else f"{_span(delta)} ago"


def _number(value: float) -> str:
    return f"{value:g}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        (indent + SEPARATOR.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
        for row in table
    ]


def _status(incident: AIIncident) -> AIIncidentStatus:
    return incident.status or AIIncidentStatus()


def _phase(incident: AIIncident) -> IncidentPhase:
    return _status(incident).phase or IncidentPhase.OPEN


# ---------------------------------------------------------------- the parts


def trigger_text(trigger: Trigger) -> str:
    """What opened the incident, in one line."""
    if trigger.type is TriggerType.MONITOR:
        text = f"monitor {trigger.monitor or '?'}"
        if trigger.condition:
            text += f" {trigger.condition}"
        if trigger.value is not None:
            text += f" (value {_number(trigger.value)})"
        return text
    who = f" by {trigger.by}" if trigger.by else ""
    if trigger.type is TriggerType.DRILL:
        return f"drill{who}" + (f": scenario {trigger.reason}" if trigger.reason else "")
    return f"manual shutdown{who}" + (f": {trigger.reason}" if trigger.reason else "")


def harm_text(incident: AIIncident) -> str:
    """The responders' Art. 3(49) classification (``airlock.dev/harm``), in words."""
    spec = incident.spec
    if spec.drill:
        return "n/a (drill)"
    if not spec.harm and not spec.widespread:
        return f"not classified ({keys.HARM} not set)"
    parts = [f"({h.value}) {notices.HARM_TEXT[h]}" for h in spec.harm]
    if spec.widespread:
        parts.append("widespread infringement (Art. 3(61))")
    return "; ".join(parts)


def clock(obligation: ReportingObligation, incident: AIIncident, now: datetime.datetime) -> deadlines.ClockCheck:
    """The clock's state at ``now`` (a pending one past its deadline is overdue, whatever the status says)."""
    start = _status(incident).detected_at or obligation.deadline
    return deadlines.check(obligation, start=start, now=now, previous=now)


def _open_clocks(incident: AIIncident, now: datetime.datetime) -> list[deadlines.ClockCheck]:
    checks = [clock(o, incident, now) for o in _status(incident).reporting]
    return sorted(
        (c for c in checks if c.state is not ReportState.SUBMITTED), key=lambda c: deadlines.utc(c.obligation.deadline)
    )


def next_retry(entry: Notification, now: datetime.datetime) -> str:
    """When the operator tries this notice next, in words."""
    if entry.channel is None:
        return "-"  # drafted only: a human sends it
    if entry.state in (NotificationState.DRAFTED, NotificationState.SENDING):
        return "now"
    if entry.state is NotificationState.FAILED:
        if entry.next_attempt is None:
            return "gave up"
        return f"{_when(entry.next_attempt)} ({_ago(entry.next_attempt, now)})"
    return "-"


def _short(text: str | None, limit: int = MAX_ERROR) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audiences(incident: AIIncident) -> list[Audience]:
    """The audiences the incident's outbox has notices for, in a fixed order."""
    present = {n.audience for n in _status(incident).notifications}
    return [a for a in AUDIENCE_ORDER if a in present]


def undelivered(incident: AIIncident) -> tuple[int, int]:
    """(notices a channel has not delivered yet, of which failed) — drafts without a channel are not counted."""
    pending = [
        n for n in _status(incident).notifications if n.channel is not None and n.state is not NotificationState.SENT
    ]
    return len(pending), sum(1 for n in pending if n.state is NotificationState.FAILED)


def hints(incident: AIIncident, now: datetime.datetime) -> list[tuple[str, str]]:
    """(command, why) for what is left to do, copy-paste ready."""
    name = incident.metadata.name or ""
    where = f" -n {incident.metadata.namespace}" if incident.metadata.namespace else ""
    phase = _phase(incident)
    status = _status(incident)
    out: list[tuple[str, str]] = []
    for audience in audiences(incident):
        out.append(
            (f"airlock incident show {name} --notice {audience.value}{where}", f"the {audience.value} notice draft(s)")
        )
    if status.acknowledged_at is None and phase not in (IncidentPhase.RESOLVED, IncidentPhase.CLOSED):
        out.append((f"airlock ack {name}{where}", "acknowledge (stops escalation)"))
    checks = _open_clocks(incident, now)
    if any(c.obligation.regime == deadlines.EU_AI_ACT_ART73_CLASSIFICATION for c in checks):
        out.append(
            (
                f"kubectl annotate aii {name} {keys.HARM}=b{where} --overwrite",
                "record the Art. 3(49) harm: a, b, c, d, widespread",
            )
        )
    for check in checks:
        regime = check.obligation.regime
        out.append(
            (
                f"kubectl annotate aii {name} {keys.REPORT_SUBMITTED}={regime}=REF{where} --overwrite",
                f"record the {regime} submission",
            )
        )
    if not incident.spec.drill and phase in (IncidentPhase.RESOLVED, IncidentPhase.CLOSED):
        out.append((f"airlock postmortem {name}{where}", "the post-mortem draft"))
        if phase is IncidentPhase.RESOLVED:
            out.append(
                (
                    f"kubectl annotate aii {name} {keys.POSTMORTEM}=configmap/{name}-pm{where} --overwrite",
                    "close it: the answered draft in a ConfigMap of yours (or give the document's URL)",
                )
            )
    return out


def postmortem_text(incident: AIIncident) -> str:
    record = _status(incident).postmortem
    phase = _phase(incident)
    if record is not None and record.state is PostmortemState.COMPLETE:
        return f"complete: {record.ref or '-'}"
    if incident.spec.drill:
        return "not needed (drill)"
    if phase in (IncidentPhase.OPEN, IncidentPhase.CONTAINED):
        return "drafted when the incident is resolved"
    if phase is IncidentPhase.CLOSED:
        return "closed without a post-mortem"
    return f"pending (draft: airlock postmortem {incident.metadata.name})"


# ---------------------------------------------------------------- show


def summary(incident: AIIncident, now: datetime.datetime) -> dict[str, Any]:
    """``show -o json|yaml``: the incident as the text shows it, clock states computed at ``now``."""
    status = _status(incident)
    spec = incident.spec
    pending, failed = undelivered(incident)
    return {
        "name": incident.metadata.name,
        "namespace": incident.metadata.namespace,
        "system": spec.system,
        "severity": spec.severity.value,
        "failureMode": spec.failure_mode.value,
        "phase": _phase(incident).value,
        "drill": spec.drill,
        "dryRun": spec.dry_run,
        "trigger": spec.trigger.dump(),
        "detectedAt": _json_time(status.detected_at),
        "acknowledgedAt": _json_time(status.acknowledged_at),
        "acknowledgedBy": status.acknowledged_by,
        "containedAt": _json_time(status.contained_at),
        "timeToContainSeconds": status.time_to_contain_seconds,
        "resolvedAt": _json_time(status.resolved_at),
        "closedAt": _json_time(status.closed_at),
        "harm": {"categories": [h.value for h in spec.harm], "widespread": spec.widespread},
        "reporting": [_clock_summary(clock(o, incident, now)) for o in status.reporting],
        "notifications": [n.dump() for n in status.notifications],
        "undelivered": pending,
        "failed": failed,
        "postmortem": status.postmortem.dump() if status.postmortem is not None else None,
        "drillRecord": status.drill.dump() if status.drill is not None else None,
        "actions": [a.dump() for a in status.actions],
        "conditions": [c.dump() for c in status.conditions],
        "timeline": [e.dump() for e in status.timeline],
        "hints": [command for command, _ in hints(incident, now)],
    }


def _json_time(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return deadlines.utc(moment).isoformat().replace("+00:00", "Z")


def _clock_summary(check: deadlines.ClockCheck) -> dict[str, Any]:
    obligation = check.obligation
    return {
        "regime": obligation.regime,
        "title": deadlines.TITLES.get(obligation.regime, obligation.regime),
        "deadline": _json_time(obligation.deadline),
        "state": check.state.value,
        "secondsLeft": round(check.seconds_left, 3),
        "reference": obligation.reference,
        "submittedAt": _json_time(obligation.submitted_at),
        "submittedBy": obligation.submitted_by,
        "message": check.message,
    }


def render_show(incident: AIIncident, now: datetime.datetime) -> str:
    """The readable summary of one incident at ``now``."""
    spec = incident.spec
    status = _status(incident)
    name = incident.metadata.name or ""
    lines = [f"Incident:      {name}   (namespace {incident.metadata.namespace})"]
    lines.append(f"System:        {spec.system}")
    lines.append(f"Severity:      {spec.severity.value}   failure mode: {spec.failure_mode.value}")
    lines.append(f"Phase:         {_phase(incident).value}")
    if spec.drill:
        lines.append("Drill:         yes: a rehearsal, no workload was touched")
    if spec.dry_run:
        lines.append(
            "Dry run:       yes: the system is in dryRun mode, airlock decided and notified but touched nothing"
        )
    lines.append(f"Trigger:       {trigger_text(spec.trigger)}")
    if spec.trigger.query:
        lines.append(f"               query: {spec.trigger.query}")
    lines.append("")
    detected = _when(status.detected_at)
    if status.detected_at is not None:
        detected += f" ({_ago(status.detected_at, now)})"
    lines.append(f"Detected:      {detected}")
    acknowledged = _when(status.acknowledged_at) if status.acknowledged_at else "not yet"
    if status.acknowledged_at and status.acknowledged_by:
        acknowledged += f" by {status.acknowledged_by}"
    lines.append(f"Acknowledged:  {acknowledged}")
    contained = _when(status.contained_at) if status.contained_at else "-"
    if status.time_to_contain_seconds is not None:
        contained += f" (time to contain {_duration(status.time_to_contain_seconds)})"
    lines.append(f"Contained:     {contained}")
    lines.append(f"Resolved:      {_when(status.resolved_at)}")
    lines.append(f"Closed:        {_when(status.closed_at)}")
    lines.append(f"Harm:          {harm_text(incident)}")
    if status.actions:
        lines.append("")
        lines.append("Actions:")
        lines += _table(
            ["ACTION", "AT", "RESULT"], ([a.action.value, _when(a.at), a.result] for a in status.actions), "  "
        )
    if status.drill is not None:
        record = status.drill
        lines.append("")
        lines.append(f"Drill record:  scenario {record.scenario}")
        lines.append(f"  would have:  {record.decision}")
        if record.paged:
            lines.append(f"  paged:       {', '.join(record.paged)}")
        if record.time_to_acknowledge_seconds is not None:
            lines.append(f"  acknowledged after {_duration(record.time_to_acknowledge_seconds)}")
        lines += [f"  gap:         {gap}" for gap in record.gaps]
    lines.append("")
    lines.append("Reporting clocks:")
    if status.reporting:
        rows = []
        for obligation in status.reporting:
            check = clock(obligation, incident, now)
            text = check.message
            if check.state is ReportState.SUBMITTED and (obligation.submitted_by or obligation.submitted_at):
                text += f" by {obligation.submitted_by or '?'} at {_when(obligation.submitted_at)}"
            rows.append([obligation.regime, check.state.value.upper(), text])
        lines += _table(["REGIME", "STATE", "DEADLINE"], rows, "  ")
    elif spec.drill:
        lines.append("  none (drills owe no report)")
    else:
        lines.append("  none owed")
    lines.append("")
    lines.append("Notices (outbox):")
    if status.notifications:
        lines += _table(
            ["AUDIENCE", "EVENT", "CHANNEL", "STATE", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"],
            (
                [
                    n.audience.value,
                    n.event or "opened",
                    n.channel or "draft only",
                    n.state.value,
                    str(n.attempts),
                    next_retry(n, now),
                    _short(n.last_error),
                ]
                for n in status.notifications
            ),
            "  ",
        )
    else:
        lines.append("  none (its severity notifies nobody, or the operator has not drafted them yet)")
    lines.append("")
    lines.append(f"Post-mortem:   {postmortem_text(incident)}")
    if status.conditions:
        lines.append("")
        lines.append("Conditions:")
        lines += [
            f"  {c.type}={c.status.value} ({c.reason}){': ' + c.message if c.message else ''}"
            for c in status.conditions
        ]
    lines.append("")
    lines.append("Timeline:")
    if status.timeline:
        lines += _table(
            ["AT", "TYPE", "BY", "MESSAGE"],
            ([_when(e.at), e.type, e.by or "-", e.message] for e in status.timeline),
            "  ",
        )
    else:
        lines.append("  (empty)")
    todo = hints(incident, now)
    if todo:
        lines.append("")
        lines.append("Next:")
        lines += [f"  {command}   # {why}" for command, why in todo]
    return "\n".join(lines) + "\n"


def dump(value: Any, output: Output) -> str:
    if output is Output.JSON:
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    return text


# ---------------------------------------------------------------- notices


def draft_keys(audience: Audience, data: dict[str, Any]) -> list[str]:
    """The ConfigMap keys holding ``audience``'s drafts (every ``regulator-*.md`` for the regulator)."""
    if audience is Audience.REGULATOR:
        return sorted(k for k in data if k.startswith("regulator-") and k.endswith(".md") and str(data[k]).strip())
    key = f"{audience.value}.md"
    return [key] if str(data.get(key) or "").strip() else []


def split_draft(text: str) -> tuple[str, str]:
    """``"Subject: …\\n\\n<body>"`` → (subject, body)."""
    first, sep, body = text.partition("\n\n")
    if first.startswith("Subject:") and "\n" not in first:
        return first.removeprefix("Subject:").strip(), body if sep else ""
    return "", text


def missing_notice(incident: AIIncident, audience: Audience, data: dict[str, Any] | None) -> str:
    """Why there is no ``audience`` draft to print, in one line."""
    name = incident.metadata.name or ""
    namespace = incident.metadata.namespace
    config_map = notices_config_map(incident)
    notified = audiences(incident)
    if notified and audience not in notified:
        have = ", ".join(a.value for a in notified)
        return (
            f"incident {name} ({incident.spec.severity.value}) does not notify {audience.value}: its severity's "
            f"notify list has {have} only, so airlock drafted no {audience.value} notice"
        )
    if data is None:
        if not notified:
            return (
                f"incident {name} has no notice drafts: ConfigMap {config_map} not found in namespace {namespace} "
                f"(its severity {incident.spec.severity.value} notifies nobody, or the operator has not drafted "
                "them yet: is it running?)"
            )
        return (
            f"ConfigMap {config_map} not found in namespace {namespace}: the operator writes the drafts shortly "
            "after the incident opens; is the operator running?"
        )
    present = ", ".join(sorted(data)) or "none"
    return (
        f"ConfigMap {config_map} in namespace {namespace} has no {audience.value} draft "
        f"(keys: {present}); the operator drafts a new version on its next pass"
    )


def render_notices(drafts: Sequence[tuple[str, str]], audience: Audience, output: Output) -> str:
    """The drafts as stored (several separated by a rule line), or as a list of {key, subject, body}."""
    if output is not Output.TEXT:
        return dump(
            [
                {"key": key, "audience": audience.value, "subject": split_draft(text)[0], "body": split_draft(text)[1]}
                for key, text in drafts
            ],
            output,
        )
    texts = [text if text.endswith("\n") else text + "\n" for _, text in drafts]
    return f"\n{RULE}\n\n".join(texts)


# ---------------------------------------------------------------- list


def row(incident: AIIncident, now: datetime.datetime) -> dict[str, Any]:
    """``list -o json|yaml``: one incident's line."""
    status = _status(incident)
    checks = _open_clocks(incident, now)
    pending, failed = undelivered(incident)
    upcoming = checks[0] if checks else None
    return {
        "namespace": incident.metadata.namespace,
        "name": incident.metadata.name,
        "system": incident.spec.system,
        "severity": incident.spec.severity.value,
        "phase": _phase(incident).value,
        "timeToContainSeconds": status.time_to_contain_seconds,
        "drill": incident.spec.drill,
        "nextReport": _clock_summary(upcoming) if upcoming is not None else None,
        "undelivered": pending,
        "failed": failed,
        "detectedAt": _json_time(status.detected_at),
    }


def _next_report_cell(upcoming: dict[str, Any] | None) -> str:
    if upcoming is None:
        return "-"
    if upcoming["state"] == ReportState.OVERDUE.value:
        return f"{upcoming['regime']} OVERDUE {_span(-upcoming['secondsLeft'])}"
    return f"{upcoming['regime']} in {_span(upcoming['secondsLeft'])}"


def render_list(incidents: Sequence[AIIncident], now: datetime.datetime, all_namespaces: bool) -> str:
    """The kubectl-like table, sorted by namespace and name."""
    rows = [row(i, now) for i in sorted(incidents, key=lambda i: (i.metadata.namespace or "", i.metadata.name or ""))]
    header = ["NAME", "SYSTEM", "SEVERITY", "PHASE", "TTC", "DRILL", "NEXT REPORT", "UNDELIVERED", "AGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    cells = []
    for r in rows:
        detected = r["detectedAt"]
        age = _span((deadlines.utc(now) - _parse_time(detected)).total_seconds()) if detected else "-"
        line = [
            r["name"] or "",
            r["system"],
            r["severity"],
            r["phase"],
            _duration(r["timeToContainSeconds"]),
            "yes" if r["drill"] else "no",
            _next_report_cell(r["nextReport"]),
            f"{r['undelivered']} ({r['failed']} failed)" if r["failed"] else str(r["undelivered"]),
            age,
        ]
        if all_namespaces:
            line.insert(0, r["namespace"] or "")
        cells.append(line)
    return "\n".join(_table(header, cells)) + "\n"


def _parse_time(text: str) -> datetime.datetime:
    return deadlines.utc(datetime.datetime.fromisoformat(text))


# ---------------------------------------------------------------- fetching


def _parse(body: dict[str, Any]) -> AIIncident:
    try:
        return AIIncident.model_validate(body)
    except ValidationError as exc:
        name = (body.get("metadata") or {}).get("name")
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise CliError(f"AIIncident {name} is malformed: {where}: {error['msg']}") from None


async def fetch(api: kube.KubeClient, namespace: str, name: str) -> AIIncident:
    try:
        body = await api.get(kube.AIINCIDENTS, namespace, name)
    except kube.NotFound:
        raise CliError(
            f"AIIncident {name} not found in namespace {namespace} (kubectl get aii -n {namespace})"
        ) from None
    return _parse(body)


async def fetch_notices(api: kube.KubeClient, incident: AIIncident, audience: Audience) -> list[tuple[str, str]]:
    """(key, draft) of ``audience`` from the current drafts; :class:`CliError` saying why if there is none."""
    found = await api.get_or_none(kube.CONFIGMAPS, incident.metadata.namespace, notices_config_map(incident))
    data: dict[str, Any] | None = None if found is None else dict(found.get("data") or {})
    chosen = draft_keys(audience, data or {})
    if data is None or not chosen:
        raise CliError(missing_notice(incident, audience, data))
    return [(key, str(data[key])) for key in chosen]


async def _show(args: argparse.Namespace) -> str:
    config, namespace = connection.load(args)
    output = Output(args.output)
    async with connection.client(config) as api:
        incident = await fetch(api, namespace, args.incident)
        if args.notice is not None:
            audience = Audience(args.notice)
            return render_notices(await fetch_notices(api, incident, audience), audience, output)
    now = datetime.datetime.now(datetime.UTC)
    if output is Output.TEXT:
        return render_show(incident, now)
    return dump(summary(incident, now), output)


async def _list(args: argparse.Namespace) -> str:
    config, namespace = connection.load(args)
    output = Output(args.output)
    where = None if args.all_namespaces else namespace
    async with connection.client(config) as api:
        items = await api.list(kube.AIINCIDENTS, where)
    found: list[AIIncident] = []
    for item in items:
        try:
            found.append(_parse(item))
        except CliError as exc:
            _complain(f"airlock incident list: skipped: {exc}")
    now = datetime.datetime.now(datetime.UTC)
    if output is not Output.TEXT:
        ordered = sorted(found, key=lambda i: (i.metadata.namespace or "", i.metadata.name or ""))
        return dump([row(i, now) for i in ordered], output)
    if not found:
        _complain("No AIIncidents found" + ("." if where is None else f" in namespace {namespace}."))
        return ""
    return render_list(found, now, args.all_namespaces)


# ---------------------------------------------------------------- wiring


def _complain(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _guard(verb: str, args: argparse.Namespace, main: Callable[[argparse.Namespace], Coroutine[Any, Any, str]]) -> int:
    try:
        text: str = asyncio.run(main(args))
    except CliError as exc:
        _complain(f"airlock incident {verb}: {exc}")
        return exc.code
    except kube.ApiError as exc:
        said = f"cannot reach the API server: {exc.message}" if exc.status == 0 else f"the API server said {exc}"
        _complain(f"airlock incident {verb}: {said}")
        return REFUSED
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a draft in UTF-8 must not kill the output under LANG=C
    sys.stdout.write(text)
    sys.stdout.flush()
    return DONE


def run_show(args: argparse.Namespace) -> int:
    return _guard("show", args, _show)


def run_list(args: argparse.Namespace) -> int:
    if args.all_namespaces and args.namespace:
        _complain("airlock incident list: give -n NAMESPACE or -A, not both")
        return USAGE
    return _guard("list", args, _list)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "incident",
        help="show one AIIncident (clocks, notices, timeline, drafts) or list them",
        description=(
            "'airlock incident show INCIDENT' prints what happened, the reporting clocks and time left, the "
            "notice outbox, the post-mortem and the commands for what is left to do; with --notice AUDIENCE it "
            "prints the notice drafts airlock wrote (the ConfigMap status.drafts.notices names).  'airlock incident list' "
            "lists the incidents of a namespace (-A: all)."
        ),
        epilog="exit codes: 0 done, 1 not found or nothing to show, 2 usage",
    )
    verbs = parser.add_subparsers(dest="incident_command", metavar="show|list")

    def usage(_: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        _complain("airlock incident: say show INCIDENT or list")
        return USAGE

    parser.set_defaults(func=usage)

    show = verbs.add_parser(
        "show",
        help="one incident, readable in a minute",
        description=(
            "Print INCIDENT: system, severity, phase, trigger, key times, harm classification, reporting clocks "
            "(time left, computed now), the notice outbox, the post-mortem, the timeline and the next commands.  "
            "--notice prints the drafts for one audience instead."
        ),
        epilog="exit codes: 0 done, 1 not found or no such draft, 2 usage",
    )
    show.add_argument("incident", metavar="INCIDENT", help="AIIncident name")
    connection.add_cluster_arguments(show)
    show.add_argument(
        "--notice",
        choices=[a.value for a in AUDIENCE_ORDER],
        default=None,
        help="print the audience's notice draft(s) from the incident's current drafts (regulator: one per regime)",
    )
    show.add_argument(
        "-o",
        "--output",
        choices=[o.value for o in Output],
        default=Output.TEXT.value,
        help="text (default), json or yaml",
    )
    show.set_defaults(func=run_show)

    listing = verbs.add_parser(
        "list",
        help="the incidents of a namespace (-A: all)",
        description=(
            "List AIIncidents like kubectl get aii, with time to contain, the next report deadline and the "
            "notices not delivered yet."
        ),
        epilog="exit codes: 0 done, 1 failed, 2 usage",
    )
    connection.add_cluster_arguments(listing)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    listing.add_argument(
        "-o",
        "--output",
        choices=[o.value for o in Output],
        default=Output.TEXT.value,
        help="text (default), json or yaml",
    )
    listing.set_defaults(func=run_list)
