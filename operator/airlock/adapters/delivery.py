"""Notice delivery: the only code that sends a notice to a webhook, Slack, PagerDuty or an SMTP server.

One call, :func:`deliver`, sends one rendered notice through one channel and
either returns a short receipt (``"HTTP 202"``, ``"SMTP 250 <…@airlock.dev>"``)
or raises :class:`DeliveryError`, whose ``retryable`` flag tells the caller
whether trying again later can help (HTTP 408, 429, 5xx, timeouts, refused
connections, SMTP 4xx) or not (other 4xx, SMTP 5xx, a missing Secret key).
Retrying, backoff and the outbox belong to the engine; nothing here sleeps or
loops.

Retries must not multiply a notice, so every request carries the notice's
idempotency key: an ``Idempotency-Key`` header over HTTP, a PagerDuty
``dedup_key`` per incident, and an e-mail ``Message-ID`` derived from the key.

Secret values (URLs with tokens, HMAC keys, routing keys, passwords) never
appear in an error message: messages name the channel and the Secret *key*,
never a URL; text quoted from a server is redacted of every secret value and
of the parts of a secret URL (path, query, user info).  Exceptions are raised
``from None`` because a library's own message (an invalid-URL error, say) may
quote the secret URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import email.utils
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from airlock.adapters import kube
from airlock.api import notifications
from airlock.api.common import API_VERSION

Clock = Callable[[], float]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
USER_AGENT = "airlock-notifier"
DRILL_PREFIX = "[DRILL] "

# PagerDuty Events API v2 limits: summary ≤ 1024 characters; the whole event ≤ 512 KB.
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_BODY_MAX = 16_384
PAGERDUTY_SEVERITY = {"SEV1": "critical", "SEV2": "error", "SEV3": "warning", "SEV4": "info"}

# HTTP statuses worth another attempt; every other non-2xx answer is final.
RETRYABLE_STATUSES = frozenset({408, 429})
# How much of an error answer is quoted back (after redaction).
ERROR_SNIPPET = 200
# Secret values shorter than this are not redacted from quoted server text: replacing
# every "a" or "42" would garble the message, and such values are no secret anyway.
REDACT_MIN_LENGTH = 4


@dataclass(frozen=True)
class Message:
    """One rendered notice for one audience, ready to send."""

    key: str  # idempotency key, identical on every retry of the same notice
    namespace: str
    incident: str
    system: str
    audience: str  # internal | regulator | users
    event: str  # opened | severity-SEV1 (…SEV4) | acknowledged | contained | resolved
    severity: str  # SEV1..SEV4
    subject: str
    body: str
    drill: bool = False


class DeliveryError(Exception):
    """A notice was not delivered; ``retryable`` says whether a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message


def pagerduty_action(event: str) -> str | None:
    """The PagerDuty ``event_action`` for a notice event, or ``None`` if PagerDuty is not told."""
    if event == "opened" or event.startswith("severity-"):
        return "trigger"  # a severity change re-triggers the same alert with the new severity
    if event == "acknowledged":
        return "acknowledge"
    if event == "resolved":
        return "resolve"
    return None


def message_id(key: str) -> str:
    """The e-mail ``Message-ID`` of a notice: the same on every retry, so mail clients collapse duplicates."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@airlock.dev>"


def sign(key: str, timestamp: str, body: bytes) -> str:
    """The ``X-Airlock-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    digest = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def notice_payload(message: Message) -> dict[str, Any]:
    """The webhook body: every message field plus the API version and kind."""
    return {"apiVersion": API_VERSION, "kind": "Notice", **dataclasses.asdict(message)}


def slack_text(message: Message) -> str:
    prefix, subject = _drill_parts(message)
    return f"{prefix}*{_slack_escape(subject)}*\n{_slack_escape(message.body)}"


def subject(message: Message) -> str:
    """The subject as sent: a drill is marked ``[DRILL]`` once, whether or not the caller marked it already."""
    prefix, text = _drill_parts(message)
    return prefix + text


def _drill_parts(message: Message) -> tuple[str, str]:
    if not message.drill:
        return "", message.subject
    return DRILL_PREFIX, message.subject.removeprefix(DRILL_PREFIX)


def pagerduty_event(message: Message, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body; raises a non-retryable :class:`DeliveryError` for an event PagerDuty is not told."""
    action = pagerduty_action(message.event)
    if action is None:
        raise DeliveryError(f"event {message.event!r} is not sent to PagerDuty", retryable=False)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": f"airlock/{message.namespace}/{message.incident}",
    }
    if action == "trigger":
        severity = PAGERDUTY_SEVERITY.get(message.severity)
        if severity is None:
            raise DeliveryError(f"unknown severity {message.severity!r}; expected SEV1..SEV4", retryable=False)
        summary = subject(message)
        event["payload"] = {
            "summary": summary[:PAGERDUTY_SUMMARY_MAX],
            "source": f"{message.namespace}/{message.system}",
            "severity": severity,
            "custom_details": {
                "namespace": message.namespace,
                "incident": message.incident,
                "system": message.system,
                "severity": message.severity,
                "event": message.event,
                "audience": message.audience,
                "drill": message.drill,
                "body": message.body[:PAGERDUTY_BODY_MAX],
            },
        }
    return event


def email_message(
    channel: notifications.Channel, message: Message, *, clock: Clock = time.time
) -> email.message.EmailMessage:
    """The e-mail of a notice (headers and plain-text body) for an e-mail channel."""
    settings = _email_settings(channel)
    mail = email.message.EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.to)
    mail["Subject"] = subject(message)
    mail["Date"] = email.utils.formatdate(clock(), usegmt=True)
    mail["Message-ID"] = message_id(message.key)
    mail["X-Airlock-Idempotency-Key"] = message.key
    mail["X-Airlock-Incident"] = f"{message.namespace}/{message.incident}"
    mail.set_content(message.body)
    return mail


async def deliver(
    channel: notifications.Channel,
    secret: Mapping[str, str],
    message: Message,
    *,
    # Not asyncio.timeout(): SMTP runs in a thread that cancellation cannot stop, so the
    # limit must reach the sockets themselves.
    timeout: float = 10.0,  # noqa: ASYNC109
    clock: Clock = time.time,
    fence: kube.Fence | None = None,
) -> str:
    """Send ``message`` through ``channel``; return a short receipt or raise :class:`DeliveryError`.

    ``secret`` is the decoded data of the channel's Secret (empty without
    ``secretRef``).  ``clock`` gives the webhook timestamp and the e-mail date.
    ``fence`` (leader election) is asked last, and for HTTP channels once more
    as the request's bytes go out (``kube.FencedBody``): a replica that does not
    hold its Lease sends nothing (a retryable error; the leader sends it, same key).
    """
    if fence is not None and (why := fence.refusal()) is not None:
        raise DeliveryError(f"{_label(channel)}: not sent: {why}", retryable=True)
    match channel.type:
        case notifications.ChannelType.WEBHOOK:
            return await _webhook(channel, secret, message, limit=timeout, clock=clock, fence=fence)
        case notifications.ChannelType.SLACK:
            url = _url(channel, secret)
            payload = _json_bytes({"text": slack_text(message)})
            return await _post(
                channel, secret, url, payload, {"Idempotency-Key": message.key}, limit=timeout, fence=fence
            )
        case notifications.ChannelType.PAGERDUTY:
            routing_key = _required(channel, secret, "routingKey")
            payload = _json_bytes(pagerduty_event(message, routing_key))
            url = channel.url or PAGERDUTY_EVENTS_URL
            return await _post(
                channel, secret, url, payload, {"Idempotency-Key": message.key}, limit=timeout, fence=fence
            )
        case notifications.ChannelType.EMAIL:
            mail = email_message(channel, message, clock=clock)
            return await asyncio.to_thread(_send_mail, channel, secret, mail, timeout)
    raise DeliveryError(f"{_label(channel)}: unknown channel type", retryable=False)


async def _webhook(
    channel: notifications.Channel,
    secret: Mapping[str, str],
    message: Message,
    *,
    limit: float,
    clock: Clock,
    fence: kube.Fence | None,
) -> str:
    url = _url(channel, secret)
    key = _required(channel, secret, "hmacKey")
    body = _json_bytes(notice_payload(message))
    timestamp = str(int(clock()))
    headers = {
        "Idempotency-Key": message.key,
        "X-Airlock-Timestamp": timestamp,
        "X-Airlock-Signature": sign(key, timestamp, body),
    }
    return await _post(channel, secret, url, body, headers, limit=limit, fence=fence)


async def _post(
    channel: notifications.Channel,
    secret: Mapping[str, str],
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    limit: float,
    fence: kube.Fence | None = None,
) -> str:
    label = _label(channel)
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    data: bytes | kube.FencedBody = body if fence is None else kube.FencedBody(body, fence, "application/json")
    try:
        # trust_env: clusters often reach Slack and PagerDuty only through HTTPS_PROXY.
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit), trust_env=True) as session,
            session.post(url, data=data, headers=all_headers, allow_redirects=False) as response,
        ):
            status = response.status
            if 200 <= status < 300:
                return f"HTTP {status}"
            snippet = _redact(await _snippet(response), secret)
    except TimeoutError:
        raise DeliveryError(f"{label}: no answer within {limit:g}s", retryable=True) from None
    except aiohttp.InvalidURL:
        # The exception's own text quotes the URL, which may hold a token.
        raise DeliveryError(f"{label}: the URL is not valid", retryable=False) from None
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        raise DeliveryError(f"{label}: cannot connect ({reason})", retryable=True) from None
    except aiohttp.ClientError as exc:
        if isinstance(exc.__cause__, kube.Fenced):
            raise DeliveryError(f"{label}: not sent: {exc.__cause__.message}", retryable=True) from None
        raise DeliveryError(f"{label}: request failed ({type(exc).__name__})", retryable=True) from None
    retryable = status in RETRYABLE_STATUSES or status >= 500
    detail = f": {snippet}" if snippet else ""
    if 300 <= status < 400:
        detail = " (redirects are not followed)"
    raise DeliveryError(f"{label}: HTTP {status}{detail}", retryable=retryable)


async def _snippet(response: aiohttp.ClientResponse) -> str:
    try:
        raw = await response.content.read(ERROR_SNIPPET * 4)
    except (aiohttp.ClientError, TimeoutError):
        return ""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text[:ERROR_SNIPPET] + ("…" if len(text) > ERROR_SNIPPET else "")


def _send_mail(
    channel: notifications.Channel, secret: Mapping[str, str], mail: email.message.EmailMessage, timeout: float
) -> str:
    """Blocking SMTP delivery (runs in a worker thread)."""
    settings = _email_settings(channel)
    label = _label(channel)
    username = secret.get("username") or ""
    password = secret.get("password") or ""
    if username and not password:
        raise _missing(channel, "password")
    try:
        # Port 465 speaks TLS from the first byte (SMTPS); any other port upgrades with STARTTLS if asked to.
        smtp: smtplib.SMTP
        if settings.port == 465:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        with smtp:
            if settings.starttls and settings.port != 465:
                # Never fall back to plain text when TLS was asked for: smtplib raises if the server lacks it.
                smtp.starttls(context=ssl.create_default_context())
            if username:
                smtp.login(username, password)
            refused = smtp.send_message(mail, from_addr=settings.sender, to_addrs=list(settings.to))
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError(f"{label}: the SMTP server does not support STARTTLS or AUTH", retryable=False) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        retryable = all(400 <= code < 500 for code in codes)
        shown = ", ".join(str(code) for code in sorted(set(codes)))
        raise DeliveryError(f"{label}: every recipient was refused (SMTP {shown})", retryable=retryable) from None
    except smtplib.SMTPResponseException as exc:
        code = int(exc.smtp_code)
        text = (
            exc.smtp_error.decode("utf-8", errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        text = _redact(" ".join(text.split())[:ERROR_SNIPPET], secret)
        raise DeliveryError(f"{label}: SMTP {code}: {text}", retryable=400 <= code < 500) from None
    except smtplib.SMTPServerDisconnected:
        raise DeliveryError(f"{label}: the SMTP server closed the connection", retryable=True) from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"{label}: SMTP failed ({type(exc).__name__})", retryable=False) from None
    except ssl.SSLCertVerificationError:
        raise DeliveryError(f"{label}: the SMTP server's certificate is not trusted", retryable=False) from None
    except TimeoutError:
        raise DeliveryError(f"{label}: no SMTP answer within {timeout:g}s", retryable=True) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DeliveryError(f"{label}: cannot reach the SMTP server ({reason})", retryable=True) from None
    receipt = f"SMTP 250 {mail['Message-ID']}"
    if refused:
        receipt += f" ({len(refused)} of {len(settings.to)} recipients refused)"
    return receipt


def _email_settings(channel: notifications.Channel) -> notifications.Email:
    if channel.email is None:
        raise DeliveryError(f"{_label(channel)}: no e-mail settings", retryable=False)
    return channel.email


def _url(channel: notifications.Channel, secret: Mapping[str, str]) -> str:
    if channel.url:
        return channel.url
    url = _required(channel, secret, "url")
    if not url.startswith(("https://", "http://")):
        raise DeliveryError(f"{_secret_label(channel)} key 'url' is not an http(s) URL", retryable=False)
    return url


def _required(channel: notifications.Channel, secret: Mapping[str, str], key: str) -> str:
    value = secret.get(key)
    if not value:
        raise _missing(channel, key)
    return value


def _missing(channel: notifications.Channel, key: str) -> DeliveryError:
    return DeliveryError(f"{_label(channel)}: {_secret_label(channel)} has no key {key!r}", retryable=False)


def _label(channel: notifications.Channel) -> str:
    return f"{channel.type.value} channel {channel.name!r}"


def _secret_label(channel: notifications.Channel) -> str:
    return f"Secret {channel.secret_ref.name!r}" if channel.secret_ref else "the channel's Secret (no secretRef)"


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _slack_escape(text: str) -> str:
    # Slack reads <…> as links and mentions; only these three characters must be escaped.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _redact(text: str, secret: Mapping[str, str]) -> str:
    fragments: set[str] = set()
    for value in secret.values():
        fragments.update(_fragments(value))
    # Longest first, so a value containing another is redacted whole.
    for fragment in sorted(fragments, key=len, reverse=True):
        if len(fragment) >= REDACT_MIN_LENGTH:
            text = text.replace(fragment, "***")
    return text


def _fragments(value: str) -> set[str]:
    """A secret value and, for a URL, the parts a server might echo on their own (path, query, user info)."""
    fragments = {value}
    if value.startswith(("https://", "http://")):
        try:
            parts = urllib.parse.urlsplit(value)
            fragments.update((parts.path, parts.query, parts.username or "", parts.password or ""))
            fragments.update(parts.path.split("/"))
            fragments.update(item for pair in urllib.parse.parse_qsl(parts.query) for item in pair)
        except ValueError:
            pass  # not a valid URL: the whole value is all there is to redact
    return fragments
