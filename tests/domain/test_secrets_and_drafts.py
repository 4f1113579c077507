"""Which channel Secrets the operator may read, and the names of immutable drafts (pure)."""

from __future__ import annotations

from typing import Any

from airlock.api.notifications import Channel
from airlock.domain import drafts, secrets


def channel(name: str, secret: str | None, type_: str = "webhook") -> Channel:
    body: dict[str, Any] = {"name": name, "type": type_}
    if secret is not None:
        body["secretRef"] = {"name": secret}
    else:
        body.update(type="email", email={"host": "smtp", "from": "a@b.c", "to": ["x@y.z"]})
    return Channel.model_validate(body)


def test_channels_naming_other_secrets_are_refused_with_the_field() -> None:
    system = [channel("ops", "airlock-notify"), channel("pager", "pagerduty", "pagerduty"), channel("mail", None)]
    policy = [channel("chat", "slack-hook", "slack"), channel("pager", "airlock-notify", "pagerduty")]
    found = secrets.refusals(system, policy, ["airlock-notify"], policy="llm-chatbot")
    assert [(r.channel, r.field, r.secret) for r in found] == [
        ("chat", "ContainmentPolicy llm-chatbot spec.notifications.channels[0].secretRef.name", "slack-hook"),
        # The system's pager replaces the policy's (which would have been fine): the system's is what counts.
        ("pager", "spec.notifications.channels[1].secretRef.name", "pagerduty"),
    ]
    assert found[1].message(["airlock-notify", "airlock-slack"]) == (
        "spec.notifications.channels[1].secretRef.name: Secret 'pagerduty' (channel pager) is not one airlock "
        "may read; allowed: airlock-notify, airlock-slack (airlock run --notification-secret, chart value "
        "notificationSecrets)"
    )
    assert secrets.refusals(system, policy, ["airlock-notify", "pagerduty", "slack-hook"]) == []


def test_draft_names_follow_the_content() -> None:
    first = drafts.name("chatbot-20261126-133012", drafts.NOTICES, {"internal.md": "a", "users.md": "b"})
    assert first.startswith("chatbot-20261126-133012-notices-")
    assert len(first) == len("chatbot-20261126-133012-notices-") + drafts.HASH_LENGTH
    # The same content, in any order, has the same name: a retry after a crash finds its draft.
    assert drafts.name("chatbot-20261126-133012", drafts.NOTICES, {"users.md": "b", "internal.md": "a"}) == first
    assert drafts.name("chatbot-20261126-133012", drafts.NOTICES, {"internal.md": "a", "users.md": "c"}) != first
    long = drafts.name("a" * 253, drafts.POSTMORTEM, {"postmortem.md": "x"})
    assert len(long) == 253
    assert "-postmortem-" in long
