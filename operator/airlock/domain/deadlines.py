"""Regulatory reporting clocks: which reports an incident owes, by when, and which warnings are due.

Pure arithmetic on an injected ``now``; never the wall clock.  Every instant
is converted to UTC before any arithmetic, so a deadline is the same instant
whatever zone the caller's datetimes are in (wall-clock arithmetic in
Europe/Berlin across a DST change would be an hour off).  A naive datetime is
UTC, as in every serialised Timestamp.

When a clock starts (decisions, documented in the module so the engine and the
docs say the same thing):

- **Awareness** is ``status.detectedAt`` unless the caller gives an explicit
  ``awareness_at`` (e.g. a responder records that the provider learnt of the
  harm later).  Counting from detection is the conservative reading: a
  breach airlock saw is a breach the provider could know of.
- **Drills owe nothing**: a rehearsal is not an incident.  A ``dryRun``
  system's incident is real (the model really misbehaved; airlock only
  chose not to touch it), so its clocks run.
- **EU AI Act Art. 73** applies when the system declares
  ``regulatory.euAiAct.highRisk``.  Whether an incident is *serious*
  (Art. 3(49) a–d) is a human judgement, so:

  * while ``spec.harm`` is empty, the incident owes an
    ``eu-ai-act-art73-classification`` decision due at awareness + 2 days —
    the shortest Art. 73 clock, so that if it turns out to be widespread or
    critical-infrastructure harm no time was lost.  A responder settles it by
    setting ``spec.harm`` (which replaces it with the report clock) or by
    marking it submitted with a reference that records the assessment
    (e.g. ``not serious: no person affected``);
  * once ``spec.harm`` is set, ``eu-ai-act-art73`` is due at awareness +
    2 days for category (b) or a widespread infringement (Art. 73(3)),
    10 days for category (a) death (Art. 73(4)), otherwise 15 days
    (Art. 73(2)); the shortest applicable clock wins.
- **GDPR Art. 33** (``gdpr-art33``): 72 hours from awareness when the failure
  mode is ``privacy`` and the system declares ``regulatory.gdpr.personalData``,
  whether or not the system is high-risk.

A period "in days" is counted as whole 24-hour periods from the awareness
instant.  Regulation 1182/71 would end the period at the close of the last
day, which is never earlier, so this reading is never late.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import FailureMode
from airlock.api.incident import AIIncident, HarmCategory, ReportingObligation, ReportState

EU_AI_ACT_ART73 = "eu-ai-act-art73"
EU_AI_ACT_ART73_CLASSIFICATION = "eu-ai-act-art73-classification"
GDPR_ART33 = "gdpr-art33"

ART73_GENERAL = datetime.timedelta(days=15)
ART73_WIDESPREAD_OR_CRITICAL = datetime.timedelta(days=2)
ART73_DEATH = datetime.timedelta(days=10)
GDPR_BREACH = datetime.timedelta(hours=72)

# What each regime is, in words, for notices, Events and the runbook.
TITLES = {
    EU_AI_ACT_ART73: "EU AI Act Art. 73 serious-incident report",
    EU_AI_ACT_ART73_CLASSIFICATION: "EU AI Act Art. 3(49) classification (is this a serious incident?)",
    GDPR_ART33: "GDPR Art. 33 personal-data breach notification",
}


def utc(value: datetime.datetime) -> datetime.datetime:
    """The same instant in UTC; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def awareness(incident: AIIncident, awareness_at: datetime.datetime | None = None) -> datetime.datetime:
    """When the clocks start: the explicit awareness time, else the incident's detection."""
    if awareness_at is not None:
        return utc(awareness_at)
    if incident.status is None or incident.status.detected_at is None:
        raise ValueError(f"incident {incident.metadata.name}: status.detectedAt is not set, give awareness_at")
    return utc(incident.status.detected_at)


def art73_period(harm: Iterable[HarmCategory], *, widespread: bool = False) -> datetime.timedelta:
    """The Art. 73 reporting period for a serious incident of these categories (the shortest wins)."""
    categories = set(harm)
    periods = [ART73_GENERAL]
    if HarmCategory.DEATH_OR_HEALTH in categories:
        # Art. 73(4) speaks of death; category (a) also covers serious harm to health,
        # which stays at 15 days in law — but airlock cannot tell the two apart, so the
        # shorter clock is the safe one.
        periods.append(ART73_DEATH)
    if widespread or HarmCategory.CRITICAL_INFRASTRUCTURE in categories:
        periods.append(ART73_WIDESPREAD_OR_CRITICAL)
    return min(periods)


def obligations(
    incident: AIIncident,
    system: AISystemSpec,
    *,
    awareness_at: datetime.datetime | None = None,
    widespread: bool = False,
) -> list[ReportingObligation]:
    """The reporting clocks this incident of this system starts, all ``pending`` (see the module docstring).

    ``widespread`` is a responder's finding of a widespread infringement (Art. 3(61)),
    which shortens the Art. 73 clock to 2 days like category (b).
    """
    if incident.spec.drill:
        return []
    regulatory = system.regulatory
    if regulatory is None:
        return []
    start: datetime.datetime | None = None
    out: list[ReportingObligation] = []
    if regulatory.eu_ai_act is not None and regulatory.eu_ai_act.high_risk:
        start = awareness(incident, awareness_at)
        if incident.spec.harm or widespread:
            period = art73_period(incident.spec.harm, widespread=widespread)
            out.append(ReportingObligation(regime=EU_AI_ACT_ART73, deadline=start + period))
        else:
            out.append(
                ReportingObligation(
                    regime=EU_AI_ACT_ART73_CLASSIFICATION, deadline=start + ART73_WIDESPREAD_OR_CRITICAL
                )
            )
    if (
        regulatory.gdpr is not None
        and regulatory.gdpr.personal_data
        and incident.spec.failure_mode is FailureMode.PRIVACY
    ):
        start = start or awareness(incident, awareness_at)
        out.append(ReportingObligation(regime=GDPR_ART33, deadline=start + GDPR_BREACH))
    return out


def merge(
    existing: Sequence[ReportingObligation], computed: Sequence[ReportingObligation]
) -> list[ReportingObligation]:
    """The new ``status.reporting``: computed clocks, keeping what responders already recorded.

    A submitted report keeps its state and reference (and stays, for the audit record,
    even when it no longer applies — e.g. a classification superseded by the report
    clock).  A pending clock that no longer applies is dropped.  A reclassification
    moves a pending deadline (harm (b) found on day 1 brings a 15-day clock to 2 days).
    """
    by_regime = {o.regime: o for o in existing}
    out: list[ReportingObligation] = []
    for new in computed:
        old = by_regime.pop(new.regime, None)
        if old is not None and old.state is ReportState.SUBMITTED:
            out.append(old.model_copy(update={"deadline": new.deadline}))
        else:
            out.append(new)
    out.extend(o for o in by_regime.values() if o.state is ReportState.SUBMITTED)
    return out


def submit(obligation: ReportingObligation, reference: str) -> ReportingObligation:
    """The obligation marked submitted with the authority's (or the assessment's) reference."""
    if not reference.strip():
        raise ValueError(f"{obligation.regime}: a submission needs a reference")
    return obligation.model_copy(update={"state": ReportState.SUBMITTED, "reference": reference.strip()})


class ClockWarning(StrEnum):
    """A point on a reporting clock that deserves one Event (values are Event reasons)."""

    HALF = "ReportDeadlineHalfElapsed"
    NINETY = "ReportDeadlineNinetyPercentElapsed"
    OVERDUE = "ReportOverdue"


# Fraction of the period elapsed at which each warning fires.
WARNING_AT = {ClockWarning.HALF: 0.5, ClockWarning.NINETY: 0.9, ClockWarning.OVERDUE: 1.0}


@dataclass(frozen=True)
class ClockCheck:
    """One obligation at one instant: its state, the time left, and the warnings newly due."""

    obligation: ReportingObligation
    state: ReportState
    seconds_left: float
    crossed: tuple[ClockWarning, ...]

    @property
    def message(self) -> str:
        """For an Event or a Warning condition: what is due, by when."""
        title = TITLES.get(self.obligation.regime, self.obligation.regime)
        deadline = format_instant(self.obligation.deadline)
        if self.state is ReportState.SUBMITTED:
            return f"{title}: submitted ({self.obligation.reference})"
        if self.state is ReportState.OVERDUE:
            return f"{title}: OVERDUE since {deadline} ({_span(-self.seconds_left)} ago)"
        return f"{title}: due {deadline} ({_span(self.seconds_left)} left)"


def warning_instants(start: datetime.datetime, deadline: datetime.datetime) -> dict[ClockWarning, datetime.datetime]:
    start, deadline = utc(start), utc(deadline)
    period = deadline - start
    return {warning: start + period * fraction for warning, fraction in WARNING_AT.items()}


def check(
    obligation: ReportingObligation,
    *,
    start: datetime.datetime,
    now: datetime.datetime,
    previous: datetime.datetime | None,
) -> ClockCheck:
    """The obligation's state at ``now`` and the warnings whose instant lies in ``(previous, now]``.

    ``previous`` is the ``now`` of the last check the engine recorded (None on the
    first one), so each warning is emitted exactly once however often the engine
    reconciles; a check that skipped over several points reports all of them, in
    order.  A submitted report never warns.  ``start`` is the awareness instant
    the obligation was computed from.
    """
    now = utc(now)
    deadline = utc(obligation.deadline)
    seconds_left = (deadline - now).total_seconds()
    if obligation.state is ReportState.SUBMITTED:
        return ClockCheck(obligation, ReportState.SUBMITTED, seconds_left, ())
    state = ReportState.OVERDUE if now >= deadline else ReportState.PENDING
    since = utc(previous) if previous is not None else None
    crossed = tuple(
        warning
        for warning, instant in warning_instants(start, deadline).items()
        if instant <= now and (since is None or instant > since)
    )
    updated = obligation if obligation.state is state else obligation.model_copy(update={"state": state})
    return ClockCheck(updated, state, seconds_left, crossed)


def format_instant(value: datetime.datetime) -> str:
    """``2026-11-28 13:30 UTC``: minutes are the precision a deadline is read at."""
    return utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    minutes = int(max(0.0, seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"
