"""Control requests bound to who made them (SPEC §7): a refused value is dead.

A control annotation (``airlock.dev/shutdown`` on an AISystem; acknowledge,
approve, postmortem, harm, report-submitted on an AIIncident) is judged once per
value, with the identity in ``airlock.dev/requested-by`` at the moment airlock
first sees that value.  The judgement is kept in the object's status
(``status.requests``) for as long as the value stays, so:

* a refused value is never acted on later, whoever sets ``requested-by``
  afterwards (say, an authorized responder's drill on the same object);
* a restart neither re-judges nor re-reports it (one Event per value);
* removing a value is a request too (lifting a shutdown is acting), judged the
  same way and recorded with ``value`` absent.

What this cannot know: without admission (no webhook, no ValidatingAdmissionPolicy)
``requested-by`` is whatever the writer put there — see the README's authority
section.  Pure: the engine reads the annotations and writes the status.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airlock.api import annotations as keys
from airlock.api.aisystem import Containment
from airlock.api.common import ControlRequest, RequestVerdict, Verb
from airlock.api.matrix import Responder
from airlock.domain import authority


def find(requests: Iterable[ControlRequest], annotation: str, value: str | None) -> ControlRequest | None:
    """The judgement of ``annotation`` = ``value`` (None: its removal), if there is one."""
    return next((r for r in requests if r.annotation == annotation and r.value == value), None)


def judge(
    *,
    annotation: str,
    value: str | None,
    caller: authority.Caller | None,
    verbs: Sequence[Verb],
    responders: Sequence[Responder],
    now: datetime.datetime,
) -> ControlRequest:
    """Judge one request: allowed if the caller holds any of ``verbs`` (lifting: shutdown or release)."""
    refusals: list[str] = []
    for verb in verbs:
        verdict = authority.authorize(caller, verb, responders)
        if verdict.allowed:
            return ControlRequest(
                annotation=annotation,
                value=value,
                by=caller.username if caller else None,
                groups=list(caller.groups) if caller else [],
                verdict=RequestVerdict.ACCEPTED,
                reason=verdict.reason,
                at=now,
            )
        refusals.append(verdict.reason)
    return ControlRequest(
        annotation=annotation,
        value=value,
        by=caller.username if caller else None,
        groups=list(caller.groups) if caller else [],
        verdict=RequestVerdict.REFUSED,
        reason="; ".join(refusals),
        at=now,
    )


def bound(
    requests: Sequence[ControlRequest],
    *,
    annotation: str,
    value: str | None,
    caller: authority.Caller | None,
    verbs: Sequence[Verb],
    responders: Sequence[Responder],
    now: datetime.datetime,
) -> tuple[ControlRequest, bool]:
    """The standing judgement of this value, or a new one with the current caller; and whether it is new."""
    found = find(requests, annotation, value)
    if found is not None:
        return found, False
    return judge(annotation=annotation, value=value, caller=caller, verbs=verbs, responders=responders, now=now), True


def keep(
    requests: Sequence[ControlRequest], annotations: Mapping[str, str], watched: Iterable[str]
) -> list[ControlRequest]:
    """The judgements still standing for the ``watched`` annotations (others are left as they are).

    One per value on the object, and a removal's while the key stays absent.  A value that
    left the object is forgotten: set again later, it is a new request, judged anew.
    """
    watched = set(watched)
    kept: list[ControlRequest] = []
    for request in requests:
        if request.annotation in watched:
            present = annotations.get(request.annotation)
            if not (present is None if request.value is None else present == request.value):
                continue
        if all((k.annotation, k.value) != (request.annotation, request.value) for k in kept):
            kept.append(request)
    return kept


def add(
    requests: Sequence[ControlRequest], new: ControlRequest, annotations: Mapping[str, str], watched: Iterable[str]
) -> list[ControlRequest]:
    """``requests`` with a new judgement, the ones no longer standing dropped."""
    return keep([*requests, new], annotations, watched)


@dataclass(frozen=True)
class Shutdown:
    """What ``airlock.dev/shutdown`` means now."""

    manual: bool  # held shut down by an authorized value
    value: str | None = None  # the value in force (the held one, or the one just accepted)
    requester: str | None = None  # who asked for the value in force
    lift: ControlRequest | None = None  # an accepted removal or change that ends a hold
    judged: ControlRequest | None = None  # a judgement made just now (report it if refused)
    requests: tuple[ControlRequest, ...] = ()  # status.requests after this step


def shutdown(
    *,
    annotations: Mapping[str, str],
    held: Containment | None,
    requests: Sequence[ControlRequest],
    caller: authority.Caller | None,
    responders: Sequence[Responder],
    now: datetime.datetime,
) -> Shutdown:
    """Judge ``airlock.dev/shutdown`` (SPEC §3, §7): setting or changing it needs ``shutdown``;
    removing or changing the value that holds the system is lifting, which needs ``shutdown``
    or ``release``.  A refused change or removal leaves the system held by the value in force.
    """
    key = keys.SHUTDOWN
    value = annotations.get(key)
    holding = held is not None and held.active and held.manual
    kept = keep(requests, annotations, [key])
    if holding and held is not None and value is not None and value == held.manual_request:
        # Authorized when it was asked; a later annotation by someone else does not undo that.
        return Shutdown(manual=True, value=value, requester=held.by, requests=tuple(kept))
    if value is not None:
        binding, new = bound(
            kept, annotation=key, value=value, caller=caller, verbs=[Verb.SHUTDOWN], responders=responders, now=now
        )
        kept = add(kept, binding, annotations, [key])
        judged = binding if new else None
        if binding.verdict is RequestVerdict.ACCEPTED:
            return Shutdown(manual=True, value=value, requester=binding.by, judged=judged, requests=tuple(kept))
        if holding and held is not None:
            return Shutdown(
                manual=True, value=held.manual_request, requester=held.by, judged=judged, requests=tuple(kept)
            )
        return Shutdown(manual=False, judged=judged, requests=tuple(kept))
    if not holding or held is None:
        return Shutdown(manual=False, requests=tuple(kept))
    binding, new = bound(
        kept,
        annotation=key,
        value=None,
        caller=caller,
        verbs=[Verb.SHUTDOWN, Verb.RELEASE],
        responders=responders,
        now=now,
    )
    kept = add(kept, binding, annotations, [key])
    judged = binding if new else None
    if binding.verdict is RequestVerdict.ACCEPTED:
        return Shutdown(manual=False, lift=binding, judged=judged, requests=tuple(kept))
    return Shutdown(manual=True, value=held.manual_request, requester=held.by, judged=judged, requests=tuple(kept))
