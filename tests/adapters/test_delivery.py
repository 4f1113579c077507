"""Notice delivery over real HTTP (the sandbox receiver) and real SMTP (aiosmtpd).

What is checked is what an endpoint sees — bodies, headers, signatures, Message-IDs —
and how each failure is classified for the engine's retry logic.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.message
import email.policy
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp.web
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from airlock.adapters import delivery
from airlock.api.notifications import Channel
from airlock.sandbox.receiver import Receiver, verify_webhook
from tests.fixtures.tools import FreezesAfterFirstCheck, Leads

NOW = 1_700_000_000.0
HMAC_KEY = "hmac-key-0123456789abcdef"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SLACK_TOKEN = "T000/B000/XXXXslacktokenXXXX"
SMTP_PASSWORD = "s3cret-smtp-passw0rd"

MESSAGE = delivery.Message(
    key="ml-prod/inc-7f3a/internal/opened",
    namespace="ml-prod",
    incident="inc-7f3a",
    system="chatbot",
    audience="internal",
    event="opened",
    severity="SEV2",
    subject="SEV2 incident on chatbot: PII leak",
    body="PII detections exceeded the threshold.\nContainment: rollback to v1.",
)


def clock() -> float:
    return NOW


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def channel(type_: str, **fields: Any) -> Channel:
    return Channel.model_validate({"name": f"{type_}-ops", "type": type_, "secretRef": {"name": "notify"}, **fields})


def message(**changes: Any) -> delivery.Message:
    return replace(MESSAGE, **changes)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def only(records: list[Any]) -> Any:
    assert len(records) == 1, records
    return records[0]


# -- webhook ----------------------------------------------------------------------------


async def test_webhook_posts_every_message_field_signed(receiver: Receiver) -> None:
    hook = channel("webhook", url=f"{receiver.url}/webhook")

    receipt = await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE, clock=clock)

    assert receipt == "HTTP 202"
    record = only(receiver.received("/webhook"))
    assert record.method == "POST"
    assert record.json == {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "Notice",
        "key": "ml-prod/inc-7f3a/internal/opened",
        "namespace": "ml-prod",
        "incident": "inc-7f3a",
        "system": "chatbot",
        "audience": "internal",
        "event": "opened",
        "severity": "SEV2",
        "subject": "SEV2 incident on chatbot: PII leak",
        "body": "PII detections exceeded the threshold.\nContainment: rollback to v1.",
        "drill": False,
    }
    assert record.header("Content-Type") == "application/json"
    assert record.header("Idempotency-Key") == MESSAGE.key
    assert record.header("X-Airlock-Timestamp") == "1700000000"
    expected = hmac.new(HMAC_KEY.encode(), b"1700000000." + record.body, hashlib.sha256).hexdigest()
    assert record.header("X-Airlock-Signature") == f"sha256={expected}"


async def test_webhook_signature_verifies_with_the_key_only(receiver: Receiver) -> None:
    hook = channel("webhook", url=f"{receiver.url}/webhook")
    await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, message(drill=True), clock=clock)
    record = only(receiver.received("/webhook"))

    assert record.json["drill"] is True
    assert verify_webhook(record, HMAC_KEY)
    assert not verify_webhook(record, HMAC_KEY + "x")
    assert verify_webhook(record, HMAC_KEY, tolerance=300, now=NOW + 60)
    assert not verify_webhook(record, HMAC_KEY, tolerance=300, now=NOW + 600)
    tampered = replace(record, body=record.body.replace(b"SEV2", b"SEV4"))
    assert not verify_webhook(tampered, HMAC_KEY)


async def test_webhook_url_comes_from_the_secret_without_channel_url(receiver: Receiver) -> None:
    hook = channel("webhook")
    await delivery.deliver(hook, {"url": f"{receiver.url}/webhook", "hmacKey": HMAC_KEY}, MESSAGE, clock=clock)
    assert verify_webhook(only(receiver.received("/webhook")), HMAC_KEY)


async def test_a_receiver_checking_signatures_accepts_the_right_key_and_rejects_a_wrong_one() -> None:
    with Receiver(hmac_key=HMAC_KEY) as receiver:
        hook = channel("webhook", url=f"{receiver.url}/webhook")
        assert await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE) == "HTTP 202"

        with pytest.raises(delivery.DeliveryError) as info:
            await delivery.deliver(hook, {"hmacKey": "not-the-key"}, MESSAGE)

        assert not info.value.retryable
        assert "HTTP 401" in str(info.value)
        assert [r.verified for r in receiver.received("/webhook")] == [True, False]
        assert receiver.distinct_keys("/webhook") == [MESSAGE.key]


@pytest.mark.parametrize(
    ("secret", "missing"),
    [
        pytest.param({"url": "http://127.0.0.1:9/webhook"}, "hmacKey", id="no-hmacKey"),
        pytest.param({"url": "http://127.0.0.1:9/webhook", "hmacKey": ""}, "hmacKey", id="empty-hmacKey"),
        pytest.param({"hmacKey": HMAC_KEY}, "url", id="no-url"),
    ],
)
async def test_webhook_missing_secret_key_is_final_and_named(secret: dict[str, str], missing: str) -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("webhook"), secret, MESSAGE)

    assert not info.value.retryable
    assert f"Secret 'notify' has no key '{missing}'" in str(info.value)
    assert "webhook channel 'webhook-ops'" in str(info.value)


async def test_a_secret_url_that_is_not_http_is_final() -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("slack"), {"url": "ftp://example.com/x"}, MESSAGE)
    assert not info.value.retryable
    assert "'url' is not an http(s) URL" in str(info.value)


# -- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (500, True), (502, True), (429, True), (408, True), (400, False), (403, False), (404, False)],
)
async def test_http_status_classification(receiver: Receiver, status: int, retryable: bool) -> None:
    receiver.fail_with(status)
    hook = channel("webhook", url=f"{receiver.url}/webhook")

    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE)

    assert info.value.retryable is retryable
    assert f"HTTP {status}" in str(info.value)
    assert len(receiver.received("/webhook")) == 1
    assert receiver.distinct_keys("/webhook") == []


async def test_a_retry_after_a_failure_is_one_delivery(receiver: Receiver) -> None:
    hook = channel("webhook", url=f"{receiver.url}/webhook")
    receiver.fail_with(503)
    with pytest.raises(delivery.DeliveryError):
        await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE)
    receiver.fail_with(None)

    assert await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE) == "HTTP 202"
    assert await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE) == "HTTP 202"

    records = receiver.received("/webhook")
    assert [r.status for r in records] == [503, 202, 202]
    assert {r.header("Idempotency-Key") for r in records} == {MESSAGE.key}
    assert receiver.distinct_keys("/webhook") == [MESSAGE.key]


async def test_connection_refused_is_retryable() -> None:
    hook = channel("webhook", url=f"http://127.0.0.1:{free_port()}/webhook")
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE)
    assert info.value.retryable
    assert "cannot connect" in str(info.value)


async def test_a_stopped_receiver_refuses_connections(receiver: Receiver) -> None:
    hook = channel("webhook", url=f"{receiver.url}/webhook")
    await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE)
    receiver.stop()
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE)
    assert info.value.retryable


async def test_a_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.delay_with(5.0)
    hook = channel("webhook", url=f"{receiver.url}/webhook")

    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE, timeout=0.2)

    assert info.value.retryable
    assert "no answer within 0.2s" in str(info.value)


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.fail_with(302)
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("slack"), {"url": f"{receiver.url}/slack"}, MESSAGE)
    assert not info.value.retryable
    assert len(receiver.received()) == 1


# -- secrets stay out of errors --------------------------------------------------------------


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """An endpoint that answers 400 quoting what it was sent, like some APIs do."""

    async def echo(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=400, text=f"invalid event: {await request.text()} at {request.path}")

    app = aiohttp.web.Application()
    app.router.add_post("/{tail:.*}", echo)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_secret_values_echoed_by_a_server_are_redacted(echo_url: str) -> None:
    pagerduty = channel("pagerduty", url=f"{echo_url}/v2/enqueue")
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, MESSAGE)
    assert not info.value.retryable
    assert "HTTP 400: invalid event" in str(info.value)
    assert ROUTING_KEY not in str(info.value)
    assert "***" in str(info.value)

    slack_url = f"{echo_url}/services/{SLACK_TOKEN}"
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("slack"), {"url": slack_url}, MESSAGE)
    assert "HTTP 400: invalid event" in str(info.value)
    assert SLACK_TOKEN.rsplit("/", 1)[-1] not in str(info.value)  # not even the path's last segment


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"http://127.0.0.1:{free_port()}/services/{SLACK_TOKEN}", id="refused"),
        pytest.param(f"http://[{SLACK_TOKEN}/services", id="invalid-url"),
    ],
)
async def test_a_secret_url_never_appears_in_errors(url: str) -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("slack"), {"url": url}, MESSAGE)
    assert SLACK_TOKEN not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# -- slack --------------------------------------------------------------------------------------


async def test_slack_posts_bold_subject_then_body(receiver: Receiver) -> None:
    slack = channel("slack")
    notice = message(subject="Users <all> & staff", body="Rolled back to v1 <now>.")

    assert await delivery.deliver(slack, {"url": f"{receiver.url}/slack"}, notice) == "HTTP 202"

    record = only(receiver.received("/slack"))
    assert record.json == {"text": "*Users &lt;all&gt; &amp; staff*\nRolled back to v1 &lt;now&gt;."}
    assert record.header("Idempotency-Key") == MESSAGE.key


async def test_slack_marks_a_drill(receiver: Receiver) -> None:
    await delivery.deliver(channel("slack"), {"url": f"{receiver.url}/slack"}, message(drill=True))
    assert only(receiver.received("/slack")).json == {"text": f"[DRILL] *{MESSAGE.subject}*\n{MESSAGE.body}"}


async def test_a_drill_is_marked_once_even_if_the_subject_is_marked_already(receiver: Receiver) -> None:
    notice = message(drill=True, subject=f"[DRILL] {MESSAGE.subject}")
    await delivery.deliver(channel("slack"), {"url": f"{receiver.url}/slack"}, notice)
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, notice)

    assert only(receiver.received("/slack")).json == {"text": f"[DRILL] *{MESSAGE.subject}*\n{MESSAGE.body}"}
    assert only(receiver.received("/pagerduty")).json["payload"]["summary"] == f"[DRILL] {MESSAGE.subject}"
    assert delivery.subject(notice) == delivery.subject(message(drill=True)) == f"[DRILL] {MESSAGE.subject}"
    assert delivery.subject(message(subject="[DRILL] not a drill")) == "[DRILL] not a drill"


async def test_slack_channel_url_overrides_the_secret(receiver: Receiver) -> None:
    slack = channel("slack", url=f"{receiver.url}/slack-override")
    await delivery.deliver(slack, {"url": f"{receiver.url}/slack"}, MESSAGE)
    assert receiver.received("/slack") == []
    assert len(receiver.received("/slack-override")) == 1


async def test_slack_without_url_is_final() -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(channel("slack"), {}, MESSAGE)
    assert not info.value.retryable
    assert "has no key 'url'" in str(info.value)


# -- pagerduty ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("opened", "trigger"),
        ("severity-SEV1", "trigger"),
        ("severity-SEV4", "trigger"),
        ("acknowledged", "acknowledge"),
        ("resolved", "resolve"),
        ("contained", None),
        ("postmortem", None),
    ],
)
def test_pagerduty_action(event: str, action: str | None) -> None:
    assert delivery.pagerduty_action(event) == action


async def test_pagerduty_trigger_event(receiver: Receiver) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")

    assert await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, MESSAGE) == "HTTP 202"

    assert only(receiver.received("/pagerduty")).json == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "airlock/ml-prod/inc-7f3a",
        "payload": {
            "summary": "SEV2 incident on chatbot: PII leak",
            "source": "ml-prod/chatbot",
            "severity": "error",
            "custom_details": {
                "namespace": "ml-prod",
                "incident": "inc-7f3a",
                "system": "chatbot",
                "severity": "SEV2",
                "event": "opened",
                "audience": "internal",
                "drill": False,
                "body": MESSAGE.body,
            },
        },
    }


async def test_pagerduty_lifecycle_shares_one_dedup_key(receiver: Receiver) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    for event in ("opened", "severity-SEV1", "acknowledged", "resolved"):
        await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, message(event=event, key=f"k/{event}"))

    bodies = [r.json for r in receiver.received("/pagerduty")]
    assert [b["event_action"] for b in bodies] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in bodies} == {"airlock/ml-prod/inc-7f3a"}
    assert "payload" not in bodies[2]
    assert "payload" not in bodies[3]
    assert receiver.distinct_keys("/pagerduty") == [
        "airlock/ml-prod/inc-7f3a#trigger",
        "airlock/ml-prod/inc-7f3a#acknowledge",
        "airlock/ml-prod/inc-7f3a#resolve",
    ]


@pytest.mark.parametrize(
    ("severity", "expected"), [("SEV1", "critical"), ("SEV2", "error"), ("SEV3", "warning"), ("SEV4", "info")]
)
async def test_pagerduty_severity(receiver: Receiver, severity: str, expected: str) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, message(severity=severity))
    assert only(receiver.received()).json["payload"]["severity"] == expected


async def test_pagerduty_summary_is_capped_and_marks_a_drill(receiver: Receiver) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, message(subject="x" * 5000, drill=True))
    summary = only(receiver.received()).json["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.startswith("[DRILL] xxx")


async def test_pagerduty_is_not_told_of_containment(receiver: Receiver) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(pagerduty, {"routingKey": ROUTING_KEY}, message(event="contained"))
    assert not info.value.retryable
    assert receiver.received() == []


async def test_pagerduty_without_routing_key_is_final(receiver: Receiver) -> None:
    pagerduty = channel("pagerduty", url=f"{receiver.url}/pagerduty")
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(pagerduty, {}, MESSAGE)
    assert not info.value.retryable
    assert "Secret 'notify' has no key 'routingKey'" in str(info.value)
    assert receiver.received() == []


# -- e-mail ---------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler that records mail and can refuse recipients or data."""

    rcpt_reply: str = "250 OK"
    data_reply: str = "250 OK"
    mails: list[tuple[Envelope, email.message.EmailMessage]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
            parsed = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(parsed, email.message.EmailMessage)
            self.mails.append((envelope, parsed))
        return self.data_reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"airlock" and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    port = free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def email_channel(port: int, *, starttls: bool = False) -> Channel:
    return Channel.model_validate(
        {
            "name": "mail-ops",
            "type": "email",
            "email": {
                "host": "127.0.0.1",
                "port": port,
                "from": "airlock@example.com",
                "to": ["oncall@example.com", "risk@example.com"],
                "starttls": starttls,
            },
        }
    )


def expected_message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@airlock.dev>"


async def test_email_is_sent_with_idempotency_headers(mailbox: Mailbox, smtp_port: int) -> None:
    receipt = await delivery.deliver(email_channel(smtp_port), {}, MESSAGE, clock=clock)

    assert receipt == f"SMTP 250 {expected_message_id(MESSAGE.key)}"
    envelope, mail = only(mailbox.mails)
    assert envelope.mail_from == "airlock@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "risk@example.com"]
    assert mail["From"] == "airlock@example.com"
    assert mail["To"] == "oncall@example.com, risk@example.com"
    assert mail["Subject"] == MESSAGE.subject
    assert mail["Message-ID"] == expected_message_id(MESSAGE.key)
    assert mail["X-Airlock-Idempotency-Key"] == MESSAGE.key
    assert mail["Date"].datetime == datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC)
    assert mail.get_content().replace("\r\n", "\n").rstrip("\n") == MESSAGE.body
    assert mailbox.logins == []


async def test_email_message_id_is_the_same_on_every_retry(mailbox: Mailbox, smtp_port: int) -> None:
    mail_channel = email_channel(smtp_port)
    await delivery.deliver(mail_channel, {}, MESSAGE)
    await delivery.deliver(mail_channel, {}, MESSAGE)
    await delivery.deliver(mail_channel, {}, message(key="ml-prod/inc-7f3a/internal/resolved", drill=True))

    ids = [mail["Message-ID"] for _, mail in mailbox.mails]
    assert ids[0] == ids[1] == expected_message_id(MESSAGE.key)
    assert ids[2] != ids[0]
    assert mailbox.mails[2][1]["Subject"] == f"[DRILL] {MESSAGE.subject}"


async def test_email_logs_in_with_the_secret_credentials(mailbox: Mailbox, smtp_port: int) -> None:
    await delivery.deliver(email_channel(smtp_port), {"username": "airlock", "password": SMTP_PASSWORD}, MESSAGE)
    assert mailbox.logins == [(b"airlock", SMTP_PASSWORD.encode())]
    assert len(mailbox.mails) == 1


async def test_email_wrong_password_is_final_and_not_quoted(mailbox: Mailbox, smtp_port: int) -> None:
    wrong = "wr0ng-" + SMTP_PASSWORD
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(email_channel(smtp_port), {"username": "airlock", "password": wrong}, MESSAGE)
    assert not info.value.retryable
    assert "SMTP 535" in str(info.value)
    assert wrong not in str(info.value)
    assert mailbox.mails == []


async def test_email_username_without_password_is_final(smtp_port: int) -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(email_channel(smtp_port), {"username": "airlock"}, MESSAGE)
    assert not info.value.retryable
    assert "has no key 'password'" in str(info.value)


@pytest.mark.parametrize(
    ("stage", "reply", "retryable"),
    [
        ("rcpt", "450 4.2.1 Mailbox busy", True),
        ("rcpt", "550 5.1.1 No such user", False),
        ("data", "451 4.3.0 Try again later", True),
        ("data", "554 5.7.1 Rejected", False),
    ],
)
async def test_smtp_reply_classification(
    mailbox: Mailbox, smtp_port: int, stage: str, reply: str, retryable: bool
) -> None:
    if stage == "rcpt":
        mailbox.rcpt_reply = reply
    else:
        mailbox.data_reply = reply
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(email_channel(smtp_port), {}, MESSAGE)
    assert info.value.retryable is retryable
    assert f"SMTP {reply[:3]}" in str(info.value)
    assert mailbox.mails == []


async def test_starttls_is_never_skipped(mailbox: Mailbox, smtp_port: int) -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(email_channel(smtp_port, starttls=True), {}, MESSAGE)
    assert not info.value.retryable
    assert "STARTTLS" in str(info.value)
    assert mailbox.mails == []


async def test_smtp_connection_refused_is_retryable() -> None:
    with pytest.raises(delivery.DeliveryError) as info:
        await delivery.deliver(email_channel(free_port()), {"username": "u", "password": SMTP_PASSWORD}, MESSAGE)
    assert info.value.retryable
    assert SMTP_PASSWORD not in str(info.value)


# -- the receiver's own contract ---------------------------------------------------------------


def test_receiver_records_any_path_and_lists_them_over_http(receiver: Receiver) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{receiver.url}/anything/else?x=1",
        data=json.dumps({"hello": "world"}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "k1"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 202
    with urllib.request.urlopen(f"{receiver.url}/_records") as response:
        listed = json.load(response)["records"]

    record = only(receiver.received("/anything/else"))
    assert record.query == "x=1"
    assert record.json == {"hello": "world"}
    assert receiver.distinct_keys() == ["k1"]
    assert [r["path"] for r in listed] == ["/anything/else"]
    assert record.verified is None
    with pytest.raises(ValueError, match="not an HTTP status"):
        receiver.fail_with(99)


@pytest.mark.parametrize("kind", ["webhook", "slack"])
async def test_a_notice_whose_senders_term_ends_before_its_bytes_leave_is_not_sent(
    receiver: Receiver, kind: str
) -> None:
    fence = FreezesAfterFirstCheck()
    target = channel(kind, url=f"{receiver.url}/{kind}")
    with pytest.raises(delivery.DeliveryError, match="not sent: frozen past the renew deadline") as caught:
        await delivery.deliver(target, {"hmacKey": HMAC_KEY}, MESSAGE, clock=clock, fence=fence)
    assert caught.value.retryable  # the leader sends it, under the same idempotency key
    assert fence.asked == 2
    assert receiver.received(f"/{kind}") == []


async def test_a_leaders_fenced_notice_is_sent_as_usual(receiver: Receiver) -> None:
    hook = channel("webhook", url=f"{receiver.url}/webhook")
    assert await delivery.deliver(hook, {"hmacKey": HMAC_KEY}, MESSAGE, clock=clock, fence=Leads()) == "HTTP 202"
    assert verify_webhook(only(receiver.received("/webhook")), HMAC_KEY)
