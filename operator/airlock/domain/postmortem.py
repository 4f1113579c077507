"""The AI-specific post-mortem draft of one incident (SPEC §1, item 4).

An ordinary post-mortem asks what broke; an AI one must also ask what *data*
caused it, what *monitoring gap* let it reach production and what
*organizational incentive* kept anyone from flagging it earlier — questions
only people can answer.  :func:`draft` pre-fills everything airlock already
holds (the incident's header, key times and durations, timeline, actions and
who authorized them, the monitor's values around the breach as an ASCII chart,
notices and regulatory deadlines), so the humans spend their time on the
questions, not on copying timestamps.

Each question ends with one recognisable placeholder line (:data:`PLACEHOLDER`)
that a human replaces; :func:`unanswered` finds the questions still untouched,
so a review (or a tool) can tell a finished post-mortem from a fresh draft.
Lines starting with ``>`` under a question are prompts, never answers.

Pure and deterministic: no clock, no network.  The same incident and evidence
always give the same Markdown byte for byte (times in UTC, RFC 3339), so the
operator can re-draft idempotently and tests compare golden files.  The
operator stores the draft in an immutable ConfigMap named by its content
(:mod:`airlock.domain.drafts`, recorded in ``status.drafts.postmortem``) under
:data:`CONFIG_MAP_KEY`; ``airlock postmortem INCIDENT`` prints it.

The layout is a Jinja2 file next to this module (``postmortem_templates/``),
rendered in the same sandboxed, strict environment as the notices; every value
it shows is computed and escaped here.
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import FailureMode
from airlock.api.incident import (
    ActionRecord,
    AIIncident,
    AIIncidentStatus,
    IncidentPhase,
    PostmortemState,
    TimelineEntry,
    TriggerType,
)
from airlock.api.matrix import Monitor, Op
from airlock.domain import deadlines, notices

# The line a human replaces with the answer; untouched, the question is unanswered.
PLACEHOLDER = "_Answer here._"

# The draft's key in its ConfigMap (<incident>-postmortem-<hash>, in the incident's namespace;
# <incident>-postmortem before content-named drafts).
CONFIG_MAP_SUFFIX = "-postmortem"
CONFIG_MAP_KEY = "postmortem.md"
MAX_NAME = 253

QUESTIONS_HEADING = "AI-specific questions"

DATA = "What data caused it?"
MONITORING_GAP = "What monitoring gap let it reach production?"
INCENTIVE = "What organizational incentive kept anyone from flagging it earlier?"
NEAR_MISSES = "Near-misses before it"
VERSIONS = "Model, prompt and data versions involved"
AFFECTED = "Affected groups"
CORRECTIVE = "Corrective actions"

QUESTIONS: tuple[str, ...] = (DATA, MONITORING_GAP, INCENTIVE, NEAR_MISSES, VERSIONS, AFFECTED, CORRECTIVE)

# The corrective-actions answer is a table; its header row is not an answer.
CORRECTIVE_COLUMNS = ("Action", "Owner", "Due")

# What every post-mortem asks, whatever the failure mode.
PROMPTS: dict[str, tuple[str, ...]] = {
    DATA: (
        "Which inputs, features, segments or upstream sources shifted, and since when?",
        "Link the query, notebook or sample that shows it (redact personal data).",
    ),
    MONITORING_GAP: (
        "Which signal would have caught it earlier, or before release (offline evaluation, canary, shadow traffic)?",
        "Was a threshold, `for` window or interval too lax? Did a monitor report noData or error? "
        "Compare the first sample past the threshold with the detection time under Monitor evidence.",
    ),
    INCENTIVE: (
        "Who could have noticed first (support, annotators, users, the model's owners), and what made raising it "
        "costly or unrewarded: a launch date, a metric target, on-call load, unclear ownership?",
        "Blameless: describe the system of incentives, not a person.",
    ),
    NEAR_MISSES: (
        "Earlier alerts, lower-severity incidents, support tickets, evaluation regressions or drills that showed "
        "the same weakness. Link them, and say why they did not lead to a fix.",
    ),
    VERSIONS: (
        "Model (checkpoint or provider model id), system prompt and prompt templates, retrieval index or feature "
        "snapshot, training-data version, serving image. Which of them changed last, and when?",
    ),
    AFFECTED: ("Who was affected, how many, where, and for how long? Were some groups affected more than others?",),
    CORRECTIVE: (
        "One row per action, each with one owner and a due date. Close the monitoring gap above with a monitor "
        "or threshold change in the AISystem or its ContainmentPolicy.",
    ),
}

# What a failure mode adds to the questions.
MODE_PROMPTS: dict[FailureMode, dict[str, tuple[str, ...]]] = {
    FailureMode.SUDDEN: {
        DATA: (
            "Sudden failure: which release, dependency, configuration change or burst of input coincided with "
            "the breach? Was it the data at all?",
        ),
        MONITORING_GAP: ("Would a canary or a readiness check on output quality have stopped the rollout?",),
    },
    FailureMode.DRIFT: {
        DATA: (
            "Drift: which segments (locale, channel, customer tier, input length, topic) moved against the "
            "baseline window, and which upstream source or population change explains it?",
        ),
        MONITORING_GAP: (
            "Was the baseline window representative? Was the drift visible below the threshold before it "
            "breached, and for how long?",
        ),
    },
    FailureMode.ADVERSARIAL: {
        DATA: (
            "Adversarial: the attack vector (user prompt, retrieved document, tool output, uploaded file, API "
            "client) and the prompt-injection or jailbreak pattern; quote a redacted example.",
            "What did the attacker get: data, actions through tools, harmful output? Is the campaign still "
            "running elsewhere? Security's incident reference, if they opened one.",
        ),
        MONITORING_GAP: ("Which input or output filter did the pattern get past, and why?",),
    },
    FailureMode.PRIVACY: {
        DATA: (
            "Privacy: which categories of personal data appeared in outputs (contact details, identifiers, "
            "financial, health or other GDPR Art. 9 special categories), and where did they come from: training "
            "data, retrieval, logs, another user's conversation?",
        ),
        AFFECTED: (
            "Whose personal data was exposed (data subjects), to whom, how many records? Can the outputs be "
            "recalled or deleted?",
        ),
    },
    FailureMode.FAIRNESS: {
        DATA: (
            "Fairness: which inputs or proxies for protected characteristics drove the skew? Was a group under- "
            "or mis-represented in training or reference data?",
        ),
        AFFECTED: (
            "Which groups were treated worse, on which metric, by how much? Which decisions about them need "
            "human review or remedy?",
        ),
    },
    FailureMode.SAFETY: {
        DATA: (
            "Safety: which prompts or contexts produced the harmful content, and which safety filter or policy "
            "did they get past?",
        ),
        AFFECTED: ("Who saw the harmful content, and did anyone act on it? Is support or outreach needed?",),
    },
    FailureMode.COST: {
        DATA: (
            "Cost: which requests, tenants, prompts or loops drove the spend (tokens per request, request volume, "
            "retries, agent loops)? What did it cost in total, against the budget?",
        ),
        MONITORING_GAP: ("Was there a budget alert, rate limit or per-tenant quota, and why did it not stop it?",),
        AFFECTED: ("Which budgets, tenants or customers bear the spend?",),
    },
}

# Timeline types whose ``by`` is who authorized the action recorded at the same instant.
_AUTHORIZING = ("Contained", "ContainmentReverted", "Resolved", "ShutdownLifted")

_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")

MIN_WIDTH = 20
MIN_HEIGHT = 3


@dataclass(frozen=True)
class Evidence:
    """One monitor's values around the breach, from a small Prometheus range query."""

    monitor: str
    query: str
    condition: str | None  # e.g. "> 0.5"
    threshold: float | None
    points: Sequence[tuple[datetime.datetime, float]]


def config_map_name(incident: str) -> str:
    """``<incident>-postmortem``: where operators before content-named drafts kept it (see :mod:`drafts`)."""
    return incident[: MAX_NAME - len(CONFIG_MAP_SUFFIX)].rstrip(".-") + CONFIG_MAP_SUFFIX


# --- the chart -------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text


def _clock(value: datetime.datetime, short: bool) -> str:
    return deadlines.utc(value).strftime("%H:%M:%S" if short else "%Y-%m-%dT%H:%M:%SZ")


def _nearest(value: float) -> int:
    return math.floor(value + 0.5)


def chart(
    points: Iterable[tuple[datetime.datetime, float]],
    *,
    threshold: float | None = None,
    width: int = 60,
    height: int = 10,
) -> str:
    """An ASCII chart of ``points``: ``height`` rows × ``width`` columns of plot, framed and labelled.

    Every line has the same length (the y-axis labels, the frame and the
    plot), and there are always ``height + 2`` lines: the plot rows, the
    x-axis and the first and last sample times (UTC).  ``*`` is a sample; the
    row holding ``threshold`` is a dashed line labelled with the threshold's
    exact value.  Samples that are NaN or infinite (Prometheus returns both)
    are left out; an empty series says ``no data``; a constant one is drawn
    mid-range.  Deterministic: the same input always gives the same text.
    """
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"a chart needs width >= {MIN_WIDTH} and height >= {MIN_HEIGHT}")
    samples = sorted((deadlines.utc(at), float(value)) for at, value in points if math.isfinite(value))
    line = threshold if threshold is not None and math.isfinite(threshold) else None
    values = [value for _, value in samples] + ([line] if line is not None else [])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if low == high or (high - low) / (height - 1) == 0.0:
        # A constant series, or one whose range is too small for a float row height (5e-324 over 0):
        # drawn mid-range, like a constant.
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = (high - low) / (height - 1)

    def row_of(value: float) -> int:
        return min(height - 1, max(0, _nearest((high - value) / step)))

    grid = [[" "] * width for _ in range(height)]
    labels = [_number(high - row * step) for row in range(height)]
    line_row = row_of(line) if line is not None else None
    if line is not None and line_row is not None:
        grid[line_row] = ["-" if column % 2 == 0 else " " for column in range(width)]
        labels[line_row] = _number(line)
    if samples:
        first, last = samples[0][0], samples[-1][0]
        span = (last - first).total_seconds()
        for at, value in samples:
            column = _nearest((at - first).total_seconds() / span * (width - 1)) if span > 0 else 0
            grid[_row_against(row_of(value), value, line, line_row, height)][column] = "*"
    else:
        middle = height // 2
        if middle == line_row:
            middle -= 1  # keep the threshold visible
        grid[middle] = list("no data".center(width))
    label_width = max(len(label) for label in labels)
    lines = [f"{label:>{label_width}} |{''.join(cells)}|" for label, cells in zip(labels, grid, strict=True)]
    lines.append(" " * label_width + " +" + "-" * width + "+")
    lines.append(" " * (label_width + 2) + _time_axis(samples, width + 1))
    return "\n".join(lines)


def _row_against(row: int, value: float, line: float | None, line_row: int | None, height: int) -> int:
    # A sample past the threshold is never drawn on or beyond the threshold's row: the side of
    # the line a sample is on is the one thing a reader must be able to trust at this resolution.
    if line is None or line_row is None:
        return row
    if value > line and row >= line_row:
        return max(0, line_row - 1)
    if value < line and row <= line_row:
        return min(height - 1, line_row + 1)
    return row


def _time_axis(samples: Sequence[tuple[datetime.datetime, float]], width: int) -> str:
    if not samples:
        return "(no samples)".rjust(width)
    first, last = samples[0][0], samples[-1][0]
    for short in (False, True):
        left, right = _clock(first, short), _clock(last, short)
        if first == last and len(right) <= width:
            return right.rjust(width)
        if len(left) + 1 + len(right) <= width:
            return left + right.rjust(width - len(left))
    return _clock(last, True)[-width:].rjust(width)


# --- formatting helpers ----------------------------------------------------------------------------------------


def _time(value: datetime.datetime | None) -> str | None:
    """RFC 3339 in UTC: seconds, or milliseconds when the instant has them."""
    if value is None:
        return None
    instant = deadlines.utc(value)
    text = instant.isoformat(timespec="milliseconds" if instant.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{round(seconds, 1):g} s"
    whole = _nearest(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def _between(start: datetime.datetime | None, end: datetime.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (deadlines.utc(end) - deadlines.utc(start)).total_seconds()


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code that survives backticks in ``text`` (a PromQL query may hold any character)."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# --- the draft -------------------------------------------------------------------------------------------------


def parse_condition(condition: str | None) -> tuple[Op, float] | None:
    """``"> 0.5"`` → (Op.GT, 0.5); None if it is not a simple comparison."""
    match = _CONDITION.match(condition or "")
    if match is None:
        return None
    try:
        value = float(match.group(2))
    except ValueError:
        return None
    return Op(match.group(1)), value


def _holds(op: Op, value: float, threshold: float) -> bool:
    return {
        Op.GT: value > threshold,
        Op.GE: value >= threshold,
        Op.LT: value < threshold,
        Op.LE: value <= threshold,
        Op.EQ: value == threshold,
        Op.NE: value != threshold,
    }[op]


def _monitor(system: AISystemSpec | None, name: str | None) -> Monitor | None:
    if system is None or name is None:
        return None
    return next((m for m in system.monitors if m.name == name), None)


def _evidence_context(
    item: Evidence, system: AISystemSpec | None, detected: datetime.datetime | None
) -> dict[str, Any]:
    parsed = parse_condition(item.condition)
    threshold = item.threshold if item.threshold is not None else (parsed[1] if parsed else None)
    samples = sorted((deadlines.utc(at), float(v)) for at, v in item.points if math.isfinite(v))
    facts: list[str] = [f"Query: {_code(item.query)}"]
    if item.condition:
        facts.append(f"Condition: `{item.condition.strip()}`")
    elif threshold is not None:
        facts.append(f"Threshold: {_number(threshold)}")
    monitor = _monitor(system, item.monitor)
    if monitor is not None and monitor.baseline is not None:
        facts.append(
            f"Baseline: the value is the relative change against a {monitor.baseline.window} window ending "
            f"{monitor.baseline.offset} earlier"
        )
    if samples:
        values = [v for _, v in samples]
        facts.append(
            f"Samples: {len(samples)} from {_time(samples[0][0])} to {_time(samples[-1][0])}; "
            f"min {_number(min(values))}, max {_number(max(values))}, last {_number(values[-1])}"
        )
        if parsed is not None:
            op, limit = parsed
            breaching = [at for at, v in samples if _holds(op, v, limit)]
            if breaching:
                first = breaching[0]
                lead = _between(first, detected)
                when = ""
                if lead is not None and lead >= 0:
                    when = f" ({_duration(lead)} before detection)"
                elif lead is not None:
                    when = f" ({_duration(-lead)} after detection)"
                facts.append(f"First sample past the threshold: {_time(first)}{when}")
            else:
                facts.append("No sample in the window is past the threshold")
    else:
        facts.append("Samples: none in the window (the query returned no data)")
    legend = "`*` sample"
    if threshold is not None:
        legend += f", `- -` threshold {_number(threshold)}"
    return {
        "monitor": item.monitor,
        # One line: a description cannot start a heading of its own (and so fake a question).
        "description": " ".join(monitor.description.split()) if monitor and monitor.description else None,
        "facts": facts,
        "chart": chart(item.points, threshold=threshold),
        "legend": legend + "; times UTC.",
    }


def _authorized_by(record: ActionRecord, timeline: Sequence[TimelineEntry]) -> str:
    at = deadlines.utc(record.at)
    same = [e for e in timeline if e.by and deadlines.utc(e.at) == at]
    chosen = next((e for e in same if e.type in _AUTHORIZING), same[0] if same else None)
    approvals = [e for e in timeline if e.type == "Approved" and e.by and deadlines.utc(e.at) <= at]
    if chosen is None:
        who = "not recorded"
    elif chosen.by == "airlock" and not approvals:
        who = "airlock (pre-authorized by the plan)"
    else:
        who = str(chosen.by)
    if approvals and record.result != "restored":
        who += "; approved by " + ", ".join(dict.fromkeys(str(e.by) for e in approvals))
    return who


def _trigger(incident: AIIncident) -> str:
    trigger = incident.spec.trigger
    if trigger.type is TriggerType.MONITOR and trigger.monitor:
        value = f" (value {trigger.value:g})" if trigger.value is not None else ""
        return f"monitor {trigger.monitor} {trigger.condition or 'breached'}{value}"
    why = f": {trigger.reason}" if trigger.reason else ""
    return f"{trigger.type.value}{why}"


def _milestone(value: datetime.datetime | None, finished: bool) -> str:
    if value is not None:
        return str(_time(value))
    return "never" if finished else "not yet"


def _key_times(incident: AIIncident, status: AIIncidentStatus) -> list[list[str]]:
    sample = incident.spec.trigger.sample_time
    detected = status.detected_at
    finished = status.phase in (IncidentPhase.RESOLVED, IncidentPhase.CLOSED)
    rows: list[list[str]] = []
    rows.append(["Breach sample", _time(sample) or "not recorded", ""])
    detect = _between(sample, detected)
    rows.append(
        [
            "Detected",
            _time(detected) or "not recorded",
            f"time to detect: {_duration(detect)} (from the breach sample)" if detect is not None else "",
        ]
    )
    ack = _between(detected, status.acknowledged_at)
    by = f" by {status.acknowledged_by}" if status.acknowledged_by else ""
    rows.append(
        [
            "Acknowledged",
            _milestone(status.acknowledged_at, finished) + (by if status.acknowledged_at else ""),
            f"time to acknowledge: {_duration(ack)} (from detection)" if ack is not None else "",
        ]
    )
    ttc = status.time_to_contain_seconds
    origin = "the breach sample" if sample is not None else "detection"
    rows.append(
        [
            "Contained",
            _milestone(status.contained_at, finished),
            f"time to contain: {_duration(ttc)} (from {origin})" if ttc is not None else "",
        ]
    )
    resolve = _between(detected, status.resolved_at)
    rows.append(
        [
            "Resolved",
            _milestone(status.resolved_at, False),
            f"time to resolve: {_duration(resolve)} (from detection)" if resolve is not None else "",
        ]
    )
    rows.append(["Closed", _milestone(status.closed_at, False), ""])
    return rows


def _summary(incident: AIIncident, system: AISystemSpec | None, status: AIIncidentStatus) -> list[list[str]]:
    spec = incident.spec
    trigger = spec.trigger
    namespace = incident.metadata.namespace or "default"
    rows = [
        ["Incident", f"{namespace}/{incident.metadata.name}"],
        ["System", spec.system if system is None else _system_line(spec.system, system)],
        ["Failure mode", f"{spec.failure_mode.value} ({notices.FAILURE_MODE_TEXT[spec.failure_mode]})"],
        ["Severity", spec.severity.value],
        ["Phase", (status.phase or IncidentPhase.OPEN).value],
        ["Drill", _yes_no(spec.drill)],
        ["Dry run", _yes_no(spec.dry_run)],
        ["Trigger", _trigger(incident)],
    ]
    if trigger.query:
        rows.append(["Query", _code(trigger.query)])
    if trigger.type is not TriggerType.MONITOR and trigger.by:
        rows.append(["Triggered by", trigger.by])
    if spec.harm or spec.widespread:
        harm = [f"({h.value}) {notices.HARM_TEXT[h]}" for h in spec.harm]
        if spec.widespread:
            harm.append("widespread infringement (Art. 3(61))")
        rows.append(["Harm (EU AI Act Art. 3(49))", "; ".join(harm)])
    rows.append(["Acknowledged by", status.acknowledged_by or "nobody"])
    postmortem = status.postmortem
    if postmortem is not None and postmortem.state is PostmortemState.COMPLETE:
        rows.append(["Post-mortem", f"complete: {postmortem.ref or 'no reference recorded'}"])
    return [[name, _cell(value)] for name, value in rows]


def _system_line(name: str, system: AISystemSpec) -> str:
    parts = [f"{name} ({system.description})" if system.description else name]
    parts.append(f"owner {system.owner or 'not declared'}")
    parts.append(f"target {system.target.kind.value}/{system.target.name}")
    parts.append(f"mode {system.mode.value}")
    if system.fallback is not None:
        parts.append(f"fallback {system.fallback.kind} {system.fallback.object_name}")
    return "; ".join(parts)


def _prompts(incident: AIIncident, system: AISystemSpec | None) -> dict[str, list[str]]:
    mode = incident.spec.failure_mode
    out = {question: list(PROMPTS[question]) for question in QUESTIONS}
    for question, lines in MODE_PROMPTS.get(mode, {}).items():
        out[question].extend(lines)
    monitors = [m for m in (system.monitors if system else []) if m.failure_mode is mode]
    if mode is FailureMode.DRIFT:
        for monitor in monitors:
            if monitor.baseline is not None:
                out[DATA].append(
                    f"Monitor {monitor.name} compares with a {monitor.baseline.window} baseline window ending "
                    f"{monitor.baseline.offset} earlier: what did that window look like?"
                )
    if mode is FailureMode.PRIVACY:
        gdpr = system.regulatory.gdpr if system and system.regulatory else None
        if gdpr is not None and gdpr.personal_data:
            out[AFFECTED].append(
                "This system declares personal data: GDPR applies; the Art. 33 clock is under Regulatory deadlines."
            )
        else:
            out[AFFECTED].append(
                "This system does not declare personal data (spec.regulatory.gdpr): say whether GDPR applies "
                "(personal data of people in the EU), and if so start the Art. 33 clock (72 h from awareness)."
            )
    if system is not None:
        out[VERSIONS].append(
            f"Serving workload: {system.target.kind.value} {system.target.name}"
            + (f"; fallback {system.fallback.kind} {system.fallback.object_name}." if system.fallback else ".")
        )
    status = incident.status
    if incident.spec.drill and status is not None and status.drill is not None and status.drill.gaps:
        out[NEAR_MISSES].append("This was a drill: the gaps it found are listed under Drill findings.")
    return out


def context(incident: AIIncident, system: AISystemSpec | None, evidence: Sequence[Evidence]) -> dict[str, Any]:
    """Everything the template shows, computed and escaped; the same keys whatever is known."""
    spec = incident.spec
    status = incident.status or AIIncidentStatus()
    name = incident.metadata.name or spec.system
    namespace = incident.metadata.namespace or "default"
    drill = status.drill
    return {
        "name": name,
        "namespace": namespace,
        "system": spec.system,
        "drill": spec.drill,
        "dryRun": spec.dry_run,
        "systemKnown": system is not None,
        "summary": _summary(incident, system, status),
        "keyTimes": _key_times(incident, status),
        "timeline": [[str(_time(e.at)), _cell(e.type), _cell(e.by or ""), _cell(e.message)] for e in status.timeline],
        "actions": [
            [
                str(_time(a.at)),
                a.action.value,
                _cell(notices.ACTION_TEXT[a.action]),
                _cell(a.result),
                _cell(_authorized_by(a, status.timeline)),
            ]
            for a in status.actions
        ],
        "evidence": [_evidence_context(item, system, status.detected_at) for item in evidence],
        "notifications": [
            [
                n.audience.value,
                _cell(n.event or ""),
                n.state.value,
                str(n.attempts),
                _cell(n.channel or ""),
                _time(n.sent_at) or "",
                _cell(n.last_error or ""),
            ]
            for n in status.notifications
        ],
        "reporting": [
            [
                _cell(deadlines.TITLES.get(r.regime, r.regime)) + f" (`{r.regime}`)",
                str(_time(r.deadline)),
                r.state.value,
                _cell(r.reference or ""),
                _cell(
                    " ".join(x for x in (_time(r.submitted_at), f"by {r.submitted_by}" if r.submitted_by else "") if x)
                ),
            ]
            for r in status.reporting
        ],
        "drillRecord": (
            None
            if drill is None
            else {
                "scenario": _cell(drill.scenario),
                "decision": _cell(drill.decision),
                "actions": ", ".join(a.value for a in drill.actions) or "none",
                "audiences": ", ".join(a.value for a in drill.audiences) or "none",
                "paged": _cell(", ".join(drill.paged)) or "nobody",
                "timeToAcknowledge": _duration(drill.time_to_acknowledge_seconds) or "not acknowledged",
                "gaps": [_cell(gap) for gap in drill.gaps],
            }
        ),
        "questionsHeading": QUESTIONS_HEADING,
        "questions": [{"heading": q, "prompts": lines} for q, lines in _prompts(incident, system).items()],
        "corrective": CORRECTIVE,
        "correctiveColumns": list(CORRECTIVE_COLUMNS),
        "placeholder": PLACEHOLDER,
    }


@functools.cache
def template_text() -> str:
    """The shipped layout (package data)."""
    resource = importlib.resources.files("airlock.domain").joinpath("postmortem_templates", "postmortem.md.j2")
    return resource.read_text(encoding="utf-8")


def draft(incident: AIIncident, system: AISystemSpec | None, evidence: Sequence[Evidence]) -> str:
    """The post-mortem draft of ``incident`` as Markdown, pre-filled with what airlock holds.

    ``system`` is the AISystem's spec, ideally merged with its ContainmentPolicy (monitors
    and regulatory profile sharpen the prompts); None when the AISystem is gone.
    ``evidence`` is the breached monitor(s)' values around the breach, in the order given.
    """
    template = notices.environment().from_string(template_text())
    text = template.render(context(incident, system, evidence))
    # One blank line between blocks, whatever the template's conditionals left behind.
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


# --- reading a (possibly edited) draft back --------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner.removeprefix("|")
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def _answered(body: Sequence[str]) -> bool:
    fenced = False
    for index, raw in enumerate(body):
        line = raw.strip()
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            if line:
                return True
            continue
        if not line or line.startswith(">") or line.startswith("<!--"):
            continue
        if line.startswith("|"):
            if _TABLE_SEPARATOR.match(line):
                continue
            following = body[index + 1].strip() if index + 1 < len(body) else ""
            if following.startswith("|") and _TABLE_SEPARATOR.match(following):
                continue  # a header row
            if any(cell and cell != PLACEHOLDER for cell in _cells(line)):
                return True
            continue
        if line.replace(PLACEHOLDER, "").strip():
            return True
    return False


def unanswered(markdown: str) -> list[str]:
    """The headings of :data:`QUESTIONS` whose answer is still the placeholder, empty or missing.

    A section is a question's heading up to the next heading of the same or a
    higher level (sub-headings belong to the answer).  Prompts (lines starting
    with ``>``), the placeholder, blank lines and the corrective-actions
    table's header and empty rows are not answers; any other text is.  A
    question whose heading was deleted counts as unanswered.
    """
    lines = markdown.splitlines()
    answered: set[str] = set()
    fenced = False
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is not None:
            headings.append((index, len(match.group(1)), match.group(2).strip()))
    for position, (index, level, text) in enumerate(headings):
        if text not in QUESTIONS:
            continue
        end = next((i for i, lvl, _ in headings[position + 1 :] if lvl <= level), len(lines))
        if _answered(lines[index + 1 : end]):
            answered.add(text)
    return [question for question in QUESTIONS if question not in answered]
