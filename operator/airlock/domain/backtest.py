"""Backtest: what would this plan have done over a stretch of history?

The replay feeds series already fetched (one range query per distinct resolved
query, see :func:`queries`) through the very functions the operator runs —
:func:`airlock.domain.series.pick`/``sample`` to match shared monitors by
labels, :func:`airlock.domain.evaluation.evaluate` with its ``for`` clocks
carried from step to step, and :func:`airlock.domain.decisions.decide` with a
simulated incident and containment — so "what it would have done" and "what it
does" cannot drift apart.

What the replay has to assume, because history does not record people:
- **Nobody acknowledges or approves.** ``escalate`` severities therefore escalate
  after ``ackWithin`` exactly as ``decide`` says, and never act on an approval.
- **Release** (see :class:`Release`): the operator never releases by itself; a
  responder does.  ``all-clear`` (the default) assumes the release comes at the
  first step at which no monitor breaches at any severity; ``blockers-clear``
  at the first step at which the operator would accept one (no monitor breaches
  at a containing level, :func:`~airlock.domain.decisions.release_blockers`) —
  the earliest possible release, which shows the most flapping.  An incident
  that never contained is assumed resolved at the first step with no breach.
  Release resolves the incident, as in the operator; a breach after that opens
  a new one.
- **dryRun** systems are replayed as if enforced: the actions are what
  ``enforce`` would have applied.
- Time to contain is measured from the first sample at which the trigger's
  condition held (its ``for`` clock start) to the step that contains; the
  operator's own latency (≤ one interval + 1 s, SPEC §6) is not included.
- A step with no point for a query is "no data" for it (the monitor's
  ``noData`` policy applies), like an instant query that returns nothing.
- A point is the value of the grid step nearest to it (see :meth:`Grid.index`):
  a provider may answer on a slightly different clock (rounded timestamps), so a
  value less than half a step away stands for the step, and a replayed time may be
  up to half a step off the sample's own.  A point that cannot be placed — outside the grid,
  or a second point of one series for one step (a series denser than the grid)
  — is counted in :attr:`History.dropped` and reported as ``dropped``, never
  silently turned into "no data".
"""

from __future__ import annotations

import datetime
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from airlock.api.aisystem import Containment, MonitorState, MonitorStatus, Phase
from airlock.api.common import Action, FailureMode, Response, Severity
from airlock.domain import evaluation, series
from airlock.domain.decisions import OpenIncident, Situation, classify, decide, release_blockers
from airlock.domain.plan import Plan


class Release(enum.StrEnum):
    """When the replay assumes a responder releases a containment (see the module docstring)."""

    ALL_CLEAR = "all-clear"
    BLOCKERS_CLEAR = "blockers-clear"


@dataclass(frozen=True)
class Grid:
    """The replay's steps: ``start + k * step`` for k in ``[0, count)`` — the range queries' own grid."""

    start: datetime.datetime
    step: float
    count: int

    @classmethod
    def between(cls, start: datetime.datetime, end: datetime.datetime, step: float) -> Grid:
        if step <= 0:
            raise ValueError("step must be positive")
        if end < start:
            raise ValueError("end must not be before start")
        return cls(start=start, step=step, count=int((end - start).total_seconds() // step) + 1)

    @property
    def end(self) -> datetime.datetime:
        return self.at(self.count - 1)

    def at(self, index: int) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=index * self.step)

    def index(self, at: datetime.datetime) -> int | None:
        """The step nearest a timestamp, or None when it lies more than half a step outside the grid.

        Snapping, not exact matching: providers round timestamps or answer on their own
        clock, and a point within half a step of a step is that step's value.  Exactly
        half-way goes to the later step (``floor``, not ``round``: banker's rounding would
        send alternate half-way points to the same step).
        """
        index = math.floor((at - self.start).total_seconds() / self.step + 0.5)
        return index if 0 <= index < self.count else None


@dataclass(frozen=True)
class Series:
    """One series of a range query's answer."""

    labels: Mapping[str, str]
    points: Sequence[tuple[datetime.datetime, float]]


@dataclass(frozen=True)
class Observed:
    """One series' value at one step: what an instant query at that step would have answered."""

    labels: Mapping[str, str]
    value: float
    at: datetime.datetime


class History:
    """Range-query answers, re-cut into the instant answer at each step of the grid.

    ``dropped``: per query, the points that could not be placed on the grid — outside
    it, or beaten to their step by a nearer point of the same series.
    """

    def __init__(self, grid: Grid, answers: Mapping[str, Sequence[Series]]) -> None:
        self.grid = grid
        self._steps: dict[str, dict[int, list[Observed]]] = {}
        self.dropped: dict[str, int] = {}
        for query, answer in answers.items():
            steps = self._steps.setdefault(query, {})
            dropped = 0
            for s in answer:
                placed: dict[int, tuple[float, float]] = {}  # step → (distance in seconds, value)
                for at, value in s.points:
                    # NaN is "no value", as the live provider treats it.
                    if math.isnan(value):
                        continue
                    index = grid.index(at)
                    if index is None:
                        dropped += 1
                        continue
                    distance = abs((at - grid.at(index)).total_seconds())
                    if index in placed:
                        dropped += 1
                        if placed[index][0] <= distance:
                            continue
                    placed[index] = (distance, value)
                for index, (_, value) in placed.items():
                    steps.setdefault(index, []).append(Observed(s.labels, value, grid.at(index)))
            self.dropped[query] = dropped

    def answer(self, query: str, index: int) -> list[Observed]:
        if query not in self._steps:
            raise KeyError(f"no history fetched for query {query!r}")
        return self._steps[query].get(index, [])


def queries(plans: Iterable[Plan]) -> list[str]:
    """Every distinct query (and baseline query) the plans need: one range query each."""
    out: set[str] = set()
    for plan in plans:
        for resolved in plan.monitors:
            out.add(resolved.query)
            if resolved.baseline_query is not None:
                out.add(resolved.baseline_query)
    return sorted(out)


@dataclass
class Incident:
    """An incident the plan would have opened."""

    opened_at: datetime.datetime
    first_breach: datetime.datetime
    severity: Severity
    failure_mode: FailureMode | None
    monitor: str | None
    value: float | None
    condition: str | None
    reason: str
    max_severity: Severity
    response: Response | None
    actions: list[Action] = field(default_factory=list)
    contained_at: datetime.datetime | None = None
    resolved_at: datetime.datetime | None = None
    raised: list[tuple[datetime.datetime, Severity, str]] = field(default_factory=list)

    @property
    def time_to_contain(self) -> float | None:
        if self.contained_at is None:
            return None
        return (self.contained_at - self.first_breach).total_seconds()

    def dump(self) -> dict[str, object]:
        return {
            "openedAt": iso(self.opened_at),
            "firstBreach": iso(self.first_breach),
            "severity": self.severity.value,
            "maxSeverity": self.max_severity.value,
            "response": self.response.value if self.response else None,
            "failureMode": self.failure_mode.value if self.failure_mode else None,
            "monitor": self.monitor,
            "value": self.value,
            "condition": self.condition,
            "reason": self.reason,
            "actions": [a.value for a in self.actions],
            "containedAt": iso(self.contained_at),
            "timeToContainSeconds": self.time_to_contain,
            "resolvedAt": iso(self.resolved_at),
            "raised": [{"at": iso(at), "severity": s.value, "reason": why} for at, s, why in self.raised],
        }


class Mark(enum.StrEnum):
    """What one step looked like, for the timeline (worst first in :data:`_MARK_ORDER`)."""

    HEALTHY = "."
    GAP = "?"
    OBSERVED = "o"
    SEV4 = "4"
    SEV3 = "3"
    SEV2 = "2"
    SEV1 = "1"
    CONTAINED = "#"


_MARK_ORDER = list(Mark)


@dataclass
class Result:
    """What one system's plan would have done over the grid."""

    namespace: str
    name: str
    grid: Grid
    release: Release
    incidents: list[Incident] = field(default_factory=list)
    containments: int = 0
    releases: int = 0
    flaps: int = 0
    marks: list[Mark] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=dict)
    dropped: int = 0  # points of this plan's queries that could not be placed on the grid (History.dropped)

    def timeline(self, width: int = 96) -> str:
        """One character per bucket of steps, the worst mark in it: ``#`` contained, a digit the severity."""
        if not self.marks:
            return ""
        buckets = min(width, len(self.marks))
        out = []
        for b in range(buckets):
            chunk = self.marks[b * len(self.marks) // buckets : (b + 1) * len(self.marks) // buckets]
            out.append(max(chunk, key=_MARK_ORDER.index).value if chunk else " ")
        return "".join(out)

    def dump(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "release": self.release.value,
            "incidents": [i.dump() for i in self.incidents],
            "containments": self.containments,
            "releases": self.releases,
            "flaps": self.flaps,
            "dropped": self.dropped,
            "timeline": self.timeline(),
        }


def iso(at: datetime.datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, as the status fields are written."""
    return at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z") if at else None


def replay(
    plan: Plan,
    history: History,
    *,
    namespace: str = "",
    name: str = "",
    release: Release = Release.ALL_CLEAR,
    flap_window: float = 1800.0,
) -> Result:
    """Step through ``history.grid`` as the operator would have, one evaluation of every monitor per step.

    ``flap_window``: a containment that starts within this many seconds of the
    previous release counts as a flap.
    """
    grid = history.grid
    result = Result(namespace=namespace, name=name, grid=grid, release=release)
    result.values = {r.name: [] for r in plan.monitors}
    result.dropped = sum(history.dropped.get(q, 0) for q in queries([plan]))
    statuses: dict[str, MonitorStatus] = {}
    provider_error_since: datetime.datetime | None = None
    incident: Incident | None = None
    view: OpenIncident | None = None
    containment: Containment | None = None
    released_at: datetime.datetime | None = None

    for index in range(grid.count):
        now = grid.at(index)

        # 1. Monitors, exactly as the scheduler samples and the engine evaluates them.
        monitors: list[MonitorStatus] = []
        for resolved in plan.monitors:
            current = _picked(resolved.match, history.answer(resolved.query, index))
            baseline = (
                _picked(resolved.match, history.answer(resolved.baseline_query, index))
                if resolved.baseline_query is not None
                else None
            )
            sample = series.sample(current, baseline, now, with_baseline=resolved.baseline_query is not None)
            status = evaluation.evaluate(resolved.monitor, sample, statuses.get(resolved.name), now, resolved.query)
            statuses[resolved.name] = status
            monitors.append(status)
            result.values[resolved.name].append(sample.value)
        all_error = bool(monitors) and all(s.state is MonitorState.ERROR for s in monitors)
        provider_error_since = (provider_error_since or now) if all_error else None

        # 2. The assumed release (before deciding, as the operator handles a release).
        active = incident is not None or containment is not None
        if active and _released(plan, monitors, release, contained=containment is not None):
            if incident is not None:
                incident.resolved_at = now
            incident = view = None
            if containment is not None:
                containment = None
                released_at = now
                result.releases += 1

        # 3. Decide with the simulated incident and containment.
        decision = decide(
            Situation(
                plan=plan,
                monitors=monitors,
                now=now,
                containment=containment,
                incident=view,
                provider_error_since=provider_error_since,
            )
        )
        severity = decision.incident_severity
        if decision.open_incident and severity is not None:
            if incident is None:
                incident = _open(plan, decision.classification.trigger, decision.reason, severity, now)
                incident.response = decision.response
                result.incidents.append(incident)
                # As the operator records it: detected at the first breach, at this severity since now.
                view = OpenIncident(
                    name=f"backtest-{len(result.incidents)}",
                    severity=severity,
                    detected_at=incident.first_breach,
                    severity_since=now,
                )
            elif view is not None and severity.worse_than(view.severity):
                incident.max_severity = severity
                incident.response = decision.response
                incident.raised.append((now, severity, decision.reason))
                view = OpenIncident(name=view.name, severity=severity, detected_at=view.detected_at, severity_since=now)

        # 4. Containment: dryRun systems replay what enforce would have done.
        wanted = decision.contain or decision.would_contain
        if wanted:
            if containment is None:
                containment = Containment(
                    active=True,
                    actions=list(wanted),
                    since=now,
                    by="airlock",
                    reason=decision.reason,
                    severity=decision.containment_severity,
                )
                result.containments += 1
                if released_at is not None and (now - released_at).total_seconds() <= flap_window:
                    result.flaps += 1
                if incident is not None and incident.contained_at is None:
                    incident.contained_at = now
            else:
                containment.actions += [a for a in wanted if a not in containment.actions]
            if incident is not None:
                incident.actions += [a for a in wanted if a not in incident.actions]

        result.marks.append(_mark(decision.severity, decision.response, containment, decision.phase))
    return result


def _picked(match: Mapping[str, str] | None, answer: Sequence[Observed]) -> series.Picked:
    try:
        return series.pick(match, answer, lambda o: o.labels)
    except series.AmbiguousMatch as exc:
        return str(exc)


def _released(plan: Plan, monitors: list[MonitorStatus], release: Release, *, contained: bool) -> bool:
    if contained and release is Release.BLOCKERS_CLEAR:
        return not release_blockers(plan, monitors)
    return classify(plan, monitors).severity is None


def _open(
    plan: Plan, trigger: MonitorStatus | None, reason: str, severity: Severity, now: datetime.datetime
) -> Incident:
    first = now
    condition: str | None = None
    if trigger is not None:
        # Dated like the operator dates detection: when the trigger's condition started to hold.
        first = next((p.since for p in trigger.pending if p.severity == trigger.severity), None) or now
        resolved = next((r for r in plan.monitors if r.name == trigger.name), None)
        threshold = (
            next((t for t in resolved.monitor.thresholds if t.severity == trigger.severity), None) if resolved else None
        )
        condition = threshold.condition() if threshold else None
    return Incident(
        opened_at=now,
        first_breach=first,
        severity=severity,
        failure_mode=trigger.failure_mode if trigger else None,
        monitor=trigger.name if trigger else None,
        value=trigger.value if trigger else None,
        condition=condition,
        reason=reason,
        max_severity=severity,
        response=None,
    )


def _mark(severity: Severity | None, response: Response | None, containment: Containment | None, phase: Phase) -> Mark:
    if containment is not None:
        return Mark.CONTAINED
    if severity is not None:
        return Mark.OBSERVED if response is Response.OBSERVE else Mark(severity.value[3:])
    return Mark.GAP if phase is Phase.UNKNOWN else Mark.HEALTHY
