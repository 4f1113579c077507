"""Control requests bound to who made them (airlock.domain.requests, SPEC §7)."""

from __future__ import annotations

from airlock.api import annotations as keys
from airlock.api.aisystem import Containment
from airlock.api.common import Action, ControlRequest, RequestVerdict, Verb
from airlock.api.matrix import Responder
from airlock.domain import authority, requests
from tests.domain.builders import at

ALICE = authority.Caller("alice@example.com", ("oncall-ml",))  # shutdown and release
RELEASER = authority.Caller("rita@example.com")  # release only
MALLORY = authority.Caller("mallory@example.com")  # nobody
RESPONDERS = [
    Responder.model_validate(
        {"name": "ml-oncall", "subjects": [{"kind": "Group", "name": "oncall-ml"}], "may": ["shutdown", "release"]}
    ),
    Responder.model_validate(
        {"name": "leads", "subjects": [{"kind": "User", "name": "rita@example.com"}], "may": ["release"]}
    ),
]


def held(value: str = "PII in answers", by: str = "alice@example.com") -> Containment:
    return Containment(
        active=True,
        actions=[Action.REROUTE, Action.SCALE_TO_ZERO],
        since=at(0),
        by=by,
        manual=True,
        manual_request=value,
    )


def decide(
    annotations: dict[str, str],
    caller: authority.Caller | None,
    hold: Containment | None = None,
    previous: list[ControlRequest] | None = None,
    now: float = 10,
) -> requests.Shutdown:
    return requests.shutdown(
        annotations=annotations,
        held=hold,
        requests=previous or [],
        caller=caller,
        responders=RESPONDERS,
        now=at(now),
    )


SHUT = keys.SHUTDOWN


def test_an_authorized_value_holds_and_is_bound_to_who_set_it() -> None:
    result = decide({SHUT: "PII in answers"}, ALICE)
    assert result.manual
    assert result.value == "PII in answers"
    assert result.requester == ALICE.username
    assert result.judged is not None
    assert result.judged.verdict is RequestVerdict.ACCEPTED
    assert list(result.requests) == [result.judged]


def test_a_refused_value_is_dead_whoever_annotates_later() -> None:
    first = decide({SHUT: "stale"}, MALLORY)
    assert not first.manual
    assert first.judged is not None
    assert first.judged.verdict is RequestVerdict.REFUSED
    assert "mallory@example.com may not shutdown" in first.judged.reason
    # Alice's drill stamps requested-by with her name; the value is still Mallory's.
    later = decide({SHUT: "stale"}, ALICE, previous=list(first.requests), now=20)
    assert not later.manual
    assert later.judged is None  # judged once: nothing new to report
    assert list(later.requests) == list(first.requests)


def test_a_value_that_left_is_forgotten_and_judged_anew_when_set_again() -> None:
    refused = decide({SHUT: "x"}, MALLORY)
    gone = decide({}, MALLORY, previous=list(refused.requests))
    assert list(gone.requests) == []
    again = decide({SHUT: "x"}, ALICE, previous=list(gone.requests), now=30)
    assert again.manual
    assert again.requester == ALICE.username


def test_the_held_value_keeps_holding_whoever_is_in_requested_by() -> None:
    result = decide({SHUT: "PII in answers"}, MALLORY, hold=held())
    assert result.manual
    assert result.requester == "alice@example.com"
    assert result.judged is None


def test_removal_by_a_stranger_is_refused_and_the_system_stays_held() -> None:
    result = decide({}, MALLORY, hold=held())
    assert result.manual
    assert result.value == "PII in answers"
    assert result.requester == "alice@example.com"
    assert result.lift is None
    assert result.judged is not None
    assert result.judged.value is None
    assert result.judged.verdict is RequestVerdict.REFUSED
    assert "may not release" in result.judged.reason  # shutdown and release were both tried
    again = decide({}, ALICE, hold=held(), previous=list(result.requests), now=20)
    assert again.manual  # the refused removal stays refused: lifting now takes a release
    assert again.judged is None


def test_removal_by_someone_who_may_release_lifts() -> None:
    result = decide({}, RELEASER, hold=held())
    assert not result.manual
    assert result.lift is not None
    assert result.lift.by == RELEASER.username
    assert result.lift.verdict is RequestVerdict.ACCEPTED


def test_a_change_by_a_stranger_keeps_the_old_reason() -> None:
    result = decide({SHUT: "nothing to see"}, MALLORY, hold=held())
    assert result.manual
    assert result.value == "PII in answers"
    assert result.requester == "alice@example.com"
    assert result.judged is not None
    assert result.judged.verdict is RequestVerdict.REFUSED


def test_a_change_by_a_responder_takes_over_the_hold() -> None:
    bob = authority.Caller("bob@example.com", ("oncall-ml",))
    result = decide({SHUT: "still leaking"}, bob, hold=held())
    assert result.manual
    assert result.value == "still leaking"
    assert result.requester == "bob@example.com"


def test_no_annotation_and_no_hold_is_nothing() -> None:
    result = decide({}, ALICE)
    assert not result.manual
    assert result.judged is None
    assert result.lift is None


def test_a_removal_record_is_dropped_once_the_annotation_is_back() -> None:
    refused = decide({}, MALLORY, hold=held())
    back = decide({SHUT: "PII in answers"}, ALICE, hold=held(), previous=list(refused.requests))
    assert list(back.requests) == []


def test_judge_tries_each_verb_and_keeps_every_refusal() -> None:
    judged = requests.judge(
        annotation=SHUT,
        value=None,
        caller=MALLORY,
        verbs=[Verb.SHUTDOWN, Verb.RELEASE],
        responders=RESPONDERS,
        now=at(0),
    )
    assert judged.reason.count("mallory@example.com may not") == 2
    assert judged.by == MALLORY.username
