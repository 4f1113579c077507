"""Containment transitions: from what should be contained and what the target shows, to what to do.

The engine observes the target, asks :func:`plan_step` what to write, lets the
adapters write it, and asks :func:`settle` what the result means for the
record (the system's ``status.containment``, Events, the incident's actions
and timeline).  Everything that decides lives here, pure and tested on its own
(``tests/domain/test_transitions.py``); the engine only carries it out.

The rules, in the order they apply:

* **Adoption** — a target marked ``airlock.dev/contained-by`` this system with a
  saved state, while the status knows of no containment (lost status: a GitOps
  re-create, a restored backup, a crash before the status write), is contained
  by us: adopt it instead of saving the contained state as the "original".
* **Saved state first, never overwritten** — the base is what the status saved,
  else what the target saved; :func:`airlock.domain.containment.save` only adds.
* **Reverts** — an applied action whose effect is gone (someone scaled it back
  up, Argo CD self-healed the selector) is written again.
* **One report per distinct failure** — an action that keeps failing is retried
  every cycle, but reported (Event, incident record) once per distinct error.
* **Who contained** — ``airlock`` for a monitor's decision, the responder who
  asked for a manual shutdown; a later control annotation by someone else never
  takes that credit.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airlock.api.aisystem import Containment
from airlock.api.common import Action, FailureMode, Severity
from airlock.api.incident import ActionRecord
from airlock.domain import containment

ADOPTED_REASON = "adopted from the target's airlock.dev/saved-state"


@dataclass(frozen=True)
class Intent:
    """What must be contained now, and on whose authority."""

    system: str
    desired: tuple[Action, ...]
    reason: str  # the decision's reason
    severity: Severity | None = None  # the severity that contains (the decision's)
    failure_mode: FailureMode | None = None
    monitors_contain: bool = False  # the monitors' decision contains (else only a manual shutdown does)
    manual: bool = False  # held by an authorized airlock.dev/shutdown
    manual_request: str | None = None  # that annotation's value
    requester: str | None = None  # who asked for the manual shutdown (the identity bound to the value)
    fallback_selector: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Step:
    """What to write to the target now."""

    current: Containment | None  # the containment in force, after adoption
    adopted: bool
    applied: tuple[Action, ...]  # in effect before this step
    new: tuple[Action, ...]  # wanted and not yet applied
    undone: tuple[Action, ...]  # applied, but their effect is gone
    saved: dict[str, Any]  # the saved state including what ``new`` changes

    @property
    def writes(self) -> list[Action]:
        return [*self.new, *self.undone]

    @property
    def idle(self) -> bool:
        return not self.new and not self.undone

    @property
    def active(self) -> bool:
        return self.current is not None and self.current.active


def plan_step(
    intent: Intent,
    current: Containment | None,
    observed: containment.Observed,
    marker: tuple[str | None, dict[str, Any] | None],
    now: datetime.datetime,
) -> Step:
    """Adopt what the target records, then diff what is wanted against what is in effect."""
    owner, saved_on_target = marker
    active = current is not None and current.active
    adopted = False
    if not active and owner == intent.system and saved_on_target:
        current = Containment(
            active=True,
            actions=actions_from_saved(saved_on_target),
            since=now,
            by="airlock",
            reason=ADOPTED_REASON,
            saved=saved_on_target,
        )
        active = adopted = True
    base = (current.saved if current is not None and current.saved else None) or saved_on_target or {}
    applied = tuple(current.actions) if current is not None and active else ()
    new = tuple(a for a in intent.desired if a not in applied)
    undone = tuple(containment.reverted(list(applied), observed, dict(intent.fallback_selector or {}) or None))
    return Step(
        current=current,
        adopted=adopted,
        applied=applied,
        new=new,
        undone=undone,
        # Re-applied actions too: save never overwrites, but adds what appeared meanwhile (a route's new backend).
        saved=containment.save([*new, *undone], observed, base),
    )


def actions_from_saved(saved: Mapping[str, Any]) -> list[Action]:
    """Which actions a saved state implies (to adopt a containment after status loss)."""
    actions: list[Action] = []
    if "selector" in saved or "route" in saved:
        actions.append(Action.REROUTE)
    if "isolate" in saved:
        actions.append(Action.ISOLATE)
    if "paused" in saved or "updateStrategy" in saved:
        actions.append(Action.PAUSE_ROLLOUT)
    if "replicas" in saved or "stop" in saved:  # stop: an InferenceService's serving.kserve.io/stop
        actions.append(Action.SCALE_TO_ZERO)
    return actions


def idle(intent: Intent, step: Step) -> Containment | None:
    """Nothing to write: the containment with its manual flags brought up to date (or as it was)."""
    current = step.current
    if current is None or not current.active:
        return current
    if intent.manual == current.manual and not (intent.manual and current.manual_request != intent.manual_request):
        return current
    updated = current.model_copy(deep=True)
    updated.manual = intent.manual
    updated.manual_request = intent.manual_request if intent.manual else None
    if intent.manual and intent.requester:
        updated.by = intent.requester
    return updated


def found_applied(step: Step, target: str, now: datetime.datetime) -> tuple[list[ActionRecord], str]:
    """Records for a containment in effect on the target but not on the incident (a crash between the two).

    When exactly it took effect is unknown, so no time to contain is claimed.
    """
    records = [ActionRecord(action=a, at=now, result="found applied") for a in step.applied]
    return records, f"{', '.join(a.value for a in step.applied)} found in effect on {target}"


@dataclass(frozen=True)
class Settled:
    """What one step's writes mean for the record."""

    containment: Containment
    by: str | None
    applied_now: tuple[Action, ...]  # written successfully in this step
    fresh_failures: Mapping[Action, str]  # failures not reported before
    newly: bool  # something was contained that was not before (first containment or a new action)
    records: tuple[ActionRecord, ...] = ()  # for the incident's actions
    note: tuple[str, str] | None = None  # (timeline type, message) for the incident
    events: tuple[tuple[str, str], ...] = field(default=())  # (reason, message), all Warnings


def settle(
    intent: Intent,
    step: Step,
    *,
    applied: Sequence[Action],
    failed: Mapping[Action, str],
    accepted: datetime.datetime,
    target: str,
) -> Settled:
    """The containment after ``step``'s writes, and what to report about them (once each)."""
    current = step.current
    active = step.active
    by: str | None = "airlock"
    if intent.manual:
        by = intent.requester
        if current is not None and active and current.manual and current.by:
            by = current.by  # whoever authorized the shutdown, not whoever annotated last
    reason = (
        f"manual shutdown by {by}: {intent.manual_request}"
        if intent.manual and not intent.monitors_contain
        else intent.reason
    )
    first = not active
    known = set(current.failed) if current is not None and active else set()
    fresh = {a: why for a, why in failed.items() if f"{a.value}: {why}" not in known}
    kept = [a for a in [*step.applied, *applied] if a not in failed] or list(applied)
    result = Containment(
        active=True,
        actions=list(dict.fromkeys(kept)),
        since=current.since if current is not None and active and current.since else accepted,
        by=by,
        reason=reason if first or step.new else (current.reason if current is not None else reason),
        severity=Severity.SEV1 if intent.manual else intent.severity,
        manual=intent.manual,
        manual_request=intent.manual_request if intent.manual else None,
        saved=step.saved,
        failed=[f"{a.value}: {why}" for a, why in failed.items()],
        # A re-applied revert keeps the release approvals given so far; a new action (a worse severity) does not.
        release_approvals=list(current.release_approvals) if current is not None and active and not step.new else [],
    )
    events: list[tuple[str, str]] = []
    if step.undone:
        events.append(
            (
                "ContainmentReverted",
                f"{', '.join(a.value for a in step.undone)} had been undone on {target}; re-applied",
            )
        )
    if fresh:
        events.append(("ActionFailed", "; ".join(f"{a.value}: {why}" for a, why in fresh.items())))
    newly = bool(applied) and (first or bool(step.new))
    if newly:
        events.append(("Contained", f"{', '.join(a.value for a in applied)} applied to {target}: {reason}"))
    records: list[ActionRecord] = []
    for action in step.writes:
        if action in failed and action not in fresh:
            continue  # this failure is already on the record
        if action in failed:
            outcome = f"failed: {failed[action]}"
        else:
            outcome = "re-applied" if action in step.undone else "applied"
        records.append(ActionRecord(action=action, at=accepted, result=outcome))
    note = None
    if applied:
        kind = "ContainmentReverted" if step.undone and not step.new else "Contained"
        note = (kind, f"{', '.join(a.value for a in applied)} on {target}")
    return Settled(
        containment=result,
        by=by,
        applied_now=tuple(applied),
        fresh_failures=fresh,
        newly=newly,
        records=tuple(records),
        note=note,
        events=tuple(events),
    )
