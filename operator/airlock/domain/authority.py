"""The authority protocol (SPEC §4): who may shut down, release, drill, acknowledge, approve.

One pure function decides for every path — the admission webhook, the CEL
policy's test corpus and the operator's own re-check — so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from airlock.api.common import Verb
from airlock.api.matrix import Responder, SubjectKind


@dataclass(frozen=True)
class Caller:
    """An authenticated identity as the API server reports it (``request.userInfo``)."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    responder: str | None = None


def holders(responders: Iterable[Responder], verb: Verb) -> list[str]:
    """Human list of who may do ``verb``, for refusals and the runbook."""
    out: list[str] = []
    for responder in responders:
        if verb not in responder.may:
            continue
        for subject in responder.subjects:
            if subject.kind is SubjectKind.GROUP:
                out.append(f"group {subject.name}")
            elif subject.kind is SubjectKind.SERVICE_ACCOUNT:
                out.append(f"serviceaccount {subject.namespace}/{subject.name}")
            else:
                out.append(f"user {subject.name}")
    return out


def authorize(caller: Caller | None, verb: Verb, responders: Sequence[Responder]) -> Verdict:
    """Allow ``caller`` to ``verb`` only if a responder that ``may`` do it lists them."""
    if caller is None or not caller.username:
        return Verdict(False, f"{verb.value}: the request carries no identity (airlock.dev/requested-by missing)")
    for responder in responders:
        if verb not in responder.may:
            continue
        for subject in responder.subjects:
            if subject.kind is SubjectKind.GROUP:
                if subject.name in caller.groups:
                    return Verdict(
                        True, f"{caller.username} is in group {subject.name} ({responder.name})", responder.name
                    )
            elif subject.username() == caller.username:
                return Verdict(True, f"{caller.username} is a {responder.name} responder", responder.name)
    who = ", ".join(holders(responders, verb)) or "nobody (no responder has this verb)"
    return Verdict(False, f"{caller.username} may not {verb.value}; allowed: {who}")
