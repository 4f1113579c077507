"""The authority protocol: who may shut down, release, drill, acknowledge and approve."""

from __future__ import annotations

import pytest

from airlock.api.common import Verb
from airlock.api.matrix import Responder
from airlock.domain.authority import Caller, authorize, holders

RESPONDERS = [
    Responder.model_validate(body)
    for body in [
        {
            "name": "ml-oncall",
            "subjects": [
                {"kind": "Group", "name": "oncall-ml"},
                {"kind": "User", "name": "alice@example.com"},
                {"kind": "ServiceAccount", "namespace": "ops", "name": "pager-bot"},
            ],
            "may": ["acknowledge", "approve", "shutdown", "release", "drill"],
        },
        {
            "name": "support",
            "subjects": [{"kind": "User", "name": "bob@example.com"}],
            "may": ["acknowledge"],
        },
        {
            "name": "security",
            "subjects": [{"kind": "Group", "name": "secops"}],
            "may": ["shutdown"],
        },
    ]
]

ONCALL_HOLDERS = "group oncall-ml, user alice@example.com, serviceaccount ops/pager-bot"


@pytest.mark.parametrize(
    ("username", "groups", "verb", "responder", "reason"),
    [
        ("alice@example.com", (), Verb.SHUTDOWN, "ml-oncall", "alice@example.com is a ml-oncall responder"),
        ("alice@example.com", (), Verb.RELEASE, "ml-oncall", "alice@example.com is a ml-oncall responder"),
        ("carol@example.com", ("dev", "oncall-ml"), Verb.DRILL, "ml-oncall", "carol@example.com is in group oncall-ml"),
        (
            "system:serviceaccount:ops:pager-bot",
            ("system:serviceaccounts", "system:serviceaccounts:ops"),
            Verb.ACKNOWLEDGE,
            "ml-oncall",
            "system:serviceaccount:ops:pager-bot is a ml-oncall responder",
        ),
        ("bob@example.com", (), Verb.ACKNOWLEDGE, "support", "bob@example.com is a support responder"),
        ("dave@example.com", ("secops",), Verb.SHUTDOWN, "security", "dave@example.com is in group secops"),
    ],
)
def test_allowed(username: str, groups: tuple[str, ...], verb: Verb, responder: str, reason: str) -> None:
    verdict = authorize(Caller(username, groups), verb, RESPONDERS)
    assert verdict.allowed is True
    assert verdict.responder == responder
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("username", "groups", "verb", "allowed"),
    [
        # Verb not granted to the caller's responder.
        ("bob@example.com", (), Verb.APPROVE, ONCALL_HOLDERS),
        ("dave@example.com", ("secops",), Verb.RELEASE, ONCALL_HOLDERS),
        # Someone listed nowhere.
        ("mallory@example.com", ("dev",), Verb.SHUTDOWN, f"{ONCALL_HOLDERS}, group secops"),
        # A ServiceAccount of the same name in another namespace.
        ("system:serviceaccount:default:pager-bot", (), Verb.SHUTDOWN, f"{ONCALL_HOLDERS}, group secops"),
        # A user who merely has the ServiceAccount's short name.
        ("pager-bot", (), Verb.SHUTDOWN, f"{ONCALL_HOLDERS}, group secops"),
        # A group named like a user is not that user; a username like a group is not that group.
        ("mallory@example.com", ("alice@example.com",), Verb.RELEASE, ONCALL_HOLDERS),
        ("oncall-ml", (), Verb.RELEASE, ONCALL_HOLDERS),
        # Names are compared exactly.
        ("Alice@example.com", (), Verb.RELEASE, ONCALL_HOLDERS),
    ],
)
def test_denied_with_who_may(username: str, groups: tuple[str, ...], verb: Verb, allowed: str) -> None:
    verdict = authorize(Caller(username, groups), verb, RESPONDERS)
    assert verdict.allowed is False
    assert verdict.responder is None
    assert verdict.reason == f"{username} may not {verb.value}; allowed: {allowed}"


@pytest.mark.parametrize("caller", [None, Caller(""), Caller("", ("oncall-ml",))])
def test_missing_identity_is_denied(caller: Caller | None) -> None:
    verdict = authorize(caller, Verb.SHUTDOWN, RESPONDERS)
    assert verdict.allowed is False
    assert "no identity" in verdict.reason
    assert verdict.reason.startswith("shutdown: ")


def test_nobody_may_when_no_responder_has_the_verb() -> None:
    verdict = authorize(Caller("alice@example.com"), Verb.APPROVE, RESPONDERS[1:])
    assert verdict.allowed is False
    assert verdict.reason.endswith("allowed: nobody (no responder has this verb)")


def test_no_responders_at_all_denies_everyone() -> None:
    assert authorize(Caller("alice@example.com", ("system:masters",)), Verb.SHUTDOWN, []).allowed is False


def test_holders_lists_every_subject_with_the_verb() -> None:
    assert holders(RESPONDERS, Verb.SHUTDOWN) == [
        "group oncall-ml",
        "user alice@example.com",
        "serviceaccount ops/pager-bot",
        "group secops",
    ]
    assert holders(RESPONDERS, Verb.ACKNOWLEDGE)[-1] == "user bob@example.com"
    assert holders(RESPONDERS[2:], Verb.RELEASE) == []
