"""``airlock drill SYSTEM --scenario S`` and ``airlock drill report``: rehearse the plan, and the practice record.

A drill is asked for like every control verb: ``airlock.dev/drill:
"<scenario>/<UTC timestamp>"`` set on the AISystem in one merge patch with
``airlock.dev/requested-by`` (the admission layer checks the caller holds the
``drill`` verb; a 403 is a refusal in the server's words).  The operator
handles each value once (``status.lastHandledDrill``) by opening a drill
AIIncident that touches nothing; this verb waits for it and prints what the
plan would have done, who was paged and the gaps found, plus the command to
acknowledge it (the acknowledgement is what the practice record times).

``airlock drill report`` reads the drill incidents of a namespace (or all)
and prints :func:`airlock.domain.drills.report` as a table or JSON.

Exit codes, as the control verbs: 0 done, 1 refused or failed, 2 usage,
3 the drill did not show up within ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from airlock.adapters import kube
from airlock.api import annotations as keys
from airlock.api.aisystem import AISystem
from airlock.api.common import RequestVerdict, Verb
from airlock.api.incident import AIIncident
from airlock.cli import connection
from airlock.cli.connection import DONE, REFUSED, TIMED_OUT, USAGE, CliError
from airlock.cli.control import Outcome, Session, judged_request, plan_verdict
from airlock.domain import drills

REPORT = "report"
EPILOG = (
    "airlock drill report [-n NS | -A] [-o table|json] lists past drills.  "
    "exit codes: 0 done, 1 refused or failed, 2 usage, 3 timed out"
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _complain(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def drill_value(scenario: drills.Scenario, now: datetime.datetime) -> str:
    """``privacy/2026-11-26T13:30:12.123456Z``: unique per request, so each one runs once."""
    return f"{scenario.value}/{now.astimezone(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def _system(body: dict[str, Any]) -> AISystem:
    try:
        return AISystem.model_validate(body)
    except ValidationError as exc:
        name = (body.get("metadata") or {}).get("name")
        raise CliError(f"AISystem {name} is malformed: {exc.errors()[0]['msg']}") from None


def _incidents(items: Iterable[dict[str, Any]]) -> tuple[list[AIIncident], int]:
    """The parseable incidents, and how many were not (someone else's malformed object)."""
    found, skipped = [], 0
    for item in items:
        try:
            found.append(AIIncident.model_validate(item))
        except ValidationError:
            skipped += 1
    return found, skipped


# ---------------------------------------------------------------- drill SYSTEM


async def find_drill(api: kube.KubeClient, namespace: str, system: str, value: str) -> AIIncident | None:
    """The drill incident opened for ``value`` (its trigger's reason carries the annotation value)."""
    items = await api.list(kube.AIINCIDENTS, namespace, label_selector=f"{keys.SYSTEM_LABEL}={system}")
    incidents, _ = _incidents(items)
    for incident in sorted(incidents, key=lambda i: i.metadata.name or ""):
        spec = incident.spec
        if spec.drill and spec.system == system and value in (spec.trigger.reason or ""):
            return incident
    return None


def describe(incident: AIIncident, namespace: str) -> list[str]:
    """What the drill rehearsed, for the terminal."""
    spec, status = incident.spec, incident.status
    record = status.drill if status is not None else None
    lines = [f"incident   {incident.metadata.name} ({spec.severity.value} {spec.failure_mode.value}, drill)"]
    if record is None:
        return lines
    lines.append(f"decision   {record.decision}")
    width = max((len(a.value) for a in record.actions), default=0)
    lines += [f"action     {a.value.ljust(width)}  not applied: drill" for a in record.actions]
    if not record.actions:
        lines.append("action     none")
    audiences = ", ".join(a.value for a in record.audiences)
    lines.append(f"notify     {audiences} (drafted as DRILL)" if audiences else "notify     nobody")
    lines += [f"paged      {who}" for who in record.paged] or ["paged      nobody (no responder may acknowledge)"]
    lines += [f"gap        {gap}" for gap in record.gaps] or ["gaps       none found"]
    lines.append(f"acknowledge  airlock ack {incident.metadata.name} -n {namespace}  (the practice record times this)")
    return lines


async def run_drill(session: Session, args: argparse.Namespace) -> Outcome:
    name, scenario = args.system, drills.Scenario(args.scenario)
    try:
        body = await session.api.get(kube.AISYSTEMS, session.namespace, name)
    except kube.NotFound:
        raise CliError(f"AISystem {name} not found in namespace {session.namespace} (kubectl get ais -A)") from None
    _system(body)
    value = drill_value(scenario, datetime.datetime.now(datetime.UTC))
    await session.remember_events(name)
    await session.annotate(kube.AISYSTEMS, name, {keys.DRILL: value, **session.identity()})
    _say(f"drill {scenario.value} on {name} (namespace {session.namespace}) requested by {session.caller.username}")
    _say(f"{keys.DRILL}={value}; nothing will be touched. Waiting up to {args.timeout:g}s for airlock ...")

    async def check() -> Outcome | None:
        current = _system(await session.get(kube.AISYSTEMS, name))
        if current.status is None or current.status.last_handled_drill != value:
            return None
        judged = judged_request(current.status.requests, keys.DRILL, value, session.caller.username)
        if judged is not None and judged.verdict is RequestVerdict.REFUSED:
            lines = [f"REFUSED by airlock: {keys.DRILL} ignored: {judged.reason}", "Nothing ran."]
            return Outcome(REFUSED, lines + await session.withdraw(kube.AISYSTEMS, name, keys.DRILL, value))
        incident = await find_drill(session.api, session.namespace, name, value)
        if incident is None or incident.status is None or incident.status.drill is None:
            return None
        return Outcome(DONE, [f"Drill ran in {session.elapsed()}:", *describe(incident, session.namespace)])

    outcome = await session.wait(f"airlock to run drill {value!r}", check)
    if outcome.code != TIMED_OUT:
        return outcome
    current = _system(await session.get(kube.AISYSTEMS, name))
    verdict = await plan_verdict(session, current, (Verb.DRILL,))
    if verdict is not None and not verdict.allowed:
        lines = [f"REFUSED: {verdict.reason} (the responders in force)", "Nothing ran."]
        return Outcome(REFUSED, lines + await session.withdraw(kube.AISYSTEMS, name, keys.DRILL, value))
    status = current.status
    if status is None or status.phase is None:
        outcome.lines.append("airlock never wrote this system's status: is the operator running?")
    elif status.last_handled_drill == value:
        outcome.lines.append(
            f"airlock handled the request but no drill incident for it was found: "
            f"kubectl get aii -n {session.namespace} -l {keys.SYSTEM_LABEL}={name}"
        )
    else:
        last = status.last_handled_drill or "none"
        outcome.lines.append(
            f"airlock has not handled it yet (phase {status.phase.value}; last drill handled: {last}): "
            "is the operator running, and recent enough to run drills?"
        )
    outcome.lines.append("The request stays in place: airlock runs the drill when it gets to it.")
    return outcome


async def _drill_main(args: argparse.Namespace) -> Outcome:
    config, namespace = connection.load(args)
    async with connection.client(config) as api:
        caller = await connection.whoami(api)
        session = Session(api=api, namespace=namespace, caller=caller, timeout=args.timeout)
        return await run_drill(session, args)


# ---------------------------------------------------------------- drill report


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}s"
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _when(value: datetime.datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_table(summaries: Sequence[drills.DrillSummary], all_namespaces: bool) -> str:
    """The report as a kubectl-style table, then the gaps each system's last drill found."""
    header = ["SYSTEM", "DRILLS", "LAST DRILL", "SCENARIO", "TIME TO ACK", "MEDIAN ACK", "GAPS"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for s in summaries:
        ack = _seconds(s.last_time_to_acknowledge_seconds) if s.acknowledged else "not acknowledged"
        if s.acknowledged and s.last_time_to_acknowledge_seconds is None:
            ack = "acknowledged"
        row = [
            s.system,
            str(s.drills),
            _when(s.last_at),
            s.last_scenario or "-",
            ack,
            _seconds(s.median_time_to_acknowledge_seconds),
            str(len(s.gaps)),
        ]
        if all_namespaces:
            row.insert(0, s.namespace)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    for s in summaries:
        if s.gaps:
            where = f"{s.namespace}/{s.system}" if all_namespaces else s.system
            lines.append("")
            lines.append(f"gaps found by the last drill of {where} ({s.last_incident}):")
            lines += [f"  - {gap}" for gap in s.gaps]
    return "\n".join(lines) + "\n"


async def _report_main(args: argparse.Namespace) -> str:
    config, namespace = connection.load(args)
    where = None if args.all_namespaces else namespace
    async with connection.client(config) as api:
        items = await api.list(kube.AIINCIDENTS, where)
    incidents, skipped = _incidents(items)
    if skipped:
        _complain(f"note: {skipped} malformed AIIncident(s) skipped")
    summaries = drills.report(incidents)
    if args.output == "json":
        return json.dumps([s.dump() for s in summaries], indent=2) + "\n"
    if not summaries:
        scope = "any namespace" if args.all_namespaces else f"namespace {namespace}"
        return f"No drills found in {scope}. Run one: airlock drill SYSTEM --scenario privacy\n"
    return render_table(summaries, args.all_namespaces)


# ---------------------------------------------------------------- wiring


def _usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, if anything (argparse cannot say it: SYSTEM may be 'report')."""
    if args.system == REPORT:
        if args.scenario is not None:
            return "--scenario is for running a drill, not for the report"
        if args.all_namespaces and args.namespace:
            return "give -n NAMESPACE or -A, not both"
        return None
    if args.scenario is None:
        return f"--scenario is required: one of {', '.join(s.value for s in drills.Scenario)}"
    if args.all_namespaces:
        return "-A is for the report; a drill runs on one system (-n NAMESPACE)"
    if args.output is not None:
        return "-o is for the report"
    return None


def _guard(command: Callable[[], int]) -> int:
    try:
        return command()
    except CliError as exc:
        _complain(f"airlock drill: {exc}")
        return exc.code
    except kube.ApiError as exc:
        said = f"cannot reach the API server: {exc.message}" if exc.status == 0 else f"the API server said {exc}"
        _complain(f"airlock drill: {said}")
        return REFUSED
    except KeyboardInterrupt:
        _complain("airlock drill: interrupted; the request (if sent) stays in place")
        return 130


def run(args: argparse.Namespace) -> int:
    problem = _usage(args)
    if problem is not None:
        _complain(f"airlock drill: {problem}")
        return USAGE

    if args.system == REPORT:

        def show_report() -> int:
            sys.stdout.write(asyncio.run(_report_main(args)))
            return DONE

        return _guard(show_report)

    def drill() -> int:
        outcome = asyncio.run(_drill_main(args))
        show = _say if outcome.code == DONE else _complain
        for line in outcome.lines:
            show(line)
        return outcome.code

    return _guard(drill)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drill",
        help="rehearse an AISystem's incident plan without touching it; 'drill report' lists past drills",
        description=(
            "Ask airlock to run a drill on SYSTEM as you (airlock.dev/drill), wait for the drill incident and "
            "print what the plan would have done, who was paged and the gaps found.  'airlock drill report' "
            "prints the practice record: drills per system, the last one, time to acknowledge."
        ),
        epilog=EPILOG,
    )
    parser.add_argument("system", metavar="SYSTEM|report", help="AISystem name, or 'report'")
    parser.add_argument(
        "--scenario",
        choices=[s.value for s in drills.Scenario],
        default=None,
        help="what to rehearse: a failure mode's worst case, or manual (a manual shutdown)",
    )
    connection.add_cluster_arguments(parser)
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="report: every namespace")
    parser.add_argument(
        "-o", "--output", choices=["table", "json"], default=None, help="report: table (default) or json"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the drill (default 30; exit 3 after)"
    )
    parser.set_defaults(func=run)
